"""Documents per second, end to end, as a run opens them: worker processes with the job's limits
(read, parse with pypdfium2 and pypdf, describe, extract the text, render the first page) -> the
document featurizer in the parent, which embeds the text (all-MiniLM-L6-v2) and the page (the
image encoder: ViT-B-32, untrained weights) in batches. Also without the embeddings, to show what
they cost. On the demo's PDFs (born-digital invoices, multi-page contracts, phone scans) and on the
shared corpus' PDFs (ordinary, encrypted, broken and hostile files), with the slowest file of each
(timed inside its worker: parsing and rendering, not embedding).

    python benchmarks/documents_throughput.py [--demo 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from drift.demo import world
from drift.features.isolation import Task, open_all
from drift.features.kinds import KINDS, InputError, InputProblem

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"
LIMITS = {"max_bytes": 50_000_000, "max_pages": 500, "text_chars": 2000, "page_size": 224}
TIMEOUT = 30.0


def demo_pdfs(folder: Path, n: int) -> list[Path]:
    rng = random.Random(0)
    paths = []
    for i in range(n):
        kind = i % 3
        data = (
            world.invoice_pdf(rng)
            if kind == 0
            else world.invoice_pdf(rng, pages=rng.randint(2, 6), creator="pdfTeX-1.40")
            if kind == 1
            else world.scanned_pdf(rng)
        )
        path = folder / f"doc_{i:04d}.pdf"
        path.write_bytes(data)
        paths.append(path)
    return paths


def timed_open(target, limits):
    """The product's document loader, timed inside the worker (so worker start-up is not counted)."""
    started = time.perf_counter()
    try:
        result = KINDS["document"].open_input(target, limits)
    except InputProblem as problem:
        return {"problem": problem.category, "seconds": time.perf_counter() - started}
    return {**result, "seconds": time.perf_counter() - started}


def context(embed: bool, folder: Path):
    """What the document kind asks of a run: its settings and the two encoders."""
    from drift.features.embed.clip import ImageEncoder
    from drift.features.embed.text import TextEncoder

    encoders = {}
    if embed:
        encoders = {"clip": ImageEncoder("ViT-B-32", "untrained", seed=0), "text": TextEncoder()}
    return SimpleNamespace(
        image_encoder=lambda: encoders["clip"],
        text_encoder=lambda: encoders["text"],
        config=SimpleNamespace(
            document=SimpleNamespace(text_model="all-MiniLM-L6-v2" if embed else "none", page_embedding=embed, batch_size=32)
        ),
        spool_path=lambda kind, source, name: folder / f"{source}.{name}.parquet",
    )


def measure(paths: list[Path], workers: int, embed: bool, folder: Path) -> dict:
    featurizer = KINDS["document"].featurizer(context(embed, folder), "bench")
    limits = LIMITS if embed else {**LIMITS, "page_size": 0}
    outcomes: Counter = Counter()
    slowest = (0.0, "")
    started = time.perf_counter()
    tasks = (Task(str(p), timed_open, p, limits, TIMEOUT) for p in paths)
    for input_id, opened in open_all(tasks, workers=workers, memory_mb=2048, tasks_per_worker=500):
        if isinstance(opened, InputError):  # timeouts and crashes: the worker did not report a time
            outcomes[opened.category] += 1
            slowest = max(slowest, (TIMEOUT, input_id))
            continue
        slowest = max(slowest, (opened["seconds"], input_id))
        if "problem" in opened:
            outcomes[opened["problem"]] += 1
        else:
            featurizer.add(input_id, opened)
            outcomes["ok"] += 1
    featurizer.finish()
    seconds = time.perf_counter() - started
    return {"n": len(paths), "seconds": seconds, "rate": len(paths) / seconds, "slowest": slowest, "outcomes": outcomes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        demo = demo_pdfs(folder, args.demo)
        corpus = sorted(p for p in CORPUS.rglob("*") if p.is_file()) if CORPUS.is_dir() else []
        for embed in (False, True):
            mode = "with text and page embeddings" if embed else "descriptors only"
            rows.append(
                (f"demo PDFs (1/3 each: invoices, 2-6 page contracts, scans), {mode}", measure(demo, args.workers, embed, folder))
            )
            if corpus:
                rows.append((f"shared corpus, every file under pdf/, {mode}", measure(corpus, args.workers, embed, folder)))
    print(f"{args.workers} worker processes, {TIMEOUT:g} s timeout per file, limits {LIMITS}\n")
    print("| files | n | seconds | documents/s | slowest file | outcomes |")
    print("|---|---:|---:|---:|---|---|")
    for name, r in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].most_common())
        seconds, slowest = r["slowest"]
        print(f"| {name} | {r['n']} | {r['seconds']:.1f} | {r['rate']:.1f} | {seconds:.2f} s {Path(slowest).name} | {outcomes} |")


if __name__ == "__main__":
    main()
