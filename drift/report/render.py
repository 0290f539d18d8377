"""Reports of a stored run (its record, drift.record): Markdown here, HTML in html.py, JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .html import html
from .text import SEVERITY_MARK, encoder_line, md, number, states


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
        "## What changed",
        "",
        *_changes(summary),
        "",
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


def _changes(summary: dict[str, Any]) -> list[str]:
    drifted = [s for s in summary["segments"] if s.get("drifted") and s.get("changes")]
    if not drifted:
        return ["Nothing changed: every tested segment matches the baseline."]
    return [f"- **{s['severity']}** {md(s['kind'])}/{md(s['source'])}: {md(s['changes'][0])}" for s in drifted]


def render(summary: dict[str, Any], fmt: str, pictures: dict | None = None) -> str:
    """`pictures`: thumbnails for the HTML report (report.pictures)."""
    if fmt == "json":
        return json.dumps(summary, indent=2, default=str) + "\n"
    if fmt == "html":
        return html(summary, pictures)
    return markdown(summary)


FORMATS = {"json": "summary.json", "md": "report.md", "html": "report.html"}


def write_reports(summary: dict[str, Any], directory: Path, pictures: dict | None = None) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {fmt: directory / name for fmt, name in FORMATS.items()}
    for fmt, path in paths.items():
        path.write_text(render(summary, fmt, pictures))
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
