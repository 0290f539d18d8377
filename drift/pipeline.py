"""One run of a job over one window, stage by stage:

    hold the writer lock -> load and verify the baseline -> analyse the window (analysis.py)
    -> compare each segment with its baseline -> one verdict per segment (stats.verdict)
    -> plan alerts -> one DuckDB transaction -> deliver the outbox -> write the reports
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from .alerts.deliver import deliver_pending
from .alerts.outbox import apply_alerts
from .alerts.policy import clean_segments, plan_alerts
from .alerts.sinks import build_sink
from .analysis import StageClock, WindowAnalysis, analyse_window, code_version, report_internal_errors
from .featurize import Context
from .baselines import Baseline, open_baseline
from .config import JobConfig
from .inputs import Window, local_path
from .progress import QUIET, Progress
from .record import build as build_record
from .report import render
from .report.pictures import report_pictures
from .stats.compare import compare_segment, error_rate_checks
from .stats.verdict import Verdict, decide, max_severity
from .kinds import KINDS
from . import store, versions
from .store import utcnow, write_run, writer_lock


log = logging.getLogger(__name__)


def day_window(config: JobConfig, day: str | None) -> Window:
    """The window starting at 00:00 UTC of `day` (default: yesterday), as long as [job] window."""
    if day is None:
        start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    else:
        start = parse_day(day)
    return Window(start, start + config.job.window_length)


def parse_day(text: str) -> datetime:
    from .errors import DriftError

    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        raise DriftError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


@dataclass
class RunResult:
    run_id: str
    summary: dict[str, Any]
    report_paths: dict[str, Path]
    delivery: dict[str, int]


def _segment_verdicts(
    config: JobConfig, analysis: WindowAnalysis, baseline: Baseline, context: Context
) -> dict[tuple[str, str], Verdict]:
    verdicts: dict[tuple[str, str], Verdict] = {}
    checks: dict[tuple[str, str], list] = {}
    for segment, data in sorted(analysis.segments.items()):
        if segment not in baseline.segments:
            verdicts[segment] = Verdict(status="no_baseline")
            continue
        ref_meta = baseline.segments[segment]
        ref = baseline.features(*segment)
        results = compare_segment(ref, data.features, KINDS[data.kind], context)
        results += error_rate_checks(ref_meta["errors"], ref_meta["n_sampled"], data.error_counts(), data.n_judged)
        checks[segment] = results
    # The night's false-page budget is shared by every segment the run tests.
    for segment, results in checks.items():
        verdicts[segment] = decide(results, config.policy, segments=len(checks))
    for segment in baseline.segments:
        if segment not in verdicts:
            verdicts[segment] = Verdict(status="absent")
    return verdicts


def _evidence(analysis: WindowAnalysis, baseline: Baseline, verdicts: dict) -> dict:
    """What the report pictures, for the segments that drifted (drift.report.evidence)."""
    from .report.evidence import collect

    out = {}
    for segment, verdict in verdicts.items():
        data = analysis.segments.get(segment)
        if not verdict.drifted or data is None or segment not in baseline.segments:
            continue
        findings = [f.as_dict() for f in verdict.findings if f.status == "drift"]
        out[segment] = collect(*segment, baseline.features(*segment), data.features, findings, analysis.sample.rows)
    return out


def _to_evidently(config: JobConfig, run_id: str) -> int:
    """The run into the Evidently workspace. The run has committed and its alerts are out: a failure
    here is logged with its traceback and does not undo them; `drift export evidently` redoes it."""
    from .report.evidently_export import add_to_workspace

    try:
        return add_to_workspace(config, run_id)
    except Exception:
        log.exception("could not add run %s to the Evidently workspace %s", run_id, config.export.evidently_workspace)
        return 0


def report_link(config: JobConfig, window: Window) -> str:
    """Where an alert sends its reader: the HTML report, at [report] url when the folder is served."""
    relative = f"{config.name}/{window.start:%Y-%m-%d}/report.html"
    if config.report.url:
        return f"{config.report.url.rstrip('/')}/{relative}"
    return str(config.report.dir / relative)


def _tables(run_id: str, analysis: WindowAnalysis, verdicts: dict, sample_rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    paths = [local_path(uri, log_file) for uri, log_file in zip(sample_rows["uri"], sample_rows["log_file"])]
    samples = sample_rows.select("input_id", "received_at", "kind", "source", "uri", "meta").with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.col("input_id").replace_strict(analysis.outcomes, default="error").alias("outcome"),
        pl.Series("path", paths, dtype=pl.Utf8),
    )
    errors = [
        {"run_id": run_id, "input_id": e.input_id, "kind": d.kind, "source": d.source, "category": e.category,
         "message": e.message + (f"\n{e.traceback}" if e.traceback else "")}
        for d in analysis.segments.values()
        for e in d.errors
    ]
    segments, findings, descriptors, outliers = [], [], [], []
    for (kind, source), verdict in verdicts.items():
        data = analysis.segments.get((kind, source))
        segments.append(
            {
                "run_id": run_id,
                "kind": kind,
                "source": source,
                "n_population": data.n_population if data else 0,
                "n_sampled": data.n_sampled if data else 0,
                "n_items": data.features.n if data else 0,
                "n_errors": data.n_input_errors if data else 0,
                "status": verdict.status,
                "drifted": verdict.drifted,
                "severity": verdict.severity,
            }
        )
        for finding in verdict.findings:
            outliers += [
                {"run_id": run_id, "kind": kind, "source": source, "target": finding.result.target,
                 "rank": rank, "input_id": input_id, "score": score}
                for rank, (input_id, score) in enumerate(finding.result.ranking, start=1)
            ]
            row = finding.as_dict()
            findings.append(
                {
                    "run_id": run_id,
                    "kind": kind,
                    "source": source,
                    "check_family": row.pop("check"),
                    **{k: row[k] for k in ("target", "method", "statistic", "p_value", "p_adjusted", "effect_size",
                                           "effect_threshold", "n_ref", "n_cur", "status", "severity")},
                    "detail": _json(row["detail"]),
                }
            )
        if data is not None and data.features.n:
            descriptors.append(_long_descriptors(data.features.descriptors).with_columns(
                pl.lit(run_id).alias("run_id"), pl.lit(kind).alias("kind"), pl.lit(source).alias("source")))
    return {
        "samples": samples,
        "input_errors": pl.DataFrame(errors, schema={k: pl.Utf8 for k in ("run_id", "input_id", "kind", "source", "category", "message")}),
        "segments": pl.DataFrame(segments),
        "findings": pl.DataFrame(findings, infer_schema_length=None),
        "descriptors": pl.concat(descriptors, how="diagonal") if descriptors else pl.DataFrame(),
        "outliers": pl.DataFrame(outliers),
    }


def _long_descriptors(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (input, descriptor): numbers in `value`, categories in `label`."""
    # as the comparison sees them (stats.compare.NUMERIC_DTYPES): a yes/no descriptor is a 0/1 number
    numeric = [c for c in frame.columns if c != "input_id" and (frame[c].dtype.is_numeric() or frame[c].dtype == pl.Boolean)]
    labels = [c for c in frame.columns if c != "input_id" and c not in numeric]
    parts = []
    if numeric:
        parts.append(
            frame.select("input_id", *[pl.col(c).cast(pl.Float64) for c in numeric])
            .unpivot(index="input_id", variable_name="name", value_name="value")
            .with_columns(pl.lit(None, pl.Utf8).alias("label"))
        )
    if labels:
        parts.append(
            frame.select("input_id", *[pl.col(c).cast(pl.Utf8) for c in labels])
            .unpivot(index="input_id", variable_name="name", value_name="label")
            .with_columns(pl.lit(None, pl.Float64).alias("value"))
        )
    return pl.concat(parts, how="diagonal")


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def run_job(config: JobConfig, day: str | None = None, progress: Progress | None = None) -> RunResult:
    progress = progress or QUIET
    window = day_window(config, day)
    for sink in config.alerts.sinks:
        build_sink(sink)  # a missing secret stops the run before any work, not after
    database = config.store.database
    with writer_lock(database):
        started = utcnow()
        clock = StageClock()
        report_dir = config.report.dir / config.name / f"{window.start:%Y-%m-%d}"
        # The run's embeddings are kept beside its report for analysts. They are written to a new
        # version and published only once the run has committed: a run that fails leaves the
        # previous run's embeddings as they were.
        embeddings = versions.new_version(report_dir / "embeddings")
        try:
            context = Context(config, progress, spool_dir=embeddings)
            baseline = open_baseline(config)
            context.calibration = baseline.calibration()
            baseline.check_embedder(context)
            analysis = analyse_window(config, window, context, clock)
            report_internal_errors(analysis)
            with clock.stage("compare") as counter:
                verdicts = _segment_verdicts(config, analysis, baseline, context)
                counter["items"] = len(verdicts)
            run_id = f"{config.name}-{window.start:%Y%m%d}-{uuid.uuid4().hex[:8]}"
            planned = plan_alerts(config, run_id, window.as_dict(), verdicts, report_link(config, window))
            embedder = context.embedder_identity({k for k, _ in analysis.segments}) if analysis.segments else None
            record = build_record(
                run_id=run_id, config=config, window=window, verdicts=verdicts, analysis=analysis,
                alerts=planned, baseline=baseline, embedder=embedder, evidence=_evidence(analysis, baseline, verdicts),
            )
            with clock.stage("store") as counter:
                tables = _tables(run_id, analysis, verdicts, analysis.sample.rows)
                tables["log_rejects"] = analysis.sample.rejects.with_columns(pl.lit(run_id).alias("run_id"))
                run_row = {
                    "run_id": run_id,
                    "job": config.name,
                    "window_start": window.start,
                    "window_end": window.end,
                    "status": "completed",
                    "drifted": any(v.drifted for v in verdicts.values()),
                    "severity": max_severity(v.severity for v in verdicts.values()),
                    "baseline": baseline.name,
                    "embedder": embedder,
                    "code_version": code_version(),
                    "started_at": started,
                    "finished_at": utcnow(),
                    "n_sampled": analysis.sample.rows.height,
                    "n_errors": sum(d.n_input_errors for d in analysis.segments.values()),
                }
                clean = clean_segments(config, verdicts)
                # Stage timings are written with the run; the later stages' figures are added after.
                tables["stage_timings"] = clock.frame(run_id)
                with store.session(database) as con:  # closed at once: readers wait only for the commit
                    write_run(con, run_row, record, tables,
                              lambda c: apply_alerts(c, config, run_id, window.start, planned, clean, utcnow()))
                counter["items"] = sum(f.height for f in tables.values())
        except BaseException:
            versions.discard(embeddings)
            raise
        versions.publish(embeddings, report_dir / "embeddings")
        delivery: dict[str, int] = {}
        try:
            with clock.stage("deliver") as counter:
                delivery = deliver_pending(database, config)
                counter["items"] = delivery["delivered"]
        finally:
            # Whatever delivery did, the run has committed: its reports are written, from the
            # record as the store holds it.
            with store.session(database) as con:
                store.add_stage_timings(con, run_id, clock.frame(run_id))
                stored = store.load_run(con, config.name, run_id)
            with clock.stage("report"):
                summary = stored.as_dict()
                paths = render.write_reports(summary, report_dir, report_pictures(summary, config))
            if config.export.evidently_workspace is not None:
                with clock.stage("export") as counter:
                    counter["items"] = _to_evidently(config, run_id)
            with store.session(database) as con:
                store.add_stage_timings(con, run_id, clock.frame(run_id))
                stored = store.load_run(con, config.name, run_id)  # with the report stage's own timing
    return RunResult(run_id, stored.as_dict(), paths, delivery)
