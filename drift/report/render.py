"""Reports of a stored run (its record, drift.record): Markdown here, HTML in html.py, JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path
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
    if value != 0 and (abs(value) < 10 ** -digits or abs(value) >= 1e5):
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
    """One sentence per encoder the run used (see drift.embed.identity)."""
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
        sentences.append(f"Image encoder: open_clip {clip['model']}, {label}; weights sha256 {clip['weights_sha256'][:16]}.")
    if "text" in encoders:
        text = encoders["text"]
        sentences.append(
            f"Text encoder: sentence-transformers {text['model']} ({text['source']}); weights sha256 {text['weights_sha256'][:16]}."
        )
    return " ".join(sentences)


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Drift report: {md(summary['job'])}, {summary['window']['start'][:10]}",
        "",
        f"Run `{summary['run_id']}`, window {summary['window']['start']} to {summary['window']['end']}, "
        f"baseline `{md(summary['baseline']['name'])}` ({summary['baseline']['window']['start'][:10]} to "
        f"{summary['baseline']['window']['end'][:10]}).",
        "",
        encoder_line(summary.get("encoder")),
        "",
        *([f"False pages: {summary['error_control']['statement']}.", ""] if summary.get("error_control") else []),
        "## Verdicts",
        "",
        "| segment | verdict | sampled | errors | checks |",
        "|---|---|---:|---:|---:|",
    ]
    for seg in summary["segments"]:
        verdict = SEVERITY_MARK[seg["severity"]] if seg["status"] == "ok" else seg["status"].replace("_", " ")
        if seg["drifted"] and seg["severity"] == "none":
            verdict = "drift (below paging)"
        lines.append(
            f"| {md(seg['kind'])}/{md(seg['source'])} | {verdict} | {seg['n_sampled']} | {seg['n_errors']} | {seg['n_checks']} |"
        )
    if summary["alerts"]:
        lines += ["", "## Alerts", ""]
        lines += [f"- **{a['severity']}** {md(a['title'])} (`{md(a['dedup_key'])}`)" for a in summary["alerts"]]
    for seg in summary["segments"]:
        if not seg["findings"]:
            continue
        lines += [
            "",
            f"## {md(seg['kind'])}/{md(seg['source'])}",
            "",
            "| check | target | status | method | p | p (BH) | effect | threshold | was | now | examples |",
            "|---|---|---|---|---:|---:|---:|---:|---|---|---|",
        ]
        for f in seg["findings"]:
            detail = f.get("detail", {})
            examples = ", ".join(md(e) for e in detail.get("examples", [])[:3])
            was, now = states(detail)
            lines.append(
                f"| {f['check']} | {md(f['target'])} | {f['status']} | {f['method']} | {number(f['p_value'])} | "
                f"{number(f['p_adjusted'])} | {number(f['effect_size'])} | {number(f['effect_threshold'])} | {md(was)} | "
                f"{md(now)} | {examples} |"
            )
    if summary.get("internal_errors"):
        lines += ["", "## Inputs drift's own code failed on", "",
                  f"{len(summary['internal_errors'])} input(s) met a bug in drift, not a problem with the input; they are left "
                  "out of the error-rate checks. Please report it with the traceback in summary.json.", "",
                  "| segment | input | error |", "|---|---|---|"]
        lines += [f"| {md(e['kind'])}/{md(e['source'])} | {md(e['input_id'])} | {md(e['message'])} |" for e in summary["internal_errors"][:20]]
    if summary.get("log_rejects"):
        lines += ["", "## Log rows that broke the contract", "", "| reason | rows | examples |", "|---|---:|---|"]
        lines += [f"| {r['reason']} | {r['n_rows']} | {md(r['examples'] or '')} |" for r in summary["log_rejects"]]
    if summary.get("stages"):
        lines += ["", "## Cost", "", "| stage | seconds | items | CPU s | peak RSS MB |", "|---|---:|---:|---:|---:|"]
        lines += [
            f"| {s['stage']} | {s['seconds']:.2f} | {s['items']} | {s['cpu_seconds']:.2f} | {s['peak_rss_mb']:.0f} |"
            for s in summary["stages"]
        ]
    return "\n".join(lines) + "\n"


def render(summary: dict[str, Any], fmt: str) -> str:
    from .html import html

    if fmt == "json":
        return json.dumps(summary, indent=2, default=str) + "\n"
    return {"md": markdown, "html": html}[fmt](summary)


FORMATS = {"json": "summary.json", "md": "report.md", "html": "report.html"}


def write_reports(summary: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {fmt: directory / name for fmt, name in FORMATS.items()}
    for fmt, path in paths.items():
        path.write_text(render(summary, fmt))
    return paths


def load_summary(database: Path, job: str, run: str) -> dict[str, Any]:
    """A stored run's summary: `run` is a run id, or `latest` (the most recent window)."""
    from ..errors import DriftError
    from ..store import connect_reader, load_run

    con = connect_reader(database)
    try:
        record = load_run(con, job, run)
    finally:
        con.close()
    if record is None:
        raise DriftError(f"no run {run!r} of job {job!r} in {database}" + ("" if run == "latest" else "; try `latest`"))
    return record.as_dict()
