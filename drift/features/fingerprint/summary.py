"""A window's fingerprint of one payload source: one row per path, mergeable across windows.

Built from the per-document observations of drift.features.fingerprint.walk. Every column merges exactly,
so a month's fingerprint is the merge of its days' (`merge`), and the checks never need the
documents themselves:

    path                     $.items[].price
    docs                     documents holding the path (with any type)
    t_<type>                 documents holding it with that type (null, bool, int, float, string,
                             object, array); a document counts once per type
    f_<format>               documents holding a string of that format there
    k_<class>                documents holding an object there that is a map with keys of that
                             class, or a record (k_record)
    values                   up to VALUE_CAP (value, docs) pairs, the most frequent; ints, bools and
                             strings of up to 64 characters, as text
    values_overflow          more distinct values were seen than VALUE_CAP (not an enum)
    kmv                      the KMV_K smallest crc32 hashes of the distinct values: the distinct
                             count estimate (exact below KMV_K, up to hash collisions)
    numbers_p/_v, lengths_p/_v, arrays_p/_v
                             bottom-k samples (SAMPLE_K documents) of each document's median
                             number, string length and array length at the path: the values with
                             the smallest hash priority, a uniform sample of documents that merges
                             exactly (keep the smallest of the union)
    numbers_n, lengths_n, arrays_n   how many documents contributed a value

Sample priorities are polars' seeded hash of (input id, path): any hash independent of the values
gives a uniform sample.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import polars as pl

from .walk import FORMATS, KEY_CLASSES, KMV_K, SAMPLES, TYPES, VALUE_CAP

SAMPLE_K = 512
_SEED = 20261124

COUNT_COLUMNS = (
    ["docs"]
    + [f"t_{t}" for t in TYPES]
    + [f"f_{f}" for f in FORMATS]
    + [f"k_{k}" for k in KEY_CLASSES]
    + [f"{s}_n" for s in SAMPLES]
)


def _empty_list(dtype) -> pl.Expr:
    return pl.lit([], dtype=pl.List(dtype))


def _pivot_counts(long: pl.DataFrame, column: str, labels: tuple[str, ...], prefix: str) -> pl.DataFrame:
    """Documents per (path, label) as one count column per label."""
    counts = long.group_by("path", column).agg(pl.col("input_id").n_unique().alias("n"))
    return counts.group_by("path").agg(
        [pl.col("n").filter(pl.col(column) == label).sum().cast(pl.Int64).alias(f"{prefix}{label}") for label in labels]
    )


def _stable_hash(column: pl.Series) -> np.ndarray:
    """A 64-bit hash of each string that no library upgrade changes (polars' own hash may change
    between versions, and with it which values a window samples): blake2b of each distinct value."""
    distinct = column.unique()
    digests = [int.from_bytes(hashlib.blake2b(f"{_SEED}:{v}".encode(), digest_size=8).digest(), "little") for v in distinct]
    return column.replace_strict(distinct, pl.Series(digests, dtype=pl.UInt64), return_dtype=pl.UInt64).to_numpy()


def _mix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One well-spread 64-bit value from two (splitmix64's finaliser over a combination of both)."""
    with np.errstate(over="ignore"):
        z = a ^ (b * np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _bottom_k(long: pl.DataFrame, name: str) -> pl.DataFrame:
    """Per path: the SAMPLE_K values with the smallest priority, and how many there were."""
    if long.height == 0:
        return pl.DataFrame(
            schema={"path": pl.Utf8, f"{name}_p": pl.List(pl.UInt64), f"{name}_v": pl.List(pl.Float64), f"{name}_n": pl.Int64}
        )
    # one priority per document and path, the same on every machine and library version
    keyed = long.with_columns(pl.Series("p", _mix(_stable_hash(long["input_id"]), _stable_hash(long["path"])), dtype=pl.UInt64))
    return (
        keyed.sort("p")
        .group_by("path")
        .agg(
            pl.col("p").head(SAMPLE_K).alias(f"{name}_p"),
            pl.col("value").cast(pl.Float64).head(SAMPLE_K).alias(f"{name}_v"),
            pl.len().cast(pl.Int64).alias(f"{name}_n"),
        )
    )


def build(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    """The fingerprint of the documents in the featurizer's long tables (see PayloadFeaturizer)."""
    tags = tables["tags"]
    docs = tags.group_by("path").agg(pl.col("input_id").n_unique().cast(pl.Int64).alias("docs"))
    types = _pivot_counts(tags, "type", TYPES, "t_")
    formats = _pivot_counts(tags.filter(pl.col("type") == "string"), "format", FORMATS, "f_")
    keys = _pivot_counts(tables["keys"], "class", KEY_CLASSES, "k_")
    values = tables["values"]
    value_counts = values.drop_nulls("value").group_by("path", "value").agg(pl.len().cast(pl.Int64).alias("docs"))
    crowded = values.filter(pl.col("value").is_null()).select("path").unique().with_columns(pl.lit(True).alias("crowded"))
    top = (
        value_counts.sort(["docs", "value"], descending=[True, False])
        .group_by("path")
        .agg(pl.struct("value", "docs").head(VALUE_CAP).alias("values"), (pl.len() > VALUE_CAP).alias("values_overflow"))
        .join(crowded, on="path", how="full", coalesce=True)
        .with_columns((pl.col("values_overflow").fill_null(False) | pl.col("crowded").fill_null(False)).alias("values_overflow"))
        .drop("crowded")
    )
    kmv = tables["hashes"].group_by("path").agg(pl.col("value").unique().bottom_k(KMV_K).sort().alias("kmv"))
    out = docs
    for part in (types, formats, keys, top, kmv, *(_bottom_k(tables[s], s) for s in SAMPLES)):
        out = out.join(part, on="path", how="left")
    return _fill(out).select(build_columns()).sort("path")


def _fill(frame: pl.DataFrame) -> pl.DataFrame:
    """Paths without values, maps or samples get zeros and empty lists, so that every row merges."""
    fills = [pl.col(c).fill_null(0) for c in COUNT_COLUMNS if c in frame.columns]
    fills.append(pl.col("values_overflow").fill_null(False))
    fills.append(pl.col("values").fill_null(_empty_list(pl.Struct({"value": pl.Utf8, "docs": pl.Int64}))))
    fills.append(pl.col("kmv").fill_null(_empty_list(pl.Int64)))
    for s in SAMPLES:
        fills += [pl.col(f"{s}_p").fill_null(_empty_list(pl.UInt64)), pl.col(f"{s}_v").fill_null(_empty_list(pl.Float64))]
    return frame.with_columns(fills)


def merge(*fingerprints: pl.DataFrame) -> pl.DataFrame:
    """The fingerprint of the union of the windows (documents must not repeat across them)."""
    stacked = pl.concat(fingerprints, how="vertical")
    counts = stacked.group_by("path").agg([pl.col(c).sum() for c in COUNT_COLUMNS])
    values = (
        stacked.select("path", "values")
        .explode("values")
        .unnest("values")
        .drop_nulls("value")
        .group_by("path", "value")
        .agg(pl.col("docs").sum())
        .sort(["docs", "value"], descending=[True, False])
        .group_by("path")
        .agg(pl.struct("value", "docs").head(VALUE_CAP).alias("values"), (pl.len() > VALUE_CAP).alias("over_cap"))
    )
    overflow = stacked.group_by("path").agg(pl.col("values_overflow").any())
    kmv = (
        stacked.select("path", "kmv")
        .explode("kmv")
        .drop_nulls()
        .unique()
        .sort("kmv")
        .group_by("path")
        .agg(pl.col("kmv").head(KMV_K))
    )
    out = counts.join(overflow, on="path").join(values, on="path", how="left").join(kmv, on="path", how="left")
    out = out.with_columns((pl.col("values_overflow") | pl.col("over_cap").fill_null(False)).alias("values_overflow")).drop(
        "over_cap"
    )
    for s in SAMPLES:
        sample = (
            stacked.select("path", f"{s}_p", f"{s}_v")
            .explode(f"{s}_p", f"{s}_v")
            .drop_nulls()
            .sort(f"{s}_p")
            .group_by("path")
            .agg(pl.col(f"{s}_p").head(SAMPLE_K), pl.col(f"{s}_v").head(SAMPLE_K))
        )
        out = out.join(sample, on="path", how="left")
    return _fill(out).select(build_columns()).sort("path")


def build_columns() -> list[str]:
    return (
        ["path", "docs"]
        + [f"t_{t}" for t in TYPES]
        + [f"f_{f}" for f in FORMATS]
        + [f"k_{k}" for k in KEY_CLASSES]
        + ["values", "values_overflow", "kmv"]
        + [c for s in SAMPLES for c in (f"{s}_p", f"{s}_v", f"{s}_n")]
    )


def distinct_estimate(kmv: list[int]) -> float:
    """Distinct values from the k smallest of their 32-bit hashes: exact below k, else (k-1)/u_k."""
    if len(kmv) < KMV_K:
        return float(len(kmv))
    return (KMV_K - 1) / ((float(max(kmv)) + 1.0) / 2.0**32)


def row_of(fingerprint: pl.DataFrame) -> dict[str, dict[str, Any]]:
    return {row["path"]: row for row in fingerprint.iter_rows(named=True)}


def quantiles(values: list[float], qs=(0.05, 0.5, 0.95)) -> list[float]:
    return [float(v) for v in np.quantile(np.asarray(values, dtype=float), qs)] if values else [math.nan] * len(qs)
