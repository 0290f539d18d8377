"""The one place where test results become findings, a verdict and a severity, and where it is
decided what pages.

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

import numpy as np
from scipy.stats import beta, false_discovery_control

from ..config import PolicySection
from ..record import (
    Aspect,
    Detectable,
    ErrorControl,
    Family,
    Finding,
    FindingStatus,
    Principle,
    SegmentStatus,
    Severity,
    Verdict,
    plain,
)
from .families import FAMILIES, METHOD_THRESHOLDS
from .tests import TestResult, exceedance_p, never_seen_test

# Evidence of something new gets a share of its own, beside the families, whatever family it is in:
# an exact test of an event the baseline never showed (a type, value, null or error category), and
# the share of items unlike any in the baseline. They are the sharpest evidence a partial shift
# leaves, and would otherwise be one test among dozens of their family's.
# The tail tests of single descriptors share the novelty group: items beyond the baseline, one
# descriptor at a time.
RESERVED = {"rule_of_three": "never_seen", "conformal": "novelty", "tail": "novelty"}


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


def severity_for(family: str, policy: PolicySection) -> Severity:
    return Severity(policy.severity.get(family, FAMILIES[family][1]))


def pages(family: str, policy: PolicySection) -> bool:
    """Whether a drifted check of this family pages, by its severity against `[policy] page_at`."""
    return severity_for(family, policy).reaches(policy.page_at)


def paging_findings(verdict: Verdict, policy: PolicySection) -> list[Finding]:
    """The segment's findings that page tonight: drifted, at a severity that reaches `page_at`."""
    return [f for f in verdict.findings if f.drifted and f.severity.reaches(policy.page_at)]


def error_control(policy: PolicySection, segments: int) -> ErrorControl:
    """What the policy promises for a run of this width: the false-page rate per night it implies."""
    segments = max(segments, 1)
    return ErrorControl(
        page_alpha=policy.page_alpha,
        segments=segments,
        per_segment=policy.page_alpha / segments,
        info_fdr=policy.fdr,
        statement=(
            f"at most {policy.page_alpha:.2%} of nights with no real change page falsely "
            f"({segments} segment(s), {policy.page_alpha / segments:.2g} each, split across paging check families; "
            "effect thresholds make it lower)"
        ),
    )


def _levels(
    results: list[TestResult], testable: list[int], policy: PolicySection, segments: int
) -> tuple[np.ndarray, np.ndarray]:
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
    shares = len(families) + len(set(RESERVED.values())) if families else 1
    for group, members in groups.items():
        ps = np.clip([results[i].p_value for i in members], 0.0, 1.0)
        adjusted[members] = false_discovery_control(ps, method="bh")
        level[members] = policy.fdr if group == "(info)" else policy.page_alpha / max(segments, 1) / shares
    return adjusted, level


def _finding(
    result: TestResult, p_adjusted: float, threshold: float, status: FindingStatus, severity: Severity, level: float
) -> Finding:
    held = {"level": float(f"{level:.3g}")} if math.isfinite(level) else {}
    return Finding(
        check=Family(result.family),
        target=result.target,
        method=result.method,
        statistic=_finite(result.statistic),
        p_value=_finite(result.p_value),
        p_adjusted=_finite(p_adjusted),
        effect_size=_finite(result.effect_size),
        effect_threshold=threshold,
        n_ref=result.n_ref,
        n_cur=result.n_cur,
        status=status,
        severity=severity,
        # through JSON once: numbers from numpy and dates become the plain values the store keeps
        detail=plain({**result.params, **result.detail, **held}),
        principle=principle_of(result.method, result.aspect),
        subject=result.subject,
        aspect=result.aspect,
        counts=result.counts,
        ranking=list(result.ranking),
    )


def decide(results: list[TestResult], policy: PolicySection, segments: int = 1) -> Verdict:
    """One segment's verdict, in a run that tests `segments` segments (its share of the night's budget)."""
    testable = [i for i, r in enumerate(results) if math.isfinite(r.p_value) and min(r.n_ref, r.n_cur) >= policy.min_samples]
    adjusted, level = _levels(results, testable, policy, segments)
    findings = []
    for i, result in enumerate(results):
        # A check that knows how far the baseline's own days moved from each other must move further.
        threshold = max(threshold_for(result.family, result.method, policy), result.params.get("day_to_day", 0.0))
        if not math.isfinite(result.p_value):
            status = FindingStatus.UNTESTABLE
        elif min(result.n_ref, result.n_cur) < policy.min_samples:
            status = FindingStatus.NOT_ENOUGH_DATA
        elif adjusted[i] > level[i]:
            status = FindingStatus.NO_DRIFT
        elif not result.effect_size >= threshold:
            status = FindingStatus.SMALL_EFFECT
        else:
            status = FindingStatus.DRIFT
        severity = severity_for(result.family, policy) if status is FindingStatus.DRIFT else Severity.NONE
        findings.append(_finding(result, float(adjusted[i]), threshold, status, severity, float(level[i])))
    reserved = [level[i] for i in testable if RESERVED.get(results[i].method) and math.isfinite(level[i])]
    reserved_level = reserved[0] if reserved else _reserved_level(results, policy, segments)
    return Verdict(
        findings=findings,
        drifted=any(f.drifted for f in findings),
        severity=Severity.highest(f.severity for f in findings),
        status=SegmentStatus.OK if testable or not results else SegmentStatus.NOT_ENOUGH_DATA,
        detectable=detectable(results, policy, reserved_level),
    )


def _reserved_level(results: list[TestResult], policy: PolicySection, segments: int) -> float:
    """The level of the reserved groups in a segment whose checks are `results` (see _levels)."""
    families = {r.family for r in results if pages(r.family, policy)}
    return policy.page_alpha / max(segments, 1) / (len(families) + len(set(RESERVED.values())))


DETECT_POWER = 0.9


def _smallest_count(n_cur: int, passes) -> int | None:
    """The smallest count k of tonight's n_cur items for which `passes(k)`, by bisection (monotone)."""
    if n_cur < 1 or not passes(n_cur):
        return None
    low, high = 0, n_cur  # passes(high), not passes(low)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    return high


def _share_for(count: int | None, n_cur: int) -> float | None:
    """The share s of items carrying a change at which Binomial(n_cur, s) reaches `count` with
    probability DETECT_POWER: P(Bin(n, s) >= k) is the Beta(k, n - k + 1) distribution at s."""
    if count is None:
        return None
    return float(beta.ppf(DETECT_POWER, count, n_cur - count + 1))


def never_seen_share(n_ref: int, n_cur: int, level: float, policy: PolicySection) -> float | None:
    """The share of n_cur items that must show an event none of n_ref baseline items showed for its
    exact test (never_seen_test) to page with probability DETECT_POWER at `level`; None if none can."""
    threshold = threshold_for(Family.ERROR_RATE, "rule_of_three", policy)

    def pages_at(k: int) -> bool:
        result = never_seen_test(k, n_ref, n_cur)
        return result.p_value <= level and result.effect_size >= threshold

    return _share_for(_smallest_count(n_cur, pages_at), n_cur)


def planned_level(policy: PolicySection, segments: int) -> float:
    """The reserved groups' level in a job of `segments` before any run: every paging family counted."""
    families = [f for f in FAMILIES if pages(f, policy)]
    return policy.page_alpha / max(segments, 1) / (len(families) + len(set(RESERVED.values())))


def detectable(results: list[TestResult], policy: PolicySection, level: float) -> Detectable | None:
    """The segment's minimum detectable shift: the share of tonight's items that must carry a
    never-seen event (an error category, a missing field, a new type) for its exact test to page
    with probability DETECT_POWER at the reserved groups' level, and the same for items unlike any
    in the baseline (the conformal check, counting only the changed items)."""
    errors = next((r for r in results if r.family == Family.ERROR_RATE and r.subject == "all"), None)
    if errors is None or errors.n_ref < 1 or errors.n_cur < 1:
        return None
    n_ref, n_cur = errors.n_ref, errors.n_cur
    never_seen = never_seen_share(n_ref, n_cur, level, policy)
    novel = None
    conformal = next((r for r in results if r.method == "conformal" and math.isfinite(r.p_value)), None)
    if conformal is not None:
        m, n, l_ = (
            conformal.params["calibration"],
            conformal.n_cur,
            max(1, math.floor(conformal.params["alpha"] * (conformal.params["calibration"] + 1))),
        )
        expected = l_ / (m + 1.0)
        novelty_threshold = threshold_for(conformal.family, "conformal", policy)

        def novel_pages(k: int) -> bool:
            return exceedance_p(k, n, l_, m) <= level and k / n - expected >= novelty_threshold

        novel = _share_for(_smallest_count(n, novel_pages), n)
    return Detectable(never_seen=never_seen, novel=novel, level=float(f"{level:.3g}"), n_ref=n_ref, n_cur=n_cur)


def principle_of(method: str, aspect: Aspect) -> Principle:
    """Which principle a check applies (docs/statistics.md), for a reader auditing a finding."""
    if method == "conformal":
        return Principle.NOVELTY
    if aspect is Aspect.INPUT_ERRORS:
        return Principle.NEVER_SEEN if method == "rule_of_three" else Principle.ERROR_RATE
    return _ASPECT_PRINCIPLES.get(aspect, Principle.DISTRIBUTION)


_ASPECT_PRINCIPLES = {
    Aspect.PRESENCE: Principle.PRESENCE,
    Aspect.NULLS: Principle.NULLS,
    Aspect.TYPE: Principle.TYPE,
    Aspect.FORMAT: Principle.FORMAT,
    Aspect.KEY_PATTERN: Principle.KEY_PATTERN,
    Aspect.LAG: Principle.TIME,
    Aspect.STALE: Principle.TIME,
    Aspect.NEW_VALUE: Principle.NEW_VALUE,
    Aspect.RELABEL: Principle.RELABEL,
    Aspect.EMPTINESS: Principle.EMPTINESS,
    Aspect.MAGNITUDE: Principle.MAGNITUDE,
    Aspect.LOW_TAIL: Principle.TAIL,
    Aspect.HIGH_TAIL: Principle.TAIL,
    Aspect.SHAPE: Principle.SHAPE,
}
