"""The one place where test results become findings, a verdict and a severity.

A check says "drift" only when all three hold:
  1. its p-value is significant at the level its family gets (below);
  2. its effect size reaches the practical threshold of its family;
  3. both samples have at least `min_samples` observations ("not enough data" otherwise,
     which is not drift).
p-values alone page people for nothing at large n; effect sizes alone miss real shifts at small n.
Both are stored with every finding.

Levels. A page is worth what its false-alarm rate per NIGHT is, whatever the job's width, so the
checks that can page (their family's severity reaches `[policy] page_at`) share one budget per
run, `[policy] page_alpha`: split evenly across the run's tested segments, then evenly across the
paging families present in a segment and two reserved groups (never-seen events and novel items,
see RESERVED), with Benjamini-Hochberg inside each family or group at its share.
When no segment changed, BH at level q rejects nothing with probability at least 1 - q (for
independent or positively dependent p-values), so by the union bound the run pages falsely with
probability at most page_alpha, for 2 segments or 200; the effect thresholds only lower it.
Checks that cannot page (info) are held to Benjamini-Hochberg across the segment at `fdr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

from ..config import SEVERITY_ORDER, PolicySection
from .families import FAMILIES, METHOD_THRESHOLDS
from .tests import TestResult

# Evidence of something new gets a share of its own, beside the families, whatever family it is in:
# an exact test of an event the baseline never showed (a type, value, null or error category), and
# the share of items unlike any in the baseline. They are the sharpest evidence a partial shift
# leaves, and would otherwise be one test among dozens of their family's.
RESERVED = {"rule_of_three": "never_seen", "conformal": "novelty"}

STATUSES = ("drift", "small_effect", "no_drift", "not_enough_data", "untestable")


@dataclass
class Finding:
    result: TestResult
    p_adjusted: float
    effect_threshold: float
    status: str
    severity: str
    level: float = math.nan  # what p_adjusted was held to: the family's share of the night's budget, or fdr

    @property
    def drifted(self) -> bool:
        return self.status == "drift"

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "check": r.family,
            "target": r.target,
            "method": r.method,
            "statistic": _finite(r.statistic),
            "p_value": _finite(r.p_value),
            "p_adjusted": _finite(self.p_adjusted),
            "effect_size": _finite(r.effect_size),
            "effect_threshold": self.effect_threshold,
            "n_ref": r.n_ref,
            "n_cur": r.n_cur,
            "status": self.status,
            "severity": self.severity,
            "detail": {**r.params, **r.detail, **({"level": float(f"{self.level:.3g}")} if math.isfinite(self.level) else {})},
        }


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    drifted: bool = False
    severity: str = "none"
    status: str = "ok"  # ok | not_enough_data | no_baseline


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def threshold_for(family: str, method: str, policy: PolicySection) -> float:
    """`family.method` in the job file wins, then `family` (for the family's default method), then the defaults."""
    key = f"{family}.{method}"
    if key in policy.effect:
        return policy.effect[key]
    if (family, method) in METHOD_THRESHOLDS:
        return METHOD_THRESHOLDS[(family, method)]
    return policy.effect.get(family, FAMILIES[family][0])


def severity_for(family: str, policy: PolicySection) -> str:
    return policy.severity.get(family, FAMILIES[family][1])


def max_severity(severities) -> str:
    return max(severities, key=SEVERITY_ORDER.__getitem__, default="none")


def pages(family: str, policy: PolicySection) -> bool:
    return SEVERITY_ORDER[severity_for(family, policy)] >= SEVERITY_ORDER[policy.page_at]


def error_control(policy: PolicySection, segments: int) -> dict[str, Any]:
    """What the policy promises for a run of this width: the false-page rate per night it implies."""
    segments = max(segments, 1)
    return {
        "page_alpha": policy.page_alpha,
        "segments": segments,
        "per_segment": policy.page_alpha / segments,
        "info_fdr": policy.fdr,
        "statement": (
            f"at most {policy.page_alpha:.2%} of nights with no real change page falsely "
            f"({segments} segment(s), {policy.page_alpha / segments:.2g} each, split across paging check families; "
            "effect thresholds make it lower)"
        ),
    }


def _levels(results: list[TestResult], testable: list[int], policy: PolicySection, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Each testable check's adjusted p-value and the level it is held to (see the module's docstring)."""
    adjusted = np.full(len(results), math.nan)
    level = np.full(len(results), math.nan)
    groups: dict[str, list[int]] = {}
    families = set()
    for i in testable:
        family, method = results[i].family, results[i].method
        if not pages(family, policy):
            groups.setdefault("(info)", []).append(i)
            continue
        families.add(family)
        groups.setdefault(RESERVED.get(method, family), []).append(i)
    # Every paging family present gets a share, and so do the reserved groups, whether or not
    # they hold a test tonight: the split never depends on what the data turned up.
    shares = len(families) + len(RESERVED) if families else 1
    for group, members in groups.items():
        ps = np.clip([results[i].p_value for i in members], 0.0, 1.0)
        adjusted[members] = false_discovery_control(ps, method="bh")
        level[members] = policy.fdr if group == "(info)" else policy.page_alpha / max(segments, 1) / shares
    return adjusted, level


def decide(results: list[TestResult], policy: PolicySection, segments: int = 1) -> Verdict:
    """One segment's verdict, in a run that tests `segments` segments (its share of the night's budget)."""
    testable = [
        i
        for i, r in enumerate(results)
        if math.isfinite(r.p_value) and min(r.n_ref, r.n_cur) >= policy.min_samples
    ]
    adjusted, level = _levels(results, testable, policy, segments)
    findings = []
    for i, result in enumerate(results):
        # A check that knows how far the baseline's own days moved from each other must move further.
        threshold = max(threshold_for(result.family, result.method, policy), result.params.get("day_to_day", 0.0))
        if not math.isfinite(result.p_value):
            status = "untestable"
        elif min(result.n_ref, result.n_cur) < policy.min_samples:
            status = "not_enough_data"
        elif adjusted[i] > level[i]:
            status = "no_drift"
        elif not result.effect_size >= threshold:
            status = "small_effect"
        else:
            status = "drift"
        severity = severity_for(result.family, policy) if status == "drift" else "none"
        findings.append(Finding(result, float(adjusted[i]), threshold, status, severity, float(level[i])))
    drifted = any(f.drifted for f in findings)
    status = "ok" if testable or not results else "not_enough_data"
    return Verdict(findings, drifted, max_severity(f.severity for f in findings), status)
