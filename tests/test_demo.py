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


def test_demo_drifted_day_says_what_changed_and_keeps_the_evidence_to_picture_it(demo_dir):
    folder, output = demo_dir
    segments = {(s["kind"], s["source"]): s for s in summaries(folder)["2026-11-02"]["segments"]}
    invoices, photos, orders = (
        segments[("document", "partner_invoices")],
        segments[("image", "mobile_app")],
        segments[("payload", "orders_api")],
    )
    assert invoices["changes"][0].startswith("21% of partner_invoices documents could not be read (26 of 121)")
    assert "46% of partner_invoices documents now have no text layer, against none in the baseline." in invoices["changes"]
    assert photos["changes"][0].endswith(
        "are smaller than 99% of the baseline (file size: median 36k against 43k in the baseline, 0.84x)."
    )
    assert orders["changes"][0].startswith("$.total type in orders_api payloads is now float")
    # the alert's title is its segment's headline, and the terminal says the severity once
    assert "[critical] demo: payload/orders_api: $.total type in orders_api payloads is now float" in output

    evidence = invoices["evidence"]
    assert {p["target"] for p in evidence["distributions"]} >= {"file_bytes", "text_chars_per_page"}
    assert {b["target"] for b in evidence["bars"]} >= {"text_layer", "producer_family"}
    plot = evidence["distributions"][0]
    assert len(plot["edges"]) == len(plot["ref"]) + 1 and abs(sum(plot["ref"]) - 1) < 1e-3 and abs(sum(plot["cur"]) - 1) < 1e-3
    assert len(evidence["unlike"]) == 6 and len(evidence["typical"]) == 4
    assert all(item["path"] and (folder / item["path"]).exists() for item in evidence["unlike"] + evidence["typical"])
    example = orders["evidence"]["payload_example"]
    marked = [text for text, hit in example["lines"] if hit]
    assert example["path"] == "$.total" and len(marked) == 1 and marked[0].lstrip().startswith('"total": "')
    assert any("<img src=x onerror=alert(1)>debug" in text for text, _ in example["lines"])
    assert segments[("image", "support_chat")]["evidence"] == {} and segments[("image", "support_chat")]["changes"] == []
