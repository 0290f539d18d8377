"""The typed shapes of a run's results, declared once: what the verdict produces, the store writes,
the alerts send and every report renders.

The verdict (drift.verdict) makes `Finding`s and one `Verdict` per segment; the pipeline puts them
with the segment's counts into a `RunRecord`; store.write_run writes the record once, in the run's
transaction, as `runs.summary`, and the rows of `findings`, `segments` and `stage_timings` from the
same models (drift.store.rows checks the tables against them); store.load_run reads it back, with
the stages and the delivery of its messages from their own tables (they finish after the commit).
Reports are rendered from the loaded record, so what a report shows is what the store holds.

Validating on load keeps readers honest about the shape: a record this code cannot read fails with
its field's name, not deep in a template. Fields it does not know (a record written by a newer
drift) are ignored, so an older reader still works. Fields marked `exclude=True` live only while
the run is in memory (what the words and the outliers table are made from); they are not part of
`runs.summary` or `--json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator


def plain(value: Any) -> Any:
    """Through JSON once: numbers from numpy and dates become the plain values a record keeps, as
    the store will read them back."""
    return json.loads(json.dumps(value, default=str))


class Severity(StrEnum):
    NONE = "none"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def reaches(self, bar: str) -> bool:
        """At least as severe as `bar` (a sink's min_severity, the policy's page_at)."""
        return self.rank >= Severity(bar).rank

    @classmethod
    def highest(cls, severities: Iterable[str]) -> Severity:
        return max((cls(s) for s in severities), key=lambda s: s.rank, default=cls.NONE)


_SEVERITY_RANK = {Severity.NONE: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


class InputKind(StrEnum):
    """What an input is; each has its implementation in drift.features.kinds."""

    IMAGE = "image"
    DOCUMENT = "document"
    PAYLOAD = "payload"

    @property
    def noun(self) -> str:
        """What its items are called in a sentence."""
        return f"{self.value}s"

    @property
    def visual(self) -> bool:
        """Its items can be shown as pictures (a report's thumbnails)."""
        return self is not InputKind.PAYLOAD


class Family(StrEnum):
    """The check families (their defaults: drift.verdict.families)."""

    ERROR_RATE = "error_rate"
    SCHEMA_BREAKING = "schema_breaking"
    SCHEMA_ADDITIVE = "schema_additive"
    SCHEMA_SHIFT = "schema_shift"
    EMBEDDING = "embedding"
    DESCRIPTOR = "descriptor"


class FindingStatus(StrEnum):
    DRIFT = "drift"
    SMALL_EFFECT = "small_effect"
    NO_DRIFT = "no_drift"
    NOT_ENOUGH_DATA = "not_enough_data"
    UNTESTABLE = "untestable"

    @property
    def shown(self) -> bool:
        """Kept in the record for readers; every check, the quiet ones too, is in the `findings` table."""
        return self in (FindingStatus.DRIFT, FindingStatus.SMALL_EFFECT, FindingStatus.NOT_ENOUGH_DATA)


class SegmentStatus(StrEnum):
    OK = "ok"  # compared with its baseline
    NOT_ENOUGH_DATA = "not_enough_data"
    NO_BASELINE = "no_baseline"  # in the window, not in the baseline
    ABSENT = "absent"  # in the baseline, not in the window

    @property
    def tested(self) -> bool:
        return self is SegmentStatus.OK

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


class RunStatus(StrEnum):
    COMPLETED = "completed"


class AlertState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class Action(StrEnum):
    """What an outbox message asks of a sink (PagerDuty's event_action spells them so)."""

    TRIGGER = "trigger"
    RESOLVE = "resolve"


class AlertChange(StrEnum):
    """What a run's transaction did to a segment's alert (RunRecord.alert_changes)."""

    OPENED = "opened"
    ESCALATED = "escalated"
    UPDATED = "updated"
    RESOLVED = "resolved"


class Aspect(StrEnum):
    """What property of its subject a check looks at. A payload check's target is "<path> <aspect>";
    a descriptor's or an embedding's is its name alone (aspect NONE)."""

    NONE = ""
    INPUT_ERRORS = "input errors"
    PRESENCE = "presence"
    NULLS = "nulls"
    TYPE = "type"
    FORMAT = "format"
    KEY_PATTERN = "key pattern"
    LAG = "lag to receipt"
    NEW_VALUE = "new value"
    RELABEL = "relabel"
    STALE = "stale label"
    EMPTINESS = "emptiness"
    MAGNITUDE = "magnitude"
    LOW_TAIL = "low tail"
    HIGH_TAIL = "high tail"
    VALUES = "values"
    NUMBERS = "numbers"
    STRING_LENGTHS = "string lengths"
    ARRAY_LENGTHS = "array lengths"
    SHAPE = "shape"


def target_of(subject: str, aspect: Aspect) -> str:
    """The one way a finding's target is spelled from what it looked at."""
    if aspect is Aspect.INPUT_ERRORS:
        return f"input errors: {subject}"
    return f"{subject} {aspect.value}" if aspect is not Aspect.NONE else subject


class Principle(StrEnum):
    """The principle a check applies (docs/statistics.md "Principles"): what a reader audits."""

    NEVER_SEEN = "never_seen"  # an error category no baseline item showed: the exact test
    ERROR_RATE = "error_rate"
    NOVELTY = "novelty"  # items unlike any baseline item (split conformal)
    TAIL = "tail"  # items beyond one descriptor's baseline extreme (conformal per item)
    PRESENCE = "presence"
    NULLS = "nulls"
    TYPE = "type"
    FORMAT = "format"
    KEY_PATTERN = "key_pattern"
    TIME = "time"  # a date's lag to receipt, a period label that stopped being current
    NEW_VALUE = "new_value"  # a value of a new skeleton at an enum path
    RELABEL = "relabel"  # a new value of a known skeleton: a release, a model's date stamp
    EMPTINESS = "emptiness"
    MAGNITUDE = "magnitude"
    SHAPE = "shape"
    DISTRIBUTION = "distribution"  # shares, numbers, lengths, descriptors, embeddings moved


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Detectable(_Record):
    """A segment's minimum detectable shift (drift.verdict.policy.detectable): the share of
    tonight's items that must change for the check to page with probability 0.9 at this run's level."""

    never_seen: float | None = None  # items with a never-seen error, a missing field, a new type
    novel: float | None = None  # items unlike any in the baseline
    level: float
    n_ref: int
    n_cur: int


class Window(_Record):
    start: str
    end: str


class BaselineRef(_Record):
    name: str
    window: Window
    dir: str | None = None


class ErrorControl(_Record):
    """What the policy promises for a run of its width: the false-page rate per night it implies."""

    page_alpha: float
    segments: int
    per_segment: float
    info_fdr: float
    statement: str


class Finding(_Record):
    """One check's result and what the verdict made of it: the same shape for every method, from
    the test up to the `findings` row and the alert."""

    check: Family
    target: str
    method: str
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect_size: float | None = None
    effect_threshold: float | None = None
    n_ref: int
    n_cur: int
    status: FindingStatus
    severity: Severity
    detail: dict[str, Any] = {}
    principle: Principle = Principle.DISTRIBUTION
    # What the check looked at (a descriptor, an embedding, a JSON path, an error category) and
    # which property of it: the words (drift.verdict.headline) read these, never the target's text.
    subject: str = Field("", exclude=True)
    aspect: Aspect = Field(Aspect.NONE, exclude=True)
    # (baseline, tonight) counts of the event a rate test counts (inputs that failed, say)
    counts: tuple[int, int] | None = Field(None, exclude=True)
    # (input_id, score) of tonight's items least like the baseline, most unlike first (the `outliers` table)
    ranking: list[tuple[str, float]] = Field([], exclude=True)

    @property
    def drifted(self) -> bool:
        return self.status is FindingStatus.DRIFT

    @property
    def level(self) -> float | None:
        """What p_adjusted was held to: the family's share of the night's budget, or fdr."""
        return self.detail.get("level")


class Verdict(_Record):
    """One segment's verdict: every check's finding, the quiet ones too."""

    findings: list[Finding] = []
    drifted: bool = False
    severity: Severity = Severity.NONE
    status: SegmentStatus = SegmentStatus.OK
    detectable: Detectable | None = None


class Distribution(_Record):
    """A numeric descriptor in both windows, as shares on shared bins."""

    target: str
    edges: list[float]
    log: bool
    ref: list[float]
    cur: list[float]
    n_ref: int
    n_cur: int


class Bars(_Record):
    """A yes/no or categorical descriptor, or a payload mix, as paired shares by label."""

    target: str
    ref: dict[str, float]
    cur: dict[str, float]


class PicturedItem(_Record):
    """An item a report shows as a thumbnail, and where its file is."""

    input_id: str
    path: str | None = None


class PayloadExample(_Record):
    """One payload behind a finding, as [text, marked] lines, marked where the path is."""

    input_id: str
    target: str
    path: str
    lines: list[tuple[str, bool]]
    truncated: bool = False


class Evidence(_Record):
    """What the report pictures of a drifted segment (drift.report.evidence)."""

    distributions: list[Distribution] = []
    bars: list[Bars] = []
    unlike: list[PicturedItem] = []
    typical: list[PicturedItem] = []
    payload_example: PayloadExample | None = None


class Segment(_Record):
    kind: str
    source: str
    status: SegmentStatus
    n_population: int = 0
    n_sampled: int = 0
    n_errors: int = 0
    errors: dict[str, int] = {}
    n_internal: int = 0
    n_checks: int = 0
    drifted: bool = False
    severity: Severity = Severity.NONE
    # what changed, in words (drift.verdict.headline): the first is the segment's headline
    changes: list[str] = []
    findings: list[Finding] = []
    # what the report pictures, for drifted segments (written {} for the others)
    evidence: Evidence | None = None
    detectable: Detectable | None = None

    @property
    def detectable_share(self) -> float | None:
        """The share of tonight's items that a wave of broken ones must reach to page (0.9 power)."""
        return self.detectable.never_seen if self.detectable else None

    @property
    def headline(self) -> str | None:
        return self.changes[0] if self.changes else None

    @property
    def name(self) -> str:
        return f"{self.kind}/{self.source}"

    @property
    def n_items(self) -> int:
        """The sampled inputs that became features: every other one is an error (invariant 1)."""
        return self.n_sampled - self.n_errors - self.n_internal

    @field_validator("evidence", mode="before")
    @classmethod
    def _nothing_pictured(cls, value):
        return None if value == {} else value

    @field_serializer("evidence")
    def _as_written(self, value: Evidence | None, info):
        return {} if value is None else value.model_dump(mode=info.mode)


class Alert(_Record):
    """One incident of a segment's night: what pages, planned by drift.alerts.policy."""

    severity: Severity
    dedup_key: str
    title: str
    # the incident itself, while the run plans and queues it (drift.alerts.outbox)
    job: str = Field("", exclude=True)
    kind: str = Field("", exclude=True)
    source: str = Field("", exclude=True)
    families: list[Family] = Field([], exclude=True)
    changes: list[str] = Field([], exclude=True)  # the first MAX_CHANGES sentences, the headline first
    findings: list[Finding] = Field([], exclude=True)  # those that page, the most severe first
    run_id: str = Field("", exclude=True)
    window: dict[str, str] = Field({}, exclude=True)
    report: str = Field("", exclude=True)  # where the reader goes: the HTML report's link
    runbook: str | None = Field(None, exclude=True)

    def trigger(self, opened_at: str) -> dict[str, Any]:
        """The message that opens, escalates or refreshes the incident opened at `opened_at` (ISO),
        as the outbox keeps it and sinks read it."""
        return {
            "dedup_key": self.dedup_key,
            "action": Action.TRIGGER.value,
            "severity": self.severity.value,
            "title": self.title,
            "job": self.job,
            "kind": self.kind,
            "source": self.source,
            "run_id": self.run_id,
            "window": self.window,
            "families": [f.value for f in self.families],
            "changes": self.changes,
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "report": self.report,
            "runbook": self.runbook,
            "opened_at": opened_at,
        }


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
    """One stage of a run: its wall time, items, CPU time (workers included) and peak memory."""

    stage: str
    seconds: float
    items: int
    cpu_seconds: float
    peak_rss_mb: float
    # items whose features came from the feature cache (or from a byte-identical item of the
    # window), and items opened; None for a stage that does not featurize, or a run without a cache
    cache_hits: int | None = None
    cache_misses: int | None = None

    @property
    def hit_rate(self) -> float | None:
        if self.cache_hits is None or self.cache_misses is None or not self.cache_hits + self.cache_misses:
            return None
        return self.cache_hits / (self.cache_hits + self.cache_misses)


class Night(_Record):
    window_start: str
    status: SegmentStatus
    drifted: bool
    severity: Severity


class RunRecord(_Record):
    run_id: str
    job: str
    window: Window
    status: RunStatus = RunStatus.COMPLETED
    baseline: BaselineRef
    encoder: dict[str, Any] | None = None
    log_rejects: list[LogReject] = []
    error_control: ErrorControl | None = None
    segments: list[Segment] = []
    alerts: list[Alert] = []
    internal_errors: list[InternalError] = []
    # What the run's transaction did to alerts: dedup_key -> opened, escalated, updated, resolved.
    alert_changes: dict[str, AlertChange] = {}
    # Filled by store.load_run from their own tables, never stored in runs.summary.
    stages: list[Stage] = []
    delivery: dict[str, int] = {}
    # each segment's verdicts over the nights up to this one ("kind/source" -> oldest first)
    history: dict[str, list[Night]] = {}

    @property
    def day(self) -> str:
        return self.window.start[:10]

    @property
    def drifted(self) -> bool:
        return any(s.drifted for s in self.segments)

    @property
    def severity(self) -> Severity:
        return Severity.highest(s.severity for s in self.segments)

    def nights(self, segment: Segment) -> list[Night]:
        return self.history.get(segment.name, [])

    def stored(self) -> str:
        """The JSON written to runs.summary: the record without what finishes after the commit."""
        return self.model_dump_json(exclude={"stages", "delivery", "history"})

    def as_dict(self) -> dict[str, Any]:
        """The plain shape `--json` prints (documented in README and docs/schema.md)."""
        return self.model_dump(mode="json")
