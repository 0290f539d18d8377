"""One run of a job over one window, stage by stage:

hold the writer lock -> load and verify the baseline -> analyse the window (features.window)
-> compare each segment with its baseline -> one verdict per segment (verdict.policy)
-> plan alerts -> the run's record -> one DuckDB transaction -> deliver the outbox -> write the reports
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import store, versions
from .alerts.deliver import deliver_pending
from .alerts.metrics import write_metrics
from .alerts.outbox import apply_alerts
from .alerts.policy import clean_segments, plan_alerts
from .alerts.sinks import build_sink
from .baselines import Baseline, open_baseline
from .clock import StageClock
from .config import JobConfig
from .features.featurize import Context
from .features.kinds import KINDS
from .features.window import WindowAnalysis, analyse_window, code_version, report_internal_errors
from .progress import QUIET, Progress
from .record import Alert, BaselineRef, Evidence, InternalError, RunRecord, Segment, SegmentStatus, Verdict, plain
from .record import Window as RecordWindow
from .report import render
from .report.evidence import collect
from .report.pictures import report_pictures
from .sources.log import Window
from .store import utcnow, write_run, writer_lock
from .store.rows import run_tables, stage_rows
from .verdict.compare import compare_segment, error_rate_checks
from .verdict.headline import ranked
from .verdict.policy import decide, error_control

log = logging.getLogger(__name__)


def day_window(config: JobConfig, day: str | None) -> Window:
    """The window starting at 00:00 UTC of `day` (default: yesterday), as long as [job] window."""
    if day is None:
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    else:
        start = parse_day(day)
    return Window(start, start + config.job.window_length)


def parse_day(text: str) -> datetime:
    from .errors import DriftError

    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise DriftError(f"expected a day as YYYY-MM-DD, got {text!r}") from None


@dataclass
class RunResult:
    run_id: str
    record: RunRecord  # as the store holds it, stages and delivery included
    report_paths: dict[str, Path]
    delivery: dict[str, int]

    @property
    def summary(self) -> dict[str, Any]:
        """The record as `drift run --json` prints it."""
        return self.record.as_dict()


def _segment_verdicts(
    config: JobConfig, analysis: WindowAnalysis, baseline: Baseline, context: Context
) -> dict[tuple[str, str], Verdict]:
    verdicts: dict[tuple[str, str], Verdict] = {}
    checks: dict[tuple[str, str], list] = {}
    for segment, data in sorted(analysis.segments.items()):
        if segment not in baseline.segments:
            verdicts[segment] = Verdict(status=SegmentStatus.NO_BASELINE)
            continue
        counts = baseline.segments[segment]
        ref = baseline.features(*segment)
        results = compare_segment(ref, data.features, KINDS[data.kind], context)
        results += error_rate_checks(counts.errors, counts.n_sampled, data.error_counts(), data.n_judged)
        checks[segment] = results
    # The night's false-page budget is shared by every segment the run tests.
    for segment, results in checks.items():
        verdicts[segment] = decide(results, config.policy, segments=len(checks))
    for segment in baseline.segments:
        if segment not in verdicts:
            verdicts[segment] = Verdict(status=SegmentStatus.ABSENT)
    return verdicts


def _evidence(analysis: WindowAnalysis, baseline: Baseline, segment: tuple[str, str], verdict: Verdict) -> Evidence | None:
    """What the report pictures of a segment that drifted (drift.report.evidence)."""
    data = analysis.segments.get(segment)
    if not verdict.drifted or data is None or segment not in baseline.segments:
        return None
    drifted = [f for f in verdict.findings if f.drifted]
    return collect(*segment, baseline.features(*segment), data.features, drifted, analysis.sample.rows)


def build_record(
    *,
    run_id: str,
    config: JobConfig,
    window: Window,
    verdicts: dict[tuple[str, str], Verdict],
    analysis: WindowAnalysis,
    alerts: list[Alert],
    baseline: Baseline,
    embedder: dict | None,
) -> RunRecord:
    """The run's record, from its verdicts. A segment's findings in it are those that matter to a
    reader (FindingStatus.shown); every check, the quiet ones too, is in the `findings` table."""
    segments = []
    for (kind, source), verdict in sorted(verdicts.items()):
        data = analysis.segments.get((kind, source))
        findings = [f for f in verdict.findings if f.status.shown]
        findings.sort(key=lambda f: (not f.drifted, -(f.effect_size or 0)))
        segments.append(
            Segment(
                kind=kind,
                source=source,
                status=verdict.status,
                n_population=data.n_population if data else 0,
                n_sampled=data.n_sampled if data else 0,
                n_errors=data.n_input_errors if data else 0,
                errors=data.error_counts() if data else {},
                n_internal=len(data.internal_errors) if data else 0,
                n_checks=len(verdict.findings),
                drifted=verdict.drifted,
                severity=verdict.severity,
                changes=ranked(kind, source, findings),
                findings=findings,
                evidence=_evidence(analysis, baseline, (kind, source), verdict),
                detectable=verdict.detectable,
            )
        )
    # the segments compared with a baseline (not_enough_data ones too), as decide() was told
    compared = sum(v.status not in (SegmentStatus.NO_BASELINE, SegmentStatus.ABSENT) for v in verdicts.values())
    return RunRecord(
        run_id=run_id,
        job=config.name,
        window=RecordWindow(**window.as_dict()),
        baseline=BaselineRef(name=baseline.name, window=baseline.manifest["window"], dir=str(baseline.path)),
        encoder=plain(embedder),
        log_rejects=plain(analysis.sample.rejects.to_dicts()),
        # the false-page rate per night this run's policy implies for its width
        error_control=error_control(config.policy, compared),
        segments=segments,
        alerts=alerts,
        # drift's own failures on some inputs: bugs to report, left out of every error rate
        internal_errors=[
            InternalError(kind=d.kind, source=d.source, input_id=e.input_id, message=e.message, traceback=e.traceback)
            for d in analysis.segments.values()
            for e in d.internal_errors
        ],
    )


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
                run_id=run_id,
                config=config,
                window=window,
                verdicts=verdicts,
                analysis=analysis,
                alerts=planned,
                baseline=baseline,
                embedder=embedder,
            )
            with clock.stage("store") as counter:
                tables = run_tables(run_id, analysis, verdicts, record)
                run_row = {
                    "run_id": run_id,
                    "job": config.name,
                    "window_start": window.start,
                    "window_end": window.end,
                    "status": record.status.value,
                    "drifted": record.drifted,
                    "severity": record.severity.value,
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
                tables["stage_timings"] = stage_rows(run_id, clock.stages)
                with store.session(database) as con:  # closed at once: readers wait only for the commit
                    write_run(
                        con,
                        run_row,
                        record,
                        tables,
                        lambda c: apply_alerts(c, config, run_id, window.start, planned, clean, utcnow()),
                    )
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
                store.add_stage_timings(con, run_id, stage_rows(run_id, clock.stages))
                stored = store.load_run(con, config.name, run_id)
            with clock.stage("report"):
                paths = render.write_reports(stored, report_dir, report_pictures(stored, config))
            if config.export.evidently_workspace is not None:
                with clock.stage("export") as counter:
                    counter["items"] = _to_evidently(config, run_id)
            with store.session(database) as con:
                store.add_stage_timings(con, run_id, stage_rows(run_id, clock.stages))
                stored = store.load_run(con, config.name, run_id)  # with the report stage's own timing
        if config.metrics.textfile is not None or config.metrics.pushgateway is not None:
            # the run has succeeded: its metrics say so, with every stage's time
            with clock.stage("metrics") as counter:
                with store.session(database) as con:
                    open_alerts = store.job_health(con, config.name)["open_alerts"]
                counter["items"] = write_metrics(config, stored, started, utcnow(), open_alerts)
            with store.session(database) as con:
                store.add_stage_timings(con, run_id, stage_rows(run_id, clock.stages))
                stored = store.load_run(con, config.name, run_id)
    return RunResult(run_id, stored, paths, delivery)
