"""Deliver the outbox: every undelivered message, each attempt recorded, bounded retries.

Delivery runs after the run's transaction has committed and its connection closed. No connection
is held while a sink is being talked to: the pending messages are read on one short connection and
each attempt is recorded on another, so `drift status`, notebooks and `drift report` can read the
store during a slow webhook's retries.

Delivery is at least once: each attempt is recorded right after it returns, so a process killed
mid-delivery leaves the message undelivered and the next run (or `drift alerts flush`) sends it
again. Receivers that care get the means to deduplicate: webhooks an Idempotency-Key, PagerDuty
the alert's dedup key (a repeated trigger updates the same incident), email a stable Message-ID.

Whatever a sink raises is a failed attempt, recorded: a sink's own errors (SinkError) by their
message, anything else (a bug of ours, a library's surprise) by its type and message with the
sink's secrets blanked, and its traceback logged. A message never stops the run or its reports.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from pathlib import Path

from .. import store
from ..config import JobConfig
from .sinks import SinkError, build_sink, secrets_of

log = logging.getLogger(__name__)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def deliver_pending(database: Path, config: JobConfig, sleep=time.sleep) -> dict[str, int]:
    """Try every undelivered message of this job's sinks; return counts of delivered and pending.

    The caller holds the store's writer lock.
    """
    sinks = {s.name: build_sink(s) for s in config.alerts.sinks}
    with store.session(database) as con:
        rows = store.pending_messages(con, config.name)
    counts = {"delivered": 0, "pending": 0}
    broken: set[str] = set()
    for message_id, sink_name, payload, attempts in rows:
        sink = sinks.get(sink_name)
        if sink is None or sink_name in broken:
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
            except Exception as exc:  # noqa: BLE001 - see the module's docstring
                secrets = secrets_of(sink)
                status, ok, error = "error", False, _redact(f"{type(exc).__name__}: {exc}", secrets)[:500]
                log.error("sink %s raised while sending %s:\n%s", sink_name, message_id, _redact(traceback.format_exc(), secrets))
            with store.session(database) as con:
                store.record_attempt(con, message_id, sink_name, number, store.utcnow(), ok, status, error)
            if ok:
                counts["delivered"] += 1
                break
        else:
            counts["pending"] += 1
            broken.add(sink_name)
    return counts


def flush(config: JobConfig) -> dict[str, int]:
    """Deliver what earlier runs left undelivered, holding the store's writer lock."""
    with store.writer_lock(config.store.database):
        return deliver_pending(config.store.database, config)


def list_alerts(config: JobConfig, state: str | None = None) -> list[dict]:
    con = store.connect_reader(config.store.database)
    try:
        result = store.alert_listing(con, config.name)
    finally:
        con.close()
    if state == "undelivered":
        return [r for r in result if r["undelivered"]]
    return [r for r in result if state is None or r["state"] == state]
