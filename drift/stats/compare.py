"""Compare one segment's current features with its baseline, the same way for every kind."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from ..kinds.base import FeatureSet
from .tests import (
    TestResult,
    categorical_test,
    classifier_test,
    componentwise_ks_test,
    descriptor_matrix,
    mmd_test,
    novelty_test,
    numeric_test,
    proportion_test,
    split_reference,
)

NUMERIC_DTYPES = (pl.Float64, pl.Float32, pl.Int64, pl.Int32, pl.Int16, pl.Int8, pl.UInt32, pl.UInt64, pl.Boolean)


MAX_EXAMPLES = 5


def _binary(*columns: np.ndarray) -> bool:
    """A yes/no descriptor (text_layer, exif_present, rotated): every known value is 0 or 1."""
    values = np.concatenate([c[np.isfinite(c)] for c in columns])
    return len(values) > 0 and bool(np.isin(values, (0.0, 1.0)).all())


def descriptor_checks(ref: pl.DataFrame, cur: pl.DataFrame, seed: int = 0) -> list[TestResult]:
    """Each descriptor on its own (KS, chi-square, or Fisher for a yes/no one), then all of them
    together: the share of today's items unlike any in the baseline (conformal novelty)."""
    results = []
    for name in ref.columns:
        if name == "input_id" or name not in cur.columns:
            continue
        ref_col, cur_col = ref[name], cur[name]
        if ref_col.dtype in NUMERIC_DTYPES and cur_col.dtype in NUMERIC_DTYPES:
            x, y = ref_col.cast(pl.Float64).to_numpy(), cur_col.cast(pl.Float64).to_numpy()
            if _binary(x, y):
                x, y = x[np.isfinite(x)], y[np.isfinite(y)]
                result = proportion_test(int(x.sum()), len(x), int(y.sum()), len(y))
                result = result.labelled(family="descriptor", target=name, detail={
                    "old": f"yes in {100 * result.params['ref_rate']:.0f}%" if len(x) else "none",
                    "new": f"yes in {100 * result.params['cur_rate']:.0f}%" if len(y) else "none",
                })
                results.append(result)
                continue
            result = numeric_test(x, y)
        else:
            result = categorical_test(ref_col.cast(pl.Utf8).fill_null("(null)"), cur_col.cast(pl.Utf8).fill_null("(null)"))
        results.append(result.labelled(family="descriptor", target=name))
    if ref.height and cur.height and len(ref.columns) > 1:
        train, _ = split_reference(ref.height, seed)
        ref_matrix, cur_matrix = descriptor_matrix(ref, cur, train)
        if ref_matrix.shape[1]:
            results.append(_novelty(ref_matrix, cur_matrix, cur["input_id"].to_list(), seed, "descriptor", "all descriptors"))
    return results


def _novelty(ref_matrix: np.ndarray, cur_matrix: np.ndarray, cur_ids: list[str], seed: int, family: str, target: str) -> TestResult:
    result, p_values = novelty_test(ref_matrix, cur_matrix, seed=seed)
    order = np.argsort(np.nan_to_num(p_values, nan=np.inf), kind="stable")
    flagged = [cur_ids[i] for i in order[: int(result.statistic)]] if np.isfinite(result.statistic) else []
    return result.labelled(family=family, target=target, detail={"examples": flagged[:MAX_EXAMPLES]})
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
        results += [
            mmd_test(ref_matrix, cur_matrix, seed=seed).labelled(family="embedding", target=name),
            _novelty(ref_matrix, cur_matrix, cur_ids, seed, "embedding", name),
            componentwise_ks_test(ref_matrix, cur_matrix).labelled(family="embedding", target=name),
            replace(
                classifier.labelled(family="embedding", target=name, detail={"examples": [i for i, _ in ranking[:MAX_EXAMPLES]]}),
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
        result = proportion_test(k_ref, ref_sampled, k_cur, cur_sampled, alternative="greater")
        results.append(
            result.labelled(
                family="error_rate",
                target=f"input errors: {category}",
                detail={"old": f"{k_ref}/{ref_sampled} failed", "new": f"{k_cur}/{cur_sampled} failed"},
            )
        )
    return results


def compare_segment(ref: FeatureSet, cur: FeatureSet, kind, context) -> list[TestResult]:
    return [
        *descriptor_checks(ref.descriptors, cur.descriptors, context.config.sampling.seed),
        *embedding_checks(ref, cur, context.config.sampling.seed),
        *kind.extra_checks(ref, cur, context),
    ]
