"""The engine against scipy and closed forms, and the verdict's three conditions."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from drift.config import PolicySection
from drift.verdict.compare import day_bound, descriptor_checks
from drift.verdict.policy import decide, error_control
from drift.verdict.tests import TestResult, categorical_test, mmd_test, novelty_test, numeric_test, proportion_test, type_mix_test


def test_numeric_test_matches_scipy_and_measures_shift_in_sds():
    rng = np.random.default_rng(0)
    x, y = rng.normal(0, 2, 400), rng.normal(1, 2, 300)
    result = numeric_test(x, y)
    reference = stats.ks_2samp(x, y)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.effect_size == pytest.approx(stats.wasserstein_distance(x, y) / np.std(x))
    assert 0.35 < result.effect_size < 0.65  # a 1-unit shift of a sd-2 variable is half a sd


def test_numeric_test_ignores_nan_and_handles_constant_baselines():
    result = numeric_test([5.0] * 50 + [math.nan], [5.0] * 49 + [6.0])
    assert (result.n_ref, result.n_cur) == (50, 50)
    assert result.effect_size == pytest.approx((1 / 50) / 0.05)  # 1% of the value is the unit
    assert math.isnan(numeric_test([], [1.0]).p_value)  # untestable


def test_categorical_test_matches_scipy_chi2_and_js():
    ref = ["a"] * 60 + ["b"] * 30 + ["c"] * 10
    cur = ["a"] * 30 + ["b"] * 30 + ["c"] * 40
    result = categorical_test(ref, cur)
    table = np.array([[60, 30, 10], [30, 30, 40]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    assert result.effect_size == pytest.approx(jensenshannon([0.6, 0.3, 0.1], [0.3, 0.3, 0.4], base=2))


def test_categorical_test_groups_the_long_tail():
    ref = [f"v{i}" for i in range(40)] * 3
    result = categorical_test(ref, ref, max_categories=5)
    assert result.p_value == pytest.approx(1.0)
    assert result.params["dof"] == 5  # 5 named + "(other)"


def test_proportion_test_is_fishers_exact_with_cohens_h():
    result = proportion_test(2, 100, 9, 100, alternative="greater")
    _, p = stats.fisher_exact([[9, 91], [2, 98]], alternative="greater")
    assert result.p_value == pytest.approx(p)
    assert result.effect_size == pytest.approx(abs(2 * math.asin(math.sqrt(0.09)) - 2 * math.asin(math.sqrt(0.02))))
    # fewer failures than the baseline is not an increase
    assert proportion_test(9, 100, 2, 100, alternative="greater").p_value > 0.9


def test_type_mix_measures_total_variation():
    result = type_mix_test(Counter(float=100), Counter(float=70, string=30))
    assert result.effect_size == pytest.approx(0.3)
    assert result.p_value < 1e-6


def test_mmd_detects_a_shift_and_is_calibrated_without_one():
    rng = np.random.default_rng(1)
    shifted = mmd_test(rng.normal(0, 1, (150, 16)), rng.normal(0.4, 1, (150, 16)), n_permutations=200, seed=0)
    assert shifted.p_value < 0.01 and shifted.effect_size > 0
    p_values = [
        mmd_test(rng.normal(0, 1, (60, 8)), rng.normal(0, 1, (60, 8)), n_permutations=100, seed=s).p_value for s in range(60)
    ]
    # Under the null the permutation p-value is uniform: about 5% below 0.05 (binomial bound).
    assert sum(p < 0.05 for p in p_values) <= 9
    assert 0.3 < np.mean(p_values) < 0.7


def test_mmd_p_value_goes_below_a_fixed_permutation_floor_and_matches_brute_force():
    """A 50-segment job holds a check to ~4e-5; 500 fixed permutations can never say less than 0.002."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, (120, 4)), rng.normal(0, 1, (60, 4))
    y[:18] += 3.0  # under a third of today's items moved
    strong = mmd_test(x, y, seed=0)
    assert strong.p_value < 1e-4 and strong.params["n_permutations"] > 10_000

    # Where the permutations reach the statistic, the sequential p-value estimates the same
    # permutation p-value a brute-force count over 100,000 permutations gives.
    y = rng.normal(0.4, 1, (60, 4))
    moderate = mmd_test(x, y, seed=0)
    z = np.vstack([x, y])
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    k = np.exp(-d / np.median(d[~np.eye(len(z), dtype=bool)]))
    w = rng.permuted(np.broadcast_to(np.r_[np.full(120, 1 / 120), np.full(60, -1 / 60)], (100_000, 180)), axis=1)
    brute = (np.einsum("ij,ij->i", w @ k, w) >= moderate.statistic).mean()
    assert 1e-4 < brute < 0.05
    # With 10 exceedances the estimate's relative error is about 1/sqrt(10): within 3x, and never 0.
    assert brute / 3 < moderate.p_value < brute * 3


def test_mmd_statistic_is_the_closed_form_biased_estimate():
    x = np.array([[0.0], [1.0]])
    y = np.array([[3.0], [4.0]])
    result = mmd_test(x, y, n_permutations=10, seed=0)
    z = np.vstack([x, y])
    d = (z - z.T) ** 2
    bandwidth = np.median(d[~np.eye(4, dtype=bool)])
    k = np.exp(-d / bandwidth)
    expected = k[:2, :2].mean() + k[2:, 2:].mean() - 2 * k[:2, 2:].mean()
    assert result.statistic == pytest.approx(expected)
    assert result.params["bandwidth"] == pytest.approx(bandwidth)


def _result(p, effect, n=100, family="descriptor"):
    return TestResult("ks", 0.0, p, effect, n, n, family=family, target=f"t{p}{effect}{n}")


def test_verdict_needs_significance_after_bh_effect_and_sample_size():
    policy = PolicySection(fdr=0.01, min_samples=30)
    results = [
        _result(0.001, 0.9),  # drift
        _result(0.001, 0.1),  # significant, but too small to matter
        _result(0.009, 0.9),  # below 0.01 alone, not after BH over the 4 testable checks
        _result(0.5, 0.9),  # no evidence
        _result(0.0001, 0.9, n=10),  # too few: not tested, not counted in BH
    ]
    verdict = decide(results, policy)
    assert [f.status for f in verdict.findings] == ["drift", "small_effect", "no_drift", "no_drift", "not_enough_data"]
    adjusted = stats.false_discovery_control([0.001, 0.001, 0.009, 0.5], method="bh")
    assert [f.p_adjusted for f in verdict.findings[:4]] == pytest.approx(adjusted)
    assert verdict.findings[4].p_adjusted is None  # not tested: no adjusted p-value
    assert verdict.drifted and verdict.severity == "warning"


def test_severity_follows_the_family_and_the_policy():
    results = [_result(1e-6, 0.9, family="error_rate"), _result(1e-6, 0.9, family="schema_additive")]
    assert decide(results, PolicySection()).severity == "critical"
    assert [f.severity for f in decide(results, PolicySection()).findings] == ["critical", "info"]
    tuned = PolicySection(severity={"error_rate": "warning"}, effect={"schema_additive": 2.0})
    verdict = decide(results, tuned)
    assert [f.status for f in verdict.findings] == ["drift", "small_effect"]
    assert verdict.severity == "warning"


def test_a_segment_with_too_little_data_is_not_drift():
    verdict = decide([_result(1e-9, 5.0, n=3)], PolicySection(min_samples=30))
    assert not verdict.drifted and verdict.status == "not_enough_data" and verdict.severity == "none"


def test_psi_uses_frozen_baseline_bins_and_matches_its_formula():
    from drift.verdict.tests import psi

    ref = np.arange(1000, dtype=float)  # deciles at 99.9, 199.8, ...
    cur = np.r_[np.full(500, 50.0), np.full(500, 950.0)]  # half in the first bin, half in the last
    expected = 2 * (0.5 - 0.1) * np.log(0.5 / 0.1) + 8 * (0.0005 - 0.1) * np.log(0.0005 / 0.1)
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-6)
    assert psi(ref, ref) == pytest.approx(0.0)


def test_componentwise_ks_is_bonferroni_over_scipy_ks():
    from drift.verdict.tests import componentwise_ks_test

    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, (80, 4))
    y = rng.normal(0, 1, (60, 4))
    y[:, 2] += 0.8
    result = componentwise_ks_test(x, y, rotate=False)
    per_dim = [stats.ks_2samp(x[:, j], y[:, j]) for j in range(4)]
    assert result.p_value == pytest.approx(min(1.0, 4 * min(r.pvalue for r in per_dim)))
    assert result.effect_size == pytest.approx(max(r.statistic for r in per_dim))
    assert result.params["worst_dimension"] == 2
    rotated = componentwise_ks_test(x, y, rotate=True)
    assert rotated.method == "pca_ks" and rotated.params["dimensions"] == 4


def test_classifier_test_separates_shifted_windows_and_ranks_the_odd_items():
    from drift.verdict.tests import classifier_test

    rng = np.random.default_rng(5)
    ref = rng.normal(0, 1, (200, 10))
    cur = rng.normal(0, 1, (100, 10))
    cur[:30, 0] += 4.0  # 30 odd items
    result, scores = classifier_test(ref, cur, seed=0)
    assert result.p_value < 1e-4 and result.effect_size > 0.1
    assert result.statistic == pytest.approx((result.effect_size + 1) / 2)
    top = np.argsort(-scores)[:30]
    assert np.mean(top < 30) >= 0.7  # scores of the two halves come from two models


def test_classifier_test_is_calibrated_without_a_shift():
    from drift.verdict.tests import classifier_test

    rng = np.random.default_rng(6)
    p_values = [classifier_test(rng.normal(0, 1, (60, 5)), rng.normal(0, 1, (60, 5)), seed=s)[0].p_value for s in range(100)]
    assert sum(p < 0.05 for p in p_values) <= 10  # 5% expected; 10 is beyond the binomial 99th percentile


def test_novelty_test_is_exact_under_no_shift_where_a_binomial_test_is_not():
    """All current items are judged against one calibration set, so their novel count is
    beta-binomial; at alpha 0.05 our test rejects at most ~5% of null windows, a binomial test more."""
    rng = np.random.default_rng(0)
    ours, binomial, reps = 0, 0, 600
    for _ in range(reps):
        ref, cur = rng.normal(size=(80, 4)), rng.normal(size=(150, 4))
        result, _ = novelty_test(ref, cur, seed=int(rng.integers(1000)))
        ours += result.p_value <= 0.05
        expected = result.params["expected_share"]
        binomial += stats.binomtest(int(result.statistic), 150, expected, alternative="greater").pvalue <= 0.05
    assert ours / reps <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)
    assert binomial / reps > ours / reps + 0.04  # measured: 0.17 against 0.04


def test_novelty_test_counts_the_share_of_new_items_and_names_them():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(350, 8))
    cur = rng.normal(size=(150, 8))
    cur[:15] += 6.0  # a tenth of today's items unlike anything in the baseline
    result, p_values = novelty_test(ref, cur, seed=0)
    assert result.method == "conformal" and result.p_value < 1e-5
    assert result.effect_size == pytest.approx(0.10, abs=0.03)
    assert set(np.argsort(p_values, kind="stable")[:15]) == set(range(15))
    # 175 calibration items, novel = odder than all of them (l = 1): K ~ BetaBinomial(150, 1, 175)
    assert result.params["calibration"] == 175 and result.params["expected_share"] == pytest.approx(1 / 176, abs=1e-6)
    assert result.p_value == pytest.approx(stats.betabinom.sf(int(result.statistic) - 1, 150, 1, 175), rel=1e-9)


def test_yes_no_descriptors_get_fishers_test_and_all_descriptors_a_novelty_check():
    rng = np.random.default_rng(2)
    ref = pl.DataFrame(
        {
            "input_id": [f"r{i}" for i in range(350)],
            "text_layer": (rng.random(350) < 0.95).astype(float),
            "pages": rng.integers(1, 4, 350).astype(float),
            "producer": rng.choice(["word", "libre"], 350),
        }
    )
    cur = pl.DataFrame(
        {
            "input_id": [f"c{i}" for i in range(150)],
            "text_layer": (rng.random(150) < 0.80).astype(float),
            "pages": rng.integers(1, 4, 150).astype(float),
            "producer": rng.choice(["word", "libre"], 150),
        }
    )
    results = {r.target: r for r in descriptor_checks(ref, cur)}
    assert results["text_layer"].method == "fisher" and results["text_layer"].detail["old"].startswith("yes in")
    assert results["pages"].method == "ks" and results["producer"].method == "chi2"
    assert results["all descriptors"].method == "conformal"


def test_a_nights_budget_is_shared_by_its_segments_and_paging_families():
    """The same evidence pages a 1-segment job but not a 100-segment one; info checks keep their fdr."""
    results = [
        _result(1e-4, 0.9, family="descriptor"),
        _result(0.5, 0.9, family="embedding"),
        _result(1e-4, 0.9, family="schema_shift"),
    ]
    narrow = decide(results, PolicySection(), segments=1)
    wide = decide(results, PolicySection(), segments=100)
    assert narrow.findings[0].status == "drift" and wide.findings[0].status == "no_drift"
    assert narrow.findings[0].level == pytest.approx(0.01 / 4)  # two paging families present, two reserved groups
    assert wide.findings[0].level == pytest.approx(0.01 / 100 / 4)
    assert [f.status for f in (narrow.findings[2], wide.findings[2])] == ["drift", "drift"]
    assert wide.findings[2].level == 0.01 and wide.findings[2].detail["level"] == 0.01
    assert "at most 1.00% of nights" in error_control(PolicySection(), 50).statement


def test_day_bound_is_the_t_prediction_bound_of_the_baseline_days():
    assert day_bound([1.0, 2.0, 3.0]) == pytest.approx(2.0 + stats.t.ppf(0.99, 2) * 1.0 * math.sqrt(4 / 3))
    assert day_bound([0.5, 0.5, 0.5]) == 0.5  # never below the largest day
    assert day_bound([1.0, 2.0]) is None  # two days say nothing about a third


def test_a_night_within_the_baselines_day_to_day_range_is_not_drift_and_one_beyond_it_is():
    """Daylight: each baseline day sits elsewhere in the usual range; tonight too, or far beyond."""
    rng = np.random.default_rng(3)
    offsets = np.linspace(-1.0, 1.0, 7)
    ref = pl.DataFrame(
        {"input_id": [f"r{i}" for i in range(350)], "brightness": np.concatenate([rng.normal(o, 0.5, 50) for o in offsets])}
    )
    days = np.repeat(np.arange(7), 50)

    def verdict(offset: float) -> str:
        cur = pl.DataFrame({"input_id": [f"c{i}" for i in range(150)], "brightness": rng.normal(offset, 0.5, 150)})
        [result] = [r for r in descriptor_checks(ref, cur, ref_days=days) if r.target == "brightness"]
        assert result.params["day_to_day"] > result.effect_size or offset > 2
        return decide([result], PolicySection(), segments=50).findings[0].status

    assert verdict(0.95) == "small_effect"  # significant against the pooled week, but an ordinary day
    assert verdict(4.0) == "drift"


def test_every_numeric_dtype_is_compared_as_a_number_and_stored_as_one():
    # one rule (features.featureset.is_numeric) for the comparison and the store's long table
    from drift.store.rows import long_descriptors

    rng = np.random.default_rng(3)
    for dtype in (pl.UInt8, pl.UInt16, pl.Int8, pl.Float32, pl.Boolean):
        values = rng.integers(0, 2 if dtype == pl.Boolean else 100, 60)
        frame = pl.DataFrame({"input_id": [f"i{i}" for i in range(60)], "level": pl.Series(values).cast(dtype)})
        methods = {r.target: r.method for r in descriptor_checks(frame, frame)}
        assert methods["level"] == ("fisher" if dtype == pl.Boolean else "ks"), dtype
        assert long_descriptors(frame)["label"].null_count() == 60, dtype  # a number, in `value`
