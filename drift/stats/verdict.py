"""The one place where test results become findings, a verdict and a severity.

A check says "drift" only when all three hold:
  1. its p-value survives Benjamini-Hochberg across all of the segment's checks (level `fdr`);
  2. its effect size reaches the practical threshold of its family;
  3. both samples have at least `min_samples` observations ("not enough data" otherwise,
     which is not drift).
p-values alone page people for nothing at large n; effect sizes alone miss real shifts at small n.
Both are stored with every finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control

from ..config import SEVERITY_ORDER, PolicySection
from .tests import TestResult

# family -> (default effect threshold, default severity when drifted)
FAMILIES: dict[str, tuple[float, str]] = {
    "error_rate": (0.2, "critical"),  # Cohen's h; 0.2 is Cohen's "small"
    "schema_breaking": (0.05, "critical"),  # h for presence, total variation for type mixes: 5% of responses breaking is breaking
    "schema_additive": (0.1, "info"),
    # Cohen's h for presence and null rates, Wasserstein / sd for numbers and lengths (see below)
    "schema_shift": (0.2, "info"),
    "embedding": (0.02, "warning"),  # unbiased MMD^2, median-heuristic Gaussian kernel
    "descriptor": (0.5, "warning"),  # Wasserstein / sd for numbers, Jensen-Shannon for categories
}
# Methods whose effect is on another scale than their family's default.
METHOD_THRESHOLDS: dict[tuple[str, str], float] = {
    ("embedding", "classifier"): 0.2,  # 2*AUC - 1: AUC 0.6
    ("embedding", "pca_ks"): 0.2,  # the largest KS distance over the principal components
    ("schema_shift", "ks"): 0.5,  # numbers and lengths: Wasserstein / sd, as for descriptors
    ("schema_shift", "chi2"): 0.2,  # enum shares: Jensen-Shannon distance
}

STATUSES = ("drift", "small_effect", "no_drift", "not_enough_data", "untestable")


@dataclass
class Finding:
    result: TestResult
    p_adjusted: float
    effect_threshold: float
    status: str
    severity: str

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
            "detail": {**r.params, **r.detail},
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


def decide(results: list[TestResult], policy: PolicySection) -> Verdict:
    testable = [
        i
        for i, r in enumerate(results)
        if math.isfinite(r.p_value) and min(r.n_ref, r.n_cur) >= policy.min_samples
    ]
    adjusted = np.full(len(results), math.nan)
    if testable:
        ps = np.clip([results[i].p_value for i in testable], 0.0, 1.0)
        adjusted[testable] = false_discovery_control(ps, method="bh")
    findings = []
    for i, result in enumerate(results):
        threshold = threshold_for(result.family, result.method, policy)
        if not math.isfinite(result.p_value):
            status = "untestable"
        elif min(result.n_ref, result.n_cur) < policy.min_samples:
            status = "not_enough_data"
        elif adjusted[i] > policy.fdr:
            status = "no_drift"
        elif not result.effect_size >= threshold:
            status = "small_effect"
        else:
            status = "drift"
        severity = severity_for(result.family, policy) if status == "drift" else "none"
        findings.append(Finding(result, float(adjusted[i]), threshold, status, severity))
    drifted = any(f.drifted for f in findings)
    status = "ok" if testable or not results else "not_enough_data"
    return Verdict(findings, drifted, max_severity(f.severity for f in findings), status)
