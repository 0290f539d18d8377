"""The embedding drift test against Evidently's EmbeddingsDrift, on the same vectors, in one run.

2,000 baseline and 2,000 current 512-d vectors (L2-normalised, like the encoder's output): a null
pair from one distribution and a shifted pair in which a fifth of the current vectors move.
drift's tests give p-values; Evidently gives a drift score and a yes/no.

    python benchmarks/embedding_drift_vs_evidently.py [--n 2000] [--dim 512]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from drift.verdict.tests import classifier_test, componentwise_ks_test, mmd_test


def vectors(rng, n, dim, shift=0.0, share=0.2):
    base = rng.normal(0, 1, (n, dim)) + np.linspace(1, 0, dim)  # an anisotropic cloud
    moved = rng.random(n) < share
    base[moved, :8] += shift
    return base / np.linalg.norm(base, axis=1, keepdims=True)


def evidently_run(ref: np.ndarray, cur: np.ndarray, method) -> tuple[float, bool]:
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import EmbeddingsDrift

    columns = [f"e{i}" for i in range(ref.shape[1])]
    definition = DataDefinition(numerical_columns=columns, embeddings={"clip": columns})
    reference = Dataset.from_pandas(pd.DataFrame(ref, columns=columns), data_definition=definition)
    current = Dataset.from_pandas(pd.DataFrame(cur, columns=columns), data_definition=definition)
    metric = EmbeddingsDrift(embeddings_name="clip", drift_method=method) if method else EmbeddingsDrift(embeddings_name="clip")
    snapshot = Report([metric]).run(current, reference)
    result = snapshot.dict()["metrics"][0]["value"]
    return float(result), None


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=512)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ref = vectors(rng, args.n, args.dim)
    pairs = {"no shift": vectors(rng, args.n, args.dim), "a fifth shifted": vectors(rng, args.n, args.dim, shift=0.6)}
    from evidently.metrics.embeddings import MMDDriftMethod

    methods = {
        "drift MMD, 500 permutations, 1,000 a side (default)": lambda c: mmd_test(ref, c, seed=0),
        "drift MMD, 500 permutations, all vectors": lambda c: mmd_test(ref, c, seed=0, max_n=args.n),
        "drift PCA-KS": lambda c: componentwise_ks_test(ref, c),
        "drift domain classifier": lambda c: classifier_test(ref, c, seed=0)[0],
        "Evidently EmbeddingsDrift (default: model)": lambda c: evidently_run(ref, c, None),
        "Evidently EmbeddingsDrift (MMD)": lambda c: evidently_run(ref, c, MMDDriftMethod()),
    }
    # Warm-up: imports and first-call set-up are not what a nightly run pays per segment.
    small = vectors(rng, 50, args.dim)
    for method in (None, MMDDriftMethod()):
        evidently_run(small, small, method)
    mmd_test(small, small)
    classifier_test(small, small)
    print(f"{args.n} vs {args.n} vectors of {args.dim} dimensions (each method warmed up once before timing)\n")
    print("| method | pair | seconds | p-value | score / effect |")
    print("|---|---|---:|---:|---:|")
    timings: dict[str, float] = {}
    warnings.filterwarnings("ignore")
    for name, run in methods.items():
        for label, cur in pairs.items():
            value, seconds = timed(lambda run=run, cur=cur: run(cur))
            timings.setdefault(name, seconds)
            if isinstance(value, tuple):
                print(f"| {name} | {label} | {seconds:.2f} | (none) | {value[0]:.4f} |")
            else:
                print(f"| {name} | {label} | {seconds:.2f} | {value.p_value:.4f} | {value.effect_size:.4f} |")
    ours = timings["drift MMD, 500 permutations, all vectors"]
    for name in ("Evidently EmbeddingsDrift (default: model)", "Evidently EmbeddingsDrift (MMD)"):
        print(f"\n{name}: {timings[name] / ours:.1f}x the time of drift's MMD on all vectors (no-shift pair)")


if __name__ == "__main__":
    main()
