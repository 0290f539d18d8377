"""Tool-response payloads: JSON parsed under limits, observed path by path, fingerprinted.

The worker parses each document (orjson, under the job's size, depth and array limits) and
observes it (drift.fingerprint.walk). Documents are opened in batches (drift.isolation): the worker
gathers a batch's observations into long tables keyed by the document's row in the batch, and the
parent only names the rows and concatenates the batches. From those tables the comparison builds
each window's fingerprint (drift.fingerprint.summary) and classifies the changes
(drift.fingerprint.changes).

Accepted and noted: a UTF-8 byte order mark (`had_bom`), integers beyond 2^53 (`big_ints`), JSON
serialised inside a string (string format `json`). Classified errors: `invalid_json` (including
NaN and Infinity, which JSON does not allow), `bad_encoding` (invalid UTF-8, lone surrogates),
`too_deep`, `too_large`, `empty`. Duplicate keys are accepted, the last one winning, as in most
consumers' parsers.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import polars as pl

from ..fingerprint.summary import SAMPLES
from ..fingerprint.walk import KEY_CLASSES, TAG_FORMATS, TYPES, LimitExceeded, Observations
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, read_limited

if TYPE_CHECKING:
    from ..stats.tests import TestResult

# The long tables of a window, one row per document and what it holds at a path (see
# drift.fingerprint.walk for what each holds).
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
# In a batch, rows, paths, types, formats and classes are numbers (see open_payloads), as narrow as
# they can be: the batch is pickled to the parent.
_NARROW = {"row": np.int32, "path": np.int32, "type": np.uint8, "format": np.uint8, "class": np.uint8, ("hashes", "value"): np.uint32}


def _batch_frame(table: str, columns: dict[str, Any]) -> pl.DataFrame:
    """One table of a batch from Observations.columns(): numbers narrowed, texts as strings."""
    return pl.DataFrame({
        name: pl.Series(name, column, dtype=pl.Utf8) if isinstance(column, list)
        else column.astype(_NARROW.get((table, name), _NARROW.get(name, column.dtype)), copy=False)
        for name, column in columns.items()
    })


def _observe(target, limits: dict[str, Any], batch: Observations) -> tuple[dict[str, Any], Any]:
    """Parse one document and add it to the batch -> (its descriptors, the parsed value); InputProblem if refused."""
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
        seen = batch.add(value, limits["max_depth"], limits["max_array"])
    except LimitExceeded as exc:
        raise InputProblem(exc.category, str(exc)) from None
    descriptors = {
        "bytes": float(len(data)),
        "node_count": float(seen["node_count"]),
        "depth": float(seen["depth"]),
        "top_type": _TOP_TYPES[type(value)],
        "had_bom": float(had_bom),
        "big_ints": float(seen["big_ints"]),
    }
    return descriptors, value


_TOP_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "bool", type(None): "null"}


def open_payloads(targets: list, limits: dict[str, Any]) -> list:
    """Worker side, a batch (drift.isolation): per target, its opened dict or the exception it raised.

    The batch's observations are gathered as columns of numbers (drift.fingerprint.walk's
    Observations) into one `tables` dict that every opened dict of the batch refers to, so that it
    crosses the process boundary once, as polars frames; the parent names rows and paths
    (PayloadFeaturizer.finish).
    """
    batch = Observations()
    tables: dict[str, pl.DataFrame] = {}
    results: list = []
    collecting = gc.isenabled()
    gc.disable()  # parsed JSON holds no cycles; the collector only rescanned every new dict and list
    try:
        for target in targets:
            try:
                descriptors, value = _observe(target, limits, batch)
            except Exception as exc:  # noqa: BLE001 - each document's failure is its own, classified by the pool
                results.append(exc)
                continue
            opened = {"observation": (tables, batch.documents - 1), "descriptors": descriptors}
            if limits.get("keep_document"):
                opened["document"] = value
            results.append(opened)
    finally:
        if collecting:
            gc.enable()
    columns = batch.columns()
    tables.update({name: _batch_frame(name, columns[name]) for name in TABLES})
    tables["paths"] = pl.DataFrame({"path": columns["paths"]}, schema={"path": pl.Utf8})
    return results


def open_payload(target, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side, one document: its opened dict (a batch of one), or InputProblem."""
    [result] = open_payloads([target], limits)
    if isinstance(result, BaseException):
        raise result
    return result


class PayloadFeaturizer(DescriptorFeaturizer):
    """Gathers the documents' observations into long tables keyed by input_id (see TABLES)."""

    def __init__(self, keep_schema: bool = False) -> None:
        super().__init__()
        self.batches: dict[int, tuple[dict[str, pl.DataFrame], dict[int, str]]] = {}
        self.schema = None
        if keep_schema:
            from genson import SchemaBuilder

            self.schema = SchemaBuilder()

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        super().add(input_id, opened)
        tables, row = opened["observation"]
        self.batches.setdefault(id(tables), (tables, {}))[1][row] = input_id
        if self.schema is not None:
            self.schema.add_object(opened["document"])

    def finish(self) -> FeatureSet:
        # Rows and paths are numbered per batch: number them across batches, then name them.
        batches = list(self.batches.values())
        ids: list[str | None] = []
        row_offsets, path_offsets, paths = [], [], [pl.Series("path", [], dtype=pl.Utf8)]
        path_count = 0
        for batch, names in batches:
            row_offsets.append(len(ids))
            path_offsets.append(path_count)
            ids.extend(names.get(row) for row in range(batch["shapes"].height))
            paths.append(batch["paths"]["path"])
            path_count += batch["paths"].height
        names_of = {
            "row": pl.Series("input_id", ids, dtype=pl.Utf8),
            "path": pl.concat(paths),
            "type": pl.Series(TYPES),
            "format": pl.Series(TAG_FORMATS),
            "class": pl.Series(KEY_CLASSES),
        }
        tables = {}
        for name, schema in _SCHEMAS.items():
            if not batches:
                tables[name] = pl.DataFrame(schema=schema)
                continue
            frames = [batch[name] for batch, _ in batches]
            heights = [frame.height for frame in frames]
            table = pl.concat(frames, rechunk=True)
            offsets = {"row": np.repeat(row_offsets, heights), "path": np.repeat(path_offsets, heights)}
            named = [
                names_of[c].gather(table[c] + offsets[c] if c in offsets else table[c]).alias("input_id" if c == "row" else c)
                for c in table.columns
                if c in names_of
            ]
            tables[name] = table.with_columns(named).drop_nulls("input_id").select(list(schema)).cast(schema)
        if self.schema is not None:  # the window's union JSON Schema (genson), for `drift fingerprint`
            tables["schema"] = pl.DataFrame({"schema": [orjson.dumps(self.schema.to_schema()).decode()]})
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame(), tables=tables)


class PayloadKind:
    name = "payload"
    open_input = staticmethod(open_payload)
    open_batch = staticmethod(open_payloads)

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
        # imported here: the workers, which import this module, never compare (scipy costs them 0.6 s)
        from ..fingerprint.changes import structure_checks

        return structure_checks(ref, cur)
