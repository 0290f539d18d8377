"""Time in payloads: values that change every night by design, compared by what they mean.

A daily API's `date` holds today's date and its `timestamp` today's epoch second; an order counter
grows; a version is bumped now and then. Compared as enums or as numbers, each of them "drifts"
every night. Here a path of the baseline is classified once, from the baseline's own documents and
the time each was received (the FeatureSet's `received` table):

    date      strings in date or date-time format whose times track receipt
    epoch     numbers that are seconds, milliseconds, microseconds or nanoseconds since 1970 and
              track receipt (the unit is the one that puts them within a factor 2 of receipt)
    counter   other numbers that grow with receipt (sequence numbers, monotonic ids)

"Tracks receipt" means a Spearman correlation of at least 0.5 between a document's value and its
receipt time when the baseline spans two days or more; with one day there is nothing to correlate,
and a time within two days of receipt is taken as tracking it.

Dates and epochs are compared by their lag, receipt minus value, per document (its median at the
path): tomorrow's date has today's lag, a date that stops moving or seconds that become
milliseconds do not. Counters and times never feed enum or number-level checks.

    label     strings that name the period of receipt: a week (2026-W42, 2026W42), a month
              (2026-10, 202610, 10/2026, Oct 2026, October-2026), a quarter (2026-Q4, Q4 2026,
              2026Q4), a half (2026-H2), a year (FY2026), a day (20261020, 20.10.2026,
              10/20/2026), alone or inside a longer value (report-2026-W42), when the
              baseline's documents were received in or next to the period their label names

Labels are compared by whether they are current: the share of documents whose label names a
period more than one period away from receipt (a week label stuck at last month's week, a month
that stopped turning) against the baseline's. Their values never feed the enum checks: next
week's label is not a new enum value.

An enum must recur: when the baseline spans several days, a value set is an enum only if at least
90% of its documents hold a value seen on two days or more, so a field that holds the day (or the
week's build) is not an enum. New values at an enum path are judged by their digit skeleton
(drift.verdict.structure.skeleton).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import polars as pl
from scipy import stats

from .tests import TestResult

UNITS = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
MIN_DOCS = 20  # fewer documents with a time at a path: not enough to classify it
TRACKING = 0.5  # Spearman correlation with receipt above which a time tracks it
COUNTER = 0.9  # ... and above which a growing number is a counter
SAME_DAY_S = 2 * 86400.0  # a one-day baseline: a time this close to receipt tracks it
RECURRING = 0.9
LAG_FLOOR_S = 3600.0  # a lag's spread is measured in at least an hour: jitter of seconds is not news
LABEL_SHARE = 0.9  # of a path's documents whose value must be a current period label


@dataclass(frozen=True)
class TimeField:
    kind: str  # date | epoch | counter | label
    unit: str = "s"


DAY = 86400.0
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
_MONTH_NAME = r"(?P<mname>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_Y = r"(?P<y>(?:19|20)\d{2})"
# Tried in order; each must stand apart from other digits (2026-W42-3 is a week, not a month).
_LABELS = [
    ("week", re.compile(rf"(?<!\d){_Y}-?W(?P<w>0[1-9]|[1-4]\d|5[0-3])(?:-?[1-7])?(?!\d)", re.I)),
    (
        "quarter",
        re.compile(
            rf"(?<!\d){_Y}[-_ /]?Q(?P<q>[1-4])(?!\d)|(?<![A-Za-z])Q(?P<q2>[1-4])[-_ /]?(?P<y2>(?:19|20)\d{{2}})(?!\d)", re.I
        ),
    ),
    (
        "half",
        re.compile(
            rf"(?<!\d){_Y}[-_ /]?H(?P<h>[12])(?!\d)|(?<![A-Za-z])H(?P<h2>[12])[-_ /]?(?P<y2>(?:19|20)\d{{2}})(?!\d)", re.I
        ),
    ),
    ("day", re.compile(rf"(?<!\d){_Y}-?(?P<m>0[1-9]|1[0-2])-?(?P<d>0[1-9]|[12]\d|3[01])(?!\d)")),
    ("day_dmy", re.compile(r"(?<!\d)(?P<d>0?[1-9]|[12]\d|3[01])\.(?P<m>0?[1-9]|1[0-2])\.(?P<y>(?:19|20)\d{2})(?!\d)")),
    ("day_mdy", re.compile(r"(?<!\d)(?P<m>0?[1-9]|1[0-2])/(?P<d>0?[1-9]|[12]\d|3[01])/(?P<y>(?:19|20)\d{2})(?!\d)")),
    (
        "month",
        re.compile(
            rf"(?<!\d){_Y}[-_/.]?(?P<m>0[1-9]|1[0-2])(?![\d-])|(?<![\d/])(?P<m2>0?[1-9]|1[0-2])/(?P<y2>(?:19|20)\d{{2}})(?!\d)"
        ),
    ),
    ("month_name", re.compile(rf"(?<![A-Za-z]){_MONTH_NAME}[-_ /.,]*{_Y}(?!\d)", re.I)),
    ("month_name", re.compile(rf"(?<!\d){_Y}[-_ /.]*{_MONTH_NAME}(?![A-Za-z])", re.I)),
    ("year", re.compile(r"(?<![A-Za-z])FY[-_ ]?(?P<y>(?:19|20)\d{2})(?!\d)|^(?P<y2>(?:19|20)\d{2})$", re.I)),
]


def _utc(year: int, month: int = 1, day: int = 1) -> float | None:
    try:
        return datetime(year, month, day, tzinfo=UTC).timestamp()
    except ValueError:
        return None


def label_period(text: str) -> tuple[float, float] | None:
    """(start in epoch seconds, length in seconds) of the period a label names, or None."""
    for kind, pattern in _LABELS:
        found = pattern.search(text)
        if found is None:
            continue
        g = {k: v for k, v in found.groupdict().items() if v is not None}
        year = int(g.get("y") or g["y2"])
        if kind == "week":
            try:
                start = datetime.fromisocalendar(year, int(g["w"]), 1).replace(tzinfo=UTC).timestamp()
            except ValueError:
                continue
            return start, 7 * DAY
        if kind in ("quarter", "half"):
            number = int(g.get("q") or g.get("q2") or g.get("h") or g["h2"])
            months = 3 if kind == "quarter" else 6
            start = _utc(year, 1 + months * (number - 1))
            return (start, months * 30.44 * DAY) if start is not None else None
        if kind.startswith("day"):
            start = _utc(year, int(g["m"]), int(g["d"]))
            if start is not None:
                return start, DAY
            continue
        if kind in ("month", "month_name"):
            month = int(g.get("m") or g.get("m2") or 0) or _MONTHS[g["mname"][:3].lower()]
            start = _utc(year, month)
            return (start, 30.44 * DAY) if start is not None else None
        return _utc(year), 365.25 * DAY
    return None


def stale(period: tuple[float, float] | None, received: float) -> bool:
    """Whether a label's period lies more than one period (and two days) away from receipt."""
    if period is None:
        return True
    start, length = period
    slack = max(length, SAME_DAY_S)
    return not (start - slack <= received <= start + length + slack)


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date or date-time (UTC when no zone is given)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def _spans_days(received: pl.DataFrame) -> bool:
    days = (received["received_at"] // 86400).n_unique()
    return days >= 2


class Times:
    """The time fields of one window's documents, and their lags to receipt."""

    def __init__(self, features):
        self.tables = features.tables
        self.received = features.received()

    def string_times(self, path: str) -> pl.DataFrame:
        """input_id -> the median time (epoch seconds) of the date strings a document holds at path."""
        values = self.tables["values"].filter((pl.col("path") == path) & pl.col("value").is_not_null())
        distinct = values["value"].unique().to_list()
        parsed = {v: parse_time(v) for v in distinct}
        mapping = pl.DataFrame(
            {"value": list(parsed), "t": [parsed[v] for v in parsed]}, schema={"value": pl.Utf8, "t": pl.Float64}
        )
        return values.join(mapping, on="value").drop_nulls("t").group_by("input_id").agg(pl.col("t").median())

    def staleness(self, path: str, field: TimeField | None = None) -> pl.DataFrame:
        """input_id -> stale: whether any label a document holds at the path is not current (stale)."""
        if self.received is None:
            return pl.DataFrame(schema={"input_id": pl.Utf8, "stale": pl.Boolean})
        values = self.tables["values"].filter((pl.col("path") == path) & pl.col("value").is_not_null())
        periods = {v: label_period(v) for v in values["value"].unique().to_list()}
        frame = self.with_receipt(values.select("input_id", "value"))
        flags = [stale(periods[v], t) for v, t in zip(frame["value"].to_list(), frame["received_at"].to_list())]
        return frame.with_columns(pl.Series("stale", flags, dtype=pl.Boolean)).group_by("input_id").agg(pl.col("stale").any())

    def numbers(self, path: str) -> pl.DataFrame:
        return self.tables["numbers"].filter(pl.col("path") == path).select("input_id", pl.col("value").alias("t"))

    def with_receipt(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.join(self.received, on="input_id")

    def lags(self, path: str, field: TimeField) -> pl.DataFrame:
        """input_id -> lag: receipt minus the value, in seconds, one per document holding the path."""
        if self.received is None:
            return pl.DataFrame(schema={"input_id": pl.Utf8, "lag": pl.Float64})
        frame = self.with_receipt(self.string_times(path) if field.kind == "date" else self.numbers(path))
        return frame.select("input_id", (pl.col("received_at") - pl.col("t") / UNITS[field.unit]).alias("lag"))


class BaselineTimes(Times):
    """The baseline's classification of its paths (see the module's docstring)."""

    @cached_property
    def several_days(self) -> bool:
        return self.received is not None and _spans_days(self.received)

    def field(self, path: str, row: dict) -> TimeField | None:
        if self.received is None:
            return None
        docs = row["docs"]
        if row["t_string"] >= 0.9 * docs and row["f_date"] + row["f_date-time"] >= 0.9 * row["t_string"]:
            frame = self.with_receipt(self.string_times(path))
            if frame.height >= MIN_DOCS and self._tracks(frame["t"].to_numpy(), frame["received_at"].to_numpy()):
                return TimeField("date")
            return None
        if row["t_string"] >= LABEL_SHARE * docs and not row["values_overflow"] and self._labels(path, docs):
            return TimeField("label")
        if row["t_int"] + row["t_float"] >= 0.9 * docs and row["numbers_n"] >= MIN_DOCS:
            frame = self.with_receipt(self.numbers(path))
            if frame.height < MIN_DOCS:
                return None
            values, received = frame["t"].to_numpy(), frame["received_at"].to_numpy()
            ratio = float(np.median(values / received))
            for unit, scale in UNITS.items():
                if 0.5 <= ratio / scale <= 2.0 and self._tracks(values / scale, received):
                    return TimeField("epoch", unit)
            if self.several_days and _rank_correlation(values, received) >= COUNTER:
                return TimeField("counter")
        return None

    def _labels(self, path: str, docs: int) -> bool:
        """Whether nearly all of the path's documents hold a label of their period of receipt
        (ISO dates and date-times, a moment each, were left to the lag test before)."""
        frame = self.staleness(path)
        if frame.height < min(MIN_DOCS, docs) or frame.height < LABEL_SHARE * docs:
            return False
        return float((~frame["stale"]).mean()) >= LABEL_SHARE

    def _tracks(self, times: np.ndarray, received: np.ndarray) -> bool:
        if self.several_days:
            return _rank_correlation(times, received) >= TRACKING
        return abs(float(np.median(received - times))) <= SAME_DAY_S

    def recurring_share(self, path: str) -> float | None:
        """Share of the path's (document, value) pairs whose value was seen on two days or more;
        None when the baseline spans one day (recurrence cannot be judged)."""
        if not self.several_days:
            return None
        values = self.tables["values"].filter((pl.col("path") == path) & pl.col("value").is_not_null())
        dated = self.with_receipt(values).with_columns((pl.col("received_at") // 86400).alias("day"))
        if dated.height == 0:
            return None
        days = dated.group_by("value").agg(pl.col("day").n_unique().alias("days"))
        return float(dated.join(days, on="value").select((pl.col("days") >= 2).mean()).item())


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    rho = stats.spearmanr(a, b).statistic
    return float(rho) if math.isfinite(rho) else 0.0


def _hours(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if abs(seconds) >= 2 * 86400:
        return f"{seconds / 86400:.1f} d"
    if abs(seconds) >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:.0f} s"


def lag_test(ref_lags: pl.DataFrame, cur_lags: pl.DataFrame, examples: int = 5) -> TestResult:
    """KS on the lags; effect: Wasserstein distance in the baseline's sd, and at least an hour.
    Its examples are the current documents whose lag lies furthest outside the baseline's."""
    x, y = ref_lags["lag"].to_numpy(), cur_lags["lag"].to_numpy()
    finite = np.isfinite(y)
    x, y, ids = x[np.isfinite(x)], y[finite], cur_lags["input_id"].filter(pl.Series(finite)).to_list()
    if len(x) == 0 or len(y) == 0:
        return TestResult("lag_ks", math.nan, math.nan, math.nan, len(x), len(y))
    low, high = np.quantile(x, (0.01, 0.99))
    outside = np.maximum(low - y, y - high)
    odd = [ids[i] for i in np.argsort(-outside, kind="stable")[:examples] if outside[i] > 0]
    ks = stats.ks_2samp(x, y)
    scale = max(float(np.std(x)), LAG_FLOOR_S)
    effect = float(stats.wasserstein_distance(x, y)) / scale
    quantiles = lambda v: " / ".join(_hours(q) for q in np.quantile(v, (0.05, 0.5, 0.95)))  # noqa: E731
    return TestResult(
        "lag_ks",
        float(ks.statistic),
        float(ks.pvalue),
        effect,
        len(x),
        len(y),
        {
            "effect": "wasserstein/max(sd, 1h)",
            "old": f"lag to receipt p5/p50/p95 {quantiles(x)}",
            "new": f"lag to receipt p5/p50/p95 {quantiles(y)}",
        },
        detail={"examples": odd},
    )


def stale_test(ref: pl.DataFrame, cur: pl.DataFrame) -> TestResult:
    """Has the share of documents whose period label is not current risen? One-sided; the exact
    never-seen test when no baseline document held a stale label."""
    from .tests import never_seen_test, proportion_test

    n_ref, n_cur = ref.height, cur.height
    k_ref, k_cur = int(ref["stale"].sum()), int(cur["stale"].sum())
    if n_ref == 0 or n_cur == 0:
        return TestResult("fisher", math.nan, math.nan, math.nan, n_ref, n_cur)
    result = (
        never_seen_test(k_cur, n_ref, n_cur) if k_ref == 0 else proportion_test(k_ref, n_ref, k_cur, n_cur, alternative="greater")
    )
    stale_ids = cur.filter(pl.col("stale"))["input_id"].sort().head(5).to_list()
    return replace(
        result,
        counts=(k_ref, k_cur),
        detail={
            "old": f"not current in {100 * k_ref / n_ref:.0f}%",
            "new": f"not current in {100 * k_cur / n_cur:.0f}%",
            "examples": stale_ids,
        },
    )
