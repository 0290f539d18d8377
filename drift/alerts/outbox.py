"""Alert state and the outbox, written inside the run's transaction.

A message is queued for each sink when an alert opens (or reopens) and when it resolves; an
alert that is already open is only updated. Delivery happens after the commit (deliver.py), so a
crash or a dead sink delays a message and never loses or repeats it.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import duckdb

from ..config import SEVERITY_ORDER, JobConfig
from .policy import PlannedAlert


def sink_name(sink, index: int) -> str:
    return sink.name or f"{sink.type}-{index}"


def _queue(con, config: JobConfig, dedup_key: str, run_id: str, action: str, severity: str, payload: dict, now: datetime) -> None:
    for index, sink in enumerate(config.alerts.sinks):
        if SEVERITY_ORDER[severity] < SEVERITY_ORDER[sink.min_severity]:
            continue
        con.execute(
            "INSERT INTO outbox (message_id, dedup_key, run_id, action, sink, payload, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [str(uuid.uuid4()), dedup_key, run_id, action, sink_name(sink, index), json.dumps(payload), now],
        )


def apply_alerts(
    con: duckdb.DuckDBPyConnection,
    config: JobConfig,
    run_id: str,
    planned: list[PlannedAlert],
    analysed: set[tuple[str, str]],
    now: datetime,
) -> dict[str, str]:
    """Open, update or resolve alerts; return dedup_key -> what happened ('opened', 'updated', 'resolved')."""
    changes: dict[str, str] = {}
    existing = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT dedup_key, state, kind, source, check_family, severity, title FROM alerts WHERE job = ?", [config.name]
        ).fetchall()
    }
    for alert in planned:
        payload = {
            "dedup_key": alert.dedup_key,
            "action": "trigger",
            "severity": alert.severity,
            "title": alert.title,
            "job": alert.job,
            "kind": alert.kind,
            "source": alert.source,
            "check": alert.family,
            **alert.body,
        }
        body = json.dumps(payload)
        previous = existing.get(alert.dedup_key)
        if previous is not None and previous[0] == "open":
            con.execute(
                "UPDATE alerts SET last_run_id = ?, updated_at = ?, severity = ?, title = ?, body = ? WHERE dedup_key = ?",
                [run_id, now, alert.severity, alert.title, body, alert.dedup_key],
            )
            changes[alert.dedup_key] = "updated"
            continue
        if previous is not None:
            con.execute("DELETE FROM alerts WHERE dedup_key = ?", [alert.dedup_key])
        con.execute(
            """INSERT INTO alerts (dedup_key, job, kind, source, check_family, state, severity, title,
                                   opened_run_id, last_run_id, opened_at, updated_at, resolved_at, body)
               VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, NULL, ?)""",
            [alert.dedup_key, alert.job, alert.kind, alert.source, alert.family, alert.severity, alert.title,
             run_id, run_id, now, now, body],
        )
        _queue(con, config, alert.dedup_key, run_id, "trigger", alert.severity, payload, now)
        changes[alert.dedup_key] = "opened"
    planned_keys = {a.dedup_key for a in planned}
    for key, (state, kind, source, family, severity, title) in existing.items():
        if state != "open" or key in planned_keys or (kind, source) not in analysed:
            continue
        con.execute(
            "UPDATE alerts SET state = 'resolved', resolved_at = ?, updated_at = ?, last_run_id = ? WHERE dedup_key = ?",
            [now, now, run_id, key],
        )
        payload = {"dedup_key": key, "action": "resolve", "severity": severity, "title": f"[resolved] {title}",
                   "job": config.name, "kind": kind, "source": source, "check": family, "run_id": run_id}
        _queue(con, config, key, run_id, "resolve", severity, payload, now)
        changes[key] = "resolved"
    return changes
