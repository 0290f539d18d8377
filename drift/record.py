"""The record of a run: what `drift run --json`, `drift report` and the notebooks read.

The verdict produces one RunRecord; store.write_run writes it once, in the run's transaction, as
`runs.summary`; store.load_run reads it back, with the stages and the delivery of its messages from
their own tables (they finish after the commit). Reports are rendered from the loaded record, so
what a report shows is what the store holds. Validating on load keeps readers honest about the
shape: a record this code cannot read fails with its field's name, not deep in a template. Fields
it does not know (a record written by a newer drift) are ignored, so an older reader still works.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

SHOWN_STATUSES = ("drift", "small_effect", "not_enough_data")


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Window(_Record):
    start: str
    end: str


class BaselineRef(_Record):
    name: str
    window: Window
    dir: str | None = None


class Finding(_Record):
    check: str
    target: str
    method: str
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_size: float | None = None
    effect_threshold: float | None = None
    n_ref: int
    n_cur: int
    status: str
    severity: str
    detail: dict[str, Any] = {}


class Segment(_Record):
    kind: str
    source: str
    status: str
    n_population: int = 0
    n_sampled: int = 0
    n_errors: int = 0
    errors: dict[str, int] = {}
    n_internal: int = 0
    n_checks: int = 0
    drifted: bool = False
    severity: str = "none"
    # what changed, in words (drift.report.headline): the first is the segment's headline
    changes: list[str] = []
    findings: list[Finding] = []
    # what the report pictures (drift.report.evidence), for drifted segments
    evidence: dict[str, Any] = {}

    @property
    def headline(self) -> str | None:
        return self.changes[0] if self.changes else None


class Alert(_Record):
    severity: str
    dedup_key: str
    title: str


class InternalError(_Record):
    kind: str
    source: str
    input_id: str
    message: str
    traceback: str | None = None


class LogReject(_Record):
    reason: str
    n_rows: int
    examples: str | None = None


class Stage(_Record):
    stage: str
    seconds: float
    items: int
    cpu_seconds: float
    peak_rss_mb: float


class Night(_Record):
    window_start: str
    status: str
    drifted: bool
    severity: str


class RunRecord(_Record):
    run_id: str
    job: str
    window: Window
    status: str = "completed"
    baseline: BaselineRef
    encoder: dict[str, Any] | None = None
    log_rejects: list[LogReject] = []
    error_control: dict[str, Any] | None = None
    segments: list[Segment] = []
    alerts: list[Alert] = []
    internal_errors: list[InternalError] = []
    # What the run's transaction did to alerts: dedup_key -> opened, escalated, updated, resolved.
    alert_changes: dict[str, str] = {}
    # Filled by store.load_run from their own tables, never stored in runs.summary.
    stages: list[Stage] = []
    delivery: dict[str, int] = {}
    # each segment's verdicts over the nights up to this one ("kind/source" -> oldest first)
    history: dict[str, list[Night]] = {}

    def stored(self) -> str:
        """The JSON written to runs.summary: the record without what finishes after the commit."""
        return self.model_dump_json(exclude={"stages", "delivery", "history"})

    def as_dict(self) -> dict[str, Any]:
        """The plain shape reports and `--json` print (documented in README and docs/schema.md)."""
        return self.model_dump(mode="json")


def build(*, run_id, config, window, verdicts, analysis, alerts, baseline, embedder, evidence=None) -> RunRecord:
    """The run's record, from its verdicts. A segment's findings in it are those that matter to a
    reader (SHOWN_STATUSES); every check, the quiet ones too, is in the `findings` table.
    `evidence`: (kind, source) -> what the report pictures (drift.report.evidence)."""
    from .report.headline import ranked
    from .stats.verdict import error_control

    segments = []
    for (kind, source), verdict in sorted(verdicts.items()):
        data = analysis.segments.get((kind, source))
        findings = [f.as_dict() for f in verdict.findings if f.status in SHOWN_STATUSES]
        findings.sort(key=lambda f: (f["status"] != "drift", -(f["effect_size"] or 0)))
        segments.append(
            {
                "kind": kind,
                "source": source,
                "status": verdict.status,
                "n_population": data.n_population if data else 0,
                "n_sampled": data.n_sampled if data else 0,
                "n_errors": data.n_input_errors if data else 0,
                "errors": data.error_counts() if data else {},
                "n_internal": len(data.internal_errors) if data else 0,
                "n_checks": len(verdict.findings),
                "drifted": verdict.drifted,
                "severity": verdict.severity,
                "changes": ranked(kind, source, findings),
                "findings": findings,
                "evidence": (evidence or {}).get((kind, source), {}),
            }
        )
    record = {
        "run_id": run_id,
        "job": config.name,
        "window": window.as_dict(),
        "status": "completed",
        "baseline": {"name": baseline.name, "window": baseline.manifest["window"], "dir": str(baseline.path)},
        "encoder": embedder,
        "log_rejects": analysis.sample.rejects.to_dicts(),
        # the false-page rate per night this run's policy implies for its width
        # (the segments compared with a baseline, as the pipeline gives decide())
        "error_control": error_control(config.policy, sum(v.status not in ("no_baseline", "absent") for v in verdicts.values())),
        "segments": segments,
        "alerts": [{"severity": a.severity, "dedup_key": a.dedup_key, "title": a.title} for a in alerts],
        # drift's own failures on some inputs: bugs to report, left out of every error rate
        "internal_errors": [
            {"kind": d.kind, "source": d.source, "input_id": e.input_id, "message": e.message, "traceback": e.traceback}
            for d in analysis.segments.values()
            for e in d.internal_errors
        ],
    }
    # Through JSON once: numbers from numpy and dates in findings' details become plain values.
    return RunRecord.model_validate(json.loads(json.dumps(record, default=str)))
