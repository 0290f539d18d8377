"""Compare two windows' fingerprints, classifying each change the way a consumer meets it.

The consumer is the agent, written against old-style data:

    schema_breaking   a path vanished; a required path (present in >= 99% of its parent's
                      documents) became optional; the type or string-format mix changed; nulls
                      appear where there were none; a new value at an enum path; the key pattern
                      of a map changed
    schema_additive   a new path
    schema_shift      presence rates of optional paths, null rates, enum shares, numbers, string
                      and array lengths, and the rate of never-seen document shapes

Presence is always counted among documents that hold the path's parent, so an optional parent
never fakes drift in its children. Never-seen events (a type, string format, null, enum value or
map key class that no baseline document held at the path) get an exact test of k of n documents
today against 0 of m in the baseline (Fisher's, one-sided), never a chi-square on a table with
an empty cell; their effect is the current rate's distance above 3/m, what the baseline's own
size can rule out (the rule of three). New document shapes are compared with the baseline's
Good-Turing missing mass (its share of shapes seen once).

Time is part of the data (drift.verdict.temporal): dates and epoch times that track receipt
are compared by their lag to it, counters never by their level, an enum must recur across the
baseline's days, and a new version in a known pattern is news, not a break.

Every finding carries `old` and `new` as a person reads them ("int 100%" -> "int 69%, string 31%")
and up to five example input ids from the current window.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING

import polars as pl
from scipy import stats

from ..features.fingerprint import summary
from ..features.fingerprint.summary import FORMATS, KEY_CLASSES, TYPES
from ..features.fingerprint.walk import DOC_VALUE_CAP
from ..record import Aspect, Family
from . import temporal
from .tests import (
    TestResult,
    categorical_test,
    cohen_h,
    magnitude_test,
    never_seen_test,
    numeric_test,
    proportion_test,
    type_mix_test,
)

if TYPE_CHECKING:
    from ..features.kinds.base import FeatureSet

MAX_EXAMPLES = 5
# A path held by fewer documents than this, in both windows together, is not tested: even 0 of 100
# against 5 of 100 is not significant (Fisher p = 0.06), and a heterogeneous source would
# otherwise cost one test per rare path.
MIN_SUPPORT = 5
REQUIRED = 0.99
ENUM_MAX_VALUES = DOC_VALUE_CAP  # 20
ENUM_MIN_DOCS_PER_VALUE = 5


def parent_of(path: str) -> str:
    if path.endswith("[]"):
        return path[:-2]
    return path.rsplit(".", 1)[0] if "." in path else "$"


def describe_mix(counts: dict[str, int], total: int, suffix: str = "") -> str:
    if total == 0:
        return "none"
    parts = sorted(((v, k) for k, v in counts.items() if v), reverse=True)[:3]
    return ", ".join(f"{k}{suffix} {100 * v / total:.0f}%" for v, k in parts) or "none"


class _Examples:
    """Current input ids behind a finding, from the current window's long tables."""

    def __init__(self, cur: FeatureSet):
        self.tags = cur.tables["tags"]
        self.values = cur.tables["values"]
        self.keys = cur.tables["keys"]

    @staticmethod
    def _ids(frame: pl.DataFrame) -> list[str]:
        return frame["input_id"].unique().sort().head(MAX_EXAMPLES).to_list()

    def holding(self, path: str, **equal) -> list[str]:
        frame = self.tags.filter(pl.col("path") == path)
        for column, value in equal.items():
            frame = frame.filter(pl.col(column) == value)
        return self._ids(frame)

    def lacking(self, path: str) -> list[str]:
        parent = set(self.tags.filter(pl.col("path") == parent_of(path))["input_id"])
        holders = set(self.tags.filter(pl.col("path") == path)["input_id"])
        return sorted(parent - holders)[:MAX_EXAMPLES]

    def with_types(self, path: str, types: set[str], column: str = "type") -> list[str]:
        return self._ids(self.tags.filter((pl.col("path") == path) & pl.col(column).is_in(sorted(types))))

    def count(self, table: str, path: str, column: str, labels: set[str]) -> int:
        """Documents holding any of these labels at the path."""
        frame = getattr(self, table)
        return frame.filter((pl.col("path") == path) & pl.col(column).is_in(sorted(labels)))["input_id"].n_unique()

    def with_new_values(self, path: str, known: set[str]) -> tuple[int, list[str], list[str]]:
        fresh = self.values.filter((pl.col("path") == path) & ~pl.col("value").is_in(sorted(known)))
        return fresh["input_id"].n_unique(), self._ids(fresh), fresh["value"].unique().sort().head(3).to_list()

    def with_key_classes(self, path: str, classes: set[str]) -> list[str]:
        return self._ids(self.keys.filter((pl.col("path") == path) & pl.col("class").is_in(sorted(classes))))


def _counts(row: dict, prefix: str, labels) -> dict[str, int]:
    return {label: int(row[f"{prefix}{label}"]) for label in labels}


def _mix_finding(family, path, aspect, ref_counts, cur_counts, examples, suffix="", never_seen=None) -> TestResult:
    """The mix of labels at a path; when some label is new to the path, the exact never-seen test
    of `never_seen` = (documents holding a new label now, baseline documents, current documents)."""
    if never_seen is not None:
        result = never_seen_test(*never_seen)
    else:
        result = type_mix_test(Counter(ref_counts), Counter(cur_counts))
    return result.labelled(
        family=family,
        subject=path,
        aspect=aspect,
        detail={
            "old": describe_mix(ref_counts, sum(ref_counts.values()), suffix),
            "new": describe_mix(cur_counts, sum(cur_counts.values()), suffix),
            # the whole mix, for a report's paired bars
            "ref_shares": _shares(ref_counts, suffix),
            "cur_shares": _shares(cur_counts, suffix),
            "examples": examples,
        },
    )


def _shares(counts: dict[str, int], suffix: str) -> dict[str, float]:
    total = sum(counts.values())
    return {f"{k}{suffix}": round(v / total, 4) for k, v in counts.items() if v} if total else {}


def _presence(path, r, c, n_ref, n_cur, ex: _Examples) -> TestResult:
    k_ref, k_cur = (r or {}).get("docs", 0), (c or {}).get("docs", 0)
    p_ref, p_cur = k_ref / n_ref, k_cur / n_cur
    if k_ref == 0:  # a new path: additive
        family, alternative, examples = Family.SCHEMA_ADDITIVE, "greater", ex.holding(path)
    elif p_cur < p_ref and p_ref >= REQUIRED:  # a required path goes missing: breaking
        family, alternative, examples = Family.SCHEMA_BREAKING, "less", ex.lacking(path)
    else:
        family, alternative = Family.SCHEMA_SHIFT, "two-sided"
        examples = ex.lacking(path) if p_cur < p_ref else ex.holding(path)
    return proportion_test(k_ref, n_ref, k_cur, n_cur, alternative=alternative).labelled(
        family=family,
        subject=path,
        aspect=Aspect.PRESENCE,
        detail={"old": f"present {100 * p_ref:.0f}%", "new": f"present {100 * p_cur:.0f}%", "examples": examples},
        counts=(k_ref, k_cur),
    )


def _nulls(path, r, c, ex: _Examples) -> TestResult | None:
    k_ref, k_cur = r["t_null"], c["t_null"]
    n_ref, n_cur = r["docs"], c["docs"]
    if k_ref == 0 and k_cur == 0:
        return None
    # nulls where the baseline never had one: the exact test of a never-seen event, and breaking
    result, family = (
        (never_seen_test(k_cur, n_ref, n_cur), Family.SCHEMA_BREAKING) if k_ref == 0
        else (proportion_test(k_ref, n_ref, k_cur, n_cur), Family.SCHEMA_SHIFT)
    )  # fmt: skip
    return result.labelled(
        family=family,
        subject=path,
        aspect=Aspect.NULLS,
        detail={
            "old": f"null {100 * k_ref / n_ref:.0f}%",
            "new": f"null {100 * k_cur / n_cur:.0f}%",
            "examples": ex.holding(path, type="null"),
        },
        counts=(k_ref, k_cur),
    )


def _is_enum(row: dict) -> bool:
    distinct = len(row["values"])
    return (
        not row["values_overflow"]
        and 0 < distinct <= ENUM_MAX_VALUES
        and row["docs"] >= ENUM_MIN_DOCS_PER_VALUE * distinct
        and row["t_float"] == 0
        and row["t_object"] == 0
        and row["t_array"] == 0
    )


def skeleton(value: str) -> str:
    """A value with each run of digits replaced by #: 2026-W42 and 2026-W43 are #-W#,
    summarizer-2026-09-01 is summarizer-#-#-#, v2.3.1 is v#.#.#; EUR stays EUR."""
    return _DIGITS.sub("#", value)


_DIGITS = re.compile(r"\d+")
_CODE = re.compile(r"^[-+]?\d{1,3}$")  # 200, 404, -1, 7: a short bare number is a code, never a label


def _labelled(value: str) -> bool:
    """Whether a value's digits make it a label that changes by design (a build, version, model or
    shard name), so that another value of its skeleton is a relabel: digits somewhere, and not a
    short bare number (a status or error code, whose new value is breaking)."""
    return bool(_DIGITS.search(value)) and not _CODE.match(value)


def _enum(path, r, c, ex: _Examples) -> list[TestResult]:
    """An enum path's new values, by their skeleton (digits replaced): a value of a skeleton the
    baseline held is a relabel (a release, a week, a model's date stamp: info, naming the old and
    new values); a value of a new skeleton is breaking. Then the shares of known values, unless a
    relabel already says why they moved."""
    known = {v["value"] for v in r["values"]}
    shown = ", ".join(sorted(known)[:6]) + (" ..." if len(known) > 6 else "")
    skeletons = {skeleton(v) for v in known if _labelled(v)}
    fresh_values = set(ex.values.filter((pl.col("path") == path) & ~pl.col("value").is_in(sorted(known)))["value"].drop_nulls())
    relabelled = {v for v in fresh_values if _labelled(v) and skeleton(v) in skeletons}
    results = []
    for family, aspect, exclude in (
        (Family.SCHEMA_BREAKING, Aspect.NEW_VALUE, known | relabelled),
        (Family.SCHEMA_ADDITIVE, Aspect.RELABEL, known | (fresh_values - relabelled)),
    ):
        k_new, examples, fresh = ex.with_new_values(path, exclude)
        if not k_new:
            continue
        results.append(
            never_seen_test(k_new, r["docs"], c["docs"]).labelled(
                family=family,
                subject=path,
                aspect=aspect,
                counts=(0, k_new),
                detail={
                    "old": f"{len(known)} values: {shown}",
                    "new": f"new {', '.join(repr(v) for v in fresh)} in {100 * k_new / c['docs']:.0f}%",
                    "examples": examples,
                },
            )
        )
    if relabelled:
        return results
    ref_values = Counter({v["value"]: v["docs"] for v in r["values"]})
    cur_values = Counter({v["value"]: v["docs"] for v in c["values"]})
    share = categorical_test(list(ref_values.elements()), list(cur_values.elements()))
    results.append(share.labelled(family=Family.SCHEMA_SHIFT, subject=path, aspect=Aspect.VALUES, detail={"examples": []}))
    return results


# Where the baseline had content at a path in at least this share of the documents holding it, a
# rising share of empty ones is breaking (a tool that answers with nothing).
CONTENT = 0.9
_CONTENT_TYPES = ("bool", "int", "float", "object")


def empty_documents(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """(path, input_id) for each document that holds a path with no content there: only nulls,
    empty strings or empty arrays (at least half of them, by the document's median length)."""
    tags = tables["tags"]
    held = tags.select("input_id", "path").unique()
    content = pl.concat(
        [
            tags.filter(pl.col("type").is_in(_CONTENT_TYPES)).select("input_id", "path"),
            tables["arrays"].filter(pl.col("value") > 0).select("input_id", "path"),
            tables["lengths"].filter(pl.col("value") > 0).select("input_id", "path"),
        ]
    ).unique()
    return held.join(content, on=["input_id", "path"], how="anti")


def _emptiness(path, r, c, ref_empty: dict, cur_empty: dict) -> TestResult | None:
    n_ref, n_cur = r["docs"], c["docs"]
    k_ref, k_cur = len(ref_empty.get(path, ())), len(cur_empty.get(path, ()))
    if k_ref > (1 - CONTENT) * n_ref or k_cur * n_ref <= k_ref * n_cur:
        return None  # the baseline was often empty here, or tonight is no emptier
    result = (
        never_seen_test(k_cur, n_ref, n_cur) if k_ref == 0 else proportion_test(k_ref, n_ref, k_cur, n_cur, alternative="greater")
    )
    return result.labelled(
        family=Family.SCHEMA_BREAKING,
        subject=path,
        aspect=Aspect.EMPTINESS,
        detail={
            "old": f"empty {100 * k_ref / n_ref:.0f}%",
            "new": f"empty {100 * k_cur / n_cur:.0f}%",
            "ref_rate": k_ref / n_ref,
            "cur_rate": k_cur / n_cur,
            "examples": sorted(cur_empty.get(path, ()))[:MAX_EXAMPLES],
        },
        counts=(k_ref, k_cur),
    )


def _empties_by_path(tables: dict[str, pl.DataFrame]) -> dict[str, list[str]]:
    frame = empty_documents(tables).group_by("path").agg(pl.col("input_id"))
    return dict(zip(frame["path"].to_list(), frame["input_id"].to_list()))


def _samples(path, r, c, skip: tuple[str, ...] = ()) -> list[TestResult]:
    """Numbers, string lengths and array lengths at a path, less those in `skip` (a time's number,
    a period label's length: they move by design)."""
    results = []
    for name, aspect in (("numbers", Aspect.NUMBERS), ("lengths", Aspect.STRING_LENGTHS), ("arrays", Aspect.ARRAY_LENGTHS)):
        if name in skip:
            continue
        if r[f"{name}_n"] and c[f"{name}_n"]:
            ref_q, cur_q = summary.quantiles(r[f"{name}_v"]), summary.quantiles(c[f"{name}_v"])
            result = numeric_test(r[f"{name}_v"], c[f"{name}_v"])
            detail = {
                "old": "p5/p50/p95 " + " / ".join(f"{v:.4g}" for v in ref_q),
                "new": "p5/p50/p95 " + " / ".join(f"{v:.4g}" for v in cur_q),
            }
            results.append(result.labelled(family=Family.SCHEMA_SHIFT, subject=path, aspect=aspect, detail=detail))
            if name == "numbers":
                results.append(_magnitude(path, r, c))
    return results


def _magnitude(path, r, c) -> TestResult:
    """A change of units: the same numbers, ten or a hundred times smaller or larger (breaking)."""
    result = magnitude_test(r["numbers_v"], c["numbers_v"])
    ref_median, cur_median = result.params.get("ref_median"), result.params.get("cur_median")
    detail = {}
    if ref_median is not None:
        detail = {"old": f"median {ref_median:.4g}", "new": f"median {cur_median:.4g}"}
    return result.labelled(family=Family.SCHEMA_BREAKING, subject=path, aspect=Aspect.MAGNITUDE, detail=detail)


def _shapes(ref: FeatureSet, cur: FeatureSet) -> TestResult:
    ref_counts = Counter(ref.tables["shapes"]["shape"].to_list())
    n_ref, n_cur = ref.tables["shapes"].height, cur.tables["shapes"].height
    new = cur.tables["shapes"].filter(~pl.col("shape").is_in(list(ref_counts)))
    k_cur = new.height
    singletons = sum(1 for v in ref_counts.values() if v == 1)
    missing_mass = singletons / n_ref if n_ref else 0.0
    detail = {
        "old": f"{len(ref_counts)} shapes, {100 * missing_mass:.0f}% expected new (Good-Turing)",
        "new": f"{100 * k_cur / max(n_cur, 1):.0f}% of documents in a never-seen shape",
        "examples": new["input_id"].sort().head(MAX_EXAMPLES).to_list(),
    }
    if missing_mass == 0:
        result = never_seen_test(k_cur, n_ref, n_cur)
    else:
        p = float(stats.binomtest(k_cur, n_cur, missing_mass, alternative="greater").pvalue) if n_cur else math.nan
        rate = k_cur / n_cur if n_cur else 0.0
        effect = cohen_h(rate, missing_mass) if rate > missing_mass else 0.0
        result = TestResult("good_turing", float(k_cur), p, effect, n_ref, n_cur, {"missing_mass": round(missing_mass, 6)})
    return result.labelled(family=Family.SCHEMA_SHIFT, subject="document", aspect=Aspect.SHAPE, detail=detail, counts=(0, k_cur))


def structure_checks(ref: FeatureSet, cur: FeatureSet) -> list[TestResult]:
    """Every path-level check between the baseline's documents and the current window's."""
    R = summary.row_of(summary.build(ref.tables))
    C = summary.row_of(summary.build(cur.tables))
    ex = _Examples(cur)
    ref_times, cur_times = temporal.BaselineTimes(ref), temporal.Times(cur)
    ref_empty, cur_empty = _empties_by_path(ref.tables), _empties_by_path(cur.tables)
    results: list[TestResult] = []
    for path in sorted(set(R) | set(C)):
        if path == "$":
            continue
        parent = parent_of(path)
        n_ref, n_cur = R.get(parent, {}).get("docs", 0), C.get(parent, {}).get("docs", 0)
        if n_ref == 0 or n_cur == 0:
            continue  # the parent itself is new or gone: reported at the parent
        r, c = R.get(path), C.get(path)
        if (r or {}).get("docs", 0) + (c or {}).get("docs", 0) < MIN_SUPPORT:
            continue
        results.append(_presence(path, r, c, n_ref, n_cur, ex))
        if r is None or c is None:
            continue
        ref_types = {t: v for t, v in _counts(r, "t_", TYPES).items() if t != "null"}
        cur_types = {t: v for t, v in _counts(c, "t_", TYPES).items() if t != "null"}
        if sum(ref_types.values()) and sum(cur_types.values()):
            new_types = {t for t, v in cur_types.items() if v and not ref_types[t]}
            never = (
                (ex.count("tags", path, "type", new_types), r["docs"] - r["t_null"], c["docs"] - c["t_null"])
                if new_types
                else None
            )
            results.append(
                _mix_finding(
                    Family.SCHEMA_BREAKING,
                    path,
                    Aspect.TYPE,
                    ref_types,
                    cur_types,
                    ex.with_types(path, new_types),
                    never_seen=never,
                )
            )
        if r["t_string"] and c["t_string"]:
            ref_formats, cur_formats = _counts(r, "f_", FORMATS), _counts(c, "f_", FORMATS)
            new_formats = {f for f, v in cur_formats.items() if v and not ref_formats[f]}
            never = (ex.count("tags", path, "format", new_formats), r["t_string"], c["t_string"]) if new_formats else None
            results.append(
                _mix_finding(
                    Family.SCHEMA_BREAKING,
                    path,
                    Aspect.FORMAT,
                    ref_formats,
                    cur_formats,
                    ex.with_types(path, new_formats, "format"),
                    never_seen=never,
                )
            )
        nulls = _nulls(path, r, c, ex)
        if nulls is not None:
            results.append(nulls)
        empty = _emptiness(path, r, c, ref_empty, cur_empty)
        if empty is not None:
            results.append(empty)
        ref_keys, cur_keys = _counts(r, "k_", KEY_CLASSES), _counts(c, "k_", KEY_CLASSES)
        if sum(ref_keys.values()) - ref_keys["record"] > 0 and sum(cur_keys.values()):
            changed = {k for k, v in cur_keys.items() if v and not ref_keys[k]}
            never = (ex.count("keys", path, "class", changed), r["t_object"], c["t_object"]) if changed else None
            results.append(
                _mix_finding(
                    Family.SCHEMA_BREAKING,
                    path,
                    Aspect.KEY_PATTERN,
                    ref_keys,
                    cur_keys,
                    ex.with_key_classes(path, changed),
                    " keys",
                    never_seen=never,
                )
            )
        time_field = ref_times.field(path, r)
        if time_field is not None and time_field.kind == "label":
            stale = temporal.stale_test(ref_times.staleness(path, time_field), cur_times.staleness(path, time_field))
            results.append(stale.labelled(family=Family.SCHEMA_BREAKING, subject=path, aspect=Aspect.STALE))
        elif time_field is not None and time_field.kind != "counter":
            lag = temporal.lag_test(ref_times.lags(path, time_field), cur_times.lags(path, time_field))
            results.append(lag.labelled(family=Family.SCHEMA_BREAKING, subject=path, aspect=Aspect.LAG))
        if time_field is None and _is_enum(r):
            recurring = ref_times.recurring_share(path)  # None: a one-day baseline cannot tell
            if recurring is None or recurring >= temporal.RECURRING:
                results += _enum(path, r, c, ex)
        skip = () if time_field is None else ("numbers", "lengths") if time_field.kind == "label" else ("numbers",)
        results += _samples(path, r, c, skip)
    if ref.tables["shapes"].height and cur.tables["shapes"].height:
        results.append(_shapes(ref, cur))
    return results
