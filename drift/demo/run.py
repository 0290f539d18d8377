"""Run the whole product once on a synthetic world, as a new user would on their own data."""

from __future__ import annotations

import shutil
import time
from importlib.resources import files
from pathlib import Path

from rich.console import Console

from ..baselines import build
from ..clock import StageClock
from ..config import load_job
from ..errors import DriftError
from ..features.featurize import Context
from ..pipeline import run_job
from ..progress import Progress
from ..report.console import print_run
from . import world as demo_world

MARKER = ".drift-demo"
OWNED = (
    "logs",
    "data",
    "baselines",
    "reports",
    "drift.duckdb",
    "drift.duckdb.wal",
    "drift.duckdb.lock",
    "feature-cache",
    "alerts.jsonl",
    "demo.toml",
)


def prepare(folder: Path) -> None:
    """Start from a clean folder, deleting only what an earlier demo made there."""
    if folder.exists() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise DriftError(f"{folder} exists and was not made by `drift demo`; choose another --dir")
    for name in OWNED:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by drift demo; `drift demo` may delete what it made here\n")


def run_demo(folder: Path, progress: Progress, console: Console) -> None:
    started = time.perf_counter()
    prepare(folder)
    console.print(f"[bold]drift demo[/] in {folder}")
    demo_world.generate(folder, progress)
    job_path = folder / "demo.toml"
    job_path.write_text(files("drift.demo").joinpath("job.toml").read_text())
    config = load_job(job_path)
    console.print(
        f"generated a month of inputs ({demo_world.BASELINE_START:%Y-%m-%d} .. {demo_world.QUIET_DAY:%Y-%m-%d}) "
        f"and two monitored days; log: {folder / 'logs'}",
        highlight=False,
    )
    context = Context(config, progress)
    manifest = build(config, demo_world.BASELINE_START, demo_world.QUIET_DAY, context, StageClock())
    console.print(
        f"baseline {manifest['name']!r}: {sum(s['n_items'] for s in manifest['segments'])} items in "
        f"{len(manifest['segments'])} segments. Encoder: {context.image_encoder().describe()}",
        highlight=False,
    )
    console.print(
        "[yellow]note:[/] no model hub is used: the image encoder is UNTRAINED (seeded random weights), "
        "a fair dimensionality reducer for shift tests; set \\[image] pretrained for CLIP weights.",
    )
    for label, day in (("quiet day", demo_world.QUIET_DAY), ("drifted day", demo_world.DRIFT_DAY)):
        console.print(f"\n[bold]{label}[/] {day:%Y-%m-%d}")
        print_run(run_job(config, f"{day:%Y-%m-%d}", progress), console)
    console.print(
        f"\ndone in {time.perf_counter() - started:.0f} s.\n"
        f"  store:    {config.store.database}   (duckdb {config.store.database} -readonly)\n"
        f"  reports:  {config.report.dir}   (open {config.report.dir / 'demo' / f'{demo_world.DRIFT_DAY:%Y-%m-%d}' / 'report.html'} in a browser)\n"
        f"  alerts:   {folder / 'alerts.jsonl'}\n"
        f"  job file: {job_path}   (try: drift run {job_path} --day {demo_world.DRIFT_DAY:%Y-%m-%d} --json)\n"
        f"  notebooks: pip install -e '.[notebooks]', then DRIFT_STORE={config.store.database} jupyter lab notebooks/",
        highlight=False,
        markup=False,  # '.[notebooks]' is not a style tag
    )
