"""The alert lifecycle against a real store and real sinks, night by night: one incident per
segment, escalation sent again, nothing resolved by a window that could not test, and state that
follows the windows, not the order runs happen in (a backfill, a replay in any order)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from drift import store
from drift.alerts.deliver import deliver_pending
from drift.alerts.outbox import apply_alerts
from drift.alerts.policy import clean_segments, plan_alerts
from drift.config import load_job
from drift.record import Finding, RunRecord, Verdict

from .test_config import MINIMAL

START = datetime(2026, 6, 1, tzinfo=UTC)
PHOTOS, ORDERS, INVOICES = ("image", "photos"), ("payload", "orders"), ("document", "invoices")


@pytest.fixture
def receiver(monkeypatch):
    from .test_alerts import Receiver

    server = Receiver()
    monkeypatch.setenv("DRIFT_TEST_PD_KEY", "routing-key")
    yield server
    server.server.shutdown()


@pytest.fixture
def config(tmp_path, receiver):
    job = tmp_path / "job.toml"
    job.write_text(
        MINIMAL
        + f"""
[[alerts.sinks]]
name = "everything"
type = "file"
path = "everything.jsonl"
[[alerts.sinks]]
name = "pager"
type = "file"
path = "pager.jsonl"
min_severity = "critical"
[[alerts.sinks]]
name = "pagerduty"
type = "pagerduty"
routing_key_env = "DRIFT_TEST_PD_KEY"
url = "{receiver.url}/pagerduty"
min_severity = "critical"
timeout_s = 2
"""
    )
    return load_job(job)


def finding(family: str, severity: str, drifted: bool = True) -> Finding:
    return Finding(
        check=family,
        target=f"a {family} target",
        method="ks",
        statistic=0.5,
        p_value=1e-9,
        p_adjusted=1e-9,
        effect_size=1.0,
        effect_threshold=0.5,
        n_ref=300,
        n_cur=150,
        status="drift" if drifted else "no_drift",
        severity=severity if drifted else "none",
        detail={"level": 1e-4},
    )


def verdict(state: str) -> Verdict:
    """clean | warning (a descriptor moved) | critical (a breaking change too) | not_enough_data"""
    if state == "not_enough_data":
        return Verdict(status="not_enough_data")
    findings = [finding("descriptor", "warning", drifted=state != "clean")]
    if state == "critical":
        findings.append(finding("schema_breaking", "critical"))
    return Verdict(findings=findings, drifted=state != "clean", severity="none" if state == "clean" else state, status="ok")


def night(config, day: int, states: dict[tuple[str, str], str], report: str = "report.md") -> dict[str, str]:
    """Store one night's run as the pipeline does (replacing a run of the same window), then deliver."""
    start = START + timedelta(days=day)
    verdicts = {segment: verdict(state) for segment, state in states.items()}
    run_id = f"shop-{day}-{uuid.uuid4().hex[:6]}"
    planned = plan_alerts(config, run_id, {"start": start.isoformat()}, verdicts, report)
    now = datetime.now(UTC)
    run = {
        "run_id": run_id,
        "job": "shop",
        "window_start": start,
        "window_end": start + timedelta(days=1),
        "status": "completed",
        "drifted": any(v.drifted for v in verdicts.values()),
        "severity": "none",
        "baseline": "march",
        "embedder": None,
        "code_version": "test",
        "started_at": now,
        "finished_at": now,
        "n_sampled": 0,
        "n_errors": 0,
    }
    window = {"start": start.isoformat(), "end": (start + timedelta(days=1)).isoformat()}
    record = RunRecord(run_id=run_id, job="shop", window=window, baseline={"name": "march", "window": window})
    segments = pl.DataFrame(
        [
            {
                "run_id": run_id,
                "kind": k,
                "source": s,
                "n_population": 0,
                "n_sampled": 0,
                "n_items": 0,
                "n_errors": 0,
                "status": v.status,
                "drifted": v.drifted,
                "severity": v.severity,
            }
            for (k, s), v in verdicts.items()
        ]
    )
    with store.session(config.store.database) as con:
        store.write_run(
            con,
            run,
            record,
            {"segments": segments},
            lambda c: apply_alerts(c, config, run_id, start, planned, clean_segments(config, verdicts), now),
        )
    deliver_pending(config.store.database, config)
    return record.alert_changes


def received(config, sink: str) -> list[tuple[str, str, str]]:
    path = config.path.parent / f"{sink}.jsonl"
    if not path.exists():
        return []
    return [
        (m["dedup_key"].rsplit("/", 1)[1], m["action"], m["severity"]) for m in map(json.loads, path.read_text().splitlines())
    ]


def open_alerts(config) -> dict[str, tuple]:
    with store.session(config.store.database) as con:
        alerts = store.job_alerts(con, "shop")
    return {k: (a["severity"], a["window_start"]) for k, a in alerts.items() if a["state"] == "open"}


def test_a_segment_is_one_incident_whatever_families_moved(config):
    changes = night(config, 0, {ORDERS: "critical", PHOTOS: "clean"})
    assert changes == {"drift/shop/payload/orders": "opened"}
    with store.session(config.store.database) as con:
        alert = store.job_alerts(con, "shop")["drift/shop/payload/orders"]
    assert alert["severity"] == "critical" and alert["check_family"] == "schema_breaking, descriptor"
    assert received(config, "everything") == [("orders", "trigger", "critical")]


def test_escalation_is_sent_again_and_reaches_a_sink_that_takes_only_critical(config, receiver):
    night(config, 0, {ORDERS: "warning"})
    assert received(config, "everything") == [("orders", "trigger", "warning")] and received(config, "pager") == []
    assert night(config, 1, {ORDERS: "critical"}) == {"drift/shop/payload/orders": "escalated"}
    assert received(config, "everything")[1:] == [("orders", "trigger", "critical")]
    assert received(config, "pager") == [("orders", "trigger", "critical")]
    # Down again to a warning: updated, nothing sent; the incident stays the same one.
    assert night(config, 2, {ORDERS: "warning"}) == {"drift/shop/payload/orders": "updated"}
    assert len(received(config, "everything")) == 2 and len(received(config, "pager")) == 1
    # Resolved: both sinks that heard the trigger hear the resolve.
    assert night(config, 3, {ORDERS: "clean"}) == {"drift/shop/payload/orders": "resolved"}
    assert received(config, "everything")[-1][1] == received(config, "pager")[-1][1] == "resolve"
    # PagerDuty (a real HTTP server on loopback) heard nothing of the warning, the escalation as a
    # critical trigger, and the resolve; one incident, one dedup key.
    events = [json.loads(r["body"]) for r in receiver.ok("/pagerduty")]
    assert [(e["event_action"], e.get("payload", {}).get("severity")) for e in events] == [
        ("trigger", "critical"),
        ("resolve", None),
    ]
    assert {e["dedup_key"] for e in events} == {"drift/shop/payload/orders"}


def test_a_window_that_could_not_test_the_segment_does_not_resolve_it(config):
    night(config, 0, {PHOTOS: "warning"})
    assert night(config, 1, {PHOTOS: "not_enough_data"}) == {}
    assert "drift/shop/image/photos" in open_alerts(config)
    assert night(config, 2, {PHOTOS: "clean"}) == {"drift/shop/image/photos": "resolved"}


def test_a_backfill_neither_resolves_nor_reopens_a_newer_windows_alert(config):
    night(config, 5, {ORDERS: "critical", PHOTOS: "clean"})
    sent = received(config, "everything")
    assert night(config, 3, {ORDERS: "clean", PHOTOS: "warning"}) == {}  # an older day, run late
    assert received(config, "everything") == sent
    assert set(open_alerts(config)) == {"drift/shop/payload/orders"}
    night(config, 6, {ORDERS: "clean"})
    assert night(config, 4, {ORDERS: "critical"}) == {}
    assert open_alerts(config) == {}
    # A rerun of the newest window is that window speaking again: it does apply.
    assert night(config, 6, {ORDERS: "critical"}) == {"drift/shop/payload/orders": "opened"}


STATES = ("clean", "warning", "critical", "not_enough_data")


def test_replaying_days_in_any_order_ends_in_the_same_state(config, tmp_path):
    rng = random.Random(5)
    days = {day: {segment: rng.choice(STATES) for segment in (PHOTOS, ORDERS, INVOICES)} for day in range(8)}
    for day in days:  # some segments absent on some nights
        if rng.random() < 0.3:
            days[day].pop(rng.choice(list(days[day])))

    def replay(order: list[int], folder: str) -> dict:
        replayed = config.model_copy(deep=True)
        replayed.store.database = tmp_path / folder / "drift.duckdb"
        for day in order:
            night(replayed, day, days[day])
        return open_alerts(replayed)

    in_order = replay(sorted(days), "in-order")
    assert in_order, "the drawn days should leave something open"
    for attempt in range(6):
        order = sorted(days)
        rng.shuffle(order)
        assert replay(order, f"shuffled-{attempt}") == in_order, order
