"""Deliver the outbox: every undelivered message, each attempt recorded, bounded retries."""

from __future__ import annotations

import json
import time

import duckdb

from ..config import JobConfig
from ..store import utcnow
from .outbox import sink_name
from .sinks import SinkError, build_sink


def deliver_pending(con: duckdb.DuckDBPyConnection, config: JobConfig, sleep=time.sleep) -> dict[str, int]:
    """Try every undelivered message of this job's sinks; return counts of delivered and pending."""
    sinks = {sink_name(s, i): build_sink(s) for i, s in enumerate(config.alerts.sinks)}
    rows = con.execute(
        """SELECT o.message_id, o.sink, o.payload, o.attempts FROM outbox o
           JOIN alerts a USING (dedup_key)
           WHERE o.delivered_at IS NULL AND a.job = ? ORDER BY o.created_at, o.message_id""",
        [config.name],
    ).fetchall()
    counts = {"delivered": 0, "pending": 0}
    for message_id, sink_key, payload, attempts in rows:
        sink = sinks.get(sink_key)
        if sink is None:
            counts["pending"] += 1  # its sink was removed from the job file; kept for `drift alerts list`
            continue
        message = {"message_id": message_id, **json.loads(payload)}
        for attempt in range(config.alerts.max_attempts):
            if attempt:
                sleep(config.alerts.backoff_s * 2 ** (attempt - 1))
            number = attempts + attempt + 1
            try:
                status, ok, error = sink.send(message), True, None
            except SinkError as exc:
                status, ok, error = "failed", False, str(exc)
            now = utcnow()
            con.execute(
                "INSERT INTO deliveries VALUES (?, ?, ?, ?, ?, ?, ?)",
                [message_id, sink_key, number, now, ok, status, error],
            )
            con.execute(
                "UPDATE outbox SET attempts = ?, last_error = ?, delivered_at = ? WHERE message_id = ?",
                [number, error, now if ok else None, message_id],
            )
            if ok:
                counts["delivered"] += 1
                break
        else:
            counts["pending"] += 1
    return counts
