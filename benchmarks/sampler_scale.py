"""What one night's sample costs as the log's history grows (issue 15).

Builds a time-ordered Parquet log of --rows rows over --days days, hive-partitioned by day
(`dt=2026-09-01/`), as an agent's log writer would, then samples the last day with drift's sampler
(drift.sources.log: window, contract, per-segment sample, bodies of the sampled rows) and measures, each
in a fresh process (wall time and peak RSS of that process):

* `full log, partitions`: the whole history, hive partitions pruned by the window;
* `full log, statistics only`: the same files, partitions ignored: only Parquet row-group statistics
  on received_at can skip the other days;
* `that day only`: a glob matching the one day's folder: the floor the full log is held to;
* `DuckDB's own query`: `SELECT input_id, kind, source ... WHERE received_at in the window` over the
  full log, the pushed-down scan the sampler is held to;
* `1/10 of the history`: the last --days/10 days, for the memory as history grows tenfold.

Targets: full log <= 1.5x that day only; the sampler <= 3x DuckDB's own query; peak RSS of the
full log <= 1.2x that of a tenth of the history. Each measurement runs --repeat times; the median
is reported.

    python benchmarks/sampler_scale.py [--rows 50000000] [--days 60] [--dir /tmp/drift-scale] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 9, 1, tzinfo=UTC)
SOURCES = 8
CAP = 500


def build(directory: Path, rows: int, days: int) -> None:
    import duckdb

    marker = directory / f".built-{rows}-{days}"
    if marker.exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    step_us = days * 86_400_000_000 // rows
    started = time.perf_counter()
    con.execute(
        f"""
        COPY (
            SELECT
                'in-' || lpad(CAST(i AS VARCHAR), 10, '0') AS input_id,
                TIMESTAMPTZ '{START.isoformat()}' + to_microseconds(i * {step_us}) AS received_at,
                CASE i % 3 WHEN 0 THEN 'image' WHEN 1 THEN 'document' ELSE 'payload' END AS kind,
                'source-' || CAST(hash(i) % {SOURCES} AS VARCHAR) AS source,
                CASE WHEN i % 3 <> 2 THEN 'files/' || CAST(i % 1000003 AS VARCHAR) || '.bin' END AS uri,
                CASE WHEN i % 3 = 2 THEN '{{"order": ' || CAST(i AS VARCHAR) || ', "total": ' || CAST(i % 997 AS VARCHAR) || '.5}}' END AS body,
                'tenant-' || CAST(i % 50 AS VARCHAR) AS tenant,
                strftime(TIMESTAMPTZ '{START.isoformat()}' + to_microseconds(i * {step_us}), '%Y-%m-%d') AS dt
            FROM range({rows}) AS t(i)
        ) TO '{directory}' (FORMAT parquet, PARTITION_BY (dt), OVERWRITE_OR_IGNORE, ROW_GROUP_SIZE 122880)
        """
    )
    tenth = directory / "tenth"  # the last tenth of the days, as a log of its own
    tenth.mkdir(exist_ok=True)
    for offset in range(days - max(1, days // 10), days):
        day = f"dt={(START + timedelta(days=offset)).date()}"
        if not (tenth / day).exists():
            (tenth / day).symlink_to(directory / day)
    marker.write_text("")
    print(f"built {rows:,} rows over {days} days in {time.perf_counter() - started:.0f} s: {directory}", file=sys.stderr)


def measure(mode: str, directory: Path, days: int) -> dict:
    """One measurement, in this (fresh) process."""
    from drift.sources.log import Window, connect, open_log, sample_window

    day = START + timedelta(days=days - 1)
    window = Window(day, day + timedelta(days=1))
    glob = str(directory / "dt=*" / "*.parquet")  # the tenth's folder has no dt= name: not matched
    if mode == "that day only":
        glob = str(directory / f"dt={day.date()}" / "*.parquet")
    elif mode == "1/10 of the history":
        glob = str(directory / "tenth" / "dt=*" / "*.parquet")
    started = time.perf_counter()
    con = connect()
    if mode == "DuckDB's own query":
        rows = (
            con.execute(
                f"SELECT input_id, kind, source FROM read_parquet('{glob}') WHERE received_at >= $s AND received_at < $e",
                {"s": window.start, "e": window.end},
            )
            .to_arrow_table()
            .num_rows
        )
        sampled = None
    else:
        partition = "none" if mode == "full log, statistics only" else "dt"
        log = open_log(con, glob, date_partition=partition)
        result = sample_window(con, log, window, CAP, seed=0)
        rows = int(result.population["n_population"].sum())
        sampled = result.rows.height
        assert result.rows["body"].is_not_null().sum() == result.rows.filter(result.rows["kind"] == "payload").height
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "sampled": sampled, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's peak (here, the log's build)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


MODES = ("full log, partitions", "full log, statistics only", "that day only", "DuckDB's own query", "1/10 of the history")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/drift-scale"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.dir, args.days)))
        return
    build(args.dir, args.rows, args.days)
    results: dict[str, list[dict]] = {mode: [] for mode in MODES}
    for _ in range(args.repeat):  # the modes take turns, so a slow spell of the machine hits all
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--dir", str(args.dir), "--days", str(args.days)],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[mode].append(json.loads(out))
    median = {
        mode: {key: statistics.median(r[key] for r in runs) for key in ("seconds", "rss_mb")} | {"rows": runs[0]["rows"]}
        for mode, runs in results.items()
    }
    floor, duck, tenth = median["that day only"], median["DuckDB's own query"], median["1/10 of the history"]
    print(
        f"{args.rows:,} rows over {args.days} days; one day's window ({median['full log, partitions']['rows']:,} rows), {CAP} per segment; median of {args.repeat}\n"
    )
    print("| log read | seconds (min-max) | vs that day only | vs DuckDB's query | peak RSS MB | vs 1/10 history |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode in MODES:
        m, runs = median[mode], results[mode]
        spread = f"{m['seconds']:.2f} ({min(r['seconds'] for r in runs):.2f}-{max(r['seconds'] for r in runs):.2f})"
        print(
            f"| {mode} | {spread} | {m['seconds'] / floor['seconds']:.2f}x | {m['seconds'] / duck['seconds']:.2f}x | {m['rss_mb']:.0f} | {m['rss_mb'] / tenth['rss_mb']:.2f}x |"
        )


if __name__ == "__main__":
    main()
