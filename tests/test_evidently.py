"""Evidently, where its users are: a run's descriptors exported as Evidently reports and snapshots,
and every run added to a local Evidently workspace."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from drift.cli import app
from drift.config import load_job
from drift.errors import ConfigError
from drift.pipeline import run_job

from .conftest import BASE_DAY, write_job
from .test_pipeline import build_baseline


def test_export_writes_the_html_and_a_snapshot_evidentlys_ui_loads_for_every_segment(demo_dir, tmp_path):
    from evidently.core.report import Snapshot

    folder, _ = demo_dir
    done = CliRunner().invoke(app, ["export", "evidently", str(folder / "demo.toml"), "latest", "--out", str(tmp_path / "ev")])
    assert done.exit_code == 0, done.output
    htmls = sorted((tmp_path / "ev").glob("*.html"))
    snapshots = sorted((tmp_path / "ev").glob("*.snapshot.json"))
    assert len(htmls) == len(snapshots) == 7  # the demo's seven segments
    orders = next(p for p in snapshots if p.name.startswith("payload.orders_api-"))
    loaded = Snapshot.load(str(orders))
    summary = json.loads((folder / "reports" / "demo" / "2026-11-02" / "summary.json").read_text())
    model = loaded.to_snapshot_model()
    assert model.metadata["run_id"] == summary["run_id"] and model.metadata["drift_verdict"] == "critical"
    assert set(model.tags) == {"demo", "payload", "orders_api"}
    assert "<html" in htmls[0].read_text()[:2000].lower()

    missing = CliRunner().invoke(app, ["export", "evidently", str(folder / "demo.toml"), "nope", "--out", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "no run 'nope' of job 'demo'" in missing.stderr


def test_every_run_is_added_to_the_evidently_workspace(world, tiny_clip):
    from evidently.ui.workspace import Workspace

    root, _ = world
    job = write_job(root, tiny_clip, extra='\n[export]\nevidently_workspace = "evidently"\n')
    config, _ = build_baseline(job)
    for day in (3, 4):
        result = run_job(config, f"{BASE_DAY + timedelta(days=day):%Y-%m-%d}")
        assert any(s["stage"] == "export" and s["items"] == len(result.summary["segments"]) for s in result.summary["stages"])
    workspace = Workspace(str(root / "evidently"))
    (project,) = workspace.search_project("t")
    assert len(workspace.list_runs(project.id)) == 2 * len(result.summary["segments"])


def test_a_workspace_without_evidently_installed_is_a_clear_configuration_error(world, monkeypatch):
    import importlib.util

    root, job = world
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "evidently" else real(name, *a))
    job.write_text(job.read_text() + '\n[export]\nevidently_workspace = "evidently"\n')
    with pytest.raises(ConfigError, match=r"\[export\] evidently_workspace.*pip install -e '.\[evidently\]'"):
        load_job(job)
