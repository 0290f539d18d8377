"""The `drift` command. Thin: it parses, calls the library, prints.

Exit codes: 0 the command completed (whatever drift it found); 1 it could not run, with a one-line
reason on stderr; 2 the command line itself was wrong; 3 a bug in drift: either the command
completed but drift's own code failed on some inputs (category `internal`), or the command itself
stopped on an exception drift did not expect. Either way the traceback is on stderr, with a last
line saying so: report it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console

from . import __version__
from .errors import DriftError
from .report.console import print_run

app = typer.Typer(
    help="Nightly drift monitor for the images, documents and JSON payloads an LLM agent receives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
baseline_app = typer.Typer(help="Build baselines: the reference the runs compare against.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")
alerts_app = typer.Typer(help="Alerts: list them, deliver what is still undelivered.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
export_app = typer.Typer(help="Export runs to other tools.", no_args_is_help=True)
app.add_typer(export_app, name="export")
cache_app = typer.Typer(help="The feature cache: what it holds, and making room.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")

# soft_wrap: long paths and titles stay on one line when the output goes to a file or a pipe.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


INTERNAL_EXIT = 3


def _fail(message: str) -> None:
    err.print(f"drift: error: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


def _internal(count: int) -> None:
    """Completed, with inputs our own code failed on: say so and exit INTERNAL_EXIT."""
    if count:
        err.print(
            f"drift: {count} input(s) met a bug in drift (category internal, tracebacks above); "
            "they are not counted as input errors. Please report it.",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(INTERNAL_EXIT)


def _progress(quiet: bool):
    from .progress import Progress

    return Progress(quiet=quiet)


def _version(value: bool) -> None:
    if value:
        out.print(f"drift {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


@app.command()
def run(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    day: str | None = typer.Option(None, help="UTC day to analyse, YYYY-MM-DD. Default: yesterday."),
    as_json: bool = typer.Option(False, "--json", help="Print the run summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Analyse one window against the baseline and write the results to the store."""
    from .config import load_job
    from .pipeline import run_job
    from .report.render import render

    try:
        config = load_job(job)
        result = run_job(config, day, _progress(quiet or as_json))
    except DriftError as exc:
        _fail(str(exc))
    if as_json:
        sys.stdout.write(render(result.record, "json"))
    else:
        print_run(result, out)
    _internal(len(result.record.internal_errors))


@baseline_app.command("build")
def baseline_build(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    start: str = typer.Option(..., help="First UTC day of the reference window, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Day after the last, YYYY-MM-DD (exclusive)."),
    name: str | None = typer.Option(None, help="Baseline name. Default: [baseline] name of the job."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Sample a reference window, compute its features and store them as the baseline."""
    from .baselines import build
    from .clock import StageClock
    from .config import load_job
    from .features.featurize import Context
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
    for line in manifest["warnings"]:
        err.print(f"warning: {line}", markup=False, highlight=False)
    _internal(manifest["internal_errors"])


@app.command()
def report(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    run: str = typer.Argument("latest", help="A run id, or latest."),
    fmt: str = typer.Option("html", "--format", help="html, md or json."),
    out_path: Path | None = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Render a stored run's report. Text from inputs is escaped in every format."""
    from .config import load_job
    from .report.pictures import report_pictures
    from .report.render import FORMATS, load_record, render

    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        config = load_job(job)
        record = load_record(config.store.database, config.name, run)
        # thumbnails are made again from the files, where they still are
        text = render(record, fmt, report_pictures(record, config) if fmt == "html" else None)
    except DriftError as exc:
        _fail(str(exc))
    if out_path is None:
        sys.stdout.write(text)
    else:
        out_path.write_text(text)
        out.print(f"wrote {out_path}", highlight=False)


@export_app.command("evidently")
def export_evidently(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    run: str = typer.Argument("latest", help="A run id, or latest."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for <kind>.<source>.html and .snapshot.json."),
) -> None:
    """A run's descriptors against its baseline's as Evidently reports (HTML and snapshots its UI
    loads), one per segment. Needs the extra: pip install -e '.[evidently]'."""
    from .config import load_job
    from .report.evidently_export import export_run

    try:
        written = export_run(load_job(job), run, out_dir)
    except DriftError as exc:
        _fail(str(exc))
    out.print(f"wrote {len(written)} file(s) to {out_dir}", highlight=False)


@app.command()
def fingerprint(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    day: str = typer.Option(..., help="The UTC day whose window is fingerprinted, YYYY-MM-DD."),
    out_dir: Path = typer.Option(..., "--out", help="Folder for <source>.fingerprint.parquet and <source>.schema.json."),
    source: str | None = typer.Option(None, help="Only this payload source."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Export the payload fingerprints and union JSON Schemas of one window.

    Fingerprints of several days merge into one with drift.features.fingerprint.summary.merge.
    """
    from .clock import StageClock
    from .config import load_job
    from .features.featurize import Context
    from .features.fingerprint import summary
    from .features.window import analyse_window
    from .pipeline import day_window
    from .record import InputKind

    try:
        config = load_job(job)
        context = Context(config, _progress(quiet))
        context.keep_documents = True
        analysis = analyse_window(config, day_window(config, day), context, StageClock(), kinds={InputKind.PAYLOAD.value})
    except DriftError as exc:
        _fail(str(exc))
    segments = {s: d for s, d in analysis.segments.items() if source is None or s[1] == source}
    if not segments:
        _fail(f"no payloads{' of source ' + repr(source) if source else ''} in the window of {day}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for (_, name), data in sorted(segments.items()):
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        fp = summary.build(data.features.tables)
        fp.write_parquet(out_dir / f"{safe}.fingerprint.parquet")
        (out_dir / f"{safe}.schema.json").write_text(data.features.tables["schema"]["schema"][0] + "\n")
        out.print(
            f"{name}: {data.features.n} payloads, {len(data.errors)} input errors, {fp.height} paths "
            f"-> {out_dir / (safe + '.fingerprint.parquet')}, {out_dir / (safe + '.schema.json')}",
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
    out.print(f"  baseline  {config.baseline_uri}", highlight=False)
    engine = config.engine
    where = f" at {engine.address or os.environ.get('RAY_ADDRESS') or 'a local cluster'}" if engine.kind == "ray" else ""
    out.print(f"  engine    {engine.kind}{where}", highlight=False)
    out.print(f"  store     {config.store.database}", highlight=False)
    out.print(f"  encoder   {config.image.model} ({config.image.pretrained})", highlight=False)
    out.print(f"  schedule  {config.job.schedule} ({config.job.timezone}), window {config.job.window}", highlight=False)


@app.command()
def schedule(
    jobs: Path = typer.Argument(Path("jobs"), help="A folder of job files (*.toml, not *.example.toml), or one job file."),
) -> None:
    """Run every job on its cron schedule until SIGTERM (a daemon; see docs/operations.md for cron and systemd)."""
    import logging

    from .schedule import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(jobs)
    except DriftError as exc:
        _fail(str(exc))


@app.command()
def backfill(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    start: str = typer.Option(..., help="First UTC day, YYYY-MM-DD."),
    end: str = typer.Option(..., help="Day after the last, YYYY-MM-DD (exclusive)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run the days from --start to --end (exclusive) in order; exit 1 if any day could not run."""
    from .config import load_job
    from .pipeline import parse_day, run_job
    from .schedule import days

    try:
        config = load_job(job)
        todo = days(parse_day(start).date(), parse_day(end).date())
    except DriftError as exc:
        _fail(str(exc))
    failed, internal = [], 0
    for day in todo:
        try:
            result = run_job(config, day, _progress(quiet))
            out.print(f"{day}: run {result.run_id}, {len(result.record.alerts)} alert(s)", highlight=False)
            internal += len(result.record.internal_errors)
        except DriftError as exc:
            failed.append(day)
            err.print(f"{day}: drift: error: {exc}", markup=False, highlight=False)
    if failed:
        _fail(f"{len(failed)} of {len(todo)} day(s) could not run: {', '.join(failed)}")
    _internal(internal)


@app.command()
def status(
    jobs: Path = typer.Argument(Path("jobs"), help="A folder of job files, or one job file."),
    grace_hours: float = typer.Option(2.0, help="How late a run may be before the job counts as LATE."),
) -> None:
    """Each job's last successful run; exit 1 when a job has missed its schedule (a dead man's switch)."""
    from datetime import timedelta

    from .schedule import job_files, job_status

    try:
        statuses = [job_status(path, grace=timedelta(hours=grace_hours)) for path in job_files(jobs)]
    except DriftError as exc:
        _fail(str(exc))
    for st in statuses:
        finished = st.last_finished.isoformat(timespec="minutes") if st.last_finished else "-"
        due = st.due_since.isoformat(timespec="minutes") if st.due_since else "-"
        out.print(
            f"{st.job:<20} {st.state:<9} last window {st.last_window or '-':<10} finished {finished:<25} "
            f"due since {due:<25} open alerts {st.open_alerts}, undelivered {st.undelivered}",
            highlight=False,
        )
    late = [st.job for st in statuses if st.late]
    if late:
        err.print(f"drift: {len(late)} job(s) missed their schedule: {', '.join(late)}", highlight=False)
        raise typer.Exit(1)


def _feature_cache(config):
    from .features.cache import FeatureCache

    cache = FeatureCache.of(config)
    if cache is None:
        _fail(f"{config.path}: [cache] enabled = false; this job keeps no feature cache")
    return cache


def _megabytes(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


@cache_app.command("stats")
def cache_stats(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON on stdout."),
) -> None:
    """What the job's feature cache holds, per featurizer identity, and its hit rate in recent runs."""
    import json
    from datetime import UTC, datetime

    from . import store
    from .config import load_job

    try:
        config = load_job(job)
        cache = _feature_cache(config)
        identities = cache.stats()
        runs = []
        if Path(config.store.database).exists():
            con = store.connect_reader(config.store.database)
            try:
                runs = store.cache_hit_rates(con, config.name)
            finally:
                con.close()
    except DriftError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot read the feature cache at {config.cache_dir}: {exc}")
    total = sum(row["bytes"] for row in identities)
    if as_json:
        payload = {
            "dir": cache.root,
            "bytes": total,
            "max_bytes": cache.max_bytes,
            "identities": identities,
            "runs": [{"day": str(d), "run_id": r, "hits": h, "misses": m} for d, r, h, m in runs],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    out.print(f"feature cache {cache.root}: {_megabytes(total)} of {_megabytes(cache.max_bytes)}", highlight=False)
    if not identities:
        out.print("empty")
    for row in identities:
        used = datetime.fromtimestamp(row["last_used"], UTC).strftime("%Y-%m-%d %H:%M")
        broken = f", {row['unreadable']} unreadable" if row.get("unreadable") else ""
        out.print(
            f"  {row['identity']}: {row['entries']} items in {row['parts']} parts, {_megabytes(row['bytes'])}, "
            f"last used {used} UTC{broken}",
            highlight=False,
        )
    for day, run_id, hits, misses in runs:
        rate = hits / (hits + misses) if hits + misses else 0.0
        out.print(f"  run {run_id} ({day}): {rate:.0%} of {hits + misses} items read from the cache", highlight=False)


@cache_app.command("prune")
def cache_prune(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    max_size: str | None = typer.Option(None, help="Evict down to this size (500MB, 2GB). Default: [cache] max_size."),
    clear: bool = typer.Option(False, "--all", help="Remove every entry."),
) -> None:
    """Evict the least recently used parts past the size limit; remove torn parts and left-over temporary files."""
    from .config import load_job, parse_size

    try:
        config = load_job(job)
        cache = _feature_cache(config)
        limit = 0 if clear else (parse_size(max_size) if max_size is not None else None)
        removed = cache.prune(limit)
    except ValueError as exc:
        _fail(f"--max-size: {exc}")
    except DriftError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot prune the feature cache at {config.cache_dir}: {exc}")
    left = sum(p["bytes"] for p in cache.parts())
    out.print(
        f"removed {removed['parts']} parts ({_megabytes(removed['bytes'])}), {removed['unreadable']} unreadable parts, "
        f"{removed['temporary']} temporary files; {_megabytes(left)} left",
        highlight=False,
    )


@alerts_app.command("list")
def alerts_list(
    job: Path = typer.Argument(..., help="The job file (TOML)."),
    state: str | None = typer.Option(None, help="open, resolved or undelivered. Default: all."),
) -> None:
    """Show the job's alerts: open, resolved, and those with undelivered messages."""
    from .alerts.deliver import list_alerts
    from .config import load_job

    if state not in (None, "open", "resolved", "undelivered"):
        _fail(f"--state must be open, resolved or undelivered, not {state!r}")
    try:
        rows = list_alerts(load_job(job), state)
    except DriftError as exc:
        _fail(str(exc))
    if not rows:
        out.print("no alerts")
    for row in rows:
        pending = f", {row['undelivered']} undelivered" if row["undelivered"] else ""
        out.print(
            f"{row['state']:<8} {row['severity']:<8} {row['updated_at']:%Y-%m-%d %H:%M}  {row['title']}{pending}",
            markup=False,
            highlight=False,
        )


@alerts_app.command("flush")
def alerts_flush(job: Path = typer.Argument(..., help="The job file (TOML).")) -> None:
    """Deliver every undelivered alert message now (also done at the end of every run)."""
    from .alerts.deliver import flush
    from .config import load_job

    try:
        counts = flush(load_job(job))
    except DriftError as exc:
        _fail(str(exc))
    out.print(f"delivered {counts['delivered']}, still pending {counts['pending']}")
    if counts["pending"]:
        raise typer.Exit(1)


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


def main() -> None:
    """The `drift` command: errors we understand are one line (exit 1); an exception we did not
    expect is a bug, shown with its traceback and a last line that says so (exit INTERNAL_EXIT)."""
    import traceback

    try:
        code = app(prog_name="drift", standalone_mode=False)
    except typer.TyperException as exc:  # the command line was wrong: usage, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("drift: interrupted", markup=False, highlight=False)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: say that it is ours
        traceback.print_exc()
        err.print(
            f"drift: error: internal error, a bug in drift ({type(exc).__name__}: {exc}); "
            "please report it with the traceback above",
            markup=False,
            highlight=False,
        )
        sys.exit(INTERNAL_EXIT)
    sys.exit(code if isinstance(code, int) else 0)
