"""Reports of a stored run (its record, drift.record): Markdown here, HTML in html.py, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..record import RunRecord, Segment
from ..verdict.headline import noticeable
from .html import html
from .text import SEVERITY_MARK, encoder_line, hit_rate, md, number, states


def verdict_label(segment: Segment) -> str:
    """A segment's verdict in a word: its severity when tested, else why it was not."""
    if not segment.status.tested:
        return segment.status.label
    if segment.drifted and segment.severity == "none":
        return "drift (below paging)"
    return SEVERITY_MARK[segment.severity]


def markdown(record: RunRecord) -> str:
    lines = [
        f"# Drift report: {md(record.job)}, {record.day}",
        "",
        f"Run `{record.run_id}`, window {record.window.start} to {record.window.end}, "
        f"baseline `{md(record.baseline.name)}` ({record.baseline.window.start[:10]} to "
        f"{record.baseline.window.end[:10]}).",
        "",
        encoder_line(record.encoder),
        "",
        *([f"False pages: {record.error_control.statement}.", ""] if record.error_control else []),
        "## What changed",
        "",
        *_changes(record),
        "",
        "## Verdicts",
        "",
        "| segment | verdict | sampled | errors | checks | power (90% chance of a page) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for seg in record.segments:
        lines.append(
            f"| {md(seg.kind)}/{md(seg.source)} | {verdict_label(seg)} | {seg.n_sampled} | {seg.n_errors} | {seg.n_checks} "
            f"| {md(noticeable(seg.kind, seg.detectable))} |"
        )
    if record.alerts:
        lines += ["", "## Alerts", ""]
        lines += [f"- **{a.severity}** {md(a.title)} (`{md(a.dedup_key)}`)" for a in record.alerts]
    for seg in record.segments:
        if not seg.findings:
            continue
        lines += [
            "",
            f"## {md(seg.kind)}/{md(seg.source)}",
            "",
            "| check | target | status | method | p | p (BH) | effect | threshold | was | now | examples |",
            "|---|---|---|---|---:|---:|---:|---:|---|---|---|",
        ]
        for f in seg.findings:
            examples = ", ".join(md(e) for e in f.detail.get("examples", [])[:3])
            was, now = states(f.detail)
            lines.append(
                f"| {f.check} | {md(f.target)} | {f.status} | {f.method} | {number(f.p_value)} | "
                f"{number(f.p_adjusted)} | {number(f.effect_size)} | {number(f.effect_threshold)} | {md(was)} | "
                f"{md(now)} | {examples} |"
            )
    if record.internal_errors:
        lines += [
            "",
            "## Inputs drift's own code failed on",
            "",
            f"{len(record.internal_errors)} input(s) met a bug in drift, not a problem with the input; they are left "
            "out of the error-rate checks. Please report it with the traceback in summary.json.",
            "",
            "| segment | input | error |",
            "|---|---|---|",
        ]
        lines += [f"| {md(e.kind)}/{md(e.source)} | {md(e.input_id)} | {md(e.message)} |" for e in record.internal_errors[:20]]
    if record.log_rejects:
        lines += ["", "## Log rows that broke the contract", "", "| reason | rows | examples |", "|---|---:|---|"]
        lines += [f"| {r.reason} | {r.n_rows} | {md(r.examples or '')} |" for r in record.log_rejects]
    if record.stages:
        lines += [
            "",
            "## Cost",
            "",
            "| stage | seconds | items | CPU s | peak RSS MB | cache hits |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {s.stage} | {s.seconds:.2f} | {s.items} | {s.cpu_seconds:.2f} | {s.peak_rss_mb:.0f} | {hit_rate(s)} |"
            for s in record.stages
        ]
    return "\n".join(lines) + "\n"


def _changes(record: RunRecord) -> list[str]:
    drifted = [s for s in record.segments if s.drifted and s.changes]
    if not drifted:
        return ["Nothing changed: every tested segment matches the baseline."]
    return [f"- **{s.severity}** {md(s.kind)}/{md(s.source)}: {md(s.headline)}" for s in drifted]


def render(record: RunRecord, fmt: str, pictures: dict | None = None) -> str:
    """`pictures`: thumbnails for the HTML report (report.pictures)."""
    if fmt == "json":
        return json.dumps(record.as_dict(), indent=2, default=str) + "\n"
    if fmt == "html":
        return html(record, pictures)
    return markdown(record)


FORMATS = {"json": "summary.json", "md": "report.md", "html": "report.html"}


def write_reports(record: RunRecord, directory: Path, pictures: dict | None = None) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {fmt: directory / name for fmt, name in FORMATS.items()}
    for fmt, path in paths.items():
        path.write_text(render(record, fmt, pictures))
    return paths


def load_record(database: Path, job: str, run: str) -> RunRecord:
    """A stored run's record: `run` is a run id, or `latest` (the most recent window)."""
    from ..errors import DriftError
    from ..store import connect_reader, load_run

    con = connect_reader(database)
    try:
        record = load_run(con, job, run)
    finally:
        con.close()
    if record is None:
        raise DriftError(f"no run {run!r} of job {job!r} in {database}" + ("" if run == "latest" else "; try `latest`"))
    return record
