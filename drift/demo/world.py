"""A synthetic but plausible world of agent inputs: a month of ordinary traffic and two more days,
one like the month and one where several things went wrong.

Segments (kind/source) and what happens on the drifted day:

    image/mobile_app          receipt photos;   a third are blurred, darkened or downscaled
    image/support_chat        app screenshots;  unchanged
    document/partner_invoices born-digital invoices; half arrive as phone scans, more are broken
    document/contracts        multi-page contracts; unchanged
    payload/orders_api        order JSON;       `total` sent as a string in 30% (with a debug key that is markup),
                                                `customer.email` gone in 25%
    payload/weather_api       weather JSON;     unchanged
    payload/search_tool       search results keyed by document id (inline in the log); new ids only

Everything is seeded, so the world (and therefore the demo's verdicts) is the same on every machine.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import polars as pl
from PIL import Image, ImageDraw, ImageFilter, ImageFont

BASELINE_START = datetime(2026, 10, 1, tzinfo=UTC)
BASELINE_DAYS = 31
QUIET_DAY = BASELINE_START + timedelta(days=BASELINE_DAYS)
DRIFT_DAY = QUIET_DAY + timedelta(days=1)

# Inputs per segment: a quiet month of pilot traffic, then the two monitored days at full volume.
BASELINE_PER_DAY = 10
MONITORED_PER_DAY = 120

SHOPS = ["CORNER MARKET", "CAFE LUNA", "HARDWARE & CO", "FRESH FOODS", "CITY PHARMACY", "BOOK NOOK"]
ITEMS = ["Milk 1L", "Bread", "Coffee beans", "Apples 1kg", "Screws M4", "Notebook", "Aspirin", "Tea", "Pasta", "Cheese"]
CONDITIONS = ["clear", "cloudy", "rain", "snow", "fog"]
STATUSES = ["paid", "shipped", "delivered", "refunded"]


def _font(size: int):
    return ImageFont.load_default(size=size)


def receipt_page(rng: random.Random, width: int = 300, height: int = 460) -> Image.Image:
    """A receipt as printed: off-white thermal paper, shop name, items, total."""
    tone = rng.randint(238, 252)
    page = Image.new("RGB", (width, height), (tone, tone, tone - rng.randint(0, 8)))
    draw = ImageDraw.Draw(page)
    s = width / 300  # font and spacing scale with the paper
    draw.text((width // 2, 22 * s), rng.choice(SHOPS), fill=(20, 20, 20), font=_font(int(22 * s)), anchor="mm")
    draw.text(
        (14 * s, 50 * s),
        f"{rng.randint(1, 28):02d}/10/2026  {rng.randint(8, 20):02d}:{rng.randint(0, 59):02d}",
        fill=(40, 40, 40),
        font=_font(int(13 * s)),
    )
    y, total = 80 * s, 0.0
    for _ in range(rng.randint(3, 9)):
        price = round(rng.uniform(0.5, 25), 2)
        total += price
        draw.text((14 * s, y), rng.choice(ITEMS), fill=(30, 30, 30), font=_font(int(15 * s)))
        draw.text((width - 14 * s, y), f"{price:.2f}", fill=(30, 30, 30), font=_font(int(15 * s)), anchor="ra")
        y += 24 * s
    draw.line((14 * s, y + 4 * s, width - 14 * s, y + 4 * s), fill=(60, 60, 60), width=2)
    draw.text((14 * s, y + 14 * s), "TOTAL", fill=(0, 0, 0), font=_font(int(19 * s)))
    draw.text((width - 14 * s, y + 14 * s), f"{total:.2f}", fill=(0, 0, 0), font=_font(int(19 * s)), anchor="ra")
    for i in range(rng.randint(10, 25)):  # barcode
        x = 40 * s + i * 7 * s
        draw.rectangle((x, height - 65 * s, x + rng.randint(2, 5) * s, height - 30 * s), fill=(10, 10, 10))
    return page


def receipt_photo(rng: random.Random, light: float | None = None) -> Image.Image:
    """A phone photo of a receipt on a table: rotation, perspective, uneven light, sensor noise.

    `light` (default: drawn from 0.8..1.1) scales the exposure, for generators with daylight in them."""
    table = tuple(rng.randint(90, 170) for _ in range(3))
    canvas = Image.new("RGB", (600, 800), table)
    paper = receipt_page(rng).rotate(rng.uniform(-8, 8), expand=True, fillcolor=table, resample=Image.Resampling.BILINEAR)
    canvas.paste(paper, (rng.randint(60, 240), rng.randint(60, 280)))
    skew = rng.uniform(-0.0002, 0.0002)
    canvas = canvas.transform(
        canvas.size,
        Image.Transform.PERSPECTIVE,
        (1, rng.uniform(-0.05, 0.05), 0, 0, 1, 0, skew, skew, 1),
        resample=Image.Resampling.BILINEAR,
        fillcolor=table,
    )
    arr = np.asarray(canvas, dtype=np.float32)
    light = rng.uniform(0.8, 1.1) if light is None else light
    gradient = np.linspace(light, light * rng.uniform(0.75, 1.0), arr.shape[0], dtype=np.float32)[:, None, None]
    noise = np.random.default_rng(rng.randint(0, 2**31)).integers(-6, 7, arr.shape, dtype=np.int16)
    arr = np.clip(arr * gradient + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))


def degrade(photo: Image.Image, rng: random.Random) -> Image.Image:
    """What a bad night looks like: a dim warehouse, a shaking hand, a new app that downsizes."""
    choice = rng.choice(["blur", "dark", "small"])
    if choice == "blur":
        return photo.filter(ImageFilter.GaussianBlur(rng.uniform(4, 7)))
    if choice == "dark":
        arr = np.asarray(photo, dtype=np.float32) * rng.uniform(0.25, 0.4)
        return Image.fromarray(arr.astype(np.uint8))
    return photo.resize((photo.width // 3, photo.height // 3), Image.Resampling.BILINEAR)


def screenshot(rng: random.Random) -> Image.Image:
    """A support-chat screenshot: app bar, chat bubbles, lots of white."""
    width, height = rng.choice([(1080, 1920), (1170, 2532), (1280, 800)])
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    brand = rng.choice([(25, 118, 210), (56, 142, 60), (123, 31, 162)])
    draw.rectangle((0, 0, width, 140), fill=brand)
    draw.text((40, 50), "Support", fill=(255, 255, 255), font=_font(48))
    y = 180
    while y < height - 200:
        mine = rng.random() < 0.5
        w, h = rng.randint(width // 3, int(width * 0.7)), rng.randint(80, 220)
        x = width - w - 40 if mine else 40
        draw.rounded_rectangle((x, y, x + w, y + h), radius=28, fill=brand if mine else (236, 236, 236))
        for line in range(h // 50):
            draw.text(
                (x + 24, y + 20 + line * 44),
                "lorem ipsum " * (w // 160),
                fill=(255, 255, 255) if mine else (30, 30, 30),
                font=_font(32),
            )
        y += h + rng.randint(30, 70)
    return img


def jpeg_bytes(img: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def invoice_pdf(rng: random.Random, pages: int = 1, creator: str = "Microsoft Word") -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator(creator)
    pdf.set_producer(creator)
    pdf.set_font("helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", "B", 18)
        pdf.cell(
            0,
            12,
            f"INVOICE {rng.randint(10000, 99999)}" if page == 0 else f"Terms and conditions, page {page + 1}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.set_font("helvetica", size=11)
        for _ in range(rng.randint(12, 30)):
            pdf.cell(
                0,
                7,
                f"{rng.choice(ITEMS)} ... {rng.randint(1, 9)} x {rng.uniform(1, 90):.2f} EUR " + "clause " * rng.randint(0, 6),
                new_x="LMARGIN",
                new_y="NEXT",
            )
    return bytes(pdf.output())


def delivery_note_pdf(rng: random.Random) -> bytes:
    """A partner's new template: same office suite, page size and amount of text as the invoices,
    but another layout (a boxed table under a letterhead) and other words."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator("Microsoft Word")
    pdf.set_producer("Microsoft Word")
    pdf.add_page()
    pdf.set_fill_color(30, 60, 120)
    pdf.rect(0, 0, 210, 30, style="F")
    pdf.set_font("times", "B", 16)
    pdf.set_xy(120, 40)
    pdf.cell(0, 10, f"Lieferschein Nr. {rng.randint(100, 999)}-{rng.randint(1000, 9999)}")
    pdf.set_xy(20, 60)
    pdf.set_font("times", size=10)
    for _ in range(rng.randint(12, 30)):
        pdf.cell(60, 7, f"Artikel {rng.randint(1000, 9999)}", border=1)
        pdf.cell(30, 7, f"Menge {rng.randint(1, 50)}", border=1)
        pdf.cell(80, 7, "geliefert an Lager " + rng.choice("ABCDEF"), border=1, new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(20)
    return bytes(pdf.output())


def scanned_pdf(rng: random.Random) -> bytes:
    """A phone scan saved as PDF: one grey page image, no text layer, a scanner app as producer."""
    from pypdf import PdfReader, PdfWriter

    page = receipt_page(rng, 620, 877).convert("L")  # A4 proportions
    page = page.filter(ImageFilter.GaussianBlur(0.8)).rotate(rng.uniform(-2, 2), fillcolor=235)
    buffer = io.BytesIO()
    page.save(buffer, "PDF", resolution=75)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(buffer.getvalue())))
    writer.add_metadata({"/Producer": "CamScanner", "/Creator": "CamScanner"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def order_json(rng: random.Random, drifted: bool) -> dict:
    items = [
        {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 80), 2)}
        for _ in range(rng.randint(1, 6))
    ]
    total = round(sum(i["qty"] * i["price"] for i in items), 2)
    order = {
        "order_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "status": rng.choice(STATUSES),
        "total": total,
        "currency": "EUR",
        "customer": {"id": rng.randint(1, 10**6), "email": f"user{rng.randint(1, 9999)}@example.com"},
        "items": items,
        "created_at": f"2026-10-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
    }
    if rng.random() < 0.3:
        order["coupon"] = rng.choice(["WELCOME10", "FREESHIP", None])
    if drifted:
        if rng.random() < 0.3:
            order["total"] = f"{total:.2f}"  # the partner's new serializer
            # ... which also leaks a debug field whose key is markup: reports must show it as text
            order["<img src=x onerror=alert(1)>debug"] = "serializer v2"
        if rng.random() < 0.25:
            del order["customer"]["email"]
    return order


def weather_json(rng: random.Random) -> dict:
    return {
        "location": {
            "name": rng.choice(["Berlin", "Lyon", "Porto", "Oslo"]),
            "lat": rng.uniform(40, 60),
            "lon": rng.uniform(-9, 12),
        },
        "current": {
            "temp_c": round(rng.uniform(-5, 25), 1),
            "humidity": rng.randint(30, 100),
            "condition": rng.choice(CONDITIONS),
        },
        "forecast": [
            {"date": f"2026-11-{d + 1:02d}", "min": round(rng.uniform(-8, 10), 1), "max": round(rng.uniform(10, 25), 1)}
            for d in range(rng.randint(3, 7))
        ],
        "units": "metric",
    }


def search_json(rng: random.Random) -> dict:
    results = {
        uuid.UUID(int=rng.getrandbits(128)).hex: {
            "title": f"Doc {rng.randint(1, 999)}",
            "score": round(rng.random(), 3),
            "url": f"https://kb.example.com/{rng.randint(1, 9999)}",
        }
        for _ in range(rng.randint(2, 8))
    }
    return {
        "query": rng.choice(["refund policy", "shipping times", "invoice copy"]),
        "results": results,
        "took_ms": rng.randint(5, 300),
    }


@dataclass
class World:
    root: Path
    log_dir: Path
    data_dir: Path


def _timestamp(rng: random.Random, day: datetime) -> datetime:
    return day + timedelta(seconds=rng.randint(0, 86399))


def generate_day(world: World, day: datetime, n: int, drifted: bool, seed: int) -> int:
    """Write one day's inputs and its log file; return the number of log rows."""
    rng = random.Random(seed)
    folder = world.data_dir / f"{day:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def add(kind: str, source: str, name: str, payload: bytes | None = None, body: str | None = None, **meta) -> None:
        input_id = f"{source}-{day:%Y%m%d}-{len(rows):05d}"
        uri = None
        if payload is not None:
            path = folder / name
            path.write_bytes(payload)
            uri = str(path.relative_to(world.log_dir.parent).as_posix())
            uri = "../" + uri  # the log lives in logs/, the data in data/: relative to the log file
        rows.append(
            {
                "input_id": input_id,
                "received_at": _timestamp(rng, day).isoformat(),
                "kind": kind,
                "source": source,
                "uri": uri,
                "body": body,
                "channel": meta.get("channel", "prod"),
            }
        )

    for i in range(n):
        photo = receipt_photo(rng)
        if drifted and rng.random() < 1 / 3:
            photo = degrade(photo, rng)
        data = jpeg_bytes(photo, rng.randint(78, 92))
        if rng.random() < 0.015:
            data = data[: len(data) // 2]  # an upload cut short
        add("image", "mobile_app", f"receipt_{i:04d}.jpg", data)
    for i in range(n):
        buffer = io.BytesIO()
        screenshot(rng).save(buffer, "PNG", optimize=False, compress_level=1)
        add("image", "support_chat", f"screen_{i:04d}.png", buffer.getvalue())
    for i in range(n):
        broken = rng.random() < (0.12 if drifted else 0.01)
        if broken:
            data = b"%PDF-1.4\n" + bytes(rng.getrandbits(8) for _ in range(400))
        elif drifted and rng.random() < 0.5:
            data = scanned_pdf(rng)
        else:
            data = invoice_pdf(rng, creator=rng.choice(["Microsoft Word", "LibreOffice Writer"]))
        add("document", "partner_invoices", f"invoice_{i:04d}.pdf", data)
    for i in range(n):
        add("document", "contracts", f"contract_{i:04d}.pdf", invoice_pdf(rng, pages=rng.randint(2, 6), creator="pdfTeX-1.40"))
    for i in range(n):
        add("payload", "orders_api", f"order_{i:04d}.json", orjson.dumps(order_json(rng, drifted)))
    for i in range(n):
        add("payload", "weather_api", f"weather_{i:04d}.json", orjson.dumps(weather_json(rng)))
    for _ in range(n):
        add("payload", "search_tool", "", body=orjson.dumps(search_json(rng)).decode())
    # Rows that break the log contract, as real producers occasionally write them.
    rows.append(
        {
            "input_id": None,
            "received_at": _timestamp(rng, day).isoformat(),
            "kind": "image",
            "source": "mobile_app",
            "uri": "x.jpg",
            "body": None,
            "channel": "prod",
        }
    )
    rows.append(
        {
            "input_id": f"audio-{day:%Y%m%d}",
            "received_at": _timestamp(rng, day).isoformat(),
            "kind": "audio",
            "source": "voice",
            "uri": "clip.wav",
            "body": None,
            "channel": "prod",
        }
    )
    if drifted:
        rows.append(
            {
                "input_id": f"escape-{day:%Y%m%d}",
                "received_at": _timestamp(rng, day).isoformat(),
                "kind": "document",
                "source": "partner_invoices",
                "uri": "/etc/passwd",
                "body": None,
                "channel": "prod",
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "input_id": pl.Utf8,
            "received_at": pl.Utf8,
            "kind": pl.Utf8,
            "source": pl.Utf8,
            "uri": pl.Utf8,
            "body": pl.Utf8,
            "channel": pl.Utf8,
        },
    )
    frame.write_parquet(world.log_dir / f"inputs-{day:%Y-%m-%d}.parquet")
    return frame.height


def generate(root: Path, progress) -> World:
    world = World(root=root, log_dir=root / "logs", data_dir=root / "data")
    world.log_dir.mkdir(parents=True, exist_ok=True)
    world.data_dir.mkdir(parents=True, exist_ok=True)
    days = [(BASELINE_START + timedelta(days=d), BASELINE_PER_DAY, False) for d in range(BASELINE_DAYS)]
    days += [(QUIET_DAY, MONITORED_PER_DAY, False), (DRIFT_DAY, MONITORED_PER_DAY, True)]
    # Each day has its own seed, so generating days in parallel gives the same world as in series.
    with progress.bar("generating the demo's inputs", total=len(days)) as advance:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(generate_day, world, day, n, drifted, 1000 + i) for i, (day, n, drifted) in enumerate(days)]
            for future in as_completed(futures):
                future.result()
                advance(1)
    return world
