"""Featurization throughput per core on both engines (issue 15), for the sizing table in
docs/operations.md.

Writes --images photos (640x480 JPEG, drawn at random) and a one-day log, then featurizes that
window (open in isolated workers, descriptors, centre crop, ViT-B-32 forward, untrained weights:
the same compute as trained ones) with:

* engine "local": [limits] workers = 2 worker processes, torch on every core;
* engine "ray": a local Ray cluster of this machine's cores, its default pool (cores less one
  actor of 1 CPU, each actor with its own worker processes and torch threads).

Each engine runs --repeat times; the table gives the median wall time of the featurization stage
(model loading and, for Ray, the cluster's start excluded from "steady", included in "cold").

    python benchmarks/engine_throughput.py [--images 256] [--repeat 2]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def world(folder: Path, n: int) -> Path:
    import polars as pl
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    (folder / "data").mkdir(parents=True)
    rows = []
    for i in range(n):
        img = Image.new("RGB", (640, 480), tuple(rng.randint(60, 200) for _ in range(3)))
        draw = ImageDraw.Draw(img)
        for _ in range(40):
            x, y = rng.randint(0, 600), rng.randint(0, 440)
            draw.rectangle(
                (x, y, x + rng.randint(5, 120), y + rng.randint(2, 30)), fill=tuple(rng.randint(0, 255) for _ in range(3))
            )
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=85)
        (folder / "data" / f"{i}.jpg").write_bytes(buffer.getvalue())
        rows.append(
            {
                "input_id": f"img-{i}",
                "received_at": (DAY + timedelta(seconds=i)).isoformat(),
                "kind": "image",
                "source": "camera",
                "uri": f"data/{i}.jpg",
            }
        )
    pl.DataFrame(rows).write_parquet(folder / "log.parquet")
    job = folder / "job.toml"
    job.write_text(
        f'[job]\nname = "bench"\n[inputs]\nlog = "log.parquet"\nroots = ["data"]\n[sampling]\nmax_per_segment = {n}\n'
        '[baseline]\nname = "b"\n[limits]\nworkers = 2\n'
    )
    return job


def run(job: Path, engine: str) -> tuple[float, float, int]:
    """(cold seconds, featurization seconds, items) for one analysis of the window."""
    from drift.clock import StageClock
    from drift.config import load_job
    from drift.features.featurize import Context
    from drift.features.window import analyse_window
    from drift.progress import QUIET
    from drift.sources.log import Window

    config = load_job(job)
    config.engine.kind = engine
    started = time.perf_counter()
    context = Context(config, QUIET)
    if engine == "local":
        context.image_encoder()  # loaded before the stage, as the Ray actors load theirs in their constructor
    clock = StageClock()
    analysis = analyse_window(config, Window(DAY, DAY + timedelta(days=1)), context, clock)
    stage = next(t for t in clock.stages if t.stage == "open_and_featurize")
    items = sum(d.features.n for d in analysis.segments.values())
    return time.perf_counter() - started, stage.seconds, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        job = world(Path(tmp), args.images)
        import ray

        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False)
        results: dict[str, list[tuple[float, float, int]]] = {"local": [], "ray": []}
        for _ in range(args.repeat):
            for engine in results:
                results[engine].append(run(job, engine))
        ray.shutdown()
    print(f"{args.images} images 640x480, ViT-B-32 (untrained) fp32 on torch, {cores} cores; median of {args.repeat}\n")
    print("| engine | featurize s (runs) | images/s | images/s per core | cold s (first run) |")
    print("|---|---:|---:|---:|---:|")
    for engine, runs in results.items():
        seconds = statistics.median(r[1] for r in runs)
        rate = runs[0][2] / seconds
        print(
            f"| {engine} | {seconds:.1f} ({', '.join(f'{r[1]:.1f}' for r in runs)}) | {rate:.1f} | {rate / cores:.1f} | {runs[0][0]:.1f} |"
        )


if __name__ == "__main__":
    main()
