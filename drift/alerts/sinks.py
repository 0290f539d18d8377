"""Where alert messages go. A sink's `send(message)` returns a short status or raises SinkError."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys

import httpx

from ..config import FileSink, StdoutSink, WebhookSink
from ..errors import ConfigError


class SinkError(Exception):
    """One delivery attempt failed; it will be retried."""


def _compact(message: dict) -> bytes:
    return json.dumps(message, sort_keys=True, separators=(",", ":")).encode()


class Stdout:
    def __init__(self, config: StdoutSink):
        self.config = config

    def send(self, message: dict) -> str:
        print(f"ALERT {message['action']}: {message['title']}", file=sys.stdout, flush=True)
        return "printed"


class File:
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
        self.secret = os.environ.get(config.secret_env) if config.secret_env else None

    def send(self, message: dict) -> str:
        body = _compact(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message["message_id"]}
        if self.secret:
            signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Drift-Signature"] = f"sha256={signature}"
        try:
            response = httpx.post(self.config.url, content=body, headers=headers, timeout=self.config.timeout_s)
        except httpx.HTTPError as exc:
            raise SinkError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 300:
            raise SinkError(f"HTTP {response.status_code}: {response.text[:200]}")
        return f"HTTP {response.status_code}"


def build_sink(config):
    if isinstance(config, WebhookSink) and config.secret_env and config.secret_env not in os.environ:
        raise ConfigError(f"[alerts.sinks] secret_env: environment variable {config.secret_env} is not set")
    return {"stdout": Stdout, "file": File, "webhook": Webhook}[config.type](config)
