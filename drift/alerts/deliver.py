"""Deliver the outbox: every undelivered message, each attempt recorded, bounded retries.

Delivery is at least once: each attempt is recorded right after it returns, so a process killed
mid-delivery leaves the message undelivered and the next run (or `drift alerts flush`) sends it
again. Receivers that care get the means to deduplicate: webhooks an Idempotency-Key, PagerDuty
the alert's dedup key (a repeated trigger updates the same incident), email a stable Message-ID.
"""

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
    broken: set[str] = set()
    for message_id, sink_key, payload, attempts in rows:
        sink = sinks.get(sink_key)
        if sink is None or sink_key in broken:
            # Removed from the job file (kept for `drift alerts list`), or down for this whole pass:
            # a dead sink must not hold the run up once per message.
            counts["pending"] += 1
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
            broken.add(sink_key)
    return counts


def flush(config: JobConfig) -> dict[str, int]:
    """Deliver what earlier runs left undelivered, holding the store's writer lock."""
    from ..store import connect_writer, writer_lock

    with writer_lock(config.store.database):
        con = connect_writer(config.store.database)
        try:
            return deliver_pending(con, config)
        finally:
            con.close()


def list_alerts(config: JobConfig, state: str | None = None) -> list[dict]:
    from ..store import connect_reader

    con = connect_reader(config.store.database)
    try:
        rows = con.execute(
            """SELECT a.dedup_key, a.state, a.severity, a.title, a.updated_at,
                      count(o.message_id) FILTER (WHERE o.delivered_at IS NULL) AS undelivered
               FROM alerts a LEFT JOIN outbox o USING (dedup_key)
               WHERE a.job = ? GROUP BY ALL ORDER BY a.updated_at DESC""",
            [config.name],
        ).fetchall()
    finally:
        con.close()
    keys = ("dedup_key", "state", "severity", "title", "updated_at", "undelivered")
    result = [dict(zip(keys, row)) for row in rows]
    if state == "undelivered":
        return [r for r in result if r["undelivered"]]
    return [r for r in result if state is None or r["state"] == state]
