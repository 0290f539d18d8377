"""What pages: one alert per (job, segment, check family), grouping that run's findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import SEVERITY_ORDER, JobConfig
from ..stats.verdict import Verdict, max_severity

MAX_FINDINGS_IN_TITLE = 3


@dataclass
class PlannedAlert:
    dedup_key: str
    job: str
    kind: str
    source: str
    family: str
    severity: str
    title: str
    body: dict[str, Any] = field(default_factory=dict)


def dedup_key(job: str, kind: str, source: str, family: str) -> str:
    # Stable across runs and windows, so an alert that stays open is updated rather than re-sent.
    return f"drift/{job}/{kind}/{source}/{family}"


def plan_alerts(
    config: JobConfig, run_id: str, window: dict, verdicts: dict[tuple[str, str], Verdict], report_path: str
) -> list[PlannedAlert]:
    threshold = SEVERITY_ORDER[config.policy.page_at]
    alerts = []
    for (kind, source), verdict in sorted(verdicts.items()):
        by_family: dict[str, list] = {}
        for finding in verdict.findings:
            if finding.drifted and SEVERITY_ORDER[finding.severity] >= threshold:
                by_family.setdefault(finding.result.family, []).append(finding)
        for family, findings in sorted(by_family.items()):
            findings.sort(key=lambda f: -(f.result.effect_size or 0))
            severity = max_severity(f.severity for f in findings)
            # Several methods test one target (an embedding: mmd, pca_ks, classifier); name it once.
            names = list(dict.fromkeys(f.result.target for f in findings))
            targets = ", ".join(names[:MAX_FINDINGS_IN_TITLE])
            more = f" (+{len(names) - MAX_FINDINGS_IN_TITLE} more)" if len(names) > MAX_FINDINGS_IN_TITLE else ""
            title = f"[{severity}] {config.name}: {kind}/{source} {family.replace('_', ' ')} drift: {targets}{more}"
            alerts.append(
                PlannedAlert(
                    dedup_key=dedup_key(config.name, kind, source, family),
                    job=config.name,
                    kind=kind,
                    source=source,
                    family=family,
                    severity=severity,
                    title=title,
                    body={
                        "run_id": run_id,
                        "window": window,
                        "findings": [f.as_dict() for f in findings],
                        "report": report_path,
                        "runbook": config.alerts.runbook_url,
                    },
                )
            )
    return alerts
