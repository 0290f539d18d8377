"""The analysts' notebooks run top to bottom against the demo's store, in every branch."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, monkeypatch, **env) -> nbformat.NotebookNode:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    return notebook


def outputs(notebook) -> str:
    return "\n".join(
        str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


def images(notebook) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs)


def test_overview_runs_against_the_demo_store(demo_dir, monkeypatch):
    folder, _ = demo_dir
    notebook = execute("overview.ipynb", monkeypatch, DRIFT_STORE=str(folder / "drift.duckdb"))
    text = outputs(notebook)
    assert "jobs ['demo']" in text and "schema_breaking" in text
    assert images(notebook) >= 4


@pytest.mark.parametrize(
    "segment, expected",
    [
        ("image/mobile_app", "#1 mobile_app-20261102"),
        ("document/partner_invoices", "chars/page"),
        ("payload/orders_api", "$.total type"),
    ],
)
def test_investigation_shows_each_kind(demo_dir, monkeypatch, segment, expected):
    folder, _ = demo_dir
    notebook = execute(
        "investigate.ipynb", monkeypatch, DRIFT_STORE=str(folder / "drift.duckdb"), DRIFT_DAY="2026-11-02", DRIFT_SEGMENT=segment
    )
    text = outputs(notebook)
    assert f"{segment} is" in text
    if segment.startswith("payload"):
        assert expected in text and '"total": "' in text
    else:
        grid = next(c for c in notebook.cells if c.cell_type == "code" and "show_grid" in c.source)
        assert any("image/png" in out.get("data", {}) for out in grid.outputs)
