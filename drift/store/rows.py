"""The rows of a run's tables, made from the run's typed results: the one place a result becomes a row.

`findings`, `segments` and `stage_timings` are the record's models (drift.record) stored a row per
model: MODEL_TABLES says which fields each table keeps and under which column, and
tests/test_store.py checks every table against it, so a field added to a model either gets a
column (a migration) or is said here not to be stored. The other tables of a run hold what the
features stage found (samples, input errors, descriptors in long form, the classifier's ranking).
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import polars as pl
from pydantic import BaseModel

from ..features.featureset import is_numeric
from ..features.window import WindowAnalysis
from ..record import Finding, RunRecord, Segment, Stage, Verdict
from ..sources.log import local_path


@dataclass(frozen=True)
class ModelTable:
    """A table whose rows are one model each: `keys` say whose rows they are (the run, the
    segment), `columns` are the model's fields (or properties) in the table's order, `renamed`
    maps a column to the field it holds where the two are spelled apart, `as_json` are stored as
    JSON text."""

    model: type[BaseModel]
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    renamed: dict[str, str] = field(default_factory=dict)
    as_json: tuple[str, ...] = ()

    def field_of(self, column: str) -> str:
        return self.renamed.get(column, column)

    def frame(self, models: Iterable[BaseModel], **keys: Any) -> pl.DataFrame:
        rows = [{**keys, **{c: self._value(m, c) for c in self.columns}} for m in models]
        schema = {
            **{k: pl.Utf8 for k in self.keys},
            **{c: _dtype(self.model, self.field_of(c)) for c in self.columns},
        }
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)

    def _value(self, model: BaseModel, column: str) -> Any:
        value = getattr(model, self.field_of(column))
        if column in self.as_json:
            return json.dumps(value, default=str)
        return value.value if isinstance(value, Enum) else value


_DTYPES = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64}  # anything else (text, enums, JSON) is text


def _dtype(model: type[BaseModel], name: str):
    """A column's type from its field's annotation (or its property's return type); `X | None` is X's."""
    if name in model.model_fields:
        annotation = model.model_fields[name].annotation
    else:
        annotation = typing.get_type_hints(getattr(model, name).fget)["return"]
    kinds = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
    return _DTYPES.get(kinds[0], pl.Utf8) if len(kinds) == 1 else pl.Utf8


MODEL_TABLES: dict[str, ModelTable] = {
    "findings": ModelTable(
        Finding,
        keys=("run_id", "kind", "source"),
        columns=(
            "check_family",
            "target",
            "method",
            "statistic",
            "p_value",
            "p_adjusted",
            "effect_size",
            "effect_threshold",
            "n_ref",
            "n_cur",
            "status",
            "severity",
            "detail",
            "principle",
        ),
        renamed={"check_family": "check"},
        as_json=("detail",),
    ),
    "segments": ModelTable(
        Segment,
        keys=("run_id",),
        columns=(
            "kind",
            "source",
            "n_population",
            "n_sampled",
            "n_items",
            "n_errors",
            "status",
            "drifted",
            "severity",
            "detectable_share",
        ),
    ),
    "stage_timings": ModelTable(
        Stage,
        keys=("run_id",),
        columns=("stage", "seconds", "items", "cpu_seconds", "peak_rss_mb", "cache_hits", "cache_misses"),
    ),
}
# Fields of those models that live elsewhere: in runs.summary (the record), or in a table of their own.
NOT_COLUMNS: dict[str, set[str]] = {
    "findings": {"subject", "aspect", "counts", "ranking"},  # in-process (record.Finding); ranking -> `outliers`
    # runs.summary; findings -> `findings`
    "segments": {"errors", "n_internal", "n_checks", "changes", "findings", "evidence", "detectable"},
    "stage_timings": set(),
}


def stage_rows(run_id: str, stages: list[Stage]) -> pl.DataFrame:
    return MODEL_TABLES["stage_timings"].frame(stages, run_id=run_id)


def run_tables(
    run_id: str, analysis: WindowAnalysis, verdicts: dict[tuple[str, str], Verdict], record: RunRecord
) -> dict[str, pl.DataFrame]:
    """Every row the run's transaction writes, but the run's own (store.write_run adds it)."""
    rows = analysis.sample.rows
    paths = [local_path(uri, log_file) for uri, log_file in zip(rows["uri"], rows["log_file"])]
    samples = rows.select("input_id", "received_at", "kind", "source", "uri", "meta").with_columns(
        pl.lit(run_id).alias("run_id"),
        pl.col("input_id").replace_strict(analysis.outcomes, default="error").alias("outcome"),
        pl.Series("path", paths, dtype=pl.Utf8),
    )
    errors = [
        {
            "run_id": run_id,
            "input_id": e.input_id,
            "kind": d.kind,
            "source": d.source,
            "category": e.category,
            "message": e.message + (f"\n{e.traceback}" if e.traceback else ""),
        }
        for d in analysis.segments.values()
        for e in d.errors
    ]
    findings, descriptors, outliers = [], [], []
    for (kind, source), verdict in verdicts.items():
        findings.append(MODEL_TABLES["findings"].frame(verdict.findings, run_id=run_id, kind=kind, source=source))
        outliers += [
            {
                "run_id": run_id,
                "kind": kind,
                "source": source,
                "target": finding.target,
                "rank": rank,
                "input_id": input_id,
                "score": score,
            }
            for finding in verdict.findings
            for rank, (input_id, score) in enumerate(finding.ranking, start=1)
        ]
        data = analysis.segments.get((kind, source))
        if data is not None and data.features.n:
            descriptors.append(
                long_descriptors(data.features.descriptors).with_columns(
                    pl.lit(run_id).alias("run_id"), pl.lit(kind).alias("kind"), pl.lit(source).alias("source")
                )
            )
    return {
        "samples": samples,
        "input_errors": pl.DataFrame(
            errors, schema={k: pl.Utf8 for k in ("run_id", "input_id", "kind", "source", "category", "message")}
        ),
        "segments": MODEL_TABLES["segments"].frame(record.segments, run_id=run_id),
        "findings": pl.concat(findings) if findings else pl.DataFrame(),
        "descriptors": pl.concat(descriptors, how="diagonal") if descriptors else pl.DataFrame(),
        "outliers": pl.DataFrame(outliers),
        "log_rejects": analysis.sample.rejects.with_columns(pl.lit(run_id).alias("run_id")),
    }


def long_descriptors(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per (input, descriptor): numbers in `value` (as the comparison sees them: a yes/no
    descriptor is a 0/1 number, featureset.is_numeric), categories in `label`."""
    numeric = [c for c in frame.columns if c != "input_id" and is_numeric(frame[c].dtype)]
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
