"""Numbers, states and input text as the reports write them (Markdown and HTML share these)."""

from __future__ import annotations

import re
from typing import Any

SEVERITY_MARK = {"none": "ok", "info": "info", "warning": "WARNING", "critical": "CRITICAL"}


_UNSAFE = re.compile(r"([\\`*_{}\[\]<>|#])")


def md(value: Any) -> str:
    """Text from inputs, made inert in Markdown (and in the HTML a Markdown viewer makes of it)."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _UNSAFE.sub(r"\\\1", text).replace("&", "&amp;")


def number(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value != 0 and (abs(value) < 10**-digits or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.{digits}f}"


def states(detail: dict) -> tuple[str, str]:
    """The finding's evidence as 'was' and 'now': stated states, or medians and means."""
    if "old" in detail or "new" in detail:
        return str(detail.get("old", "")), str(detail.get("new", ""))
    if "ref_median" in detail:
        return (
            f"median {number(detail['ref_median'])}, mean {number(detail.get('ref_mean'))}",
            f"median {number(detail['cur_median'])}, mean {number(detail.get('cur_mean'))}",
        )
    if "ref_top" in detail:
        share = lambda top: ", ".join(f"{k} {100 * v:.0f}%" for k, v in top.items())  # noqa: E731
        return share(detail["ref_top"]), share(detail["cur_top"])
    return "", ""


def encoder_line(encoders: dict | None) -> str:
    """One sentence per encoder the run used (see drift.features.embed.identity)."""
    if not encoders:
        return "Encoders: none (no image or document segments)."
    sentences = []
    if "clip" in encoders:
        clip = encoders["clip"]
        label = {
            "untrained": f"UNTRAINED (seeded random weights, seed {clip.get('seed')}): a dimensionality reducer, not a semantic model",
            "checkpoint": f"local checkpoint {clip.get('pretrained')}",
            "hub": f"open_clip tag {clip.get('pretrained')}",
        }[clip["source"]]
        runtime = clip.get("backend")
        ran = f"; run by ONNX Runtime {runtime['version']} (graph sha256 {runtime['graph_sha256'][:16]})" if runtime else ""
        sentences.append(
            f"Image encoder: open_clip {clip['model']}, {label}; weights sha256 {clip['weights_sha256'][:16]}{ran}{_where(clip)}."
        )
    if "text" in encoders:
        text = encoders["text"]
        sentences.append(
            f"Text encoder: sentence-transformers {text['model']} ({text['source']}); weights sha256 {text['weights_sha256'][:16]}"
            f"{_where(text)}."
        )
    return " ".join(sentences)


def _where(encoder: dict) -> str:
    """Where it ran, when not on a CPU in fp32 (identities recorded before devices count as that)."""
    if encoder.get("device", "cpu") == "cpu":
        return ""
    return f"; on {encoder.get('device_name') or encoder['device']}, {encoder.get('precision', 'fp32')}"


def hit_rate(stage) -> str:
    """A stage's feature-cache hits as the cost tables print them: "97% (291 of 300)", or blank."""
    if stage.hit_rate is None:
        return ""
    return f"{stage.hit_rate:.0%} ({stage.cache_hits} of {stage.cache_hits + stage.cache_misses})"
