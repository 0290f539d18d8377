"""Where alert messages go. A sink's `send(message)` returns a short status or raises SinkError.

Secrets (webhook HMAC keys, Slack URLs, PagerDuty routing keys, SMTP passwords) are read from the
environment variables the job file names, when the sink is built; they are never written to the
store, the logs or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import sys
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx

from ..config import AlertmanagerSink, EmailSink, FileSink, PagerDutySink, SlackSink, StdoutSink, WebhookSink
from ..errors import ConfigError
from ..locations import is_web_url
from ..record import Action

# drift severity -> PagerDuty Events v2 severity
PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info", "none": "info"}
MAX_FINDINGS_SHOWN = 5


class SinkError(Exception):
    """One delivery attempt failed; it will be retried."""


SECRET_ATTRIBUTES = ("secret", "url", "routing_key", "username", "password")


def secrets_of(sink) -> list[str]:
    """The secret values a built sink holds, to be kept out of anything recorded about it."""
    return [v for a in SECRET_ATTRIBUTES if isinstance(v := getattr(sink, a, None), str) and v]


def _compact(message: dict) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":"), default=str).encode()


def _secret(variable: str | None, what: str) -> str | None:
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise ConfigError(f"[alerts.sinks] {what}: environment variable {variable} is not set")
    return value


def subject(message: dict) -> str:
    """The message in one line, its severity said once: `[critical] job: kind/source: headline`."""
    if message["action"] == Action.RESOLVE:
        return message["title"]
    escalated = f", up from {message['escalated_from']}" if message.get("escalated_from") else ""
    return f"[{message['severity']}{escalated}] {message['title']}"


def fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def finding_lines(message: dict) -> list[str]:
    """One line per finding, for those who want the statistics: target, old -> new, effect, p."""
    lines = []
    for f in message.get("findings", [])[:MAX_FINDINGS_SHOWN]:
        detail = f.get("detail", {})
        change = f" ({detail['old']} -> {detail['new']})" if "old" in detail and "new" in detail else ""
        p = f.get("p_adjusted") if f.get("p_adjusted") is not None else f.get("p_value")
        lines.append(f"{f['target']}{change}: effect {f['effect_size']:.3g}, p {p:.2g} [{f['method']}]")
    extra = len(message.get("findings", [])) - MAX_FINDINGS_SHOWN
    if extra > 0:
        lines.append(f"... and {extra} more")
    return lines


def text_body(message: dict) -> str:
    lines = [subject(message), ""]
    if message["action"] == Action.TRIGGER:
        window = message.get("window", {})
        lines.append(f"Window {window.get('start', '?')} .. {window.get('end', '?')}, run {message.get('run_id')}")
        if message.get("changes"):
            lines += ["", "What changed:", *(f"- {c}" for c in message["changes"])]
        lines += ["", "Checks:", *finding_lines(message), ""]
    else:
        lines.append(f"Resolved by run {message.get('run_id')}: the segment no longer drifts.")
    if message.get("report"):
        lines.append(f"Report: {message['report']}")
    if message.get("runbook"):
        lines.append(f"Runbook: {message['runbook']}")
    lines.append(f"Dedup key: {message['dedup_key']}")
    return "\n".join(lines)


def _post(url: str, body: bytes, headers: dict, timeout: float, ok=range(200, 300)) -> httpx.Response:
    try:
        response = httpx.post(url, content=body, headers={"Content-Type": "application/json", **headers}, timeout=timeout)
    except httpx.HTTPError as exc:
        # The URL may hold a secret (Slack); name only the error's kind.
        raise SinkError(f"{type(exc).__name__} while posting") from None
    if response.status_code not in ok:
        raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")
    return response


class Stdout:
    def __init__(self, config: StdoutSink):
        self.config = config

    def send(self, message: dict) -> str:
        print(f"ALERT {message['action']}: {subject(message)}", file=sys.stdout, flush=True)
        return "printed"


class File:
    """Appends one JSON line per message."""

    def __init__(self, config: FileSink):
        self.config = config

    def send(self, message: dict) -> str:
        try:
            self.config.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.config.path, "ab") as handle:
                handle.write(_compact(message) + b"\n")
        except OSError as exc:
            raise SinkError(f"{type(exc).__name__}: {exc}") from None
        return "appended"


class Webhook:
    """POST the message as JSON; with a secret, sign the body: X-Drift-Signature: sha256=<hex HMAC>."""

    def __init__(self, config: WebhookSink):
        self.config = config
        self.secret = _secret(config.secret_env, "secret_env")

    def send(self, message: dict) -> str:
        body = _compact(message)
        headers = {"Idempotency-Key": message["message_id"]}
        if self.secret:
            headers["X-Drift-Signature"] = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return f"HTTP {_post(self.config.url, body, headers, self.config.timeout_s).status_code}"


class Slack:
    """Slack incoming webhook with Block Kit sections; `text` is the notification fallback."""

    def __init__(self, config: SlackSink):
        self.config = config
        self.url = _secret(config.url_env, "url_env")

    def blocks(self, message: dict) -> list[dict]:
        icon = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}.get(message["severity"], ":white_circle:")
        if message["action"] == Action.RESOLVE:
            icon = ":white_check_mark:"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} *{_slack_escape(subject(message))}*"}}]
        if message["action"] == Action.TRIGGER:
            window = message.get("window", {})
            changes = "\n".join(f"• {_slack_escape(line)}" for line in message.get("changes", [])[1:])
            if changes:
                blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": changes}})
            context = f"window {window.get('start', '?')[:10]} · run `{message.get('run_id')}`"
        else:
            context = f"resolved by run `{message.get('run_id')}`"
        links = [_slack_link(message["report"], "report")] if message.get("report") else []
        if message.get("runbook"):
            links.append(f"<{message['runbook']}|runbook>")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join([context, *links])}]})
        return blocks

    def send(self, message: dict) -> str:
        body = json.dumps({"text": subject(message), "blocks": self.blocks(message)}).encode()
        return f"HTTP {_post(self.url, body, {}, self.config.timeout_s).status_code}"


def _slack_link(target: str, label: str) -> str:
    if is_web_url(target):
        return f"<{target}|{label}>"
    return f"{label}: {_slack_escape(target)}"


def _slack_escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class PagerDuty:
    """PagerDuty Events API v2: trigger and resolve with the alert's dedup key."""

    def __init__(self, config: PagerDutySink):
        self.config = config
        self.routing_key = _secret(config.routing_key_env, "routing_key_env")

    def event(self, message: dict) -> dict:
        event = {"routing_key": self.routing_key, "event_action": message["action"], "dedup_key": message["dedup_key"]}
        if message["action"] == Action.TRIGGER:
            event["payload"] = {
                # PagerDuty's limit; the severity has its own field
                "summary": fit(message["title"], 1024),
                "source": f"drift/{message['job']}",
                "severity": PAGERDUTY_SEVERITY[message["severity"]],
                "component": f"{message['kind']}/{message['source']}",
                "group": message["job"],
                "class": ", ".join(message.get("families") or [message.get("check", "drift")]),
                "custom_details": {
                    "what changed": message.get("changes", []),
                    "findings": finding_lines(message),
                    "window": message.get("window"),
                    "run_id": message.get("run_id"),
                    "report": message.get("report"),
                },
            }
            links = [{"href": message["runbook"], "text": "Runbook"}] if message.get("runbook") else []
            if is_web_url(message.get("report", "")):
                links.insert(0, {"href": message["report"], "text": "Drift report"})
            if links:
                event["links"] = links
        return event

    def send(self, message: dict) -> str:
        body = json.dumps(self.event(message)).encode()
        response = _post(self.config.url, body, {}, self.config.timeout_s, ok=range(200, 300))
        return f"HTTP {response.status_code}"


class Alertmanager:
    """Prometheus Alertmanager's API v2: POST /api/v2/alerts. An alert is its label set (alertname,
    job, kind, source, severity): a trigger fires it until `hold_h` from now, each run re-sends it
    while it is open (outbox: REFRESHED), and a resolve sets its endsAt to when drift resolved it."""

    refreshes = True  # it forgets an alert nobody re-sends: the outbox sends it again every run

    def __init__(self, config: AlertmanagerSink):
        self.config = config

    def alert(self, message: dict, now: datetime) -> dict:
        labels = {
            "alertname": "DriftSegment",
            "job": message["job"],
            "kind": message["kind"],
            "source": message["source"],
            "severity": message["severity"],
        }
        if message["action"] == Action.RESOLVE:
            # messages queued by a drift before opened_at/resolved_at were sent lack them: now, then
            ends = datetime.fromisoformat(message["resolved_at"]) if message.get("resolved_at") else now
            return {"labels": labels, "endsAt": _rfc3339(ends)}
        annotations = {
            "summary": fit(message["title"], 1024),
            "description": "\n".join(message.get("changes", [])),
            **({"report": message["report"]} if message.get("report") else {}),
            **({"runbook_url": message["runbook"]} if message.get("runbook") else {}),
        }
        alert = {
            "labels": labels,
            "annotations": annotations,
            "startsAt": _rfc3339(datetime.fromisoformat(message["opened_at"]) if message.get("opened_at") else now),
            "endsAt": _rfc3339(now + timedelta(hours=self.config.hold_h)),
        }
        if is_web_url(message.get("report", "")):
            alert["generatorURL"] = message["report"]
        return alert

    def send(self, message: dict) -> str:
        body = json.dumps([self.alert(message, datetime.now(UTC))]).encode()
        response = _post(f"{self.config.url.rstrip('/')}/api/v2/alerts", body, {}, self.config.timeout_s)
        return f"HTTP {response.status_code}"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Email:
    def __init__(self, config: EmailSink):
        self.config = config
        self.username = _secret(config.username_env, "username_env")
        self.password = _secret(config.password_env, "password_env")

    def send(self, message: dict) -> str:
        email = EmailMessage()
        email["Subject"] = subject(message)
        email["From"] = self.config.sender
        email["To"] = ", ".join(self.config.recipients)
        email["Message-ID"] = f"<{message['message_id']}@drift>"
        email.set_content(text_body(message))
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout_s) as smtp:
                if self.config.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise SinkError(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        return "sent"


SINKS = {
    "stdout": Stdout, "file": File, "webhook": Webhook, "slack": Slack, "pagerduty": PagerDuty,
    "alertmanager": Alertmanager, "email": Email,
}  # fmt: skip
# The sinks that forget an alert nobody re-sends: every run that keeps an alert open sends it again.
REFRESHED = {name for name, sink in SINKS.items() if getattr(sink, "refreshes", False)}


def build_sink(config):
    return SINKS[config.type](config)
