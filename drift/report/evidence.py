"""What a report shows of a drifted segment, computed once while both windows' features are at hand.

The record (drift.record) keeps it, so a report drawn again months later from the store shows the
same pictures: distributions as shares on shared bins, category mixes as shares, the current items
least like the baseline and a few typical baseline items (ids and files; their thumbnails are made
when a report is written, in isolated workers), and one payload with the changed path marked.
Everything is small and bounded, whatever the window's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import polars as pl

from ..features.featureset import FeatureSet
from ..record import Evidence, Family, Finding, InputKind, plain
from ..sources.log import local_path
from ..verdict.headline import ordered

BINS = 24
MAX_PLOTS = 6  # distributions, and again bar charts, per segment
MAX_CATEGORIES = 8
MAX_UNLIKE = 6
MAX_TYPICAL = 4
MAX_LINES = 40  # of the payload example
MAX_VALUE = 60  # characters of one value in it
MAX_PAYLOAD_BYTES = 1 << 20  # a payload read back from its file for the example


def collect(
    kind: str, source: str, ref: FeatureSet, cur: FeatureSet, findings: list[Finding], rows: pl.DataFrame | None
) -> Evidence:
    """Evidence for one drifted segment, in the order of its sentences (verdict.headline).
    `findings`: the segment's; `rows`: the window's sample (for a payload's body)."""
    drifted = [finding for _, finding in ordered(kind, source, findings)]
    evidence: dict[str, Any] = {"distributions": [], "bars": [], "unlike": [], "typical": [], "payload_example": None}
    for finding in drifted:
        target, method, family = finding.target, finding.method, finding.check
        if family is Family.DESCRIPTOR and method == "ks" and len(evidence["distributions"]) < MAX_PLOTS:
            plot = distribution(ref, cur, target)
            if plot:
                evidence["distributions"].append(plot)
        elif len(evidence["bars"]) < MAX_PLOTS and (bars := _bars(ref, cur, finding)):
            evidence["bars"].append(bars)
    if InputKind(kind).visual:
        evidence["unlike"], evidence["typical"] = _pictured_items(ref, cur, drifted)
    elif rows is not None:
        evidence["payload_example"] = payload_example(drifted, rows)
    # through JSON once: numbers from numpy become the plain values the record keeps
    return Evidence.model_validate(plain(evidence))


def distribution(ref: FeatureSet, cur: FeatureSet, name: str) -> dict[str, Any] | None:
    """Both windows' values of a numeric descriptor as shares on shared bins. The bins span the
    pooled 0.5-99.5% range (a few huge files do not squash the rest into one bar); values beyond
    are counted in the end bins. Log-spaced when the values span more than two decades."""
    if name not in ref.descriptors.columns or name not in cur.descriptors.columns:
        return None
    x, y = (_finite(fs.descriptors[name]) for fs in (ref, cur))
    if not len(x) or not len(y):
        return None
    pooled = np.concatenate([x, y])
    low, high = np.quantile(pooled, [0.005, 0.995])
    if high <= low:
        low, high = float(pooled.min()), float(pooled.max())
    if high <= low:
        high = low + 1.0
    log = bool(low > 0 and high / low > 100)
    edges = np.geomspace(low, high, BINS + 1) if log else np.linspace(low, high, BINS + 1)
    return {
        "target": name,
        "edges": [float(f"{e:.6g}") for e in edges],
        "log": log,
        "ref": _shares_in(x, edges),
        "cur": _shares_in(y, edges),
        "n_ref": int(len(x)),
        "n_cur": int(len(y)),
    }


def _finite(column: pl.Series) -> np.ndarray:
    values = column.cast(pl.Float64).to_numpy()
    return values[np.isfinite(values)]


def _shares_in(values: np.ndarray, edges: np.ndarray) -> list[float]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return [round(float(c) / len(values), 4) for c in counts]


def _bars(ref: FeatureSet, cur: FeatureSet, finding: Finding) -> dict[str, Any] | None:
    """Paired bars: a yes/no or categorical descriptor, or a payload path's type or format mix."""
    detail, target = finding.detail, finding.target
    if finding.check is Family.DESCRIPTOR and finding.method == "fisher":
        r, c = detail.get("ref_rate"), detail.get("cur_rate")
        if r is None or c is None:
            return None
        return {"target": target, "ref": {"yes": r, "no": 1 - r}, "cur": {"yes": c, "no": 1 - c}}
    if finding.check is Family.DESCRIPTOR and finding.method == "chi2":
        if target not in ref.descriptors.columns or target not in cur.descriptors.columns:
            return None
        return {"target": target, **_category_shares(ref.descriptors[target], cur.descriptors[target])}
    if "ref_shares" in detail and "cur_shares" in detail:
        return {"target": target, "ref": detail["ref_shares"], "cur": detail["cur_shares"]}
    return None


def _category_shares(ref: pl.Series, cur: pl.Series) -> dict[str, dict[str, float]]:
    ref_counts = ref.cast(pl.Utf8).fill_null("(null)").value_counts()
    cur_counts = cur.cast(pl.Utf8).fill_null("(null)").value_counts()
    counts: dict[str, list[int]] = {}
    for side, frame in enumerate((ref_counts, cur_counts)):
        for label, n in frame.iter_rows():
            counts.setdefault(label, [0, 0])[side] = n
    order = sorted(counts, key=lambda k: (-(counts[k][0] + counts[k][1]), k))
    shown, rest = order[:MAX_CATEGORIES], order[MAX_CATEGORIES:]
    out: dict[str, dict[str, float]] = {"ref": {}, "cur": {}}
    for side, name in enumerate(("ref", "cur")):
        total = sum(v[side] for v in counts.values()) or 1
        out[name] = {label: round(counts[label][side] / total, 4) for label in shown}
        if rest:
            out[name]["(other)"] = round(sum(counts[k][side] for k in rest) / total, 4)
    return out


def _pictured_items(ref: FeatureSet, cur: FeatureSet, drifted: list[Finding]) -> tuple[list[dict], list[dict]]:
    """The current items the drifted checks found least like the baseline, and the baseline items
    nearest the middle of its embedding (typical of it), each with the file it came from."""
    ids: list[str] = []
    embedding = None
    for finding in drifted:
        if finding.check in (Family.EMBEDDING, Family.DESCRIPTOR) and finding.method in ("classifier", "conformal"):
            ids += finding.detail.get("examples", [])
            if finding.check is Family.EMBEDDING and embedding is None:
                embedding = finding.subject
    unlike = _with_paths(list(dict.fromkeys(ids))[:MAX_UNLIKE], cur)
    typical: list[str] = []
    name = embedding or next(iter(ref.embeddings), None)
    matrix = ref.embeddings.get(name) if name else None
    if matrix is not None and len(matrix):
        usable = np.isfinite(matrix).all(axis=1)
        if usable.any():
            centre = np.nanmean(matrix[usable], axis=0)
            distance = np.where(usable, np.linalg.norm(np.nan_to_num(matrix) - centre, axis=1), np.inf)
            typical = [ref.ids[i] for i in np.argsort(distance, kind="stable")[:MAX_TYPICAL] if np.isfinite(distance[i])]
    return unlike, _with_paths(typical, ref)


def _with_paths(ids: list[str], features: FeatureSet) -> list[dict[str, Any]]:
    table = features.tables.get("paths")
    paths = dict(table.iter_rows()) if table is not None and table.height else {}
    return [{"input_id": i, "path": paths.get(i)} for i in ids]


def payload_example(drifted: list[Finding], rows: pl.DataFrame) -> dict[str, Any] | None:
    """One current payload behind the top payload finding, its lines marked where the path is."""
    for finding in drifted:
        examples = finding.detail.get("examples") or []
        path = finding.subject if finding.subject.startswith("$") else None
        if not examples or path is None:
            continue
        row = rows.filter(pl.col("input_id") == examples[0])
        if not row.height:
            continue
        record = row.row(0, named=True)
        body = record.get("body")
        if body is None:
            file = local_path(record.get("uri"), record.get("log_file"))
            if file is None:
                continue
            try:
                with open(file, "rb") as handle:
                    body = handle.read(MAX_PAYLOAD_BYTES + 1)
            except OSError:
                continue
            if len(body) > MAX_PAYLOAD_BYTES:
                continue
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            continue
        lines, marked = json_lines(document, path)
        if not marked:
            lines.append([f"(no line of this payload is at {path})", True])
        return {
            "input_id": examples[0],
            "target": finding.target,
            "path": path,
            "lines": lines[:MAX_LINES],
            "truncated": len(lines) > MAX_LINES,
        }
    return None


def json_lines(document: Any, marked_path: str) -> tuple[list[list[Any]], bool]:
    """The document pretty-printed as [text, marked] lines; values cut to MAX_VALUE characters.
    A line is marked when its path is `marked_path` or lies under it (paths as the fingerprint
    spells them: `$.items[].price`). The lines around the first mark are kept when it is long."""
    lines: list[list[Any]] = []
    opened: dict[str, tuple[int, int]] = {}  # an object's path -> (its first line, its indent)

    def scalar(value: Any) -> str:
        text = orjson.dumps(value).decode()
        return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + '…"'

    def walk(value: Any, path: str, indent: int, prefix: str, last: bool) -> None:
        pad, comma = "  " * indent, "" if last else ","
        hit = path == marked_path or path.startswith(marked_path + ".") or path.startswith(marked_path + "[")
        if isinstance(value, dict) and value:
            opened.setdefault(path, (len(lines), indent))
            lines.append([f"{pad}{prefix}{{", hit])
            items = list(value.items())
            for i, (key, child) in enumerate(items):
                walk(child, f"{path}.{key}", indent + 1, scalar(str(key)) + ": ", i == len(items) - 1)
            lines.append([f"{pad}}}{comma}", hit])
        elif isinstance(value, list) and value:
            lines.append([f"{pad}{prefix}[", hit])
            for i, child in enumerate(value[:3]):
                walk(child, f"{path}[]", indent + 1, "", i == min(len(value), 3) - 1 and len(value) <= 3)
            if len(value) > 3:
                lines.append([f"{pad}  … {len(value) - 3} more", hit])
            lines.append([f"{pad}]{comma}", hit])
        else:
            lines.append([f"{pad}{prefix}{scalar(value)}{comma}", hit])

    walk(document, "$", 0, "", True)
    marks = [i for i, (_, hit) in enumerate(lines) if hit]
    if not marks and "." in marked_path:
        # A key that is missing: say so inside the object that should hold it.
        parent, key = marked_path.rsplit(".", 1)
        if parent in opened:
            row, indent = opened[parent]
            lines.insert(row + 1, ["  " * (indent + 1) + f"{scalar(key)}: (missing here)", True])
            marks = [row + 1]
    if marks and len(lines) > MAX_LINES:
        start = max(0, min(marks[0] - MAX_LINES // 4, len(lines) - MAX_LINES))
        lines = ([["…", False]] if start else []) + lines[start:]
    return lines, bool(marks)
