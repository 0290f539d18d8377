"""Documents per second, end to end, as a run opens them: worker processes with the job's limits
(read, parse with pypdfium2 and pypdf, describe) -> the document featurizer. On the demo's PDFs
(born-digital invoices, multi-page contracts, phone scans) and on the shared corpus' PDFs
(ordinary, encrypted, broken and hostile files), with the slowest file of each.

    python benchmarks/documents_throughput.py [--demo 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

from drift.demo import world
from drift.isolation import Task, open_all
from drift.kinds import KINDS, InputError, InputProblem

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"
LIMITS = {"max_bytes": 50_000_000, "max_pages": 500}
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


def measure(paths: list[Path], workers: int) -> dict:
    featurizer = KINDS["document"].featurizer(None, "bench")
    outcomes: Counter = Counter()
    slowest = (0.0, "")
    started = time.perf_counter()
    tasks = (Task(str(p), timed_open, p, LIMITS, TIMEOUT) for p in paths)
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
        rows.append(("demo PDFs (1/3 each: invoices, 2-6 page contracts, scans)", measure(demo_pdfs(Path(tmp), args.demo), args.workers)))
    if CORPUS.is_dir():
        rows.append(("shared corpus, every file under pdf/", measure(sorted(p for p in CORPUS.rglob("*") if p.is_file()), args.workers)))
    print(f"{args.workers} worker processes, {TIMEOUT:g} s timeout per file, limits {LIMITS}\n")
    print("| files | n | seconds | documents/s | slowest file | outcomes |")
    print("|---|---:|---:|---:|---|---|")
    for name, r in rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in r["outcomes"].most_common())
        seconds, slowest = r["slowest"]
        print(f"| {name} | {r['n']} | {r['seconds']:.1f} | {r['rate']:.1f} | {seconds:.2f} s {Path(slowest).name} | {outcomes} |")


if __name__ == "__main__":
    main()
