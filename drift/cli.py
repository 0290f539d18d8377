"""The `drift` command. Thin: it parses, calls the library, prints.

Exit codes: 0 the command completed (whatever drift it found); 1 it could not run, with a one-line
reason on stderr; 2 the command line itself was wrong.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from . import __version__
from .errors import DriftError

app = typer.Typer(
    help="Nightly drift monitor for the images, documents and JSON payloads an LLM agent receives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
baseline_app = typer.Typer(help="Build baselines: the reference the runs compare against.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")

# soft_wrap: long paths and titles stay on one line when the output goes to a file or a pipe.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> None:
    err.print(f"drift: error: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def _progress(quiet: bool):
    from .progress import Progress

    return Progress(quiet=quiet)


def _version(value: bool) -> None:
    if value:
        out.print(f"drift {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


@app.command()
def run(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    day: Optional[str] = typer.Option(None, help="UTC day to analyse, YYYY-MM-DD. Default: yesterday."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Analyse one window against the baseline and write the results to the store."""
    from .config import load_job
    from .pipeline import run_job

    try:
        config = load_job(job)
        result = run_job(config, day, _progress(quiet or as_json))
    except DriftError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(json.dumps(result.summary, indent=2, default=str) + "\n")
        return
    _print_run(result)


def _print_run(result) -> None:
    summary = result.summary
    out.print(f"run {summary['run_id']}: window {summary['window']['start'][:10]}, baseline {summary['baseline']['name']}")
    colours = {"none": "green", "info": "cyan", "warning": "yellow", "critical": "red"}
    for seg in summary["segments"]:
        if seg["status"] == "ok":
            label = "ok" if seg["severity"] == "none" else seg["severity"].upper()
            verdict = f"[{colours[seg['severity']]}]{label:<9}[/]"
        else:
            verdict = f"{seg['status']:<9}"
        drifted = list(dict.fromkeys(f["target"] for f in seg["findings"] if f["status"] == "drift"))
        extra = f"  drift in: {', '.join(drifted[:4])}" + (" ..." if len(drifted) > 4 else "") if drifted else ""
        out.print(
            f"  {seg['kind']:>8}/{seg['source']:<20} {verdict} sampled {seg['n_sampled']:>4}, errors {seg['n_errors']:>3}{extra}",
            highlight=False,
        )
    if summary["alerts"]:
        out.print(f"{len(summary['alerts'])} alert(s):")
        for alert in summary["alerts"]:
            out.print(f"  {alert['title']}", markup=False, highlight=False)
    else:
        out.print("no alerts")
    out.print(f"report: {result.report_paths['md']}", highlight=False)


@baseline_app.command("build")
def baseline_build(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    start: str = typer.Option(..., help="First UTC day of the reference window, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Day after the last, YYYY-MM-DD (exclusive)."),
    name: Optional[str] = typer.Option(None, help="Baseline name. Default: [baseline] name of the job."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Sample a reference window, compute its features and store them as the baseline."""
    from .analysis import Context, StageClock
    from .baselines import build
    from .config import load_job
    from .pipeline import parse_day

    try:
        config = load_job(job)
        if name:
            config.baseline.name = name
        progress = _progress(quiet)
        manifest = build(config, parse_day(start), parse_day(end), Context(config, progress), StageClock())
    except DriftError as exc:
        _fail(str(exc))
    n_items = sum(s["n_items"] for s in manifest["segments"])
    n_errors = sum(s["n_errors"] for s in manifest["segments"])
    out.print(
        f"baseline {manifest['name']!r}: {len(manifest['segments'])} segments, {n_items} items, "
        f"{n_errors} input errors -> {config.baseline_dir}",
        highlight=False,
    )


@app.command()
def validate(job: Path = typer.Argument(..., help="The job file (TOML).")) -> None:
    """Check a job file and show what it resolves to."""
    from .config import load_job

    try:
        config = load_job(job)
    except DriftError as exc:
        _fail(str(exc))
    out.print(f"{job}: valid job {config.name!r}", highlight=False)
    out.print(f"  log       {config.inputs.log}", highlight=False)
    out.print(f"  roots     {', '.join(map(str, config.inputs.roots))}", highlight=False)
    out.print(f"  baseline  {config.baseline_dir}", highlight=False)
    out.print(f"  store     {config.store.database}", highlight=False)
    out.print(f"  encoder   {config.image.model} ({config.image.pretrained})", highlight=False)
    out.print(f"  schedule  {config.job.schedule} ({config.job.timezone}), window {config.job.window}", highlight=False)


@app.command()
def demo(
    dir: Path = typer.Option(Path("drift-demo"), "--dir", help="Working folder for the demo's world."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Generate a synthetic month of inputs, build a baseline, run a quiet and a drifted day."""
    from .demo.run import run_demo

    try:
        run_demo(dir.resolve(), _progress(quiet), out)
    except DriftError as exc:
        _fail(str(exc))


if __name__ == "__main__":  # pragma: no cover
    app()
