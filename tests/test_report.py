"""Reports: every format renders a stored run, and text from inputs cannot inject markup."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from typer.testing import CliRunner

from drift.cli import app
from drift.report.html import html
from drift.report.render import markdown

from .conftest import BASE_DAY
from .test_pipeline import build_baseline

HOSTILE = '<script>alert("x")</script>'


def hostile_summary() -> dict:
    finding = {
        "check": "schema_breaking", "target": f"$.{HOSTILE} type", "method": "chi2", "statistic": 1.0,
        "p_value": 0.001, "p_adjusted": 0.002, "effect_size": 0.4, "effect_threshold": 0.05, "n_ref": 100,
        "n_cur": 100, "status": "drift", "severity": "critical",
        "detail": {"old": "number 100%", "new": f"string 31% {HOSTILE}", "examples": ['<img src=x onerror="alert(1)">']},
    }
    return {
        "run_id": "r1", "job": "shop", "status": "completed",
        "window": {"start": "2026-11-02T00:00:00+00:00", "end": "2026-11-03T00:00:00+00:00"},
        "baseline": {"name": "<b>base</b>", "window": {"start": "2026-10-01", "end": "2026-11-01"}},
        "encoder": None,
        "log_rejects": [{"reason": "missing_id", "n_rows": 1, "examples": HOSTILE}],
        "segments": [{"kind": "payload", "source": HOSTILE, "status": "ok", "n_population": 100, "n_sampled": 100,
                      "n_errors": 0, "errors": {}, "n_checks": 3, "drifted": True, "severity": "critical",
                      "findings": [finding]}],
        "alerts": [{"severity": "critical", "dedup_key": f"drift/shop/payload/{HOSTILE}/schema_breaking",
                    "title": f"[critical] shop: payload/{HOSTILE}"}],
    }


def test_html_escapes_everything_that_comes_from_inputs():
    page = html(hostile_summary())
    assert "<script" not in page and "<img" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_markdown_makes_input_text_inert():
    text = markdown(hostile_summary())
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
