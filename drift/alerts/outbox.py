"""Alert state and the outbox, written inside the run's transaction.

Alert state is a function of windows, not of the order runs happen in: a segment's alert follows
the newest window that tested the segment. A run for an older window (a backfill, a rerun of last
week) is stored but never opens, escalates or resolves an alert, so replaying any set of days in
any order ends with the same alerts open as running them in order.

What each change sends (docs/operations.md has the table):
  - opens (no open alert):            a trigger, to every sink whose min_severity it reaches;
  - escalates (severity goes up):     a trigger again with the new severity (PagerDuty raises the
                                      same incident; a sink that takes only critical hears now);
  - stays open or de-escalates:       the row is updated, nothing is sent, but to the sinks that
                                      forget an alert nobody re-sends (Alertmanager): they get the
                                      trigger again (a change of severity first resolves the old one);
  - resolves (tested clean):          a resolve, to the sinks that were sent this incident's trigger.
A window whose checks could not run for the segment (not enough data) leaves its alert as it is.
Delivery happens after the commit (deliver.py), so a crash or a dead sink delays a message and
never loses or repeats it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import duckdb

from .. import store
from ..config import JobConfig
from ..record import Action, Alert, AlertChange, AlertState, Severity
from .policy import dedup_key
from .sinks import REFRESHED


def _reached(config: JobConfig, severity: Severity) -> set[str]:
    """The sinks whose min_severity a message of this severity reaches."""
    return {s.name for s in config.alerts.sinks if severity.reaches(s.min_severity)}


def _queue(con, config: JobConfig, key: str, run_id: str, action: Action, payload: dict, now: datetime, sinks: set[str]) -> None:
    for sink in config.alerts.sinks:
        if sink.name in sinks:
            store.queue_message(con, str(uuid.uuid4()), key, run_id, action.value, sink.name, json.dumps(payload), now)


def apply_alerts(
    con: duckdb.DuckDBPyConnection,
    config: JobConfig,
    run_id: str,
    window_start: datetime,
    planned: list[Alert],
    clean: set[tuple[str, str]],
    now: datetime,
) -> dict[str, AlertChange]:
    """Open, escalate, update or resolve alerts; return dedup_key -> what happened."""
    changes: dict[str, AlertChange] = {}
    existing = store.job_alerts(con, config.name)
    by_segment = {(a.kind, a.source): a for a in planned}
    for segment in sorted(set(by_segment) | clean):
        kind, source = segment
        newest = store.newest_tested_window(con, config.name, kind, source)
        if newest is not None and newest > window_start:
            continue  # a newer window has spoken for this segment
        key = dedup_key(config.name, kind, source)
        for old_key, old in existing.items():
            # Alerts from before one-per-segment (keyed by family too) end when their segment is decided.
            if old_key != key and old["state"] == AlertState.OPEN and (old["kind"], old["source"]) == segment:
                changes[old_key] = _resolve(con, config, old, run_id, window_start, now)
        alert, current = by_segment.get(segment), existing.get(key)
        is_open = current is not None and current["state"] == AlertState.OPEN
        if alert is None:
            if is_open:
                changes[key] = _resolve(con, config, current, run_id, window_start, now)
            continue
        payload = alert.trigger(opened_at=(current["opened_at"] if is_open else now).isoformat())
        row = {
            "dedup_key": key,
            "job": alert.job,
            "kind": kind,
            "source": source,
            "check_family": ", ".join(alert.families),
            "state": AlertState.OPEN.value,
            "severity": alert.severity.value,
            "title": alert.title,
            "opened_run_id": run_id,
            "last_run_id": run_id,
            "opened_at": now,
            "updated_at": now,
            "resolved_at": None,
            "body": json.dumps(payload),
            "window_start": window_start,
        }
        if not is_open:
            store.put_alert(con, row)
            _queue(con, config, key, run_id, Action.TRIGGER, payload, now, _reached(config, alert.severity))
            changes[key] = AlertChange.OPENED
            continue
        store.put_alert(con, {**row, "opened_run_id": current["opened_run_id"], "opened_at": current["opened_at"]})
        if alert.severity.rank > Severity(current["severity"]).rank:
            payload["escalated_from"] = current["severity"]
            _retire(con, config, current, run_id, payload["severity"], now)
            _queue(con, config, key, run_id, Action.TRIGGER, payload, now, _reached(config, alert.severity))
            changes[key] = AlertChange.ESCALATED
        else:
            _refresh(con, config, current, run_id, payload, now)
            changes[key] = AlertChange.UPDATED
    return changes


def _refreshed_sinks(con, config: JobConfig, current: dict) -> set[str]:
    """The sinks that forget an alert nobody re-sends (Alertmanager) that this incident's trigger went to."""
    refreshed = {s.name for s in config.alerts.sinks if s.type in REFRESHED}
    return refreshed & set(store.triggered_sinks(con, current["dedup_key"], current["opened_at"])) if refreshed else set()


def _retire(con, config: JobConfig, current: dict, run_id: str, severity: str, now: datetime) -> None:
    """For sinks whose alert is its label set (Alertmanager), a change of severity is a new alert:
    the one under the old severity is resolved there."""
    if severity != current["severity"]:
        sinks = _refreshed_sinks(con, config, current)
        if sinks:
            _queue(
                con, config, current["dedup_key"], run_id, Action.RESOLVE, _resolution(config, current, run_id, now), now, sinks
            )


def _refresh(con, config: JobConfig, current: dict, run_id: str, payload: dict, now: datetime) -> None:
    """An alert that stays open is sent again to the sinks that forget what nobody re-sends."""
    sinks = _refreshed_sinks(con, config, current)
    if sinks:
        _retire(con, config, current, run_id, payload["severity"], now)
        _queue(con, config, current["dedup_key"], run_id, Action.TRIGGER, {**payload, "refresh": True}, now, sinks)


def _resolve(con, config: JobConfig, alert: dict, run_id: str, window_start: datetime, now: datetime) -> AlertChange:
    key = alert["dedup_key"]
    store.put_alert(
        con,
        {
            **alert,
            "state": AlertState.RESOLVED.value,
            "resolved_at": now,
            "updated_at": now,
            "last_run_id": run_id,
            "window_start": window_start,
        },
    )
    payload = _resolution(config, alert, run_id, now)
    _queue(con, config, key, run_id, Action.RESOLVE, payload, now, set(store.triggered_sinks(con, key, alert["opened_at"])))
    return AlertChange.RESOLVED


def _resolution(config: JobConfig, alert: dict, run_id: str, now: datetime) -> dict:
    return {
        "dedup_key": alert["dedup_key"],
        "action": Action.RESOLVE.value,
        "severity": alert["severity"],
        "title": f"[resolved] {alert['title']}",
        "job": config.name,
        "kind": alert["kind"],
        "source": alert["source"],
        "run_id": run_id,
        "resolved_at": now.isoformat(),
    }
