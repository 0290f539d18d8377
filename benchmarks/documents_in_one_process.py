"""Documents per second through the product's document loader alone, in one process (#19): no
workers, no embeddings, so that a change inside the loader shows undiluted. On the demo's PDFs and
the shared corpus' PDFs; best of --rounds passes. Run it on two commits to compare them.

    python benchmarks/documents_in_one_process.py [--demo 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

from documents_throughput import CORPUS, LIMITS, demo_pdfs

from drift.features.kinds.base import InputProblem
from drift.features.kinds.document import open_document


def seconds(paths: list[Path]) -> tuple[int, float]:
    """(documents that became items, seconds the loader spent on them)."""
    limits = {**LIMITS, "page_size": 224}
    n, spent = 0, 0.0
    for path in paths:
        started = time.perf_counter()
        try:
            open_document(path, limits)
        except InputProblem:
            continue
        spent += time.perf_counter() - started
        n += 1
    return n, spent


def main() -> None:
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)  # its complaints about broken files, muted as in the workers
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| files | documents | documents/s (best of rounds) |")
    print("|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        sets = [("demo PDFs", demo_pdfs(Path(folder), args.demo))]
        if CORPUS.is_dir():
            sets.append(("shared corpus PDFs", sorted(p for p in CORPUS.rglob("*") if p.is_file())))
        for label, paths in sets:
            runs = [seconds(paths) for _ in range(args.rounds)]
            n = runs[0][0]
            print(f"| {label} | {n} | {n / min(s for _, s in runs):.1f} |")


if __name__ == "__main__":
    main()
