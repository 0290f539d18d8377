"""What pages: one alert per (job, segment), the incident of that segment's night.

A drifted segment is one cause to look into, however many check families moved (a wave of scans
moves the descriptors, the page embedding and the error rate at once): its findings are grouped by
family inside the one alert, and its severity is the highest of theirs. Which findings page is
decided by the verdict (drift.verdict.policy.paging_findings); this module only groups them.
"""

from __future__ import annotations

import re

from ..config import JobConfig
from ..record import Alert, SegmentStatus, Severity, Verdict
from ..verdict.headline import ranked
from ..verdict.policy import paging_findings

MAX_CHANGES = 3  # sentences of what changed in a message, the headline first
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def dedup_key(job: str, kind: str, source: str) -> str:
    # Stable while the alert is open, whatever families drift from night to night.
    return f"drift/{job}/{kind}/{source}"


def one_line(text: str) -> str:
    """Text from inputs (a source name) made safe for a title: an email subject, a Slack header."""
    return _CONTROL.sub(" ", text)


def plan_alerts(
    config: JobConfig, run_id: str, window: dict, verdicts: dict[tuple[str, str], Verdict], report_path: str
) -> list[Alert]:
    alerts = []
    for (kind, source), verdict in sorted(verdicts.items()):
        findings = paging_findings(verdict, config.policy)
        if not findings:
            continue
        # Highest severity first, then the largest effects within a family.
        findings.sort(key=lambda f: (-f.severity.rank, f.check, -(f.effect_size or 0)))
        families = list(dict.fromkeys(f.check for f in findings))
        # What pages, in the report's words (one sentence per target, the headline first).
        changes = ranked(kind, source, findings)
        alerts.append(
            Alert(
                # The severity is said once, by each sink in its own way (a subject tag, an icon, a field).
                severity=Severity.highest(f.severity for f in findings),
                dedup_key=dedup_key(config.name, kind, source),
                title=one_line(f"{config.name}: {kind}/{source}: {changes[0]}"),
                job=config.name,
                kind=kind,
                source=source,
                families=families,
                changes=changes[:MAX_CHANGES],
                findings=findings,
                run_id=run_id,
                window=window,
                report=report_path,
                runbook=config.alerts.runbook_url,
            )
        )
    return alerts


def clean_segments(config: JobConfig, verdicts: dict[tuple[str, str], Verdict]) -> set[tuple[str, str]]:
    """Segments this window tested and found without a paging finding: what may resolve an alert.

    A segment whose checks could not run (not enough data, no baseline, absent) says nothing.
    """
    return {segment for segment, v in verdicts.items() if v.status is SegmentStatus.OK and not paging_findings(v, config.policy)}
