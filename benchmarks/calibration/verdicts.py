"""False alarms and power of the whole verdict (every check of a segment, BH, effect thresholds,
minimum sample size), per kind, as a nightly run would decide it.

Pools of inputs are made once with the demo's generators (and, where it is beside the clone, the
shared corpus), opened and featurized by the product's own code, then windows are drawn from them:

* false alarms: pairs of windows (baseline n_ref, current n_cur) drawn without overlap from ONE
  pool; a pair "pages" when any segment check reaches severity >= warning. Reported with a
  Wilson 95% interval.
* power: a baseline of 1,000 clean items against current windows of n = 50, 200, 1,000 in which a
  share of the items carries a planted shift (images: blurred, darkened or downscaled; documents:
  phone scans instead of born-digital; payloads: `total` sent as a string).

    python benchmarks/calibration/verdicts.py [--pairs 500] [--reps 10] [--kinds image,document,payload]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import random
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import orjson
import polars as pl

from drift.config import PolicySection
from drift.demo import world
from drift.features.kinds import KINDS, FeatureSet, InputProblem
from drift.verdict.compare import compare_segment
from drift.verdict.policy import decide, paging_findings

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
IMAGE_LIMITS = {"max_bytes": 25_000_000, "max_pixels": 50_000_000, "crop_size": 224}
DOC_LIMITS = {"max_bytes": 50_000_000, "max_pages": 500, "text_chars": 2000, "page_size": 224}
PAYLOAD_LIMITS = {"max_bytes": 10_000_000, "max_depth": 64, "max_array": 100_000}


# ---- making pools: (input bytes) -> opened dicts, in parallel -----------------------------------


def _make(args):
    kind, shifted, seed = args
    rng = random.Random(seed)
    if kind == "image":
        photo = world.receipt_photo(rng)
        if shifted:
            photo = world.degrade(photo, rng)
        return world.jpeg_bytes(photo, rng.randint(78, 92))
    if kind == "document":
        if shifted:
            return world.scanned_pdf(rng)
        return world.invoice_pdf(rng, creator=rng.choice(["Microsoft Word", "LibreOffice Writer"]))
    order = world.order_json(rng, drifted=False)
    if shifted:
        order["total"] = f"{order['total']:.2f}"
    return orjson.dumps(order)


def _open(args):
    kind, data = args
    limits = {"image": IMAGE_LIMITS, "document": DOC_LIMITS, "payload": PAYLOAD_LIMITS}[kind]
    try:
        return KINDS[kind].open_input(data, limits)
    except InputProblem:
        return None


def featurize(kind: str, blobs: list[bytes], prefix: str, encoders) -> FeatureSet:
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        opened = list(pool.map(_open, [(kind, b) for b in blobs], chunksize=16))
    spool = Path(tempfile.mkdtemp(prefix="drift-calibration-"))
    context = SimpleNamespace(
        image_encoder=lambda: encoders["clip"],
        text_encoder=lambda: encoders["text"],
        keep_documents=False,
        config=SimpleNamespace(
            image=SimpleNamespace(batch_size=32),
            document=SimpleNamespace(text_model="all-MiniLM-L6-v2", page_embedding=True, batch_size=32),
        ),
        spool_path=lambda kind, source, name: spool / f"{prefix}{name}.parquet",
    )
    featurizer = KINDS[kind].featurizer(context, "pool")
    for i, item in enumerate(opened):
        if item is not None:
            featurizer.add(f"{prefix}{i}", item)
    return featurizer.finish()


def generated_pool(kind: str, n: int, shifted: bool, encoders, seed: int) -> FeatureSet:
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        blobs = list(pool.map(_make, [(kind, shifted, seed * 100_000 + i) for i in range(n)], chunksize=16))
    return featurize(kind, blobs, f"{'s' if shifted else 'c'}{seed}-", encoders)


def corpus_pool(kind: str, encoders) -> FeatureSet | None:
    folder = {"image": "images", "document": "pdf", "payload": "json/quicktype"}[kind]
    if not (CORPUS / folder).is_dir():
        return None
    files = sorted(p for p in (CORPUS / folder).rglob("*") if p.is_file())
    return featurize(kind, [p.read_bytes() for p in files], "corpus-", encoders)


# ---- windows and verdicts ----------------------------------------------------------------------


def subset(features: FeatureSet, rows) -> FeatureSet:
    rows = np.asarray(rows, dtype=int)
    ids = [features.ids[i] for i in rows]
    return FeatureSet(
        ids=ids,
        descriptors=features.descriptors[rows.tolist()],
        embeddings={k: v[rows] for k, v in features.embeddings.items()},
        tables={k: t.filter(pl.col("input_id").is_in(ids)) for k, t in features.tables.items()},
    )


def concat(*parts: FeatureSet) -> FeatureSet:
    return FeatureSet(
        ids=[i for p in parts for i in p.ids],
        descriptors=pl.concat([p.descriptors for p in parts], how="diagonal_relaxed"),
        embeddings={k: np.concatenate([p.embeddings[k] for p in parts]) for k in parts[0].embeddings},
        tables={k: pl.concat([p.tables[k] for p in parts], how="diagonal_relaxed") for k in parts[0].tables},
    )


def pages(kind: str, ref: FeatureSet, cur: FeatureSet, seed: int, policy: PolicySection) -> tuple[bool, list[str], bool]:
    """Whether the pair pages, the checks that paged, and whether any check drifted at all (info too)."""
    context = SimpleNamespace(config=SimpleNamespace(sampling=SimpleNamespace(seed=seed)))
    verdict = decide(compare_segment(ref, cur, KINDS[kind], context), policy)
    paging = [f"{f.target} ({f.method})" for f in paging_findings(verdict, policy)]
    return bool(paging), paging, any(f.drifted for f in verdict.findings)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def false_alarms(kind: str, pool: FeatureSet, pairs: int, n_ref: int, n_cur: int, policy: PolicySection):
    rng = np.random.default_rng(0)
    hits, flagged, culprits = 0, 0, {}
    for pair in range(pairs):
        order = rng.permutation(pool.n)
        paged, why, any_drift = pages(kind, subset(pool, order[:n_ref]), subset(pool, order[n_ref : n_ref + n_cur]), pair, policy)
        hits += paged
        flagged += any_drift
        for name in why:
            culprits[name] = culprits.get(name, 0) + 1
    return hits, flagged, culprits


def power(kind: str, clean: FeatureSet, shifted: FeatureSet, sizes, shares, reps: int, policy: PolicySection):
    rng = np.random.default_rng(1)
    rates = {}
    for n in sizes:
        for share in shares:
            hits = 0
            for rep in range(reps):
                order = rng.permutation(clean.n)
                ref = subset(clean, order[:1000])
                k = int(round(share * n))
                cur = concat(subset(clean, order[1000 : 1000 + n - k]), subset(shifted, rng.permutation(shifted.n)[:k]))
                hits += pages(kind, ref, cur, rep, policy)[0]
            rates[(n, share)] = hits / reps
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--kinds", default="payload,document,image")
    args = parser.parse_args()
    policy = PolicySection()  # the defaults a job gets
    sizes, shares = (50, 200, 1000), (0.05, 0.1, 0.25, 0.5)
    encoders: dict = {}
    alarm_rows, power_rows = [], []
    started = time.perf_counter()
    for kind in args.kinds.split(","):
        if kind in ("image", "document") and "clip" not in encoders:
            from drift.features.embed.clip import ImageEncoder

            encoders["clip"] = ImageEncoder("ViT-B-32", "untrained", seed=0)
        if kind == "document" and "text" not in encoders:
            from drift.features.embed.text import TextEncoder

            encoders["text"] = TextEncoder()
        clean = generated_pool(kind, 2000, False, encoders, seed=1)
        shifted = generated_pool(kind, 500, True, encoders, seed=2)
        hits, flagged, culprits = false_alarms(kind, clean, args.pairs, 300, 120, policy)
        low, high = wilson(hits, args.pairs)
        top = ", ".join(f"{k} x{v}" for k, v in sorted(culprits.items(), key=lambda kv: -kv[1])[:3]) or "-"
        alarm_rows.append(
            f"| {kind} | demo generator | {args.pairs} | 300 / 120 | {hits} | {hits / args.pairs:.2%} | "
            f"{low:.2%} - {high:.2%} | {flagged / args.pairs:.2%} | {top} |"
        )
        corpus = corpus_pool(kind, encoders)
        if corpus is not None and corpus.n >= 65:
            n_ref = min(300, corpus.n // 2)
            n_cur = min(120, corpus.n - n_ref)
            hits, flagged, culprits = false_alarms(kind, corpus, args.pairs, n_ref, n_cur, policy)
            low, high = wilson(hits, args.pairs)
            top = ", ".join(f"{k} x{v}" for k, v in sorted(culprits.items(), key=lambda kv: -kv[1])[:3]) or "-"
            alarm_rows.append(
                f"| {kind} | shared corpus ({corpus.n} files) | {args.pairs} | {n_ref} / {n_cur} | {hits} | "
                f"{hits / args.pairs:.2%} | {low:.2%} - {high:.2%} | {flagged / args.pairs:.2%} | {top} |"
            )
        rates = power(kind, clean, shifted, sizes, shares, args.reps, policy)
        for n in sizes:
            power_rows.append(f"| {kind} | {n} | " + " | ".join(f"{rates[(n, s)]:.2f}" for s in shares) + " |")
        print(f"[{kind} done, {time.perf_counter() - started:.0f} s]", flush=True)
    print("\nFalse alarms (pairs of windows from one distribution; a pair pages when a check reaches warning or critical)\n")
    print(
        "| kind | pool | pairs | n baseline / current | paged | rate | Wilson 95% CI | any drift finding, info included | checks that paged |"
    )
    print("|---|---|---:|---|---:|---:|---|---:|---|")
    print("\n".join(alarm_rows))
    print(
        f"\nPower (share of {args.reps} windows that page; baseline 1,000 clean items; columns: share of current items shifted)\n"
    )
    print("| kind | n current | " + " | ".join(f"{s:.0%}" for s in shares) + " |")
    print("|---|---:|" + "---:|" * len(shares))
    print("\n".join(power_rows))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
