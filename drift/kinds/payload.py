"""Tool-response payloads: JSON parsed under limits, observed path by path, fingerprinted.

The worker parses one document (orjson, under the job's size, depth and array limits) and
observes it (drift.fingerprint.walk). The parent gathers the observations into long tables, from
which the comparison builds each window's fingerprint (drift.fingerprint.summary) and classifies
the changes (drift.fingerprint.changes).

Accepted and noted: a UTF-8 byte order mark (`had_bom`), integers beyond 2^53 (`big_ints`), JSON
serialised inside a string (string format `json`). Classified errors: `invalid_json` (including
NaN and Infinity, which JSON does not allow), `bad_encoding` (invalid UTF-8, lone surrogates),
`too_deep`, `too_large`, `empty`. Duplicate keys are accepted, the last one winning, as in most
consumers' parsers.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import orjson
import polars as pl

from ..fingerprint.changes import structure_checks
from ..fingerprint.summary import SAMPLES
from ..fingerprint.walk import LimitExceeded, observe
from ..stats.tests import TestResult
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, read_limited

def open_payload(target, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: JSON text or file -> the document's observation (see drift.fingerprint.walk)."""
    data = target if isinstance(target, bytes) else read_limited(target, limits["max_bytes"])
    if len(data) > limits["max_bytes"]:
        raise InputProblem("too_large", f"{len(data)} bytes, over the limit of {limits['max_bytes']}")
    if not data.strip():
        raise InputProblem("empty", "the payload is empty")
    had_bom = data.startswith(b"\xef\xbb\xbf")
    if had_bom:
        data = data[3:]  # accepted and noted: a BOM is harmless to most consumers
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        message = str(exc)
        category = "bad_encoding" if "utf-8" in message.lower() or "surrogate" in message.lower() else "invalid_json"
        if "recursion" in message.lower():
            category = "too_deep"
        raise InputProblem(category, message[:300]) from None
    try:
        observed = observe(value, limits["max_depth"], limits["max_array"])
    except LimitExceeded as exc:
        raise InputProblem(exc.category, str(exc)) from None
    if limits.get("keep_document"):
        observed["document"] = value
    observed["descriptors"] = {
        "bytes": float(len(data)),
        "node_count": float(observed.pop("node_count")),
        "depth": float(observed.pop("depth")),
        "top_type": _TOP_TYPES[type(value)],
        "had_bom": float(had_bom),
        "big_ints": float(observed.pop("big_ints")),
    }
    return observed


_TOP_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "bool", type(None): "null"}


class PayloadFeaturizer(DescriptorFeaturizer):
    """Gathers the documents' observations into long tables keyed by input_id (see TABLES)."""

    def __init__(self, keep_schema: bool = False) -> None:
        super().__init__()
        self.columns: dict[str, dict[str, list]] = {name: {c: [] for c in cols} for name, cols in TABLES.items()}
        self.schema = None
        if keep_schema:
            from genson import SchemaBuilder

            self.schema = SchemaBuilder()

    def _rows(self, table: str, input_id: str, rows: list[tuple]) -> None:
        columns = self.columns[table]
        columns["input_id"].extend(repeat(input_id, len(rows)))
        for name, column in zip(list(columns)[1:], zip(*rows)):
            columns[name].extend(column)

    def _per_path(self, table: str, input_id: str, by_path: dict[str, list | None]) -> None:
        """{path: [value, ...]} -> rows (input_id, path, value), extended in C; None -> one null row."""
        columns = self.columns[table]
        for path, values in by_path.items():
            values = [None] if values is None else values
            columns["input_id"].extend(repeat(input_id, len(values)))
            columns["path"].extend(repeat(path, len(values)))
            columns["value"].extend(values)

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        super().add(input_id, opened)
        self._rows("tags", input_id, opened["tags"])
        self._rows("keys", input_id, opened["keys"])
        self._rows("shapes", input_id, [(opened["shape"],)])
        for table in ("values", "hashes", *SAMPLES):
            self._per_path(table, input_id, opened[table])
        if self.schema is not None:
            self.schema.add_object(opened["document"])

    def finish(self) -> FeatureSet:
        tables = {name: pl.DataFrame(cols, schema=_SCHEMAS[name]) for name, cols in self.columns.items()}
        if self.schema is not None:  # the window's union JSON Schema (genson), for `drift fingerprint`
            tables["schema"] = pl.DataFrame({"schema": [orjson.dumps(self.schema.to_schema()).decode()]})
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame(), tables=tables)


TABLES = {
    "tags": ("input_id", "path", "type", "format"),
    "keys": ("input_id", "path", "class"),
    "values": ("input_id", "path", "value"),
    "hashes": ("input_id", "path", "value"),
    **{table: ("input_id", "path", "value") for table in SAMPLES},
    "shapes": ("input_id", "shape"),
}
_VALUE_TYPES = {"hashes": pl.Int64, **{table: pl.Float64 for table in SAMPLES}}
_SCHEMAS = {
    name: {c: (_VALUE_TYPES.get(name, pl.Utf8) if c == "value" else pl.Utf8) for c in cols} for name, cols in TABLES.items()
}


class PayloadKind:
    name = "payload"
    open_input = staticmethod(open_payload)

    def limits(self, context) -> dict[str, Any]:
        section = context.config.payload
        return {
            "max_bytes": section.max_bytes,
            "max_depth": section.max_depth,
            "max_array": section.max_array,
            "keep_document": context.keep_documents,
        }

    def timeout(self, context) -> float:
        return context.config.payload.timeout_s

    def encoders(self, config) -> set[str]:
        return set()

    def featurizer(self, context, source: str) -> PayloadFeaturizer:
        return PayloadFeaturizer(keep_schema=context.keep_documents)

    def extra_checks(self, ref: FeatureSet, cur: FeatureSet, context) -> list[TestResult]:
        return structure_checks(ref, cur)
