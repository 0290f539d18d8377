"""False pages per job-night over consecutive nights of time-structured traffic, and power for
partial shifts, as a nightly job of many segments decides them.

Production traffic has time in it. Payloads carry the day's date and epoch time, counters, rotating
tokens, versions that get bumped, map keys that come and go, optional fields in a few percent;
weekends mix differently from weekdays (order statuses and channels, document producers);
daylight moves photos' brightness within its usual range, which the baseline week spans.
This harness makes such traffic for a job of many segments (payload APIs, photo channels, document
partners), builds each segment's baseline from its first week (350 items), then runs consecutive
nights (150 items per segment) and counts the nights on which the job pages (any segment's
finding drifted at warning or above), with a Wilson 95% interval.

Images and documents are expensive to featurize, so each kind has a pool of items made once with
attributes (a photo's light, a document's producer and whether it is a scan), featurized by the
product's own code; a night draws its items from the pool by that night's conditions (daylight,
weekday mix), baseline draws from one half of the pool and nights from the other. Payload
documents are cheap: every night's are generated afresh. Error counts are drawn per night from
each kind's ordinary error rates.

Issue 26 added traffic shaped unlike the first four APIs: a statements API with period labels in
several spellings (a compact ISO week, "Q1-2026", a month name), a date-stamped ranking model and
a build string bumped now and then, shard names, a local time with its offset across the change
to summer time, amounts in cents, a map of statement lines keyed by line codes with nested values,
a paging cursor; and a search API whose hits are empty in an ordinary 3%, with a date-keyed facet
map. Weekends carry less traffic (100 items a night instead of 150). The baseline week samples
750 items per segment ([baseline] max_per_segment, separate from the night's 150).

Power: a segment of each kind, n = 150 against its 750-item baseline, decided with the job's
width (its share of the night's budget), for the planted shifts of issues 14 and 26.

    python benchmarks/calibration/nights.py [--nights 200] [--payload 30] [--image 10] [--document 10] [--reps 20]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import polars as pl
from PIL import Image, ImageFilter
from verdicts import PAYLOAD_LIMITS, concat, featurize, subset, wilson

from drift.config import PolicySection
from drift.demo import world
from drift.features.kinds import KINDS, FeatureSet
from drift.features.kinds.payload import PayloadFeaturizer
from drift.verdict.compare import compare_segment, error_rate_checks
from drift.verdict.policy import decide, error_control, paging_findings

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
BASELINE_DAYS, BASELINE_PER_DAY, NIGHT_N, WEEKEND_N = 7, 108, 150, 100
ERROR_RATES = {  # ordinary nights: what each kind's channels lose anyway
    "payload": {"invalid_json": 0.003},
    "image": {"unsupported": 0.005},
    "document": {"not_pdf": 0.003, "corrupt": 0.004},
}
BERLIN = ZoneInfo("Europe/Berlin")
POLICY = PolicySection()


def day_start(day: int) -> datetime:
    return START + timedelta(days=day)


def weekend(day: int) -> bool:
    return day_start(day).weekday() >= 5


def received_times(rng: random.Random, day: int, n: int) -> list[float]:
    """Arrivals with a daytime peak: most between 8:00 and 20:00 UTC, some at night."""
    base = day_start(day).timestamp()
    times = [
        base + (rng.gauss(14 * 3600, 3.5 * 3600) if rng.random() < 0.85 else rng.uniform(0, 86400)) % 86400 for _ in range(n)
    ]
    return sorted(times)


# ---- payload APIs whose values change every day by design -----------------------------------------

CURRENCIES = ["USD", "GBP", "JPY", "CHF", "SEK", "NOK", "PLN", "CZK"]
STATUSES = ["paid", "shipped", "delivered", "cancelled"]


def fx_api(rng, t, day, tenant, shift):
    rates = {c: round(rng.uniform(0.5, 150), 4) for c in CURRENCIES if rng.random() < 0.95}
    if rng.random() < 0.03:
        rates[rng.choice(["HUF", "RON", "ISK"])] = round(rng.uniform(1, 400), 3)  # a rarely quoted currency
    return {
        "base": "EUR",
        "date": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d"),
        "timestamp": int(t - rng.uniform(0, 900)),
        "rates": rates,
        "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
    }


def orders_api(rng, t, day, tenant, shift):
    items = [
        {"sku": f"SKU-{rng.randint(1000, 9999)}", "qty": rng.randint(1, 5), "price": round(rng.uniform(1, 80), 2)}
        for _ in range(rng.randint(1, 6))
    ]
    weekend_mix = weekend(day)
    status = rng.choices(STATUSES, weights=[4, 3, 2, 2 if weekend_mix else 1])[0]
    if shift == "new_enum":
        status = "on_hold"
    total = round(sum(i["qty"] * i["price"] for i in items), 2)
    order = {
        "order_id": str(uuid.UUID(int=rng.getrandbits(128))),
        "seq": int(1_000_000 * (tenant + 1) + (t - START.timestamp()) / 20 + rng.randint(0, 3)),
        "status": status,
        "total": f"{total:.2f}" if shift == "string_number" else total,
        "currency": rng.choices(["EUR", "USD"], weights=[9, 1])[0],
        "created_at": datetime.fromtimestamp(t - rng.uniform(0, 3600), UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "items": items,
        "channel": rng.choices(["web", "app"], weights=[1, 2] if weekend_mix else [2, 1])[0],
    }
    if rng.random() < 0.2:
        order["coupon"] = rng.choice(["WELCOME10", "FREESHIP", "SPRING"])
    if rng.random() < 0.03:
        order["gift_note"] = "Happy birthday!"  # a benign optional field
    return order


def weather_api(rng, t, day, tenant, shift):
    today = datetime.fromtimestamp(t, UTC).date()
    minor = 4 + (day + tenant) // 10  # a release every ten days, rolled out over a day
    if (day + tenant) % 10 == 0 and rng.random() < 0.5:
        minor -= 1
    return {
        "api_version": f"2.{minor}.{(day + tenant) % 3}",
        "location": {"name": rng.choice(["Berlin", "Lyon", "Porto", "Oslo"]), "lat": round(rng.uniform(40, 60), 3)},
        "observed_at_ms": int((t - rng.uniform(0, 600)) * 1000),
        "current": {
            "temp_c": round(rng.gauss(5 + 3 * math.sin(day / 5), 6), 1),
            "condition": rng.choice(["clear", "cloudy", "rain", "snow"]),
        },
        "forecast": [
            {"date": (today + timedelta(days=i + 1)).isoformat(), "max": round(rng.uniform(-5, 20), 1)}
            for i in range(rng.randint(3, 7))
        ],
    }


def session_api(rng, t, day, tenant, shift):
    doc = {
        "token": f"{rng.getrandbits(128):032x}",
        "expires_at": datetime.fromtimestamp(t + 3600, UTC).isoformat(timespec="seconds"),
        "user": {"id": rng.randint(1, 10**7), "tier": rng.choices(["free", "pro", "team"], weights=[6, 3, 1])[0]},
        "flags": {f"exp_{k}": rng.random() < 0.5 for k in rng.sample(range(40), rng.randint(0, 4))},  # experiments come and go
        "served_by": f"api-{rng.randint(1, 12)}",
    }
    if rng.random() < 0.04:
        doc["warning"] = "rate limit soon"
    return doc


def statements_api(rng, t, day, tenant, shift):
    """Period labels, a model's date stamp and a build that change by design; cents; lines keyed by code."""
    at = datetime.fromtimestamp(t, UTC)
    year, week, _ = at.isocalendar()
    release = (day + 3 * tenant) // 45  # a new ranking model every 45 days, a new build every 9
    lines = {}
    for k in rng.sample(range(1, 400), rng.randint(1, 5)):
        line = {"qty": rng.randint(1, 12), "unit_cents": rng.randint(150, 9900), "tax_rate": rng.choice([0.07, 0.19])}
        if shift == "map_rename":
            line["unitCents"] = line.pop("unit_cents")
        lines[f"LN-{k:04d}"] = line
    amount = sum(v["qty"] * v.get("unit_cents", v.get("unitCents", 0)) for v in lines.values())
    doc = {
        "statement": str(uuid.UUID(int=rng.getrandbits(128))),
        "cycle": f"{year}W{week:02d}",
        "quarter": f"Q{(at.month - 1) // 3 + 1}-{at.year}",
        "month_name": at.strftime("%B %Y"),
        "ranker": (START + timedelta(days=45 * release - 20)).strftime("ranker-%Y%m%d"),
        "build": f"4.{(day + tenant) // 9}.{rng.randint(0, 2)}+b{1200 + (day + tenant) // 9}",
        "shard": f"ledger-{rng.randint(1, 6):02d}",
        "local_time": at.astimezone(BERLIN).isoformat(timespec="seconds"),
        "amount_cents": amount // 100 if shift == "units" else amount,
        "lines": lines,
        "next": None if rng.random() < 0.3 else f"{rng.getrandbits(96):024x}",
    }
    if shift == "error_envelope":  # a 200 response that is an error in a success's clothes
        return {"ok": True, "error": {"code": "UPSTREAM_TIMEOUT", "retry_after_s": rng.randint(1, 30)}, "cycle": doc["cycle"]}
    return doc


def search_api(rng, t, day, tenant, shift):
    """Hits that are empty in an ordinary 3% of queries, a facet map keyed by day."""
    today = datetime.fromtimestamp(t, UTC).date()
    empty = shift == "emptiness" or rng.random() < 0.03
    hits = (
        []
        if empty
        else [{"doc": f"KB-{rng.randint(100, 9999)}", "score": round(rng.uniform(0.2, 1), 3)} for _ in range(rng.randint(1, 8))]
    )
    return {
        "query_id": f"q_{rng.getrandbits(64):016x}",
        "took_ms": rng.randint(3, 400),
        "hits": hits,
        "facets": {(today - timedelta(days=i)).isoformat(): rng.randint(0, 50) for i in range(rng.randint(1, 5))},
        "index": f"kb-v{3 + day // 60}",
    }


APIS = [fx_api, orders_api, weather_api, session_api, statements_api, search_api]
PAYLOAD_SHARES = {
    "string_number": 0.10,
    "new_enum": 0.08,
    "map_rename": 0.12,
    "error_envelope": 0.10,
    "emptiness": 1.0,
    "units": 1.0,
}


def payload_window(segment: int, day: int, n: int, seed: int, shift: str | None = None) -> FeatureSet:
    rng = random.Random(seed)
    api = APIS[segment % len(APIS)]
    times = received_times(rng, day, n)
    shifted = set(rng.sample(range(n), round(PAYLOAD_SHARES.get(shift, 0.0) * n)))  # exactly that share of the window
    blobs = [orjson.dumps(api(rng, t, day, segment, shift if i in shifted else None)) for i, t in enumerate(times)]
    featurizer = PayloadFeaturizer()
    ids = [f"p{segment}-{day}-{seed}-{i}" for i in range(n)]
    for input_id, opened in zip(ids, KINDS["payload"].open_batch(blobs, PAYLOAD_LIMITS)):
        featurizer.add(input_id, opened)
    features = featurizer.finish()
    features.tables["received"] = pl.DataFrame({"input_id": ids, "received_at": times})
    return features


def payload_baseline(segment: int, seed: int) -> FeatureSet:
    days = [payload_window(segment, d, BASELINE_PER_DAY, seed * 1000 + d) for d in range(BASELINE_DAYS)]
    return concat(*days)


# ---- image and document pools -----------------------------------------------------------------


def _jpeg(img: Image.Image, rng: random.Random) -> bytes:
    return world.jpeg_bytes(img.convert("RGB"), rng.randint(78, 92))


def make_image(args) -> bytes:
    variant, light, seed = args
    rng = random.Random(seed)
    if variant == "other":  # grey screenshots and scans among colour photos
        img = world.screenshot(rng).convert("L") if rng.random() < 0.5 else world.receipt_page(rng, 600, 850).convert("L")
        return _jpeg(img.resize((600, 800)), rng)
    photo = world.receipt_photo(rng, light=light)
    if variant == "rotated":  # an upright scan turned on its side: one descriptor's tail, little else
        photo = photo.rotate(90, expand=True)
    if variant == "dark_blur":
        arr = np.asarray(photo, dtype=np.float32) * rng.uniform(0.3, 0.45)
        photo = Image.fromarray(arr.astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(3, 5)))
    return _jpeg(photo, rng)


def make_document(args) -> bytes:
    variant, creator, seed = args
    rng = random.Random(seed)
    if variant == "scan":
        return world.scanned_pdf(rng)
    if variant == "new_layout":
        return world.delivery_note_pdf(rng)  # same suite and page size, another layout and words
    if variant == "german":
        return german_invoice_pdf(rng, creator)
    return world.invoice_pdf(rng, pages=rng.choice([1, 1, 2]), creator=creator)


GERMAN = ["Milch 1L", "Brot", "Kaffeebohnen", "Äpfel 1kg", "Schrauben M4", "Notizbuch", "Kräutertee", "Nudeln", "Käse"]


def german_invoice_pdf(rng: random.Random, creator: str) -> bytes:
    """The same invoice layout, suite and page size as the partner's, in German."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_creator(creator)
    pdf.set_producer(creator)
    pdf.add_page()
    pdf.set_font("helvetica", "B", 18)
    pdf.cell(0, 12, f"RECHNUNG {rng.randint(10000, 99999)}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    for _ in range(rng.randint(12, 30)):
        line = f"{rng.choice(GERMAN)} ... {rng.randint(1, 9)} x {rng.uniform(1, 90):.2f} EUR " + "Bedingung " * rng.randint(0, 6)
        pdf.cell(0, 7, line.encode("latin-1", "replace").decode("latin-1"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def build_pool(kind: str, specs: list[tuple], encoders, tag: str) -> tuple[FeatureSet, list[tuple]]:
    """Make and featurize items; return the features and each featurized item's spec, aligned."""
    maker = make_image if kind == "image" else make_document
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        blobs = list(pool.map(maker, specs, chunksize=8))
    features = featurize(kind, blobs, f"{tag}-", encoders)
    attrs = [specs[int(i.rsplit("-", 1)[1])] for i in features.ids]
    features.tables["received"] = pl.DataFrame({"input_id": features.ids, "received_at": [0.0] * features.n})
    return features, attrs


def image_specs(rng: random.Random, n: int, variant: str = "photo") -> list[tuple]:
    return [(variant, rng.uniform(0.72, 1.15), rng.getrandbits(31)) for _ in range(n)]


def document_specs(rng: random.Random, n_word: int, n_libre: int, n_scan: int, variant: str = "born") -> list[tuple]:
    specs = [("born", "Microsoft Word", rng.getrandbits(31)) for _ in range(n_word)]
    specs += [("born", "LibreOffice Writer", rng.getrandbits(31)) for _ in range(n_libre)]
    specs += [("scan", "CamScanner", rng.getrandbits(31)) for _ in range(n_scan)]
    if variant != "born":
        specs = [(variant, "Microsoft Word", rng.getrandbits(31)) for _ in range(n_word)]
    return specs


def light_centre(day: int, segment: int) -> float:
    """The day's daylight, within its usual range: the baseline week saw the range from its
    darkest to its brightest day (in an order of the channel's own), later days fall anywhere in it."""
    if day < BASELINE_DAYS:
        spread = np.linspace(-1.0, 1.0, BASELINE_DAYS)
        u = spread[np.random.default_rng(segment).permutation(BASELINE_DAYS)[day]]
    else:
        u = random.Random(day * 7919 + segment).uniform(-1.0, 1.0)
    return 0.93 + 0.05 * u


def draw_images(pool, attrs, day: int, segment: int, n: int, rng: np.random.Generator, exclude=frozenset()) -> np.ndarray:
    lights = np.array([a[1] for a in attrs])
    eligible = [i for i in np.flatnonzero(np.abs(lights - light_centre(day, segment)) <= 0.12) if i not in exclude]
    return rng.choice(np.array(eligible, dtype=int), size=min(n, len(eligible)), replace=False)


def draw_documents(
    pool, attrs, day: int, n: int, rng: np.random.Generator, scan_share: float = 0.05, exclude=frozenset()
) -> np.ndarray:
    word_share = 0.45 if weekend(day) else 0.7
    free = [i for i in range(len(attrs)) if i not in exclude]
    groups = {
        "scan": [i for i in free if attrs[i][0] == "scan"],
        "Microsoft Word": [i for i in free if attrs[i][0] == "born" and attrs[i][1] == "Microsoft Word"],
        "LibreOffice Writer": [i for i in free if attrs[i][0] == "born" and attrs[i][1] == "LibreOffice Writer"],
    }
    n_scan = min(rng.binomial(n, scan_share), len(groups["scan"]))
    n_word = min(rng.binomial(n - n_scan, word_share), len(groups["Microsoft Word"]))
    n_libre = min(n - n_scan - n_word, len(groups["LibreOffice Writer"]))
    parts = [
        rng.choice(groups["scan"], n_scan, replace=False),
        rng.choice(groups["Microsoft Word"], n_word, replace=False),
        rng.choice(groups["LibreOffice Writer"], n_libre, replace=False),
    ]
    return np.concatenate(parts).astype(int)


# ---- windows and verdicts ----------------------------------------------------------------------


def errors(kind: str, n: int, rng: np.random.Generator) -> dict[str, int]:
    counts = {c: int(rng.binomial(n, r)) for c, r in ERROR_RATES[kind].items()}
    return {c: k for c, k in counts.items() if k}


CONTEXT = SimpleNamespace(config=SimpleNamespace(sampling=SimpleNamespace(seed=0)))
STATE: dict = {}  # the pools and baselines; night workers get a copy once, at start (spawn: fork deadlocks polars)


def _init_worker(state: dict) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # two workers on two cores: one BLAS thread each
    STATE.update(state)


def segment_checks(kind: str, ref: FeatureSet, ref_errors: dict, cur: FeatureSet, cur_errors: dict) -> list:
    results = compare_segment(ref, cur, KINDS[kind], CONTEXT)
    n_cur = cur.n + sum(cur_errors.values())
    return results + error_rate_checks(ref_errors, ref.n + sum(ref_errors.values()), cur_errors, n_cur)


def current_window(
    kind: str, segment: int, day: int, rng: np.random.Generator, shift: str | None = None
) -> tuple[FeatureSet, dict]:
    night_n = WEEKEND_N if weekend(day) and shift is None else NIGHT_N
    errs = errors(kind, night_n, rng)
    if shift == "truncated":
        errs["corrupt"] = errs.get("corrupt", 0) + round(0.06 * NIGHT_N)
    if shift == "encrypted":  # a category the baseline never had
        errs["encrypted"] = round(0.08 * NIGHT_N)
    n = night_n - sum(errs.values())
    if kind == "payload":
        return payload_window(segment, day, n, seed=int(rng.integers(2**31)), shift=shift), errs
    pools = STATE["pools"][kind]
    if kind == "image":
        pool, attrs = pools["current"]
        share = {"dark_blur": 0.10, "other": 0.15, "rotated": 0.12}.get(shift, 0.0)
        k = round(share * NIGHT_N)
        window = subset(pool, draw_images(pool, attrs, day, segment, n - k, rng))
        if k:
            extra, _ = pools[shift]
            window = concat(window, subset(extra, rng.choice(extra.n, k, replace=False)))
        return window, errs
    pool, attrs = pools["current"]
    if shift in ("new_layout", "german"):
        k = round(0.20 * NIGHT_N)
        extra, _ = pools[shift]
        window = concat(
            subset(pool, draw_documents(pool, attrs, day, n - k, rng)), subset(extra, rng.choice(extra.n, k, replace=False))
        )
        return window, errs
    if shift == "scans":  # +15 points exactly, on top of the ordinary share
        k = round(0.15 * NIGHT_N)
        rows = draw_documents(pool, attrs, day, n - k, rng)
        scans = [i for i, a in enumerate(attrs) if a[0] == "scan" and i not in set(rows.tolist())]
        return subset(pool, np.concatenate([rows, rng.choice(scans, k, replace=False)])), errs
    return subset(pool, draw_documents(pool, attrs, day, n, rng)), errs


def baseline_window(kind: str, segment: int, rng: np.random.Generator) -> tuple[FeatureSet, dict]:
    errs = errors(kind, BASELINE_DAYS * BASELINE_PER_DAY, rng)
    if kind == "payload":
        return payload_baseline(segment, seed=segment + 1), errs
    pool, attrs = STATE["pools"][kind]["baseline"]
    rows: list[int] = []
    received: dict[int, float] = {}
    for day in range(BASELINE_DAYS):  # each day's items drawn by that day's conditions, none twice
        if kind == "image":
            picked = draw_images(pool, attrs, day, segment, BASELINE_PER_DAY, rng, exclude=set(rows)).tolist()
        else:
            picked = draw_documents(pool, attrs, day, BASELINE_PER_DAY, rng, exclude=set(rows)).tolist()
        rows += picked
        received.update({r: day_start(day).timestamp() + 43200.0 for r in picked})
    rows = list(rng.permutation(rows))[: BASELINE_DAYS * BASELINE_PER_DAY - sum(errs.values())]
    window = subset(pool, rows)
    window.tables["received"] = pl.DataFrame({"input_id": window.ids, "received_at": [received[r] for r in rows]})
    return window, errs


def paging(verdict) -> list[str]:
    return [f"{f.check}:{f.target} ({f.method})" for f in paging_findings(verdict, POLICY)]


def run_night(day: int) -> tuple[int, list[str], int, float]:
    started = time.perf_counter()
    rng = np.random.default_rng(day)
    segments = STATE["segments"]
    checks = {}
    for name, (kind, segment) in segments.items():
        ref, ref_errors = STATE["baselines"][name]
        cur, cur_errors = current_window(kind, segment, day, rng)
        checks[name] = segment_checks(kind, ref, ref_errors, cur, cur_errors)
    culprits, info = [], 0
    for name, results in checks.items():
        verdict = decide(results, POLICY, segments=STATE.get("width") or len(segments))
        culprits += [f"{name} {c}" for c in paging(verdict)]
        info += any(f.drifted for f in verdict.findings)
    return day, culprits, info, time.perf_counter() - started


SHIFTS = [
    ("image", "dark_blur", "10% of photos darkened and blurred"),
    ("image", "other", "15% of photos replaced by grey screenshots and scans"),
    ("image", "truncated", "6% truncated files (corrupt)"),
    ("document", "scans", "+15 points of scanned PDFs (ordinary 5% -> 20%)"),
    ("document", "new_layout", "a new layout in 20% of documents"),
    ("payload", "string_number", "a number sent as a string in 10% of responses"),
    ("payload", "new_enum", "a new enum value in 8% of responses"),
    ("image", "rotated", "12% of photos turned on their side (one descriptor's tail)"),
    ("document", "encrypted", "a never-seen error category (encrypted) in 8% of files"),
    ("document", "german", "20% of documents in another language, same layout"),
    ("payload", "map_rename", "a field renamed inside map values in 12% of responses"),
    ("payload", "error_envelope", "an error envelope in 10% of 200 responses"),
    ("payload", "emptiness", "empty results in 15% more of responses (ordinary 3%)"),
    ("payload", "units", "amounts in whole units instead of cents"),
]
# the payload segment each payload shift is planted in: the API that carries the field
SHIFT_SEGMENT = {"string_number": 1, "new_enum": 1, "map_rename": 4, "error_envelope": 4, "units": 4, "emptiness": 5}


def power(kind: str, shift: str, reps: int, width: int) -> tuple[float, dict]:
    segment = SHIFT_SEGMENT.get(shift, 0)
    name = f"{kind}-{segment}"
    ref, ref_errors = STATE["baselines"][name]
    hits, caught = 0, {}
    for rep in range(reps):
        rng = np.random.default_rng(10_000 + rep)
        cur, cur_errors = current_window(kind, segment, BASELINE_DAYS + 3 + rep, rng, shift=shift)
        verdict = decide(segment_checks(kind, ref, ref_errors, cur, cur_errors), POLICY, segments=width)
        why = paging(verdict)
        hits += bool(why)
        for c in why:
            caught[c] = caught.get(c, 0) + 1
    return hits / reps, caught


def build_state(args) -> None:
    from drift.features.embed.clip import ImageEncoder
    from drift.features.embed.text import TextEncoder

    encoders = {}
    rng = random.Random(7)
    pools: dict = {}
    if args.image:
        encoders["clip"] = ImageEncoder("ViT-B-32", "untrained", seed=0)
        pools["image"] = {
            "baseline": build_pool("image", image_specs(rng, args.pool), encoders, "ib"),
            "current": build_pool("image", image_specs(rng, args.pool), encoders, "ic"),
            "dark_blur": build_pool("image", image_specs(rng, 40, "dark_blur"), encoders, "id"),
            "other": build_pool("image", image_specs(rng, 50, "other"), encoders, "io"),
            "rotated": build_pool("image", image_specs(rng, 40, "rotated"), encoders, "ir"),
        }
        print(f"[image pools ready, {time.perf_counter() - STATE['t0']:.0f} s]", flush=True)
    if args.document:
        encoders.setdefault("clip", ImageEncoder("ViT-B-32", "untrained", seed=0))
        encoders["text"] = TextEncoder()
        word, libre, scans = args.pool * 5 // 10, args.pool * 4 // 10, args.pool // 10 + 30
        pools["document"] = {
            "baseline": build_pool("document", document_specs(rng, word, libre, scans), encoders, "db"),
            "current": build_pool("document", document_specs(rng, word, libre, scans), encoders, "dc"),
            "new_layout": build_pool("document", document_specs(rng, 60, 0, 0, "new_layout"), encoders, "dn"),
            "german": build_pool("document", document_specs(rng, 60, 0, 0, "german"), encoders, "dg"),
        }
        print(f"[document pools ready, {time.perf_counter() - STATE['t0']:.0f} s]", flush=True)
    STATE["pools"] = pools
    segments = {}
    for kind, count in (("payload", args.payload), ("image", args.image), ("document", args.document)):
        for segment in range(count):
            segments[f"{kind}-{segment}"] = (kind, segment)
    STATE["segments"] = segments
    brng = np.random.default_rng(99)
    STATE["baselines"] = {name: baseline_window(kind, segment, brng) for name, (kind, segment) in segments.items()}
    print(f"[{len(segments)} baselines ready, {time.perf_counter() - STATE['t0']:.0f} s]", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=200)
    parser.add_argument("--payload", type=int, default=30, help="payload segments")
    parser.add_argument("--image", type=int, default=10, help="image segments")
    parser.add_argument("--document", type=int, default=10, help="document segments")
    parser.add_argument("--pool", type=int, default=1100, help="photos (and documents) per pool half")
    parser.add_argument("--reps", type=int, default=20, help="windows per planted shift")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--width", type=int, default=0, help="decide as a job of this many segments (default: the segments run)")
    args = parser.parse_args()
    STATE["t0"] = time.perf_counter()
    build_state(args)
    width = args.width or len(STATE["segments"])
    STATE["width"] = width
    control = error_control(POLICY, width)
    nights = list(range(BASELINE_DAYS, BASELINE_DAYS + args.nights))
    paged_nights, culprits, info_nights, seconds = 0, {}, 0, []
    with ProcessPoolExecutor(
        max_workers=args.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(STATE,)
    ) as pool:
        for done, (day, why, info, took) in enumerate(pool.map(run_night, nights), start=1):
            paged_nights += bool(why)
            info_nights += bool(info)
            seconds.append(took)
            for c in why:
                key = c.split(" ", 1)[1].split(" (")[0].split(":")[0] + " / " + c.split(" ", 1)[1]
                culprits[key] = culprits.get(key, 0) + 1
            if why:
                print(f"  night {day} ({day_start(day):%a %Y-%m-%d}) paged: {'; '.join(why)}", flush=True)
            if done % 20 == 0:
                print(f"[{done} nights, {paged_nights} paged, {time.perf_counter() - STATE['t0']:.0f} s]", flush=True)
    low, high = wilson(paged_nights, len(nights))
    print(
        f"\nFalse pages per job-night ({width} segments: {args.payload} payload, {args.image} image, {args.document} document; "
        f"baseline {BASELINE_DAYS} days x {BASELINE_PER_DAY}, nights of {NIGHT_N} per segment)\n"
    )
    print(
        "| nights | nights paged | rate | Wilson 95% CI | nights with any drift finding (info included) | policy's bound | seconds per night (median) |"
    )
    print("|---:|---:|---:|---|---:|---|---:|")
    print(
        f"| {len(nights)} | {paged_nights} | {paged_nights / len(nights):.2%} | {low:.2%} - {high:.2%} | "
        f"{info_nights} ({info_nights / len(nights):.0%}) | {control.page_alpha:.0%} per night, {control.per_segment:.1e} per segment | "
        f"{float(np.median(seconds)):.1f} |"
    )
    if culprits:
        print("\nChecks that paged: " + ", ".join(f"{k} x{v}" for k, v in sorted(culprits.items(), key=lambda kv: -kv[1])))
    print(
        f"\nPower (n = {NIGHT_N} against a {BASELINE_DAYS * BASELINE_PER_DAY}-item baseline; the segment's share of a "
        f"{width}-segment night's budget; {args.reps} windows each)\n"
    )
    print("| kind | planted shift | power | checks that paged (most often) |")
    print("|---|---|---:|---|")
    for kind, shift, label in SHIFTS:
        if f"{kind}-{SHIFT_SEGMENT.get(shift, 0)}" not in STATE["baselines"]:
            continue
        rate, caught = power(kind, shift, args.reps, width)
        top = (
            ", ".join(
                f"{k.split(' (')[0]} ({k.split(' (')[1][:-1]}) x{v}" for k, v in sorted(caught.items(), key=lambda kv: -kv[1])[:3]
            )
            or "-"
        )
        print(f"| {kind} | {label} | {rate:.2f} | {top} |", flush=True)
    print(f"\n({time.perf_counter() - STATE['t0']:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
