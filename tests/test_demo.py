"""`drift demo`, as the README's first command runs it: a quiet day stays quiet, a bad day pages
about the right segments, and the store holds what the summary says."""

from __future__ import annotations

import json

import duckdb


def summaries(folder):
    con = duckdb.connect(str(folder / "drift.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT window_start::DATE::VARCHAR, summary FROM runs ORDER BY window_start").fetchall()
    finally:
        con.close()
    return {day: json.loads(summary) for day, summary in rows}


def test_demo_quiet_day_raises_no_alert(demo_dir):
    folder, output = demo_dir
    quiet = summaries(folder)["2026-11-01"]
    assert quiet["alerts"] == []
    assert not any(s["drifted"] for s in quiet["segments"])
    assert "UNTRAINED" in output


def test_demo_drifted_day_pages_about_the_right_segments(demo_dir):
    folder, output = demo_dir
    drifted = summaries(folder)["2026-11-02"]
    paged = {(a["dedup_key"].split("/")[2], a["dedup_key"].split("/")[3]) for a in drifted["alerts"]}
    assert paged == {("image", "mobile_app"), ("document", "partner_invoices"), ("payload", "orders_api")}
    assert len(drifted["alerts"]) == 3  # one incident per segment, its families inside
    segments = {(s["kind"], s["source"]): s for s in drifted["segments"]}
    for quiet in [("image", "support_chat"), ("document", "contracts"), ("payload", "weather_api"), ("payload", "search_tool")]:
        assert not segments[quiet]["drifted"], quiet
    orders = {f["target"] for f in segments[("payload", "orders_api")]["findings"] if f["status"] == "drift"}
    assert {"$.total type", "$.customer.email presence"} <= orders
    invoices = {f["target"] for f in segments[("document", "partner_invoices")]["findings"] if f["status"] == "drift"}
    assert "text_layer" in invoices and "input errors: all" in invoices
    assert segments[("document", "partner_invoices")]["errors"]["outside_roots"] == 1
    lines = (folder / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == len(drifted["alerts"])
    assert (folder / "reports" / "demo" / "2026-11-02" / "report.md").exists()
    assert "drift.duckdb" in output and "report" in output
