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

An enum must recur: when the baseline spans several days, a value set is an enum only if at least
90% of its documents hold a value seen on two days or more, so a field that holds the day (or the
week's build) is not an enum. Versions (1.2.3, v2.0.1-rc1) at an enum path: a new version in the
same pattern is news (info); a value in another pattern is breaking.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
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
VERSION = re.compile(r"^v?\d+(\.\d+){1,3}([-+][0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class TimeField:
    kind: str  # date | epoch | counter
    unit: str = "s"


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an ISO 8601 date or date-time (UTC when no zone is given)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def version_pattern(value: str) -> str | None:
    """1.2.3 and 1.10.0 share the pattern 9.9.9; v2.0-rc1 is v9.9-rc9. None if not a version."""
    return re.sub(r"\d+", "9", value) if VERSION.match(value) else None


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
