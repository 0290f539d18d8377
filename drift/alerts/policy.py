"""What pages: one alert per (job, segment), the incident of that segment's night.

A drifted segment is one cause to look into, however many check families moved (a wave of scans
moves the descriptors, the page embedding and the error rate at once): its findings are grouped by
family inside the one alert, and its severity is the highest of theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config import SEVERITY_ORDER, JobConfig
from ..report.headline import ranked
from ..stats.verdict import Verdict, max_severity

MAX_CHANGES = 3  # sentences of what changed in a message, the headline first
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


@dataclass
class PlannedAlert:
    dedup_key: str
    job: str
    kind: str
    source: str
    families: list[str]
    severity: str
    title: str
    body: dict[str, Any] = field(default_factory=dict)


def dedup_key(job: str, kind: str, source: str) -> str:
    # Stable while the alert is open, whatever families drift from night to night.
    return f"drift/{job}/{kind}/{source}"


def one_line(text: str) -> str:
    """Text from inputs (a source name) made safe for a title: an email subject, a Slack header."""
    return _CONTROL.sub(" ", text)


def paging_findings(verdict: Verdict, config: JobConfig) -> list:
    threshold = SEVERITY_ORDER[config.policy.page_at]
    return [f for f in verdict.findings if f.drifted and SEVERITY_ORDER[f.severity] >= threshold]


def plan_alerts(
    config: JobConfig, run_id: str, window: dict, verdicts: dict[tuple[str, str], Verdict], report_path: str
) -> list[PlannedAlert]:
    alerts = []
    for (kind, source), verdict in sorted(verdicts.items()):
        findings = paging_findings(verdict, config)
        if not findings:
            continue
        # Highest severity first, then the largest effects within a family.
        findings.sort(key=lambda f: (-SEVERITY_ORDER[f.severity], f.result.family, -(f.result.effect_size or 0)))
        families = list(dict.fromkeys(f.result.family for f in findings))
        severity = max_severity(f.severity for f in findings)
        finding_dicts = [f.as_dict() for f in findings]
        # What pages, in the report's words (one sentence per target, the headline first).
        changes = ranked(kind, source, finding_dicts)
        # The severity is said once, by each sink in its own way (a subject tag, an icon, a field).
        title = one_line(f"{config.name}: {kind}/{source}: {changes[0]}")
        alerts.append(
            PlannedAlert(
                dedup_key=dedup_key(config.name, kind, source),
                job=config.name,
                kind=kind,
                source=source,
                families=families,
                severity=severity,
                title=title,
                body={
                    "run_id": run_id,
                    "window": window,
                    "families": families,
                    "changes": changes[:MAX_CHANGES],
                    "findings": finding_dicts,
                    "report": report_path,
                    "runbook": config.alerts.runbook_url,
                },
            )
        )
    return alerts


def clean_segments(config: JobConfig, verdicts: dict[tuple[str, str], Verdict]) -> set[tuple[str, str]]:
    """Segments this window tested and found without a paging finding: what may resolve an alert.

    A segment whose checks could not run (not enough data, no baseline, absent) says nothing.
    """
    return {segment for segment, v in verdicts.items() if v.status == "ok" and not paging_findings(v, config)}
