"""Fingerprinting throughput on real API responses, against genson and against orjson alone.

The shared corpus' API responses (quicktype's GitHub, Reddit, Spotify, World Bank... and octokit's
recorded GitHub exchanges: every .json file that parses) are replicated to at least --mb megabytes
in memory, then, in one run:

* orjson alone: parse every document;
* genson: parse, then add every document to one SchemaBuilder (schema inference);
* drift, one process: what a run does per document (open_payload: parse under limits, observe every
  path) and per window (the featurizer's long tables, then the fingerprint with its statistics);
* drift, N worker processes: the same through the run's worker pool (drift.isolation), payloads
  opened 32 to a task, the observations gathered and fingerprinted in the parent; once as a run
  does it (starting the workers included), and once on twice the documents: the difference is
  the cost of the second copy, the rate once the workers are running.

    python benchmarks/payload_fingerprint_throughput.py [--mb 100] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import orjson

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "json"
LIMITS = {"max_bytes": 10_000_000, "max_depth": 64, "max_array": 100_000}
BATCH = 32  # documents per worker call, as drift.isolation.open_all batches them


def api_responses() -> list[bytes]:
    files = sorted((CORPUS / "quicktype").glob("*.json")) + sorted((CORPUS / "octokit").glob("*.json"))
    docs = []
    for path in files:
        data = path.read_bytes()
        try:
            orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        docs.append(data)
    return docs


def timed(label: str, work, megabytes: float, rows: list) -> float:
    """Run `work` once; append (label, MB/s, seconds) to rows and return the seconds."""
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    rows.append((label, megabytes / seconds, seconds))
    return seconds


def drift_one_process(docs: list[bytes]) -> None:
    from drift.fingerprint import summary
    from drift.kinds.payload import PayloadFeaturizer, open_payloads

    featurizer = PayloadFeaturizer()
    for start in range(0, len(docs), BATCH):
        for i, opened in enumerate(open_payloads(docs[start : start + BATCH], LIMITS), start):
            featurizer.add(str(i), opened)
    summary.build(featurizer.finish().tables)


def drift_workers(docs: list[bytes], workers: int) -> None:
    from drift.fingerprint import summary
    from drift.isolation import Task, open_all
    from drift.kinds import InputError
    from drift.kinds.payload import PayloadFeaturizer, open_payload, open_payloads

    featurizer = PayloadFeaturizer()
    tasks = (Task(str(i), open_payload, data, LIMITS, 60, open_payloads) for i, data in enumerate(docs))
    for input_id, opened in open_all(tasks, workers=workers, memory_mb=2048, tasks_per_worker=100_000):
        if isinstance(opened, InputError):
            raise SystemExit(f"{input_id}: {opened.category}: {opened.message}")
        featurizer.add(input_id, opened)
    summary.build(featurizer.finish().tables)


def genson_union(docs: list[bytes]) -> None:
    from genson import SchemaBuilder

    builder = SchemaBuilder()
    for data in docs:
        builder.add_object(orjson.loads(data))
    builder.to_schema()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} not found: this benchmark needs ../shared/corpus beside the clone")
    unique = api_responses()
    unique_mb = sum(map(len, unique)) / 1e6
    copies = int(args.mb // unique_mb) + 1
    docs = unique * copies
    megabytes = sum(map(len, docs)) / 1e6
    print(f"{len(unique)} API responses ({unique_mb:.1f} MB) x {copies} = {len(docs)} documents, {megabytes:.1f} MB\n")

    import drift.fingerprint.summary, drift.isolation, drift.kinds.payload  # noqa: F401 - imported before the clocks start

    rows: list = []
    timed("orjson parse only", lambda: [orjson.loads(d) and None for d in docs], megabytes, rows)
    timed("genson schema inference (parse + one SchemaBuilder)", lambda: genson_union(docs), megabytes, rows)
    timed("drift fingerprint, 1 process", lambda: drift_one_process(docs), megabytes, rows)
    cold = timed(f"drift fingerprint, {args.workers} worker processes (as a run: starts its workers)", lambda: drift_workers(docs, args.workers), megabytes, rows)
    # A run starts its worker processes once (spawn, imports): a fixed cost, not a rate. The rate
    # is what one more copy of the data costs: the same run on twice the documents, minus this one.
    twice = time.perf_counter()
    drift_workers(docs + docs, args.workers)
    twice = time.perf_counter() - twice
    rows.append((f"drift fingerprint, {args.workers} worker processes, per further MB (the second {megabytes:.0f} MB)", megabytes / (twice - cold), twice - cold))
    genson_rate = rows[1][1]
    print("| method | MB/s | seconds | vs genson |")
    print("|---|---:|---:|---:|")
    for label, rate, seconds in rows:
        print(f"| {label} | {rate:.1f} | {seconds:.2f} | {rate / genson_rate:.2f}x |")
    print(f"\nstarting the workers: about {cold - (twice - cold):.2f} s, once per run")


if __name__ == "__main__":
    main()
