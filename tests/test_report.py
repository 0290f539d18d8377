"""Reports: every format renders a stored run, and text from inputs cannot inject markup."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from drift.cli import app
from drift.errors import ConfigError
from drift.record import Aspect, Finding, RunRecord, target_of
from drift.report.html import html
from drift.report.render import markdown

from .conftest import BASE_DAY
from .test_pipeline import build_baseline

HOSTILE = '<script>alert("x")</script>'


def hostile_summary() -> dict:
    finding = {
        "check": "schema_breaking",
        "target": f"$.{HOSTILE} type",
        "method": "chi2",
        "statistic": 1.0,
        "p_value": 0.001,
        "p_adjusted": 0.002,
        "effect_size": 0.4,
        "effect_threshold": 0.05,
        "n_ref": 100,
        "n_cur": 100,
        "status": "drift",
        "severity": "critical",
        "detail": {"old": "number 100%", "new": f"string 31% {HOSTILE}", "examples": ['<img src=x onerror="alert(1)">']},
    }
    return {
        "run_id": "r1",
        "job": "shop",
        "status": "completed",
        "window": {"start": "2026-11-02T00:00:00+00:00", "end": "2026-11-03T00:00:00+00:00"},
        "baseline": {"name": "<b>base</b>", "window": {"start": "2026-10-01", "end": "2026-11-01"}},
        "encoder": None,
        "log_rejects": [{"reason": "missing_id", "n_rows": 1, "examples": HOSTILE}],
        "segments": [
            {
                "kind": "payload",
                "source": HOSTILE,
                "status": "ok",
                "n_population": 100,
                "n_sampled": 100,
                "n_errors": 0,
                "errors": {},
                "n_checks": 3,
                "drifted": True,
                "severity": "critical",
                "findings": [finding],
            }
        ],
        "alerts": [
            {
                "severity": "critical",
                "dedup_key": f"drift/shop/payload/{HOSTILE}/schema_breaking",
                "title": f"[critical] shop: payload/{HOSTILE}",
            }
        ],
    }


def test_html_escapes_everything_that_comes_from_inputs():
    page = html(RunRecord.model_validate(hostile_summary()))
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_markdown_makes_input_text_inert():
    text = markdown(RunRecord.model_validate(hostile_summary()))
    assert not re.search(r"(?<!\\)<", text)  # every < is backslash-escaped: literal text, not a tag
    assert "\\<script\\>" in text


def test_report_command_renders_the_latest_run_in_every_format(world, tmp_path):
    _, job = world
    build_baseline(job)
    runner = CliRunner()
    ran = runner.invoke(app, ["run", str(job), "--day", f"{BASE_DAY + timedelta(days=4):%Y-%m-%d}", "--json"])
    assert ran.exit_code == 0
    # One record of the run: what --json printed is what the store holds and every report reads.
    stored = json.loads(runner.invoke(app, ["report", str(job), "latest", "--format", "json"]).stdout)
    assert json.loads(ran.stdout) == stored
    assert stored["alert_changes"] and {s["stage"] for s in stored["stages"]} >= {"sample", "compare", "store", "deliver"}
    page = runner.invoke(app, ["report", str(job), "latest"])
    assert page.exit_code == 0 and page.stdout.startswith("<!doctype html>") and "$.total type" in page.stdout
    summary = json.loads(runner.invoke(app, ["report", str(job), "latest", "--format", "json"]).stdout)
    md = runner.invoke(app, ["report", str(job), summary["run_id"], "--format", "md", "--out", str(tmp_path / "r.md")])
    assert md.exit_code == 0 and (tmp_path / "r.md").read_text().startswith("# Drift report: t")
    missing = runner.invoke(app, ["report", str(job), "nope"])
    assert missing.exit_code == 1 and "no run 'nope' of job 't'" in missing.stderr
    assert runner.invoke(app, ["report", str(job), "--format", "pdf"]).exit_code == 1


def finding(check, subject, method, detail, *, aspect=Aspect.NONE, severity="warning", effect=0.5, statistic=None, counts=None):
    return Finding(
        check=check,
        target=target_of(subject, aspect),
        subject=subject,
        aspect=aspect,
        method=method,
        status="drift",
        severity=severity,
        effect_size=effect,
        statistic=statistic,
        detail=detail,
        n_ref=200,
        n_cur=120,
        counts=counts,
    )


def test_what_changed_is_said_in_shares_a_person_reads():
    from drift.verdict.headline import ranked, sentence

    scans = finding("descriptor", "text_layer", "fisher", {"ref_rate": 1.0, "cur_rate": 0.54})
    assert sentence("document", "invoices", scans)[1] == (
        "46% of invoices documents now have no text layer, against none in the baseline."
    )
    dark = finding(
        "descriptor",
        "brightness_mean",
        "ks",
        {"ref_median": 120.0, "cur_median": 80.0, "below_ref_p01": 0.15, "above_ref_p99": 0.0},
    )
    assert sentence("image", "app", dark)[1] == (
        "15% of app images are darker than 99% of the baseline (brightness: median 80 against 120 in the baseline, 0.67x)."
    )
    bigger = finding(
        "descriptor",
        "file_bytes",
        "ks",
        {"ref_median": 1000.0, "cur_median": 1500.0, "below_ref_p01": 0.0, "above_ref_p99": 0.03},
        statistic=0.3,
    )
    assert sentence("document", "d", bigger) == (
        0.3,
        "The file size of d documents moved: median 1,500 against 1,000 in the "
        "baseline, 1.5x; 3% are larger than 99% of the baseline.",
    )
    producer = finding(
        "descriptor", "producer_family", "chi2", {"ref_top": {"office": 1.0}, "cur_top": {"office": 0.6, "scanner": 0.4}}
    )
    assert (
        "40% of d documents now have producing software 'scanner', against none in the baseline."
        == sentence("document", "d", producer)[1]
    )
    errors = finding(
        "error_rate",
        "all",
        "fisher",
        {"ref_rate": 0.0, "cur_rate": 0.2, "old": "0/200 failed", "new": "24/120 failed"},
        aspect=Aspect.INPUT_ERRORS,
        severity="critical",
        counts=(0, 24),
    )
    assert sentence("image", "app", errors)[1] == "20% of app images could not be read (24 of 120), against none in the baseline."
    gone = finding(
        "schema_breaking",
        "$.customer.email",
        "fisher",
        {"ref_rate": 1.0, "cur_rate": 0.72},
        aspect=Aspect.PRESENCE,
        severity="critical",
    )
    assert (
        sentence("payload", "orders", gone)[1]
        == "$.customer.email is missing from 28% of orders payloads, against none in the baseline."
    )
    novel = finding("embedding", "clip", "conformal", {"novel_share": 0.3, "expected_share": 0.01})
    # Severity first; then what names a change before what only says items differ; one sentence per target.
    assert ranked("image", "app", [novel, dark, errors, dark.model_copy(update={"method": "mmd"})]) == [
        sentence("image", "app", errors)[1],
        sentence("image", "app", dark)[1],
        sentence("image", "app", novel)[1],
    ]


def test_a_payload_example_marks_the_changed_path_and_a_missing_key():
    from drift.report.evidence import MAX_LINES, json_lines

    document = {"total": "12.50", "customer": {"id": 3}, HOSTILE: 1, "items": [{"sku": "a"}] * 5}
    lines, marked = json_lines(document, "$.total")
    assert marked and [text for text, hit in lines if hit] == ['  "total": "12.50",']
    lines, marked = json_lines(document, "$.customer.email")
    assert marked and [text for text, hit in lines if hit] == ['    "email": (missing here)']
    assert any('"<script>alert(\\"x\\")</script>": 1,' in text for text, _ in lines)  # kept as text; html escapes it
    assert ["    … 2 more", False] in lines  # three items of five shown
    long = {f"k{i}": i for i in range(200)}
    lines, _ = json_lines({**long, "z": {"deep": "x" * 500}}, "$.z.deep")
    assert len(lines) <= MAX_LINES + 1 and any(hit and "…" in text for text, hit in lines)


def drifted_summary(n_segments: int) -> dict:
    """A summary with every kind of evidence, for `n_segments` drifted segments."""
    summary = hostile_summary()
    base = summary["segments"][0]
    edges = [float(e) for e in range(25)]
    evidence = {
        "distributions": [
            {
                "target": "file_bytes",
                "edges": edges,
                "log": False,
                "ref": [1 / 24] * 24,
                "cur": [0.0] * 23 + [1.0],
                "n_ref": 200,
                "n_cur": 100,
            }
        ]
        * 6,
        "bars": [{"target": "format", "ref": {HOSTILE: 0.5, "JPEG": 0.5}, "cur": {HOSTILE: 0.9, "$x$": 0.1}}] * 6,
        "unlike": [{"input_id": f"{HOSTILE}-{i}", "path": None} for i in range(6)],
        "typical": [{"input_id": f"base-{i}", "path": None} for i in range(4)],
        "payload_example": {
            "input_id": "o-1",
            "target": "$.total type",
            "path": "$.total",
            "truncated": False,
            "lines": [["{", False], [f'  "{HOSTILE}": 1,', False], ['  "total": "1.00"', True], ["}", False]],
        },
    }
    summary["segments"] = [
        {**base, "kind": "image", "source": f"s{i}", "changes": [f"{HOSTILE} changed in s{i}"], "evidence": evidence}
        for i in range(n_segments)
    ]
    summary["history"] = {
        f"image/s{i}": [
            {"window_start": f"2026-10-{d:02d}", "status": "ok", "drifted": d > 29, "severity": "warning" if d > 29 else "none"}
            for d in range(3, 32)
        ]
        + [{"window_start": "2026-11-02", "status": "ok", "drifted": True, "severity": "critical"}]
        for i in range(n_segments)
    }
    return summary


def test_the_html_report_pictures_the_evidence_inertly_and_says_since_when():
    summary = drifted_summary(2)
    picture = "data:image/jpeg;base64,AAAA"
    page = html(RunRecord.model_validate(summary), {("image", f"{HOSTILE}-0"): picture})
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("<svg") == 24 and "<script" not in page and "<img src=x" not in page
    assert page.count(f"<img src='{picture}'") == 2  # the one thumbnail there is, in each segment
    assert "no picture: file gone or left out" in page
    assert "<mark>  &quot;total&quot;: &quot;1.00&quot;</mark>" in page
    assert "since 2026-10-30, 3 nights" in page  # the strip's run of drifted nights, to tonight
    # the strip, in the verdicts table and atop each segment's evidence
    assert page.count("<i class='critical today'") == 4 and page.count("<i class='warning'") == 8


def test_the_html_report_stays_under_its_size_bound_however_many_findings():
    from drift.report.html import MAX_BYTES

    page = html(RunRecord.model_validate(drifted_summary(400)))
    assert len(page.encode()) < MAX_BYTES
    assert "picture(s) were left out to keep this page under 5 MB" in page
    assert page.count("<li>") >= 400  # every segment's words are still there


def test_alerts_link_the_html_report_where_the_reports_folder_is_served(world):
    from drift.config import load_job
    from drift.pipeline import day_window, report_link

    _, job = world
    config = load_job(job)
    assert report_link(config, day_window(config, "2026-03-05")) == str(config.report.dir / "t" / "2026-03-05" / "report.html")
    job.write_text(job.read_text() + '\n[report]\nurl = "https://drift.example.com/reports/"\n')
    served = load_job(job)
    assert report_link(served, day_window(served, "2026-03-05")) == "https://drift.example.com/reports/t/2026-03-05/report.html"
    job.write_text(job.read_text().replace("https://drift.example.com/reports/", "drift.example.com"))
    with pytest.raises(ConfigError, match=r"\[report\] url"):
        load_job(job)
