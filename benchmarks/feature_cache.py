"""What the feature cache saves, on the demo's world (issue 27), in one run:

* a rerun of a demo night, against its first run;
* a night killed (SIGKILL) three times at random points, then completed, against one clean run;
* a baseline built over 7 nights that were already run, against building it cold;
* a window where 30% of the sampled files are byte-identical copies, against one without copies:
  items opened and embedded, and the featurization's time;
* the compare stage's cost per segment and the run's peak memory as a job grows from 55 to 550
  segments (10 payload segments to each image segment), each size in a process of its own.

Every run is `drift run` as cron runs it (a subprocess); each measurement has its own cache folder.

    python benchmarks/feature_cache.py [--dir DIR] [--seed 0] [--sizes 55 110 275 550]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import duckdb
import orjson
import polars as pl

from drift.demo import world as demo_world
from drift.progress import QUIET

DRIFT = [sys.executable, "-m", "drift"]
STEPS = ("rerun", "killed", "baseline", "copies", "scale")


def job_file(folder: Path, name: str, cache: str | None, extra: str = "") -> Path:
    text = files("drift.demo").joinpath("job.toml").read_text()
    text += f'\n[cache]\ndir = "{cache}"\n' if cache else "\n[cache]\nenabled = false\n"
    path = folder / f"{name}.toml"
    path.write_text(text + extra)
    return path


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: the night drifted
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def run_night(job: Path, day) -> float:
    return timed([*DRIFT, "run", str(job), "--day", f"{day:%Y-%m-%d}", "--quiet"])


def stage(job: Path, day, name: str) -> tuple:
    con = duckdb.connect(str(job.parent / "drift.duckdb"), read_only=True)
    try:
        return con.execute(
            """SELECT t.seconds, t.cache_hits, t.cache_misses, t.peak_rss_mb FROM stage_timings t JOIN runs r USING (run_id)
               WHERE r.window_start::DATE = ? AND t.stage = ? ORDER BY r.finished_at DESC LIMIT 1""",
            [day.date(), name],
        ).fetchone()
    finally:
        con.close()


def cached_items(cache: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(p).num_rows for p in cache.glob("*/part-*.parquet"))


def killed_thrice(job: Path, day, clean: float, warm: float, total_items: int, cache: Path, rng: random.Random):
    """Three runs each killed at a uniform random point of its own expected length (what is left
    of the night, from what the cache already holds, plus a warm run's fixed cost), then one to the end."""
    total, points = 0.0, []
    for _ in range(3):
        left = 1 - min(1.0, cached_items(cache) / total_items)
        point = rng.uniform(0.05, 0.95) * (warm + left * (clean - warm))
        started = time.perf_counter()
        process = subprocess.Popen(
            [*DRIFT, "run", str(job), "--day", f"{day:%Y-%m-%d}", "--quiet"], start_new_session=True, stdout=subprocess.DEVNULL
        )
        try:
            process.wait(timeout=point)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the run and its workers, as the OOM killer's cgroup kill does
            process.wait()
        total += time.perf_counter() - started
        points.append(point)
    return total + run_night(job, day), points


def with_copies(folder: Path, day, share: float, seed: int) -> Path:
    """A log of `day` where `share` of the rows name byte-identical copies of the others' files."""
    log = pl.read_parquet(folder / "logs" / "*.parquet")
    when = pl.col("received_at")
    on_day = when.str.slice(0, 10) == f"{day:%Y-%m-%d}" if log.schema["received_at"] == pl.Utf8 else when.dt.date() == day.date()
    log = log.filter(on_day)
    rng = random.Random(seed)
    # every uri absolute: the new log lives in another folder
    rows = [{**r, "uri": None if r["uri"] is None else str((folder / "logs" / r["uri"]).resolve())} for r in log.to_dicts()]
    named = [r for r in rows if r["uri"] is not None]
    out = folder / f"copies-{int(share * 100)}"
    (out / "logs").mkdir(parents=True, exist_ok=True)
    copies = rng.sample(range(len(named)), int(share * len(named)))
    kept = [r for i, r in enumerate(named) if i not in set(copies)]  # the copies' originals stay in the window
    for i in copies:
        originals = [r for r in kept if r["kind"] == named[i]["kind"] and r["source"] == named[i]["source"]]
        original = rng.choice(originals)
        source = Path(original["uri"])
        target = folder / "data" / "copies" / f"copy-{i}{source.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        named[i] = {**named[i], "uri": str(target)}
    frame = pl.DataFrame(named + [r for r in rows if r["uri"] is None], schema=log.schema)
    frame.write_parquet(out / "logs" / "inputs.parquet")
    return out / "logs" / "inputs.parquet"


def window_analysis(job: Path, log: Path, day, cache: str) -> tuple[float, int, int]:
    """Featurize one window, cold, through a cache of its own: (seconds, items, items opened)."""
    from drift.clock import StageClock
    from drift.config import load_job
    from drift.features.featurize import Context
    from drift.features.window import analyse_window
    from drift.sources.log import Window

    config = load_job(job)
    config.inputs.log = str(log)
    config.cache.enabled, config.cache.dir = True, cache
    clock = StageClock()
    analyse_window(config, Window(day, day + timedelta(days=1)), Context(config, QUIET), clock)
    [featurized] = [s for s in clock.stages if s.stage == "open_and_featurize"]
    return featurized.seconds, featurized.items, featurized.cache_misses


def many_segments(folder: Path, n_segments: int, seed: int) -> Path:
    """A job of n_segments (1 image source to 10 payload sources), 40 items a segment a night,
    a week of baseline, the demo's photos and orders as the files."""
    root = folder / f"segments-{n_segments}"
    if root.exists():
        shutil.rmtree(root)
    (root / "logs").mkdir(parents=True)
    rng = random.Random(seed)
    photos = sorted((folder / "data").rglob("*.jpg"))
    start = demo_world.BASELINE_START
    rows = []
    n_images = max(1, n_segments // 11)
    for d in range(8):
        day = start + timedelta(days=d)
        for s in range(n_segments):
            image = s < n_images
            for i in range(40):
                received = (day + timedelta(seconds=rng.randint(0, 86399))).isoformat()
                if image:
                    rows.append(("image", f"camera-{s}", str(rng.choice(photos)), None, received))
                else:
                    body = {
                        "id": f"o-{d}-{s}-{i}",
                        "total": round(rng.lognormvariate(3, 0.6), 2),
                        "items": [{"sku": f"SKU-{rng.randint(1, 900)}", "qty": rng.randint(1, 5)}],
                    }
                    rows.append(("payload", f"api-{s}", None, orjson.dumps(body).decode(), received))
    frame = pl.DataFrame(
        [
            {"input_id": f"{k}-{src}-{n}", "kind": k, "source": src, "uri": uri, "body": body, "received_at": at}
            for n, (k, src, uri, body, at) in enumerate(rows)
        ],
        schema={c: pl.Utf8 for c in ("input_id", "kind", "source", "uri", "body", "received_at")},
    )
    frame.write_parquet(root / "logs" / "inputs.parquet")
    job = root / "job.toml"
    job.write_text(
        f"""[job]\nname = "scale"\n\n[inputs]\nlog = "logs/*.parquet"\nroots = ["{folder / "data"}"]\n\n[sampling]\nmax_per_segment = 40\n\n"""
        f"""[baseline]\nname = "week"\nmax_per_segment = 280\n\n[image]\nmodel = "ViT-B-32"\npretrained = "untrained"\n\n"""
        f"""[cache]\ndir = "{folder / "scale-cache"}"\n"""
    )
    return job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[55, 110, 275, 550])
    parser.add_argument("--steps", nargs="*", default=list(STEPS), choices=STEPS, help="which measurements")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="drift-cache-bench-"))
    rng = random.Random(args.seed)
    if not (folder / "logs").exists():
        demo_world.generate(folder, QUIET)
    quiet, drifted = demo_world.QUIET_DAY, demo_world.DRIFT_DAY
    results: dict[str, object] = {}

    # the month's baseline, once, without a cache (the nights below start cold)
    plain = job_file(folder, "plain", None)
    if not (folder / "baselines" / "demo" / "october" / "manifest.json").exists():
        timed(
            [
                *DRIFT,
                "baseline",
                "build",
                str(plain),
                "--start",
                f"{demo_world.BASELINE_START:%Y-%m-%d}",
                "--end",
                f"{quiet:%Y-%m-%d}",
                "--quiet",
            ]
        )

    if "rerun" in args.steps:
        rerun(folder, quiet, results)
    if "killed" in args.steps:
        killed(folder, drifted, rng, results)
    if "baseline" in args.steps:
        baseline(folder, quiet, results)
    if "copies" in args.steps:
        copies(folder, plain, drifted, args.seed, results)
    if "scale" in args.steps:
        scale(folder, args.sizes, args.seed, results)
    (folder / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"figures in {folder / 'results.json'}")


def rerun(folder, quiet, results):
    job = job_file(folder, "rerun", str(folder / "cache-rerun"))
    first, again = run_night(job, quiet), run_night(job, quiet)
    print(
        f"rerun of a demo night: first {first:.1f} s, rerun {again:.1f} s ({again / first:.0%} of the first); featurize hits {stage(job, quiet, 'open_and_featurize')[1:3]}"
    )
    results["rerun"] = {"first_s": first, "rerun_s": again}


def killed(folder, drifted, rng, results):
    for name in ("cache-clean", "cache-killed"):
        shutil.rmtree(folder / name, ignore_errors=True)
    clean_job = job_file(folder, "clean", str(folder / "cache-clean"))
    clean = run_night(clean_job, drifted)
    again = run_night(clean_job, drifted)  # a warm run: the fixed cost every attempt pays
    kill_job = job_file(folder, "killed", str(folder / "cache-killed"))
    items = stage(clean_job, drifted, "open_and_featurize")[1:3]
    total, points = killed_thrice(kill_job, drifted, clean, again, sum(items), folder / "cache-killed", rng)
    print(
        f"killed at {', '.join(f'{p:.1f}' for p in points)} s, then completed: {total:.1f} s in all, {total / clean:.2f}x one clean run ({clean:.1f} s)"
    )
    results["killed"] = {"clean_s": clean, "total_s": total, "kill_points_s": points}


def baseline(folder, quiet, results):
    week = [quiet - timedelta(days=7 - d) for d in range(7)]
    warm_job = job_file(folder, "week", str(folder / "cache-week"))
    nights = sum(run_night(warm_job, day) for day in week)
    window = ["--start", f"{week[0]:%Y-%m-%d}", "--end", f"{quiet:%Y-%m-%d}", "--quiet"]
    warm = timed([*DRIFT, "baseline", "build", str(warm_job), "--name", "week", *window])
    cold_job = job_file(folder, "week-cold", str(folder / "cache-week-cold"))
    cold = timed([*DRIFT, "baseline", "build", str(cold_job), "--name", "week", *window])
    print(f"baseline over 7 nights already run ({nights:.0f} s to run them): {warm:.1f} s, cold {cold:.1f} s ({warm / cold:.0%})")
    results["baseline"] = {"warm_s": warm, "cold_s": cold, "nights_s": nights}


def copies(folder, plain, drifted, seed, results):
    for name in ("cache-unique", "cache-copies"):
        shutil.rmtree(folder / name, ignore_errors=True)
    unique = with_copies(folder, drifted, 0.0, seed)
    copied = with_copies(folder, drifted, 0.3, seed)
    base = window_analysis(plain, unique, drifted, str(folder / "cache-unique"))
    dup = window_analysis(plain, copied, drifted, str(folder / "cache-copies"))
    print(
        f"window of {base[1]} files: {base[2]} opened in {base[0]:.1f} s; with 30% copies: {dup[2]} opened in {dup[0]:.1f} s "
        f"(opened {dup[2] / base[2]:.0%}, time {dup[0] / base[0]:.0%})"
    )
    results["copies"] = {"unique": base, "copies": dup}


def scale(folder, sizes, seed, results):
    print("| segments | compare s | ms per segment | featurize s | peak RSS MB |")
    print("|---:|---:|---:|---:|---:|")
    results["scale"] = []
    for size in sizes:
        scale_job = many_segments(folder, size, seed)
        end = demo_world.BASELINE_START + timedelta(days=7)
        timed(
            [
                *DRIFT,
                "baseline",
                "build",
                str(scale_job),
                "--start",
                f"{demo_world.BASELINE_START:%Y-%m-%d}",
                "--end",
                f"{end:%Y-%m-%d}",
                "--quiet",
            ]
        )
        run_night(scale_job, end)
        compare, featurize = stage(scale_job, end, "compare"), stage(scale_job, end, "open_and_featurize")
        peak = max(stage(scale_job, end, s)[3] for s in ("compare", "store"))
        print(f"| {size} | {compare[0]:.1f} | {1000 * compare[0] / size:.0f} | {featurize[0]:.1f} | {peak:.0f} |")
        results["scale"].append({"segments": size, "compare_s": compare[0], "featurize_s": featurize[0], "peak_rss_mb": peak})


if __name__ == "__main__":
    main()
