"""Compare one segment's current features with its baseline, the same way for every kind."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import polars as pl
from scipy import stats

from ..features.featureset import FeatureSet, is_numeric
from ..record import Aspect, Family
from .structure import structure_checks
from .tests import (
    RESOLUTION,
    TestResult,
    categorical_test,
    classifier_test,
    componentwise_ks_test,
    descriptor_matrix,
    mmd_test,
    never_seen_test,
    novelty_test,
    numeric_test,
    proportion_test,
    split_reference,
    tail_test,
)

MAX_EXAMPLES = 5


def _binary(*columns: np.ndarray) -> bool:
    """A yes/no descriptor (text_layer, exif_present, rotated): every known value is 0 or 1."""
    values = np.concatenate([c[np.isfinite(c)] for c in columns])
    return len(values) > 0 and bool(np.isin(values, (0.0, 1.0)).all())


def _column_test(ref_col: pl.Series, cur_col: pl.Series) -> TestResult:
    """One descriptor: KS for numbers, Fisher for a yes/no one, chi-square for categories."""
    if is_numeric(ref_col.dtype) and is_numeric(cur_col.dtype):
        x, y = ref_col.cast(pl.Float64).to_numpy(), cur_col.cast(pl.Float64).to_numpy()
        if not _binary(x, y):
            return numeric_test(x, y)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        result = proportion_test(int(x.sum()), len(x), int(y.sum()), len(y))
        return replace(
            result,
            detail={
                "old": f"yes in {100 * result.params['ref_rate']:.0f}%" if len(x) else "none",
                "new": f"yes in {100 * result.params['cur_rate']:.0f}%" if len(y) else "none",
            },
        )
    return categorical_test(ref_col.cast(pl.Utf8).fill_null("(null)"), cur_col.cast(pl.Utf8).fill_null("(null)"))


MIN_DAY_ITEMS = 10  # a baseline day with fewer items says too little about day-to-day change


def day_to_day(ref_col: pl.Series, days: np.ndarray | None, test=None) -> float | None:
    """How far tonight may move by the test's effect and still be an ordinary day (day_bound), from
    the effects of each baseline day against the rest of the baseline, by the same test.

    Traffic moves from day to day within its usual range (daylight, weekday mixes); a night must
    move further than the baseline's own days moved from each other before it counts as drift.
    None when the baseline has fewer than three days of at least MIN_DAY_ITEMS items.
    """
    labels = usable_days(days)
    if labels is None:
        return None
    test = test or _column_test
    return day_bound(
        [test(ref_col.filter(pl.Series(days != d)), ref_col.filter(pl.Series(days == d))).effect_size for d in labels]
    )


DAY_BOUND_LEVEL = 0.99


def day_bound(effects) -> float | None:
    """The one-sided 99% prediction bound for one more day's effect, from k baseline days' effects:
    mean + t(0.99, k-1) sd sqrt(1 + 1/k), and never below their largest.

    Their largest alone is not a bound: a night like any other day beats the largest of k days'
    effects with probability 1/(k+1), one night in eight with a week's baseline (measured with the
    largest alone: image descriptors paged on 3 of the first 47 nights of a 50-segment job whose
    daylight stayed within the baseline week's range; benchmarks/calibration/nights.py).
    """
    effects = np.array([e for e in effects if np.isfinite(e)], dtype=np.float64)
    if len(effects) < 3:
        return None
    k = len(effects)
    bound = effects.mean() + stats.t.ppf(DAY_BOUND_LEVEL, k - 1) * effects.std(ddof=1) * math.sqrt(1 + 1 / k)
    return float(max(bound, effects.max()))


def usable_days(days: np.ndarray | None) -> np.ndarray | None:
    """The baseline days with at least MIN_DAY_ITEMS items, when there are three or more of them."""
    if days is None:
        return None
    labels, counts = np.unique(days, return_counts=True)
    labels = labels[counts >= MIN_DAY_ITEMS]
    return labels if len(labels) >= 3 else None


def _embedding_tests(ref_matrix: np.ndarray, cur_matrix: np.ndarray, seed: int) -> dict[str, TestResult]:
    classifier, _ = classifier_test(ref_matrix, cur_matrix, seed=seed)
    return {
        "mmd": mmd_test(ref_matrix, cur_matrix, seed=seed),
        "pca_ks": componentwise_ks_test(ref_matrix, cur_matrix),
        "classifier": classifier,
    }


def embedding_day_to_day(ref: FeatureSet, name: str, seed: int) -> dict[str, float]:
    """Per method, the bound (day_bound) of one baseline day's effect against the rest, for one embedding.

    Computed from the baseline alone, so it is kept in the FeatureSet's cache for the next night.
    """
    key = f"day_to_day:{name}:{seed}"
    if key not in ref.cache:
        days = baseline_days(ref)
        labels = usable_days(days)
        matrix = ref.embeddings[name]
        effects: dict[str, list[float]] = {}
        if labels is not None:
            finite = np.isfinite(matrix).all(axis=1)
            for d in labels:
                day, rest = finite & (days == d), finite & (days != d)
                for method, result in _embedding_tests(matrix[rest], matrix[day], seed).items():
                    effects.setdefault(method, []).append(result.effect_size)
        ref.cache[key] = {method: v for method, e in effects.items() if (v := day_bound(e)) is not None}
    return ref.cache[key]


def descriptor_checks(
    ref: pl.DataFrame, cur: pl.DataFrame, seed: int = 0, ref_days: np.ndarray | None = None, cache: dict | None = None
) -> list[TestResult]:
    """Each descriptor on its own (KS, chi-square, or Fisher for a yes/no one), held to the
    baseline's own day-to-day variation when its days are known (`ref_days`, aligned with ref's
    rows; kept in `cache` for the next night), then all of them together: the share of today's
    items unlike any in the baseline."""
    results = []
    cache = {} if cache is None else cache
    for name in ref.columns:
        if name == "input_id" or name not in cur.columns:
            continue
        result = _column_test(ref[name], cur[name])
        # Numbers only: a day of 50 items moves a 5% share by chance as far as a real +15 points
        # does (a day without a single scan is a Cohen's h of 0.45), so the days' spread of a yes/no
        # or categorical descriptor is mostly sampling noise; those keep the family thresholds.
        if result.method != "ks":
            results.append(result.labelled(family=Family.DESCRIPTOR, subject=name))
            continue
        if f"day_to_day:descriptor:{name}" not in cache:
            cache[f"day_to_day:descriptor:{name}"] = day_to_day(ref[name], ref_days)
        variation = cache[f"day_to_day:descriptor:{name}"]
        if variation is not None:
            result = replace(result, params={**result.params, "day_to_day": round(variation, 6)})
        results.append(result.labelled(family=Family.DESCRIPTOR, subject=name))
        results += _tails(name, ref[name], cur[name], ref_days, cache)
    if ref.height and cur.height and len(ref.columns) > 1:
        train, _ = split_reference(ref.height, seed)
        ref_matrix, cur_matrix = descriptor_matrix(ref, cur, train)
        if ref_matrix.shape[1]:
            results.append(
                _novelty(ref_matrix, cur_matrix, cur["input_id"].to_list(), seed, Family.DESCRIPTOR, "all descriptors")
            )
    return results


def _tails(name: str, ref_col: pl.Series, cur_col: pl.Series, ref_days: np.ndarray | None, cache: dict) -> list[TestResult]:
    """A numeric descriptor's two tails (tail_test), each held to how far one baseline day's tail
    moved against the rest (daylight fills the dark tail on a winter day)."""
    x, y = ref_col.cast(pl.Float64).to_numpy(), cur_col.cast(pl.Float64).to_numpy()
    results = []
    for side, aspect in (("low", Aspect.LOW_TAIL), ("high", Aspect.HIGH_TAIL)):
        result = tail_test(x, y, side)
        key = f"day_to_day:tail:{side}:{name}"
        if key not in cache:
            test = lambda r, c, side=side: tail_test(r.cast(pl.Float64).to_numpy(), c.cast(pl.Float64).to_numpy(), side)  # noqa: E731
            cache[key] = day_to_day(ref_col, ref_days, test)
        if cache[key] is not None:
            result = replace(result, params={**result.params, "day_to_day": round(cache[key], 6)})
        results.append(result.labelled(family=Family.DESCRIPTOR, subject=name, aspect=aspect))
    return results


def _novelty(
    ref_matrix: np.ndarray, cur_matrix: np.ndarray, cur_ids: list[str], seed: int, family: Family, subject: str
) -> TestResult:
    # descriptors are in robust units: nearer than RESOLUTION of a spread is the same item
    floor = RESOLUTION if family is Family.DESCRIPTOR else 0.0
    result, p_values = novelty_test(ref_matrix, cur_matrix, seed=seed, floor=floor)
    order = np.argsort(np.nan_to_num(p_values, nan=np.inf), kind="stable")
    flagged = [cur_ids[i] for i in order[: int(result.statistic)]] if np.isfinite(result.statistic) else []
    return result.labelled(family=family, subject=subject, detail={"examples": flagged[:MAX_EXAMPLES]})


RANKED = 50  # current items kept in the `outliers` ranking per segment and embedding


def embedding_checks(ref: FeatureSet, cur: FeatureSet, seed: int) -> list[TestResult]:
    """Three views of the same vectors: a kernel test (MMD), axis-wise tests after PCA, and a domain
    classifier, whose held-out scores also name the current items least like the baseline."""
    results = []
    for name, ref_matrix in ref.embeddings.items():
        cur_matrix = cur.embeddings.get(name)
        if cur_matrix is None:
            continue
        # Items without this embedding (a text file has no page) are NaN rows: left out.
        ref_matrix = ref_matrix[np.isfinite(ref_matrix).all(axis=1)]
        embedded = np.flatnonzero(np.isfinite(cur_matrix).all(axis=1))
        cur_matrix, cur_ids = cur_matrix[embedded], [cur.ids[i] for i in embedded]
        if len(cur_matrix) == 0 or len(ref_matrix) == 0:
            continue
        classifier, scores = classifier_test(ref_matrix, cur_matrix, seed=seed)
        order = np.argsort(-np.nan_to_num(scores, nan=-np.inf))[:RANKED]
        ranking = tuple((cur_ids[i], float(scores[i])) for i in order if np.isfinite(scores[i]))
        variation = embedding_day_to_day(ref, name, seed)

        def held(result: TestResult, variation: dict[str, float] = variation) -> TestResult:
            if result.method not in variation:
                return result
            return replace(result, params={**result.params, "day_to_day": round(variation[result.method], 6)})

        results += [
            held(mmd_test(ref_matrix, cur_matrix, seed=seed)).labelled(family=Family.EMBEDDING, subject=name),
            _novelty(ref_matrix, cur_matrix, cur_ids, seed, Family.EMBEDDING, name),
            held(componentwise_ks_test(ref_matrix, cur_matrix)).labelled(family=Family.EMBEDDING, subject=name),
            replace(
                held(classifier).labelled(
                    family=Family.EMBEDDING, subject=name, detail={"examples": [i for i, _ in ranking[:MAX_EXAMPLES]]}
                ),
                ranking=ranking,
            ),
        ]
    return results


def error_rate_checks(
    ref_errors: dict[str, int], ref_sampled: int, cur_errors: dict[str, int], cur_sampled: int
) -> list[TestResult]:
    """Has the share of inputs that could not be opened gone up, overall and per error category?

    One-sided: fewer broken inputs than the baseline is good news, not a page.
    """
    categories = sorted(set(ref_errors) | set(cur_errors))
    rates = [("all", sum(ref_errors.values()), sum(cur_errors.values()))]
    if len(categories) > 1:  # with one category, "all" is that category: test it once
        rates += [(c, ref_errors.get(c, 0), cur_errors.get(c, 0)) for c in categories]
    results = []
    for category, k_ref, k_cur in rates:
        if k_ref == 0 and k_cur and category != "all":  # a kind of failure the baseline never had
            result = never_seen_test(k_cur, ref_sampled, cur_sampled)
        else:
            result = proportion_test(k_ref, ref_sampled, k_cur, cur_sampled, alternative="greater")
        results.append(
            result.labelled(
                family=Family.ERROR_RATE,
                subject=category,
                aspect=Aspect.INPUT_ERRORS,
                detail={"old": f"{k_ref}/{ref_sampled} failed", "new": f"{k_cur}/{cur_sampled} failed"},
                counts=(k_ref, k_cur),
            )
        )
    return results


def baseline_days(ref: FeatureSet) -> np.ndarray | None:
    """The UTC day each baseline item was received, aligned with its descriptor rows (None if unknown)."""
    received = ref.received()
    if received is None or ref.descriptors.height == 0:
        return None
    days = ref.descriptors.select("input_id").join(received, on="input_id", how="left")["received_at"] // 86400
    return None if days.null_count() else days.to_numpy()


def compare_segment(ref: FeatureSet, cur: FeatureSet, kind, context) -> list[TestResult]:
    """Every check of one segment: its descriptors, its embeddings and, for a kind whose items are
    JSON documents (`structured`), their structure path by path."""
    results = [
        *descriptor_checks(ref.descriptors, cur.descriptors, context.config.sampling.seed, baseline_days(ref), ref.cache),
        *embedding_checks(ref, cur, context.config.sampling.seed),
    ]
    if kind.structured:
        results += structure_checks(ref, cur)
    return results
