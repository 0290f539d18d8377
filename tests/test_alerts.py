"""Alerts end to end, against real servers on loopback: a webhook, Slack and PagerDuty stand-in
(one HTTP server that can fail, hang and recover) and an SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from aiosmtpd.controller import Controller

from drift.alerts.deliver import flush, list_alerts
from drift.pipeline import run_job

from .conftest import BASE_DAY, write_day
from .test_pipeline import DRIFT_DAY, QUIET_DAY, build_baseline

SECRETS = {
    "DRIFT_TEST_HMAC": "hmac-secret-123",
    "DRIFT_TEST_PD_KEY": "routing-key-456",
}


class Receiver:
    """Records every POST; `plan[path]` says how to answer the next ones: ok, fail or hang."""

    def __init__(self):
        self.requests: list[dict] = []
        self.plan: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    queue = receiver.plan.get(self.path, [])
                    action = queue.pop(0) if queue else "ok"
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body, "answered": action})
                if action == "hang":
                    time.sleep(3)
                code = 500 if action == "fail" else (202 if self.path == "/pagerduty" else 200)
                try:
                    self.send_response(code)
                    self.end_headers()
                    self.wfile.write(b'{"status": "success"}' if code < 300 else b"boom")
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ok(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path and r["answered"] == "ok"]


class Mailbox:
    def __init__(self):
        self.messages: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.append(envelope.content.decode())
        return "250 OK"


@pytest.fixture
def receivers(monkeypatch):
    receiver = Receiver()
    mailbox = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DRIFT_TEST_SLACK_URL", f"{receiver.url}/slack")
    yield receiver, mailbox, smtp_port
    controller.stop()
    receiver.server.shutdown()


@pytest.fixture
def alert_world(world, receivers):
    root, job = world
    receiver, mailbox, smtp_port = receivers
    text = job.read_text().replace('[[alerts.sinks]]\nname = "alerts-file"\ntype = "file"\npath = "alerts.jsonl"\n', "")
    text += f"""
[alerts]
max_attempts = 2
backoff_s = 0
runbook_url = "https://wiki.example.com/drift"

[[alerts.sinks]]
name = "team-webhook"
type = "webhook"
url = "{receiver.url}/webhook"
secret_env = "DRIFT_TEST_HMAC"
timeout_s = 1

[[alerts.sinks]]
name = "slack"
type = "slack"
url_env = "DRIFT_TEST_SLACK_URL"
timeout_s = 1

[[alerts.sinks]]
name = "pagerduty"
type = "pagerduty"
routing_key_env = "DRIFT_TEST_PD_KEY"
url = "{receiver.url}/pagerduty"
timeout_s = 1

[[alerts.sinks]]
name = "email"
type = "email"
host = "127.0.0.1"
port = {smtp_port}
starttls = false
sender = "drift@example.com"
recipients = ["oncall@example.com"]
"""
    job.write_text(text)
    config, _ = build_baseline(job)
    return config, receiver, mailbox


def test_one_page_per_drifted_segment_on_every_sink(alert_world):
    config, receiver, mailbox = alert_world
    result = run_job(config, DRIFT_DAY)
    keys = {a["dedup_key"] for a in result.summary["alerts"]}
    # One incident per segment, however many check families moved: the photos' descriptors and
    # embedding are one page.
    assert keys == {"drift/t/image/app", "drift/t/payload/orders"}
    for path in ("/webhook", "/slack", "/pagerduty"):
        assert len(receiver.ok(path)) == len(keys), path
    assert len(mailbox.messages) == len(keys)

    for request in receiver.ok("/webhook"):
        expected = hmac.new(SECRETS["DRIFT_TEST_HMAC"].encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Drift-Signature"] == f"sha256={expected}"
        message = json.loads(request["body"])
        assert message["runbook"] == "https://wiki.example.com/drift" and message["report"].endswith("report.html")
        # The alert speaks the report's words: its headline sentence is the title, severity apart.
        assert message["changes"] and message["title"].endswith(message["changes"][0])
        assert message["severity"] not in message["title"]
    events = [json.loads(r["body"]) for r in receiver.ok("/pagerduty")]
    assert {e["dedup_key"] for e in events} == keys
    assert all(e["event_action"] == "trigger" and e["routing_key"] == SECRETS["DRIFT_TEST_PD_KEY"] for e in events)
    severities = {e["dedup_key"]: e["payload"]["severity"] for e in events}
    assert severities["drift/t/payload/orders"] == "critical"
    image = next(e for e in events if e["dedup_key"] == "drift/t/image/app")
    assert set(image["payload"]["class"].split(", ")) == {"descriptor", "embedding"}
    orders = next(e for e in events if e["dedup_key"] == "drift/t/payload/orders")
    # PagerDuty shows its own severity field: the summary is the headline, within its 1,024 characters.
    assert orders["payload"]["summary"].startswith("t: payload/orders: $.total type in orders payloads is now")
    assert "critical" not in orders["payload"]["summary"] and len(orders["payload"]["summary"]) <= 1024
    assert orders["payload"]["custom_details"]["report"].endswith("report.html")
    for request in receiver.ok("/slack"):
        slack = json.loads(request["body"])
        header = slack["blocks"][0]["text"]["text"]
        assert slack["blocks"][0]["type"] == "section" and slack["text"].startswith("[") and "t: " in header
        assert sum(header.count(word) for word in ("critical", "warning")) == 1, header
    subjects = [line for m in mailbox.messages for line in m.splitlines() if line.startswith("Subject:")]
    assert any(s.startswith("Subject: [critical] t: payload/orders: $.total type in orders payloads is now") for s in subjects), (
        subjects
    )
    assert all(s.count("critical") + s.count("warning") == 1 for s in subjects), subjects
    assert any("What changed:" in m and "$.total type" in m for m in mailbox.messages)


def test_rerun_sends_nothing_new_a_backfill_changes_nothing_and_a_later_clean_night_resolves(alert_world):
    config, receiver, mailbox = alert_world
    first = run_job(config, DRIFT_DAY)
    sent = len(receiver.requests), len(mailbox.messages)
    run_job(config, DRIFT_DAY)
    assert (len(receiver.requests), len(mailbox.messages)) == sent

    # The day before, run late (a backfill): clean, but older than the alerts' window.
    backfill = run_job(config, QUIET_DAY)
    assert backfill.summary["alert_changes"] == {}
    assert (len(receiver.requests), len(mailbox.messages)) == sent
    assert {r["state"] for r in list_alerts(config)} == {"open"}

    root = config.path.parent
    write_day(root, BASE_DAY + timedelta(days=5), seed=12)
    run_job(config, f"{BASE_DAY + timedelta(days=5):%Y-%m-%d}")
    resolves = [json.loads(r["body"]) for r in receiver.ok("/pagerduty")][len(first.summary["alerts"]) :]
    assert {e["event_action"] for e in resolves} == {"resolve"}
    assert {e["dedup_key"] for e in resolves} == {a["dedup_key"] for a in first.summary["alerts"]}
    assert sum("[resolved]" in m for m in mailbox.messages) == len(first.summary["alerts"])
    assert {r["state"] for r in list_alerts(config)} == {"resolved"}


def test_a_sink_that_fails_then_times_out_gets_the_alert_later_exactly_once(alert_world):
    config, receiver, _ = alert_world
    # Both attempts at the first message fail (an error, then a timeout); the sink is then left
    # alone for the rest of the run, so the other messages wait without being attempted.
    receiver.plan["/webhook"] = ["fail", "hang"]
    result = run_job(config, DRIFT_DAY)
    n_alerts = len(result.summary["alerts"])
    assert result.delivery["pending"] == n_alerts
    assert receiver.ok("/webhook") == []
    assert len(receiver.ok("/pagerduty")) == n_alerts  # the other sinks were not held up
    pending = list_alerts(config, "undelivered")
    assert len(pending) == n_alerts and all(r["undelivered"] == 1 for r in pending)

    counts = flush(config)  # the sink has recovered
    assert counts == {"delivered": n_alerts, "pending": 0}
    delivered = receiver.ok("/webhook")
    assert len(delivered) == n_alerts
    assert len({r["headers"]["Idempotency-Key"] for r in delivered}) == n_alerts
    assert flush(config) == {"delivered": 0, "pending": 0}
    assert len(receiver.ok("/webhook")) == n_alerts
    con = duckdb.connect(str(config.store.database), read_only=True)
    attempts = con.execute("SELECT ok, count(*) FROM deliveries WHERE sink = 'team-webhook' GROUP BY ok").fetchall()
    con.close()
    assert dict(attempts) == {False: 2, True: n_alerts}


def test_a_kill_mid_delivery_loses_nothing(alert_world):
    config, receiver, _ = alert_world
    receiver.plan["/webhook"] = ["fail"] * 20
    result = run_job(config, DRIFT_DAY)  # leaves the webhook messages undelivered
    n_alerts = len(result.summary["alerts"])
    receiver.plan["/webhook"] = ["hang"] * 20
    env = {**os.environ}
    flusher = subprocess.Popen([sys.executable, "-m", "drift", "alerts", "flush", str(config.path)], env=env)
    deadline = time.time() + 60
    while time.time() < deadline and not any(r["answered"] == "hang" for r in receiver.requests):
        time.sleep(0.05)
    flusher.send_signal(signal.SIGKILL)  # in the middle of a delivery
    flusher.wait()
    receiver.plan["/webhook"] = []
    assert flush(config)["pending"] == 0
    assert len({r["headers"]["Idempotency-Key"] for r in receiver.ok("/webhook")}) == n_alerts


def test_secrets_never_reach_the_store_or_the_reports(alert_world):
    config, receiver, _ = alert_world
    # Every sink with a secret fails, so that each failure's message is recorded: the Slack URL is
    # itself the secret, the PagerDuty routing key goes in the body, the HMAC key signs it.
    for path in ("/webhook", "/slack", "/pagerduty"):
        receiver.plan[path] = ["fail"] * 4
    result = run_job(config, DRIFT_DAY)
    assert result.delivery["pending"] >= 3
    con = duckdb.connect(str(config.store.database), read_only=True)
    dump = json.dumps(
        [con.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "alerts", "outbox", "deliveries")], default=str
    )
    con.close()
    texts = dump + result.report_paths["md"].read_text() + result.report_paths["json"].read_text()
    for secret in [*SECRETS.values(), os.environ["DRIFT_TEST_SLACK_URL"]]:
        assert secret not in texts


def test_a_missing_secret_stops_the_run_before_any_work(alert_world, monkeypatch):
    config, receiver, _ = alert_world
    monkeypatch.delenv("DRIFT_TEST_PD_KEY")
    from drift.errors import ConfigError

    with pytest.raises(ConfigError, match="routing_key_env: environment variable DRIFT_TEST_PD_KEY is not set"):
        run_job(config, f"{BASE_DAY + timedelta(days=4):%Y-%m-%d}")
    assert receiver.requests == []
    assert not config.store.database.exists()


def test_readers_are_not_locked_out_while_a_slow_webhook_is_retried(alert_world):
    """The dead man's switch (`drift status`) must read a run that is delivering as a run, not a lock."""
    config, receiver, _ = alert_world
    receiver.plan["/webhook"] = ["hang"] * 20  # every attempt times out after timeout_s = 1
    runner = threading.Thread(target=run_job, args=(config, DRIFT_DAY))
    runner.start()
    deadline = time.time() + 300
    while time.time() < deadline and not any(r["answered"] == "hang" for r in receiver.requests):
        time.sleep(0.05)
    assert runner.is_alive(), "the run should still be delivering"
    started = time.monotonic()
    status = subprocess.run(
        [sys.executable, "-m", "drift", "status", str(config.path)], capture_output=True, text=True, timeout=60
    )
    took = time.monotonic() - started
    runner.join()
    assert status.returncode in (0, 1), status.stderr  # 1: late by the schedule, which is not the point here
    assert "error" not in status.stderr and "open alerts" in status.stdout
    assert took < 20


def test_a_sink_that_raises_something_unexpected_is_a_recorded_failed_attempt(alert_world, monkeypatch):
    """A newline in a source name once reached an email header: the exception escaped after the
    commit, on every later run, and the reports were never written."""
    config, receiver, mailbox = alert_world
    from drift.alerts import sinks

    def broken(self, message):
        raise ValueError(f"Header values may not contain linefeed (key {SECRETS['DRIFT_TEST_HMAC']})")

    working = sinks.Email.send, sinks.Webhook.send
    monkeypatch.setattr(sinks.Email, "send", broken)
    monkeypatch.setattr(sinks.Webhook, "send", broken)  # a secret of its own sink is blanked
    result = run_job(config, DRIFT_DAY)
    assert result.report_paths["html"].exists() and result.report_paths["md"].exists()
    assert result.delivery["pending"] == 2 * len(result.summary["alerts"]) and len(receiver.ok("/pagerduty")) == 2
    con = duckdb.connect(str(config.store.database), read_only=True)
    rows = con.execute("SELECT sink, ok, status, response FROM deliveries WHERE NOT ok ORDER BY sink").fetchall()
    con.close()
    assert {r[0] for r in rows} == {"email", "team-webhook"} and {r[2] for r in rows} == {"error"}
    assert all(r[3].startswith("ValueError: Header values") for r in rows)
    assert not any(SECRETS["DRIFT_TEST_HMAC"] in r[3] for r in rows if r[0] == "team-webhook")
    monkeypatch.setattr(sinks.Email, "send", working[0])
    monkeypatch.setattr(sinks.Webhook, "send", working[1])
    assert flush(config)["pending"] == 0  # fixed: the next pass delivers them


def test_a_source_name_with_a_newline_is_one_line_in_every_title():
    from drift.alerts.policy import one_line

    assert one_line("[critical] t: payload/acme\r\nBcc: x@evil drift") == "[critical] t: payload/acme Bcc: x@evil drift"


def test_a_pagerduty_summary_fits_its_limit_however_long_the_headline():
    from drift.alerts.sinks import PagerDuty, subject
    from drift.config import PagerDutySink

    os.environ.setdefault("DRIFT_TEST_PD_KEY", "k")
    sink = PagerDuty(PagerDutySink(type="pagerduty", name="pd", routing_key_env="DRIFT_TEST_PD_KEY"))
    message = {
        "action": "trigger",
        "dedup_key": "drift/j/payload/x",
        "severity": "critical",
        "job": "j",
        "kind": "payload",
        "source": "x" * 900,
        "title": "j: payload/" + "x" * 900 + ": " + "$.a is missing from 40% of x payloads" * 20,
        "changes": [],
        "findings": [],
    }
    summary = sink.event(message)["payload"]["summary"]
    assert len(summary) == 1024 and summary.endswith("…")
    assert subject(message).startswith("[critical] j: payload/xxx") and subject(
        {**message, "escalated_from": "warning"}
    ).startswith("[critical, up from warning] ")
