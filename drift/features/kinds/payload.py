"""Tool-response payloads: JSON parsed under limits, observed path by path, fingerprinted.

The worker parses each document (orjson, under the job's size, depth and array limits) and
observes it (drift.features.fingerprint.walk). Documents are opened in batches (drift.features.isolation): the worker
gathers a batch's observations into long tables keyed by the document's row in the batch, and the
parent only names the rows and concatenates the batches. From those tables the comparison builds
each window's fingerprint (drift.features.fingerprint.summary) and classifies the changes
(drift.verdict.structure).

Accepted and noted: a UTF-8 byte order mark (`had_bom`), integers beyond 2^53 (`big_ints`), JSON
serialised inside a string (string format `json`). Classified errors: `invalid_json` (including
NaN and Infinity, which JSON does not allow), `bad_encoding` (invalid UTF-8, lone surrogates),
`too_deep`, `too_large`, `empty`. Duplicate keys are accepted, the last one winning, as in most
consumers' parsers.
"""

from __future__ import annotations

import gc
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ..fingerprint.walk import KEY_CLASSES, SAMPLES, TAG_FORMATS, TYPES, LimitExceeded, Observations
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, input_bytes

if TYPE_CHECKING:
    pass

# The long tables of a window, one row per document and what it holds at a path (see
# drift.features.fingerprint.walk for what each holds).
TABLES = {
    "tags": ("input_id", "path", "type", "format"),
    "keys": ("input_id", "path", "class"),
    "values": ("input_id", "path", "value"),
    "hashes": ("input_id", "path", "value"),
    **{table: ("input_id", "path", "value") for table in SAMPLES},
    "shapes": ("input_id", "shape"),
}


@cache
def _schemas() -> dict[str, dict[str, Any]]:
    import polars as pl  # here, not at the top: the workers import this module and make no frames

    value_types = {"hashes": pl.Int64, **{table: pl.Float64 for table in SAMPLES}}
    return {
        name: {c: (value_types.get(name, pl.Utf8) if c == "value" else pl.Utf8) for c in cols} for name, cols in TABLES.items()
    }


# In a batch, rows, paths, types, formats and classes are numbers (see open_payloads), as narrow as
# they can be: the batch is pickled to the parent.
_NARROW = {
    "row": np.int32,
    "path": np.int32,
    "type": np.uint8,
    "format": np.uint8,
    "class": np.uint8,
    ("hashes", "value"): np.uint32,
    ("values", "value"): np.int32,
}


def _narrowed(columns: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Observations.columns() with its number columns as narrow as they can be; texts stay lists."""
    return {
        table: {
            name: column
            if isinstance(column, list)
            else column.astype(_NARROW.get((table, name), _NARROW.get(name, column.dtype)))
            for name, column in table_columns.items()
        }
        for table, table_columns in columns.items()
        if table not in ("paths", "texts")
    } | {"paths": columns["paths"], "texts": columns["texts"]}


def _observe(target, limits: dict[str, Any], batch: Observations) -> tuple[dict[str, Any], Any]:
    """Parse one document and add it to the batch -> (its descriptors, the parsed value); InputProblem if refused."""
    data = input_bytes(target, limits["max_bytes"])
    if not data or data.isspace():  # not strip(): that copies every payload
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
    """Worker side, a batch (drift.features.isolation): per target, its opened dict or the exception it raised.

    The batch's observations are gathered as columns of numbers (drift.features.fingerprint.walk's
    Observations) into one `tables` dict that every opened dict of the batch refers to, so that it
    crosses the process boundary once, as numpy arrays (and lists of texts); the parent makes the
    window's frames and names rows and paths (PayloadFeaturizer.finish).
    """
    batch = Observations()
    tables: dict[str, Any] = {}
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
    tables.update(_narrowed(batch.columns()))
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
        self.batches: dict[int, tuple[dict[str, Any], dict[int, str]]] = {}  # id(tables) -> (tables, row -> input_id)
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
        import polars as pl

        # Rows, paths and value texts are numbered per batch: number them across batches, then
        # name them.
        batches = list(self.batches.values())
        lists: dict[str, list[list]] = {"row": [], "path": [], "text": []}
        for batch, names in batches:
            lists["row"].append([names.get(row) for row in range(len(batch["shapes"]["row"]))])
            lists["path"].append(batch["paths"])
            lists["text"].append(batch["texts"])
        names_of = {key: pl.Series(key, list(chain.from_iterable(parts)), dtype=pl.Utf8) for key, parts in lists.items()}
        names_of |= {"type": pl.Series(TYPES), "format": pl.Series(TAG_FORMATS), "class": pl.Series(KEY_CLASSES)}
        offsets_of = {key: np.cumsum([0] + [len(part) for part in parts[:-1]]) for key, parts in lists.items()}
        tables = {}
        for name, schema in _schemas().items():
            parts = [batch[name] for batch, _ in batches]
            if not parts:
                tables[name] = pl.DataFrame(schema=schema)
                continue
            columns = {}
            for column, first in parts[0].items():
                if isinstance(first, list):
                    columns[column] = pl.Series(column, list(chain.from_iterable(part[column] for part in parts)), dtype=pl.Utf8)
                    continue
                numbers = np.concatenate([part[column] for part in parts])
                key = "text" if (name, column) == ("values", "value") else column
                if key in offsets_of:  # the batch's numbering, shifted past the batches before it
                    heights = [len(part[column]) for part in parts]
                    numbers = numbers.astype(np.int64) + np.repeat(offsets_of[key], heights)
                columns[column] = names_of[key].gather(numbers) if key in names_of else pl.Series(column, numbers)
            table = pl.DataFrame(columns).rename({"row": "input_id"})
            tables[name] = table.drop_nulls("input_id").select(list(schema)).cast(schema)
        if self.schema is not None:  # the window's union JSON Schema (genson), for `drift fingerprint`
            tables["schema"] = pl.DataFrame({"schema": [orjson.dumps(self.schema.to_schema()).decode()]})
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame(), tables=tables)


class PayloadKind:
    name = "payload"
    # what each item gets (a yes/no is a 0/1 number); tests/test_conformance.py holds the featurizer to it
    descriptors = {
        "big_ints": "number",
        "bytes": "number",
        "depth": "number",
        "had_bom": "number",
        "node_count": "number",
        "top_type": "category",
    }
    tables = TABLES
    structured = True  # JSON documents: the verdict compares their structure tables, path by path
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

    def embeddings(self, config) -> dict[str, str]:
        return {}

    def featurizer(self, context, source: str) -> PayloadFeaturizer:
        return PayloadFeaturizer(keep_schema=context.keep_documents)
