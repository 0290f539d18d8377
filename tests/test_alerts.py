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

from .conftest import BASE_DAY
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
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "answered": action}
                    )
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
    text = job.read_text().replace('[[alerts.sinks]]\ntype = "file"\npath = "alerts.jsonl"\n', "")
    text += f"""
[alerts]
max_attempts = 2
backoff_s = 0
runbook_url = "https://wiki.example.com/drift"

[[alerts.sinks]]
type = "webhook"
url = "{receiver.url}/webhook"
secret_env = "DRIFT_TEST_HMAC"
timeout_s = 1

[[alerts.sinks]]
type = "slack"
url_env = "DRIFT_TEST_SLACK_URL"
timeout_s = 1

[[alerts.sinks]]
type = "pagerduty"
routing_key_env = "DRIFT_TEST_PD_KEY"
url = "{receiver.url}/pagerduty"
timeout_s = 1

[[alerts.sinks]]
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
    assert keys == {"drift/t/image/app/descriptor", "drift/t/image/app/embedding", "drift/t/payload/orders/schema_breaking"}
    for path in ("/webhook", "/slack", "/pagerduty"):
        assert len(receiver.ok(path)) == len(keys), path
    assert len(mailbox.messages) == len(keys)

    for request in receiver.ok("/webhook"):
        expected = hmac.new(SECRETS["DRIFT_TEST_HMAC"].encode(), request["body"], hashlib.sha256).hexdigest()
        assert request["headers"]["X-Drift-Signature"] == f"sha256={expected}"
        message = json.loads(request["body"])
        assert message["runbook"] == "https://wiki.example.com/drift" and message["report"].endswith("report.md")
    events = [json.loads(r["body"]) for r in receiver.ok("/pagerduty")]
    assert {e["dedup_key"] for e in events} == keys
    assert all(e["event_action"] == "trigger" and e["routing_key"] == SECRETS["DRIFT_TEST_PD_KEY"] for e in events)
    severities = {e["dedup_key"]: e["payload"]["severity"] for e in events}
    assert severities["drift/t/payload/orders/schema_breaking"] == "critical"
    slack = json.loads(receiver.ok("/slack")[0]["body"])
    assert slack["blocks"][0]["type"] == "section" and "drift" in slack["text"]
    assert any("Subject: [critical] t: payload/orders" in m for m in mailbox.messages)
    assert any("$.total type" in m for m in mailbox.messages)


def test_rerun_sends_nothing_new_and_a_clean_run_resolves(alert_world):
    config, receiver, mailbox = alert_world
    first = run_job(config, DRIFT_DAY)
    sent = len(receiver.requests), len(mailbox.messages)
    run_job(config, DRIFT_DAY)
    assert (len(receiver.requests), len(mailbox.messages)) == sent

    run_job(config, QUIET_DAY)
    resolves = [json.loads(r["body"]) for r in receiver.ok("/pagerduty")][len(first.summary["alerts"]):]
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
    attempts = con.execute("SELECT ok, count(*) FROM deliveries WHERE sink = 'webhook-0' GROUP BY ok").fetchall()
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
    receiver.plan["/webhook"] = ["fail"] * 4
    result = run_job(config, DRIFT_DAY)
    con = duckdb.connect(str(config.store.database), read_only=True)
    dump = json.dumps([con.execute(f"SELECT * FROM {t}").fetchall() for t in ("runs", "alerts", "outbox", "deliveries")], default=str)
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
