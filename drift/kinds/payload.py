"""Tool-response payloads: JSON parsed under limits and reduced to a structure fingerprint.

Paths look like `$.items[].price`: every array element shares the path `[]`, and an object whose
keys all look like identifiers (numbers, UUIDs, dates, long hex) is a map and collapses to `{*}`,
so that tomorrow's new ids never look like new fields.

Per payload the worker returns the set of (path, type) pairs it holds, with types null, bool,
int, float, string, object, array. The parent compares, per path:

* presence among payloads where the path's parent is present (an optional parent must not fake
  drift in its children): a drop is breaking, a new path is additive;
* the type mix: a new dominant type, or nulls where there were none, is breaking.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import orjson
import polars as pl

from ..stats.tests import TestResult, proportion_test, type_mix_test
from .base import DescriptorFeaturizer, FeatureSet, InputProblem, read_limited

_ID_KEY = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d{2}-\d{2}.*|[0-9a-f]{12,})$",
    re.IGNORECASE,
)
MAP_MIN_KEYS = 2
MAX_EXAMPLES = 5
# A path held by fewer payloads than this, in both windows together, is not tested: even 0 of 100
# against 5 of 100 is not significant (Fisher p = 0.06), and a heterogeneous source would
# otherwise cost one test per rare path.
MIN_SUPPORT = 5


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "array"


def _is_map(obj: dict) -> bool:
    return len(obj) >= MAP_MIN_KEYS and all(_ID_KEY.match(k) for k in obj)


def fingerprint(value: Any, max_depth: int, max_array: int) -> tuple[set[tuple[str, str]], dict[str, float]]:
    """(path, type) pairs present in one document, plus its size descriptors."""
    pairs: set[tuple[str, str]] = set()
    nodes = 0
    deepest = 0
    stack: list[tuple[str, Any, int]] = [("$", value, 0)]
    while stack:
        path, node, depth = stack.pop()
        nodes += 1
        deepest = max(deepest, depth)
        if depth > max_depth:
            raise InputProblem("too_deep", f"nesting deeper than {max_depth}")
        kind = _type_name(node)
        pairs.add((path, kind))
        if kind == "object":
            if _is_map(node):
                for child in node.values():
                    stack.append((f"{path}.{{*}}", child, depth + 1))
            else:
                for key, child in node.items():
                    stack.append((f"{path}.{key}", child, depth + 1))
        elif kind == "array":
            if len(node) > max_array:
                raise InputProblem("too_large", f"an array of {len(node)} items, over the limit of {max_array}")
            for child in node:
                stack.append((f"{path}[]", child, depth + 1))
    return pairs, {"node_count": float(nodes), "depth": float(deepest)}


def open_payload(target, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: JSON text or file -> structure pairs and descriptors."""
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
    pairs, sizes = fingerprint(value, limits["max_depth"], limits["max_array"])
    return {
        "descriptors": {
            "bytes": float(len(data)),
            **sizes,
            "top_type": _type_name(value),
            "had_bom": float(had_bom),
        },
        "pairs": sorted(pairs),
    }


class PayloadFeaturizer(DescriptorFeaturizer):
    def __init__(self) -> None:
        super().__init__()
        self.paths: list[tuple[str, str, str]] = []

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        super().add(input_id, opened)
        self.paths.extend((input_id, path, kind) for path, kind in opened["pairs"])

    def finish(self) -> FeatureSet:
        paths = pl.DataFrame(
            self.paths, schema={"input_id": pl.Utf8, "path": pl.Utf8, "type": pl.Utf8}, orient="row"
        )
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame(), tables={"paths": paths})


def _parent(path: str) -> str:
    if path.endswith("[]"):
        return path[:-2]
    return path.rsplit(".", 1)[0] if "." in path else "$"


def _path_stats(paths: pl.DataFrame) -> tuple[dict[str, set[str]], dict[str, dict[str, set[str]]]]:
    """Which items hold each path, and which items hold it with each type."""
    holders: dict[str, set[str]] = {}
    typed: dict[str, dict[str, set[str]]] = {}
    for input_id, path, kind in paths.iter_rows():
        holders.setdefault(path, set()).add(input_id)
        typed.setdefault(path, {}).setdefault(kind, set()).add(input_id)
    return holders, typed


def _counts(typed: dict[str, set[str]]) -> Counter:
    """Type counts at one path; an item counts once per type it holds there."""
    return Counter({kind: len(ids) for kind, ids in typed.items()})


def _describe_mix(counter: Counter) -> str:
    total = sum(counter.values()) or 1
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in counter.most_common(3))


def structure_checks(ref: FeatureSet, cur: FeatureSet) -> list[TestResult]:
    ref_holders, ref_types = _path_stats(ref.tables["paths"])
    cur_holders, cur_types = _path_stats(cur.tables["paths"])
    results: list[TestResult] = []
    for path in sorted(set(ref_holders) | set(cur_holders)):
        if path == "$":
            continue
        parent = _parent(path)
        n_ref = len(ref_holders.get(parent, ()))
        n_cur = len(cur_holders.get(parent, ()))
        if n_ref == 0 or n_cur == 0:
            continue  # the parent itself is new or gone: reported at the parent
        k_ref = len(ref_holders.get(path, ()))
        k_cur = len(cur_holders.get(path, ()))
        if k_ref + k_cur < MIN_SUPPORT:
            continue
        lacking = sorted(cur_holders.get(parent, set()) - cur_holders.get(path, set()))[:MAX_EXAMPLES]
        presence = proportion_test(k_ref, n_ref, k_cur, n_cur, alternative="two-sided")
        if k_cur < k_ref * n_cur / n_ref:
            family, old, new, examples = "schema_breaking", k_ref / n_ref, k_cur / n_cur, lacking
        else:
            family, old, new = "schema_additive", k_ref / n_ref, k_cur / n_cur
            examples = sorted(cur_holders.get(path, set()) - ref_holders.get(path, set()))[:MAX_EXAMPLES]
        results.append(
            presence.labelled(
                family=family,
                target=f"{path} presence",
                detail={"old": f"present {100 * old:.0f}%", "new": f"present {100 * new:.0f}%", "examples": examples},
            )
        )
        if path in ref_types and path in cur_types:
            mix = type_mix_test(_counts(ref_types[path]), _counts(cur_types[path]))
            new_types = set(cur_types[path]) - set(ref_types[path])
            changed = sorted(set().union(*(cur_types[path][t] for t in new_types)))[:MAX_EXAMPLES] if new_types else []
            results.append(
                mix.labelled(
                    family="schema_breaking",
                    target=f"{path} type",
                    detail={
                        "old": _describe_mix(_counts(ref_types[path])),
                        "new": _describe_mix(_counts(cur_types[path])),
                        "examples": changed,
                    },
                )
            )
    return results


class PayloadKind:
    name = "payload"
    open_input = staticmethod(open_payload)

    def limits(self, context) -> dict[str, Any]:
        section = context.config.payload
        return {"max_bytes": section.max_bytes, "max_depth": section.max_depth, "max_array": section.max_array}

    def timeout(self, context) -> float:
        return context.config.payload.timeout_s

    def encoders(self, config) -> set[str]:
        return set()

    def featurizer(self, context, source: str) -> PayloadFeaturizer:
        return PayloadFeaturizer()

    def extra_checks(self, ref: FeatureSet, cur: FeatureSet, context) -> list[TestResult]:
        return structure_checks(ref, cur)
