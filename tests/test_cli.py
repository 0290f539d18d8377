"""The command line: exit codes, one-line errors, and the --json summary's documented shape."""

from __future__ import annotations

import json
from datetime import timedelta

from typer.testing import CliRunner

from drift.cli import app

from .conftest import BASE_DAY

runner = CliRunner()


def test_json_summary_has_the_documented_shape(world):
    _, job = world
    built = runner.invoke(app, ["baseline", "build", str(job), "--start", "2026-03-01", "--end", "2026-03-04", "--quiet"])
    assert built.exit_code == 0, built.output
    assert "baseline 'ref': 3 segments, 360 items, 0 input errors" in built.output
    result = runner.invoke(app, ["run", str(job), "--day", f"{BASE_DAY + timedelta(days=4):%Y-%m-%d}", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {"run_id", "job", "window", "status", "segments", "alerts"} <= set(summary)
    assert summary["window"] == {"start": "2026-03-05T00:00:00+00:00", "end": "2026-03-06T00:00:00+00:00"}
    segment = summary["segments"][0]
    assert {"kind", "source", "n_sampled", "n_errors", "drifted", "severity", "findings"} <= set(segment)
    finding = next(f for s in summary["segments"] for f in s["findings"])
    assert {"check", "target", "method", "statistic", "p_value", "effect_size", "severity"} <= set(finding)
    assert {a["severity"] for a in summary["alerts"]} <= {"info", "warning", "critical"}
    assert all(s["severity"] in ("none", "info", "warning", "critical") for s in summary["segments"])


def open_image_with_a_bug(target, limits):
    """The image kind's opener with a bug of ours in it, for two of the day's photos. Module-level:
    the worker processes import it by name."""
    from drift.features.kinds.image import open_image

    if str(target).endswith(("img_3.jpg", "img_7.jpg")):
        return {}["a key our code forgot"]
    return open_image(target, limits)


def test_a_bug_of_ours_in_a_worker_is_internal_not_an_input_error(world, monkeypatch):
    _, job = world
    built = runner.invoke(app, ["baseline", "build", str(job), "--start", "2026-03-01", "--end", "2026-03-04", "--quiet"])
    assert built.exit_code == 0, built.output
    from drift.features.kinds import KINDS

    monkeypatch.setattr(KINDS["image"], "open_input", open_image_with_a_bug)
    result = runner.invoke(app, ["run", str(job), "--day", f"{BASE_DAY + timedelta(days=3):%Y-%m-%d}", "--json"])
    assert result.exit_code == 3, result.output
    assert "2 input(s) met a bug in drift" in result.stderr
    summary = json.loads(result.stdout)
    internal = summary["internal_errors"]
    assert [e["message"] for e in internal] == ["KeyError: 'a key our code forgot'"] * 2
    assert all("open_image_with_a_bug" in e["traceback"] for e in internal)
    photos = next(s for s in summary["segments"] if s["source"] == "app")
    # Not input errors: no error-rate finding, no error count; the other 38 photos are compared.
    assert photos["n_errors"] == 0 and photos["n_internal"] == 2 and photos["errors"] == {}
    assert not any(f["check"] == "error_rate" and f["status"] != "no_drift" for f in photos["findings"])


def test_errors_exit_1_with_one_line(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"drift: error: {tmp_path / 'missing.toml'}: job file not found"


def test_bad_day_and_missing_baseline(world):
    _, job = world
    result = runner.invoke(app, ["run", str(job), "--day", "03/05/2026"])
    assert result.exit_code == 1 and "expected a day as YYYY-MM-DD" in result.stderr
    result = runner.invoke(app, ["run", str(job), "--day", "2026-03-05"])
    assert result.exit_code == 1 and "no baseline at" in result.stderr


def test_validate_shows_resolved_paths(world):
    root, job = world
    result = runner.invoke(app, ["validate", str(job)])
    assert result.exit_code == 0
    assert f"store     {root / 'drift.duckdb'}" in result.stdout


def test_usage_errors_exit_2():
    assert runner.invoke(app, ["run"]).exit_code == 2


def test_fingerprint_exports_mergeable_fingerprints_and_a_union_schema(world, tmp_path):
    import polars as pl

    from drift.features.fingerprint import summary

    _, job = world
    days = []
    for offset in (3, 4):
        folder = tmp_path / f"day{offset}"
        result = runner.invoke(
            app, ["fingerprint", str(job), "--day", f"{BASE_DAY + timedelta(days=offset):%Y-%m-%d}", "--out", str(folder), "-q"]
        )
        assert result.exit_code == 0, result.output
        assert "orders: 40 payloads, 0 input errors" in result.stdout
        days.append(pl.read_parquet(folder / "orders.fingerprint.parquet"))
    schema = json.loads((tmp_path / "day4" / "orders.schema.json").read_text())
    assert schema["properties"]["total"]["type"] == ["number", "string"]  # day 5 sends half its totals as strings
    both = summary.row_of(summary.merge(*days))["$.total"]
    assert both["docs"] == 80 and both["t_string"] == 20 and both["f_numeric"] == 20
    missing = runner.invoke(
        app, ["fingerprint", str(job), "--day", "2026-03-04", "--out", str(tmp_path / "x"), "--source", "nope", "-q"]
    )
    assert missing.exit_code == 1 and "no payloads of source 'nope'" in missing.stderr


def test_an_exception_we_did_not_expect_is_a_bug_with_its_traceback_and_exit_3(tmp_path):
    """Errors drift understands are one line (exit 1); anything else is ours: traceback, then a last
    line that says it is a bug (exit 3), never dressed up as a one-line user error."""
    import subprocess
    import sys

    script = (
        "import sys, drift.cli as cli, drift.config as config\n"
        "def broken(path):\n"
        "    return {}['a key our code forgot']\n"
        "config.load_job = broken\n"
        f"sys.argv = ['drift', 'validate', {str(tmp_path / 'job.toml')!r}]\n"
        "cli.main()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "Traceback (most recent call last)" in done.stderr and "in broken" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("drift: error: internal error, a bug in drift (KeyError: 'a key our code forgot')")
    usage = subprocess.run([sys.executable, "-m", "drift", "run"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "Missing argument 'job'" in usage.stderr and "Traceback" not in usage.stderr
