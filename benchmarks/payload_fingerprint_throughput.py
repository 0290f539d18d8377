"""Fingerprinting throughput on real API responses, against genson and against orjson alone.

The shared corpus' API responses (quicktype's GitHub, Reddit, Spotify, World Bank... and octokit's
recorded GitHub exchanges: every .json file that parses) are replicated to at least --mb megabytes
in memory, then, in one run:

* orjson alone: parse every document;
* genson: parse, then add every document to one SchemaBuilder (schema inference);
* drift, one process: what a run does per document (open_payload: parse under limits, observe every
  path) and per window (the featurizer's long tables, then the fingerprint with its statistics);
* drift, N worker processes: the same through the run's worker pool (drift.features.isolation), payloads
  opened 32 to a task, the observations gathered and fingerprinted in the parent; once as a run
  does it (starting the workers included), and once on twice the documents: the difference is
  the cost of the second copy, the rate once the workers are running.

Every method runs --repeat times, the methods taking turns, and the table gives each one's median
time with the fastest and slowest run: on this shared 2-core machine orjson alone took 0.29 to
0.66 s on the same bytes within one run. "vs genson" is the median, over the rounds, of genson's time in that round divided by
the method's: a slow spell of the machine slows both.

    python benchmarks/payload_fingerprint_throughput.py [--mb 100] [--workers 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import orjson

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "json"
LIMITS = {"max_bytes": 10_000_000, "max_depth": 64, "max_array": 100_000}
BATCH = 32  # documents per worker call, as drift.features.isolation.open_all batches them


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


def seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def drift_one_process(docs: list[bytes]) -> None:
    from drift.features.fingerprint import summary
    from drift.features.kinds.payload import PayloadFeaturizer, open_payloads

    featurizer = PayloadFeaturizer()
    for start in range(0, len(docs), BATCH):
        for i, opened in enumerate(open_payloads(docs[start : start + BATCH], LIMITS), start):
            featurizer.add(str(i), opened)
    summary.build(featurizer.finish().tables)


def drift_workers(docs: list[bytes], workers: int) -> None:
    from drift.features.fingerprint import summary
    from drift.features.isolation import Task, open_all
    from drift.features.kinds import InputError
    from drift.features.kinds.payload import PayloadFeaturizer, open_payload, open_payloads

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
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"{CORPUS} not found: this benchmark needs ../shared/corpus beside the clone")
    unique = api_responses()
    unique_mb = sum(map(len, unique)) / 1e6
    copies = int(args.mb // unique_mb) + 1
    docs = unique * copies
    megabytes = sum(map(len, docs)) / 1e6
    print(f"{len(unique)} API responses ({unique_mb:.1f} MB) x {copies} = {len(docs)} documents, {megabytes:.1f} MB\n")

    import drift.features.fingerprint.summary
    import drift.features.isolation
    import drift.features.kinds.payload  # noqa: F401 - imported before the clocks start

    labels = {
        "orjson": "orjson parse only",
        "genson": "genson schema inference (parse + one SchemaBuilder)",
        "one": "drift fingerprint, 1 process",
        "run": f"drift fingerprint, {args.workers} worker processes (as a run: starts its workers)",
        "further": f"drift fingerprint, {args.workers} worker processes, per further MB (the second {megabytes:.0f} MB)",
    }
    times: dict[str, list[float]] = {key: [] for key in labels}
    starts = []
    for _ in range(args.repeat):
        times["orjson"].append(seconds(lambda: [orjson.loads(d) and None for d in docs]))
        times["genson"].append(seconds(lambda: genson_union(docs)))
        times["one"].append(seconds(lambda: drift_one_process(docs)))
        # A run starts its worker processes once (spawn, imports): a fixed cost, not a rate. The
        # rate is what one more copy of the data costs: the same run on twice the documents, minus
        # this one.
        cold = seconds(lambda: drift_workers(docs, args.workers))
        twice = seconds(lambda: drift_workers(docs + docs, args.workers))
        times["run"].append(cold)
        times["further"].append(twice - cold)
        starts.append(cold - (twice - cold))
    print(f"median of {args.repeat} rounds (fastest - slowest)\n")
    print("| method | MB/s | seconds | vs genson |")
    print("|---|---:|---:|---:|")
    for key, label in labels.items():
        median = statistics.median(times[key])
        ratios = [g / t for g, t in zip(times["genson"], times[key])]
        print(
            f"| {label} | {megabytes / median:.1f} | {median:.2f} ({min(times[key]):.2f} - {max(times[key]):.2f}) "
            f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f} - {max(ratios):.2f}) |"
        )
    print(f"\nstarting the workers: about {statistics.median(starts):.2f} s, once per run")


if __name__ == "__main__":
    main()
