"""The Alertmanager sink against a real Alertmanager (Debian's prometheus-alertmanager, started
here on 127.0.0.1; .ci/run installs it): a segment's alert appears in GET /api/v2/alerts with its
labels and annotations, stays firing across nights because each run re-sends it, changes severity
without leaving the old one firing, and is resolved by a clean night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from drift.config import load_job

from .conftest import free_port, local_server
from .test_alert_lifecycle import ORDERS, PHOTOS, night
from .test_config import MINIMAL


@pytest.fixture
def alertmanager(tmp_path):
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    port = free_port()
    argv = [
        f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=", "--log.level=error",
    ]  # fmt: skip
    with local_server("prometheus-alertmanager", argv, port) as url:
        yield url


def firing(url: str) -> dict[tuple[str, str], dict]:
    """(source, severity) -> the alert, for drift's alerts Alertmanager holds as active."""
    alerts = httpx.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=5).json()
    now = datetime.now(UTC)
    return {
        (a["labels"]["source"], a["labels"]["severity"]): a
        for a in alerts
        if a["labels"].get("alertname") == "DriftSegment"
        and a["status"]["state"] == "active"
        and datetime.fromisoformat(a["endsAt"].replace("Z", "+00:00")) > now
    }


def test_alerts_fire_stay_firing_change_severity_and_resolve_in_alertmanager(tmp_path, alertmanager):
    job = tmp_path / "job.toml"
    job.write_text(
        MINIMAL
        + f"""
[alerts]
runbook_url = "https://wiki.example.com/drift"

[[alerts.sinks]]
name = "am"
type = "alertmanager"
url = "{alertmanager}"
hold_h = 30
min_severity = "warning"
timeout_s = 5
"""
    )
    config = load_job(job)

    report = "https://drift.example.com/reports/shop/2026-06-01/report.html"
    assert night(config, 0, {PHOTOS: "warning", ORDERS: "clean"}, report)[f"drift/shop/{PHOTOS[0]}/{PHOTOS[1]}"] == "opened"
    alert = firing(alertmanager)[("photos", "warning")]
    assert alert["labels"] == {
        "alertname": "DriftSegment",
        "job": "shop",
        "kind": "image",
        "source": "photos",
        "severity": "warning",
    }
    assert alert["annotations"]["summary"].startswith("shop: image/photos: ")
    assert alert["annotations"]["runbook_url"] == "https://wiki.example.com/drift"
    assert alert["generatorURL"] == alert["annotations"]["report"] == report
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert timedelta(hours=29) < ends - datetime.now(UTC) <= timedelta(hours=30)  # not Alertmanager's 5-minute default

    # the next night the same incident is sent again (Alertmanager would let it lapse otherwise)
    assert night(config, 1, {PHOTOS: "warning", ORDERS: "clean"})[f"drift/shop/{PHOTOS[0]}/{PHOTOS[1]}"] == "updated"
    assert set(firing(alertmanager)) == {("photos", "warning")}

    # escalation: the alert under the new severity fires, the one under the old is resolved
    night(config, 2, {PHOTOS: "critical", ORDERS: "clean"})
    assert set(firing(alertmanager)) == {("photos", "critical")}
    night(config, 3, {PHOTOS: "warning", ORDERS: "clean"})  # and back down
    assert set(firing(alertmanager)) == {("photos", "warning")}

    night(config, 4, {PHOTOS: "clean", ORDERS: "clean"})  # a clean night resolves it
    assert firing(alertmanager) == {}
