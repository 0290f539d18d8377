"""Two-sample tests behind one result shape.

Every test returns a `TestResult` with the same fields (method, statistic, p-value, effect size,
sample sizes, parameters), so the verdict, the store and the alerts never branch on the method.
Effect sizes are on scales a person can hold a threshold to:

    numeric      ks           Wasserstein distance / baseline standard deviation
    categorical  chi2         Jensen-Shannon distance (base 2, 0..1)
    proportion   fisher       Cohen's h = |2 asin sqrt(p1) - 2 asin sqrt(p2)|
    type mix     chi2         total variation distance between the type shares (0..1)
    embeddings   mmd          unbiased MMD^2 with a Gaussian kernel, median-heuristic bandwidth
    embeddings   pca_ks       largest KS statistic over the principal components (p: Bonferroni)
    embeddings   classifier   cross-validated AUC of a domain classifier, as 2*AUC - 1 (0..1)
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ..features.featureset import is_numeric
from ..record import Aspect, target_of


@dataclass(frozen=True)
class TestResult:
    """What a two-sample test says, before the verdict (drift.verdict.policy) makes it a Finding."""

    __test__ = False  # not a pytest test class, despite the name

    method: str
    statistic: float
    p_value: float
    effect_size: float
    n_ref: int
    n_cur: int
    params: dict[str, Any] = field(default_factory=dict)
    family: str = ""
    target: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    # (input_id, score) of the current items least like the baseline, most unlike first; only
    # tests that score items (the domain classifier) fill it. Stored in the `outliers` table.
    ranking: tuple[tuple[str, float], ...] = ()
    # what the check looked at and which property of it (record.Finding has the same fields)
    subject: str = ""
    aspect: Aspect = Aspect.NONE
    counts: tuple[int, int] | None = None  # (baseline, tonight) counts of the event a rate counts

    def labelled(
        self,
        *,
        family: str,
        subject: str | None = None,
        aspect: Aspect = Aspect.NONE,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> TestResult:
        """The test as a check of `family` on `subject`'s `aspect` (its target spelled from them,
        record.target_of), or on a `target` given whole."""
        if subject is None:
            subject = target or ""
        return replace(
            self,
            family=family,
            target=target if target is not None else target_of(subject, aspect),
            subject=subject,
            aspect=aspect,
            detail={**self.detail, **(detail or {})},
            counts=counts if counts is not None else self.counts,
        )


def _clean(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


PSI_BINS = 10


def psi(ref: np.ndarray, cur: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index on the baseline's quantile bins (frozen: they come from ref only).

    Empty bins get half an observation, so a value never seen in the baseline gives a large,
    finite PSI instead of infinity.
    """
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1).astype(float)
    c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1).astype(float)
    r = np.maximum(r, 0.5) / r.sum()
    c = np.maximum(c, 0.5) / c.sum()
    return float(((c - r) * np.log(c / r)).sum())


def numeric_test(ref, cur) -> TestResult:
    """Kolmogorov-Smirnov, with the Wasserstein distance in baseline standard deviations as effect.

    The PSI on frozen baseline bins is reported beside it, for readers used to that scale.
    """
    x, y = _clean(ref), _clean(cur)
    if len(x) == 0 or len(y) == 0:
        return TestResult("ks", math.nan, math.nan, math.nan, len(x), len(y))
    with warnings.catch_warnings():
        # With many ties scipy falls back from the exact to the asymptotic p-value and says so.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        ks = stats.ks_2samp(x, y)
    scale = float(np.std(x))
    if scale == 0.0:
        # A constant baseline: any departure counts, measured in units of 1% of its value, or of
        # the pooled range when the value is 0 (a share that was always 0 and now is not).
        pooled_range = max(float(x.max()), float(y.max())) - min(float(x.min()), float(y.min()))
        scale = max(abs(float(x[0])) * 0.01, pooled_range * 0.01, 1e-9)
    effect = float(stats.wasserstein_distance(x, y)) / scale
    # The baseline's 1st and 99th percentiles, and how much of today lies beyond them (about 1%
    # each when nothing moved): the scale a report's sentence speaks in ("15% are darker than 99%
    # of the baseline").
    low, high = np.quantile(x, [0.01, 0.99])
    return TestResult(
        "ks",
        float(ks.statistic),
        float(ks.pvalue),
        effect,
        len(x),
        len(y),
        {
            "effect": "wasserstein/std",
            "ref_median": float(np.median(x)),
            "cur_median": float(np.median(y)),
            "ref_mean": float(np.mean(x)),
            "cur_mean": float(np.mean(y)),
            "psi": psi(x, y),
            "ref_p01": float(low),
            "ref_p99": float(high),
            "below_ref_p01": float(np.mean(y < low)),
            "above_ref_p99": float(np.mean(y > high)),
        },
    )


def _contingency(ref: Counter, cur: Counter, max_categories: int) -> tuple[list[str], np.ndarray]:
    combined = ref + cur
    top = [label for label, _ in combined.most_common(max_categories)]
    rest = set(combined) - set(top)
    rows = []
    for counts in (ref, cur):
        row = [counts.get(label, 0) for label in top]
        if rest:
            row.append(sum(counts.get(label, 0) for label in rest))
        rows.append(row)
    labels = top + (["(other)"] if rest else [])
    return labels, np.array(rows, dtype=np.float64)


def categorical_test(ref, cur, max_categories: int = 12) -> TestResult:
    """Chi-square test of homogeneity; Jensen-Shannon distance between the two shares as effect."""
    ref_c, cur_c = Counter(ref), Counter(cur)
    labels, table = _contingency(ref_c, cur_c, max_categories)
    n_ref, n_cur = int(table[0].sum()), int(table[1].sum())
    if n_ref == 0 or n_cur == 0:
        return TestResult("chi2", math.nan, math.nan, math.nan, n_ref, n_cur)
    if len(labels) < 2:
        return TestResult("chi2", 0.0, 1.0, 0.0, n_ref, n_cur, {"categories": labels})
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    effect = float(jensenshannon(table[0] / n_ref, table[1] / n_cur, base=2))
    shares = {
        "ref_top": {labels[i]: round(table[0, i] / n_ref, 4) for i in np.argsort(-table[0])[:3]},
        "cur_top": {labels[i]: round(table[1, i] / n_cur, 4) for i in np.argsort(-table[1])[:3]},
    }
    return TestResult(
        "chi2", float(chi2), float(p), effect, n_ref, n_cur, {"dof": int(dof), "effect": "jensen-shannon", **shares}
    )


def proportion_test(k_ref: int, n_ref: int, k_cur: int, n_cur: int, alternative: str = "two-sided") -> TestResult:
    """Fisher's exact test on a 2x2 table (exact at any count); Cohen's h as effect.

    alternative='greater' asks whether the current rate is higher, as for error rates.
    """
    if n_ref == 0 or n_cur == 0:
        return TestResult("fisher", math.nan, math.nan, math.nan, n_ref, n_cur)
    table = [[k_cur, n_cur - k_cur], [k_ref, n_ref - k_ref]]
    odds, p = stats.fisher_exact(table, alternative=alternative)
    p_ref, p_cur = k_ref / n_ref, k_cur / n_cur
    effect = abs(2 * math.asin(math.sqrt(p_cur)) - 2 * math.asin(math.sqrt(p_ref)))
    return TestResult(
        "fisher",
        float(odds) if math.isfinite(odds) else 1e300,
        float(p),
        effect,
        n_ref,
        n_cur,
        {"alternative": alternative, "ref_rate": p_ref, "cur_rate": p_cur, "effect": "cohen_h"},
    )


def cohen_h(p1: float, p2: float) -> float:
    return abs(2 * math.asin(math.sqrt(min(max(p1, 0.0), 1.0))) - 2 * math.asin(math.sqrt(min(max(p2, 0.0), 1.0))))


def never_seen_test(k_cur: int, n_ref: int, n_cur: int) -> TestResult:
    """An event none of n_ref baseline items showed, and k_cur of n_cur show now.

    Fisher's exact test, one-sided, of k_cur of n_cur against 0 of n_ref: what the baseline's own
    size can rule out, not a chi-square on a table with an empty cell. The effect is the current
    rate's Cohen's h above 3/n_ref, the rate's 95% upper bound after 0 of n_ref (the rule of three).
    """
    result = proportion_test(0, n_ref, k_cur, n_cur, alternative="greater")
    if n_ref == 0 or n_cur == 0:
        return result
    bound = min(1.0, 3.0 / n_ref)
    rate = k_cur / n_cur
    effect = cohen_h(rate, bound) if rate > bound else 0.0
    # the statistic is the count of items showing the event (Fisher's odds ratio is infinite here)
    return replace(
        result,
        method="rule_of_three",
        statistic=float(k_cur),
        effect_size=effect,
        params={**result.params, "bound": round(bound, 6)},
    )


def type_mix_test(ref: Counter, cur: Counter) -> TestResult:
    """Chi-square on the mix of JSON types at one path; total variation distance as effect."""
    labels, table = _contingency(ref, cur, max_categories=8)
    n_ref, n_cur = int(table[0].sum()), int(table[1].sum())
    tv = float(0.5 * np.abs(table[0] / n_ref - table[1] / n_cur).sum())
    if len(labels) < 2:
        return TestResult("chi2", 0.0, 1.0, 0.0, n_ref, n_cur, {"effect": "total_variation"})
    chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
    return TestResult("chi2", float(chi2), float(p), tv, n_ref, n_cur, {"dof": int(dof), "effect": "total_variation"})


def _sq_dists(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances between the rows of a and of b (default: a itself)."""
    b = a if b is None else b
    d = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    np.maximum(d, 0.0, out=d)
    return d


MMD_EXCEEDANCES = 10  # Besag-Clifford: stop drawing permutations once this many reach the statistic
MMD_BLOCK = 16_384  # permutations per matrix product: 16,384 x 1,000 doubles is 130 MB
MMD_WORK = 5e10  # at most this many multiply-adds of permutations per test (200,000 at n = 500)


def mmd_test(
    ref: np.ndarray,
    cur: np.ndarray,
    *,
    n_permutations: int = 500,
    max_permutations: int = 200_000,
    max_n: int = 1000,
    seed: int = 0,
) -> TestResult:
    """Maximum mean discrepancy with a sequential permutation p-value.

    The kernel matrix of the pooled (capped) sample is computed once; every permutation's
    statistic is then a quadratic form w' K w, so a block of permutations is one matrix product.

    A fixed 500 permutations cannot give a p-value below 1/501, while a 50-segment job holds each
    paging check to about 4e-5: MMD could never page there. So permutations are drawn in growing
    blocks (from n_permutations up to max_permutations, fewer when the kernel matrix is large) until
    MMD_EXCEEDANCES of them reach the observed statistic, and the p-value is Besag and Clifford's
    (1991) sequential one: h/L when the h-th exceedance came at permutation L, (h+1)/(L+1) when the
    draws ran out with h exceedances. Valid like a fixed-size permutation test; an ordinary night
    stops after the first block. (A gamma tail fitted to the permutations' moments was tried and
    rejected: on a +15-point wave of scans it gave 3e-10 where 200,000 permutations gave 4e-5.)
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(cur, dtype=np.float64)
    if len(x) > max_n:
        x = x[rng.choice(len(x), max_n, replace=False)]
    if len(y) > max_n:
        y = y[rng.choice(len(y), max_n, replace=False)]
    nx, ny = len(x), len(y)
    if nx < 2 or ny < 2:
        return TestResult("mmd", math.nan, math.nan, math.nan, nx, ny)
    z = np.concatenate([x, y])
    d = _sq_dists(z)
    off = d[~np.eye(len(z), dtype=bool)]
    bandwidth = float(np.median(off)) or 1.0
    k = np.exp(-d / bandwidth)

    def weights(labels_x: np.ndarray) -> np.ndarray:
        return np.where(labels_x, 1.0 / nx, -1.0 / ny)

    is_x = np.zeros(len(z), dtype=bool)
    is_x[:nx] = True
    w_obs = weights(is_x)
    observed = float(w_obs @ k @ w_obs)
    limit = max(n_permutations, min(max_permutations, int(MMD_WORK / (len(z) * len(z)))))
    drawn = beyond = 0
    block = n_permutations
    while True:
        w = rng.permuted(np.broadcast_to(w_obs, (block, len(z))), axis=1)
        null = np.einsum("ij,ij->i", w @ k, w)
        hits = np.flatnonzero(null >= observed)
        if beyond + len(hits) >= MMD_EXCEEDANCES:
            drawn += int(hits[MMD_EXCEEDANCES - beyond - 1]) + 1
            beyond = MMD_EXCEEDANCES
            p = beyond / drawn
            break
        beyond += len(hits)
        drawn += block
        if drawn >= limit:
            p = (beyond + 1.0) / (drawn + 1.0)
            break
        block = min(limit - drawn, 4 * drawn, MMD_BLOCK)
    kxx, kyy, kxy = k[:nx, :nx], k[nx:, nx:], k[:nx, nx:]
    unbiased = (kxx.sum() - np.trace(kxx)) / (nx * (nx - 1)) + (kyy.sum() - np.trace(kyy)) / (ny * (ny - 1)) - 2.0 * kxy.mean()
    return TestResult(
        "mmd",
        observed,
        p,
        max(float(unbiased), 0.0),
        nx,
        ny,
        {"kernel": "gaussian", "bandwidth": bandwidth, "n_permutations": drawn, "seed": seed, "effect": "mmd2_unbiased"},
    )


def componentwise_ks_test(ref: np.ndarray, cur: np.ndarray, *, rotate: bool = True, max_components: int = 32) -> TestResult:
    """KS on each dimension, Bonferroni across dimensions ("Failing Loudly"'s univariate tests).

    With rotate=True the dimensions are principal components of the POOLED sample. Pooling keeps
    the projection blind to which window an item came from, so the tests stay valid; components
    fitted on the baseline alone are tuned to its noise, and the current window then differs from
    it on them by construction (measured: 19% false alarms at n=50 in the Failing Loudly harness).
    """
    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(cur, dtype=np.float64)
    method = "pca_ks" if rotate else "ks_each"
    if len(x) < 3 or len(y) < 1:
        return TestResult(method, math.nan, math.nan, math.nan, len(x), len(y))
    if rotate:
        pooled = np.concatenate([x, y])
        mean = pooled.mean(axis=0)
        _, singular, vt = np.linalg.svd(pooled - mean, full_matrices=False)
        keep = int(min(max_components, int((singular > singular[0] * 1e-6).sum())))
        x, y = (x - mean) @ vt[:keep].T, (y - mean) @ vt[:keep].T
    ks = stats.ks_2samp(x, y, axis=0)
    statistics, p_values = np.atleast_1d(ks.statistic), np.atleast_1d(ks.pvalue)
    dims = len(statistics)
    return TestResult(
        method,
        float(statistics.max()),
        float(min(1.0, p_values.min() * dims)),
        float(statistics.max()),
        len(x),
        len(y),
        {"dimensions": dims, "correction": "bonferroni", "worst_dimension": int(np.argmax(statistics)), "effect": "max_ks"},
    )


def classifier_test(ref: np.ndarray, cur: np.ndarray, *, seed: int = 0) -> tuple[TestResult, np.ndarray]:
    """Can a classifier tell the windows apart? A 2-fold cross-fitted logistic regression.

    Each half of the pooled sample is scored by a model trained only on the other half, so every
    score is honest. Within a half, the scores of baseline and current items are compared by the
    one-sided Mann-Whitney test (the AUC's own test), which is exact there because that half's model
    never saw them; the two halves' p-values are combined with Bonferroni. (Pooling K-fold scores
    from differently scaled models into one test is not valid, and showed false-alarm rates above
    alpha in the calibration harness.) Returns the result and the current items' scores, higher
    meaning less like the baseline.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(cur, dtype=np.float64)
    if min(len(x), len(y)) < 4:
        return TestResult("classifier", math.nan, math.nan, math.nan, len(x), len(y)), np.full(len(y), math.nan)
    features = np.concatenate([x, y])
    labels = np.r_[np.zeros(len(x)), np.ones(len(y))]
    scores = np.empty(len(labels))
    p_values, aucs = [], []
    for train, test in StratifiedKFold(n_splits=2, shuffle=True, random_state=seed).split(features, labels):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=500))
        model.fit(features[train], labels[train])
        scores[test] = model.decision_function(features[test])
        held_cur, held_ref = scores[test][labels[test] == 1], scores[test][labels[test] == 0]
        # The exact null distribution where it is affordable and valid (no ties); the normal
        # approximation is anti-conservative at the smallest windows.
        exact = len(held_cur) * len(held_ref) <= 2500 and len(np.unique(scores[test])) == len(test)
        mw = stats.mannwhitneyu(held_cur, held_ref, alternative="greater", method="exact" if exact else "asymptotic")
        p_values.append(float(mw.pvalue))
        aucs.append(float(mw.statistic) / (len(held_cur) * len(held_ref)))
    auc = float(np.mean(aucs))
    result = TestResult(
        "classifier",
        auc,
        min(1.0, 2 * min(p_values)),
        max(0.0, 2 * auc - 1),
        len(x),
        len(y),
        {"model": "logistic regression, C=0.1, standardised", "folds": 2, "seed": seed, "effect": "2*auc-1"},
    )
    return result, scores[len(x) :]


def knn_distance(reference: np.ndarray, points: np.ndarray, k: int) -> np.ndarray:
    """Each point's Euclidean distance to its k-th nearest neighbour in `reference`."""
    b = np.asarray(reference, dtype=np.float64)
    d = _sq_dists(np.asarray(points, dtype=np.float64), b)
    k = min(k, b.shape[0])
    return np.sqrt(np.partition(d, k - 1, axis=1)[:, k - 1])


def split_reference(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded half/half split of the baseline's rows: (proper training part, calibration part)."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[: n // 2]), np.sort(order[n // 2 :])


def novelty_test(
    ref: np.ndarray, cur: np.ndarray, *, alpha: float = 0.01, k: int = 5, seed: int = 0, floor: float = 0.0
) -> tuple[TestResult, np.ndarray]:
    """What share of today's items are unlike anything in the baseline? Split conformal, exact.

    The baseline is split in two: a training part, and a calibration part held out from it. An
    item's nonconformity is its distance to its k-th nearest neighbour in the training part; its
    conformal p-value is (1 + calibration items at least as odd) / (m + 1). Items with a p-value
    at or below l/(m+1), l = max(1, floor(alpha (m+1))), are "novel": with the default alpha and a
    baseline under 200 items, an item odder than every calibration item. A small l is chosen on
    purpose: the count's null tail is thinnest there (15 novel items of 150 against 175 calibration
    items: p = 3e-6 at l = 1, 1e-3 at l = 8, alpha = 0.05).

    Their count K is NOT binomial(n, alpha) under no shift: all current items are judged against
    one finite calibration set, so their fates are tied. Given the calibration set, each current
    item is novel with probability U ~ Beta(l, m-l+1) (the mass above an order statistic of m
    uniforms), so K ~ BetaBinomial(n, l, m-l+1) exactly, for any distribution without ties
    (ties only make it conservative). A binomial test would be anti-conservative here
    (tests/test_stats.py measures both). The p-value is P(K' >= K); the effect is the excess
    share of novel items over the expected l/(m+1).

    `floor`: distances under it are ties (the same monotone map on calibration and current items,
    so the test stays valid). Descriptors are on robust units (descriptor_matrix), and items that
    differ by less than RESOLUTION of a spread are not new: a month's name two letters shorter moves
    every document's byte count by 2, which made tightly clustered payloads "novel" every night
    (benchmarks/calibration/nights.py, issue 26).

    Returns the result and each current item's conformal p-value (NaN for rows with NaN).
    """
    x = np.asarray(ref, dtype=np.float64)
    y = np.asarray(cur, dtype=np.float64)
    train, calibration = split_reference(len(x), seed)
    m, n = len(calibration), len(y)
    level = max(1, math.floor(alpha * (m + 1)))
    if m < 2 or len(train) < k or n == 0:
        return TestResult("conformal", math.nan, math.nan, math.nan, len(x), n), np.full(n, math.nan)
    cal_scores = np.sort(np.maximum(knn_distance(x[train], x[calibration], k), floor))
    scores = np.maximum(knn_distance(x[train], y, k), floor)
    at_least = m - np.searchsorted(cal_scores, scores, side="left")  # calibration scores >= each item's
    p_values = (1.0 + at_least) / (m + 1.0)
    novel = p_values <= level / (m + 1.0) + 1e-12
    count = int(novel.sum())
    expected = level / (m + 1.0)
    p = exceedance_p(count, n, level, m)
    return (
        TestResult(
            "conformal",
            float(count),
            p,
            max(0.0, count / n - expected),
            len(x),
            n,
            {
                "effect": "excess_share",
                "alpha": alpha,
                "expected_share": round(expected, 6),
                "novel_share": round(count / n, 6),
                "calibration": m,
                "k": k,
                "nonconformity": f"distance to the {k}-th nearest of {len(train)} baseline items",
                "null": "beta-binomial",
            },
        ),
        p_values,
    )


def exceedance_p(count: int, n: int, level: int, m: int) -> float:
    """P(K >= count) for K of n items judged against one calibration set of m, each flagged when
    odder than all but level - 1 of it: K ~ BetaBinomial(n, level, m - level + 1) (novelty_test)."""
    return float(stats.betabinom.sf(count - 1, n, level, m - level + 1)) if count else 1.0


TAIL_ALPHA = 0.01
SIDES = ("low", "high")


RESOLUTION = 0.25  # of a robust spread (IQR / 1.349): a smaller difference is not a change


def robust_spread(values: np.ndarray) -> float:
    """IQR / 1.349 (the standard deviation of a normal), else the standard deviation, else 0."""
    if len(values) == 0:
        return 0.0
    q1, q3 = np.quantile(values, [0.25, 0.75])
    return float(q3 - q1) / 1.349 or float(np.std(values))


def tail_counts(
    ref: np.ndarray, cur: np.ndarray, side: str, alpha: float = TAIL_ALPHA, resolution: float = RESOLUTION
) -> tuple[int, int, int, float]:
    """(tonight's items beyond the baseline's extreme order statistic on one side, the level l,
    the baseline's size m, that order statistic): an item is beyond when its conformal p-value,
    (1 + baseline values at least as extreme) / (m + 1), is at most l/(m+1), l = max(1, floor(alpha (m+1))).
    Ties count as "at least as extreme", and so does a baseline value within RESOLUTION of a spread of
    the item: a byte count two bytes under the baseline's smallest is not beyond it. Both only make
    the test conservative."""
    x = np.sort(ref[np.isfinite(ref)])
    y = cur[np.isfinite(cur)]
    m = len(x)
    level = max(1, math.floor(alpha * (m + 1)))
    if m == 0:
        return 0, level, 0, math.nan
    margin = resolution * robust_spread(x)
    if side == "low":
        as_extreme = np.searchsorted(x, y + margin, side="right")  # baseline values <= each item (and its margin)
        edge = float(x[level - 1]) - margin if level <= m else math.nan
    else:
        as_extreme = m - np.searchsorted(x, y - margin, side="left")  # baseline values >= each item
        edge = float(x[m - level]) + margin if level <= m else math.nan
    return int(((1.0 + as_extreme) <= level + 1e-9).sum()), level, m, edge


MIN_TAIL_BASELINE = 20  # fewer baseline values: no tail to speak of


def tail_test(ref, cur, side: str, alpha: float = TAIL_ALPHA, resolution: float = RESOLUTION) -> TestResult:
    """Has a share of tonight's items moved beyond the baseline's extreme on one side (`low` or
    `high`)? A conformal test per item against the baseline's own order statistics, and the count
    of items beyond, exactly: given the baseline, each item of an unchanged window is beyond with
    probability Beta(l, m - l + 1), so the count is beta-binomial (as in novelty_test), for any
    distribution (ties only make it conservative). A partial shift that KS cannot see (12% of
    scans rotated move the median nowhere) is a tail that fills up. Effect: the excess share over
    the expected l/(m+1)."""
    x, y = np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)
    n = int(np.isfinite(y).sum())
    count, level, m, edge = tail_counts(x, y, side, alpha, resolution)
    if m < MIN_TAIL_BASELINE or n == 0:
        return TestResult("tail", math.nan, math.nan, math.nan, m, n)
    expected = level / (m + 1.0)
    return TestResult(
        "tail",
        float(count),
        exceedance_p(count, n, level, m),
        max(0.0, count / n - expected),
        m,
        n,
        {
            "effect": "excess_share",
            "side": side,
            "edge": edge,
            "tail_share": round(count / n, 6),
            "expected_share": round(expected, 6),
            "null": "beta-binomial",
        },
    )


def magnitude_test(ref, cur) -> TestResult:
    """Has a number's typical size moved by orders of magnitude (cents become units, ms become s)?

    The p-value is the tail tests' (tail_test, both sides, Bonferroni): values moved beyond the
    baseline's extremes. The effect is the larger of the orders of magnitude between the medians
    (|log10| of their ratio, when both have one sign) and twice the share of tonight's values beyond
    the baseline's 1st-99th percentile range, so that 1.0 means "ten times" or "most values outside".
    The tails are counted without the resolution margin: a hundred times smaller moves values towards
    zero, and a margin of a quarter of a wide spread would reach below zero and see nothing; the
    effect's gate (ten times, or half outside) is what keeps a small move from being a change of units."""
    x, y = np.asarray(ref, dtype=np.float64), np.asarray(cur, dtype=np.float64)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    low, high = tail_test(x, y, "low", resolution=0.0), tail_test(x, y, "high", resolution=0.0)
    if not (math.isfinite(low.p_value) and math.isfinite(high.p_value)):
        return TestResult("magnitude", math.nan, math.nan, math.nan, len(x), len(y))
    ref_median, cur_median = float(np.median(x)), float(np.median(y))
    same_sign = ref_median * cur_median > 0
    orders = abs(math.log10(cur_median / ref_median)) if same_sign else 0.0
    lo, hi = np.quantile(x, (0.01, 0.99))
    outside = float(((y < lo) | (y > hi)).mean())
    return TestResult(
        "magnitude",
        orders,
        min(1.0, 2 * min(low.p_value, high.p_value)),
        max(orders, 2 * outside),
        len(x),
        len(y),
        {
            "effect": "max(|log10 median ratio|, 2 * share outside p1-p99)",
            "ref_median": ref_median,
            "cur_median": cur_median,
            "ratio": cur_median / ref_median if same_sign else None,
            "outside_share": round(outside, 6),
        },
    )


def descriptor_matrix(ref, cur, train_rows: np.ndarray):
    """Baseline and current descriptor frames as numeric matrices on one scale, for distances.

    Numbers are centred on the training part's median and divided by its robust spread
    (IQR / 1.349, else the standard deviation, else 1), clipped at +-50 so that one absurd value
    cannot hide everything else; a missing number is the median plus a missingness column.
    Categories are one-hot columns of the training part's labels, plus one for anything else.
    """
    import polars as pl

    ref_cols, cur_cols = [], []
    train = ref[train_rows.tolist()]
    for name in ref.columns:
        if name == "input_id" or name not in cur.columns:
            continue
        if is_numeric(ref[name].dtype):
            r = ref[name].cast(pl.Float64).to_numpy().astype(np.float64)
            c = cur[name].cast(pl.Float64).to_numpy().astype(np.float64)
            t = train[name].cast(pl.Float64).to_numpy().astype(np.float64)
            t = t[np.isfinite(t)]
            if len(t) == 0:
                continue
            centre = float(np.median(t))
            scale = robust_spread(t) or 1.0
            any_missing = not (np.isfinite(r).all() and np.isfinite(c).all())
            for values, out in ((r, ref_cols), (c, cur_cols)):
                missing = ~np.isfinite(values)
                out.append(np.clip((np.where(missing, centre, values) - centre) / scale, -50, 50))
                if any_missing:
                    out.append(missing.astype(np.float64))
        else:
            labels = sorted(set(train[name].cast(pl.Utf8).fill_null("(null)").to_list()))
            for frame, out in ((ref, ref_cols), (cur, cur_cols)):
                values = frame[name].cast(pl.Utf8).fill_null("(null)").to_list()
                known = set(labels)
                for label in labels:
                    out.append(np.array([v == label for v in values], dtype=np.float64))
                out.append(np.array([v not in known for v in values], dtype=np.float64))
    if not ref_cols:
        return np.zeros((ref.height, 0)), np.zeros((cur.height, 0))
    return np.column_stack(ref_cols), np.column_stack(cur_cols)
