"""`drift run --json` says exactly what it said before: the demo's two nights, as the run wrote
them (summary.json beside the report) and as `drift report --format json` read them back from the
store right after the demo (conftest's demo_dir, before other tests run a night again), are byte
for byte the JSON in tests/golden/, once the fields that differ on every run (the run id's random
part, timings, memory, the demo's folder) are masked.

A change that means to change the record regenerates the files on purpose:
DRIFT_WRITE_GOLDEN=1 python -m pytest tests/test_record_golden.py, and the diff is reviewed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
NIGHTS = ("2026-11-01", "2026-11-02")


def masked(text: str, folder: Path) -> str:
    summary = json.loads(text)
    for stage in summary.get("stages", []):
        stage.update(seconds=0.0, cpu_seconds=0.0, peak_rss_mb=0.0)
    text = json.dumps(summary, indent=2, default=str) + "\n"
    text = text.replace(str(folder.resolve()), "<demo>").replace(str(folder), "<demo>")
    return re.sub(r"(demo-\d{8}-)[0-9a-f]{8}", r"\1<id>", text)


@pytest.mark.parametrize("day", NIGHTS)
def test_the_record_of_each_demo_night_is_unchanged(demo_dir, day):
    folder, _ = demo_dir
    written = (folder.parent / "first-records" / f"{day}.summary.json").read_text()
    stored = (folder.parent / "first-records" / f"{day}.stored.json").read_text()
    golden = GOLDEN / f"demo-{day}.json"
    if os.environ.get("DRIFT_WRITE_GOLDEN"):
        golden.write_text(masked(written, folder))
    expected = golden.read_text()
    # The report stage's own timing is added after summary.json is written: the stages differ by it.
    assert masked(written, folder) == expected
    read_back = json.loads(masked(stored, folder))
    read_back["stages"] = [s for s in read_back["stages"] if s["stage"] in {t["stage"] for t in json.loads(expected)["stages"]}]
    assert json.dumps(read_back, indent=2) + "\n" == expected


@pytest.mark.parametrize("day", NIGHTS)
def test_a_demo_night_rerun_through_the_feature_cache_records_the_same(demo_dir, day):
    """The demo's own run filled the cache; a rerun reads its items from it and says the same,
    finding for finding: only the featurization's cost differs."""
    from typer.testing import CliRunner

    from drift.cli import app

    folder, _ = demo_dir
    result = CliRunner().invoke(app, ["run", str(folder / "demo.toml"), "--day", day, "--json"])
    assert result.exit_code in (0, 1), result.output  # 1: the night drifted
    rerun, golden = json.loads(masked(result.stdout, folder)), json.loads((GOLDEN / f"demo-{day}.json").read_text())
    [featurized] = [s for s in rerun.pop("stages") if s["stage"] == "open_and_featurize"]
    golden.pop("stages")
    # the alerts the first run opened are updated by the rerun, and not delivered again: history, not the night
    changes, first_changes = rerun.pop("alert_changes"), golden.pop("alert_changes")
    assert sorted(changes) == sorted(first_changes) and set(changes.values()) <= {"updated"}
    rerun.pop("delivery"), golden.pop("delivery")
    assert rerun == golden
    assert featurized["cache_hits"] >= 0.95 * featurized["items"], featurized
