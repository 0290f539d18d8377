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

Power: a segment of each kind, n = 150 against its 350-item baseline, decided with the job's
width (its share of the night's budget), for the planted shifts of issue 14.

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
BASELINE_DAYS, BASELINE_PER_DAY, NIGHT_N = 7, 50, 150
ERROR_RATES = {  # ordinary nights: what each kind's channels lose anyway
    "payload": {"invalid_json": 0.003},
    "image": {"unsupported": 0.005},
    "document": {"not_pdf": 0.003, "corrupt": 0.004},
}
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


APIS = [fx_api, orders_api, weather_api, session_api]
PAYLOAD_SHARES = {"string_number": 0.10, "new_enum": 0.08}


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
    return world.invoice_pdf(rng, pages=rng.choice([1, 1, 2]), creator=creator)


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
    errs = errors(kind, NIGHT_N, rng)
    if shift == "truncated":
        errs["corrupt"] = errs.get("corrupt", 0) + round(0.06 * NIGHT_N)
    n = NIGHT_N - sum(errs.values())
    if kind == "payload":
        return payload_window(segment, day, n, seed=int(rng.integers(2**31)), shift=shift), errs
    pools = STATE["pools"][kind]
    if kind == "image":
        pool, attrs = pools["current"]
        share = {"dark_blur": 0.10, "other": 0.15}.get(shift, 0.0)
        k = round(share * NIGHT_N)
        window = subset(pool, draw_images(pool, attrs, day, segment, n - k, rng))
        if k:
            extra, _ = pools[shift]
            window = concat(window, subset(extra, rng.choice(extra.n, k, replace=False)))
        return window, errs
    pool, attrs = pools["current"]
    if shift == "new_layout":
        k = round(0.20 * NIGHT_N)
        extra, _ = pools["new_layout"]
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
]


def power(kind: str, shift: str, reps: int, width: int) -> tuple[float, dict]:
    segment = {"payload": 1, "image": 0, "document": 0}[kind]  # payload segment 1 is the orders API
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
    parser.add_argument("--pool", type=int, default=700, help="photos (and documents) per pool half")
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
        if f"{kind}-0" not in STATE["baselines"]:
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
