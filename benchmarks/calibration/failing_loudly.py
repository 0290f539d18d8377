"""Reproduce the protocol of Rabanser, Guennemann and Lipton, "Failing Loudly" (NeurIPS 2019),
Table 1a, on scikit-learn's bundled digits, with drift's own tests.

Protocol (as in the paper): shifts are applied to a fraction (10%, 50%, 100%) of the test split;
a current sample of size n is drawn from it and compared with a reference sample of the same size
from the validation split; detection means p < 0.05. Detection accuracy at n is the share of
(shift, fraction, seed) cases detected. Shifts: Gaussian noise (std 1, 10, 100 on a 0-255 scale,
clipped), image shifts (rotation 10/40/90 degrees, translation 5/20/40%, zoom 10/20/40%, each drawn
uniformly per image up to that range), knock-out of class 0 (that fraction of class-0 images
removed). A no-shift control gives the false-positive rate.

Representations: BBSD-softmax (a classifier trained on the train split, its class probabilities,
as in the paper's best method), and the raw pixels. Tests: drift.verdict.tests.

    python benchmarks/calibration/failing_loudly.py [--seeds 5] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import time
from math import ceil

import numpy as np
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from verdicts import wilson  # noqa: E402 - the calibration harnesses share one interval

from drift.verdict.tests import classifier_test, componentwise_ks_test, mmd_test

SAMPLE_SIZES = (10, 20, 50, 100, 200)
FRACTIONS = (0.1, 0.5, 1.0)
ALPHA = 0.05
# No-shift controls come from their own random splits, so that the draws are close to independent:
# 40 draws from one split share its reference pool and were visibly correlated.
CONTROL_SPLITS = 20
CONTROLS_PER_SPLIT = 20
PAPER = {
    "BBSDs + KS (paper)": (0.19, 0.28, 0.47, 0.47, 0.51),
    "UAE + MMD (paper)": (0.20, 0.27, 0.40, 0.43, 0.45),
}
SHIFTS = {
    "small_gn": ("noise", 1.0),
    "medium_gn": ("noise", 10.0),
    "large_gn": ("noise", 100.0),
    "small_img": ("image", (10, 0.05, 0.1)),
    "medium_img": ("image", (40, 0.2, 0.2)),
    "large_img": ("image", (90, 0.4, 0.4)),
    "ko": ("knockout", 0),
}


def image_shift(img: np.ndarray, rng: np.random.Generator, rotation: float, translation: float, zoom: float) -> np.ndarray:
    """One random affine change of an 8x8 image: rotation, translation and zoom up to the ranges."""
    angle = np.deg2rad(rng.uniform(-rotation, rotation))
    scale = rng.uniform(1 - zoom, 1 + zoom)
    shift = rng.uniform(-translation, translation, 2) * 8
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) / scale
    centre = np.array([3.5, 3.5])
    offset = centre - matrix @ (centre + shift)
    return ndimage.affine_transform(img, matrix, offset=offset, order=1, mode="nearest")


def apply_shift(x: np.ndarray, y: np.ndarray, name: str, fraction: float, rng: np.random.Generator):
    kind, param = SHIFTS[name]
    x = x.copy()
    if kind == "knockout":
        zeros = np.flatnonzero(y == param)
        drop = zeros[: ceil(fraction * len(zeros))]
        keep = np.setdiff1d(np.arange(len(y)), drop)
        return x[keep], y[keep]
    chosen = rng.choice(len(x), ceil(fraction * len(x)), replace=False)
    if kind == "noise":
        x[chosen] = np.clip(x[chosen] + rng.normal(0, param / 255.0, x[chosen].shape), 0.0, 1.0)
    else:
        for i in chosen:
            x[i] = image_shift(x[i].reshape(8, 8), rng, *param).ravel()
    return x, y


# The protocol decides at 0.05: a thousand permutations settle that, and spare the sequential MMD
# its search for p-values far below it (up to 200,000 permutations, for a 50-segment job's levels).
MMD = {"n_permutations": 500, "max_permutations": 1000}


def detectors(model):
    """Each returns a p-value for (reference, current) samples of pixels in [0, 1]."""
    softmax = model.predict_proba
    return {
        "BBSDs + KS (drift)": lambda r, c, s: componentwise_ks_test(softmax(r), softmax(c), rotate=False).p_value,
        "BBSDs + MMD (drift)": lambda r, c, s: mmd_test(softmax(r), softmax(c), **MMD, seed=s).p_value,
        "pixels + MMD (drift)": lambda r, c, s: mmd_test(r, c, **MMD, seed=s).p_value,
        "pixels + PCA-KS (drift)": lambda r, c, s: componentwise_ks_test(r, c, rotate=True).p_value,
        "pixels + classifier (drift)": lambda r, c, s: classifier_test(r, c, seed=s)[0].p_value,
        "BBSDs KS + pixels MMD, Bonferroni (drift)": lambda r, c, s: min(
            1.0,
            2 * min(componentwise_ks_test(softmax(r), softmax(c), rotate=False).p_value, mmd_test(r, c, **MMD, seed=s).p_value),
        ),
    }


def split(x_all, y_all, seed):
    x_tr, x_rest, y_tr, y_rest = train_test_split(x_all, y_all, test_size=0.5, random_state=seed, stratify=y_all)
    x_val, x_te, y_val, y_te = train_test_split(x_rest, y_rest, test_size=0.5, random_state=seed, stratify=y_rest)
    return detectors(LogisticRegression(C=1.0, max_iter=2000).fit(x_tr, y_tr)), x_val, x_te, y_te


def detect(tests, x_ref_pool, x_cur_pool, rng, seed) -> dict[str, list[bool]]:
    order_ref, order_cur = rng.permutation(len(x_ref_pool)), rng.permutation(len(x_cur_pool))
    return {
        name: [test(x_ref_pool[order_ref[:n]], x_cur_pool[order_cur[:n]], seed) < ALPHA for n in SAMPLE_SIZES]
        for name, test in tests.items()
    }


def run(seeds: int) -> tuple[dict, dict, float]:
    digits = load_digits()
    x_all, y_all = digits.data / 16.0, digits.target
    hits: dict[str, list] = {}
    control: dict[str, list] = {}
    started = time.perf_counter()
    for seed in range(seeds):
        tests, x_val, x_te, y_te = split(x_all, y_all, seed)
        rng = np.random.default_rng(seed)
        for shift in SHIFTS:
            for fraction in FRACTIONS:
                x_cur, _ = apply_shift(x_te, y_te, shift, fraction, rng)
                for name, found in detect(tests, x_val, x_cur, rng, seed).items():
                    hits.setdefault(name, []).append(found)
    for seed in range(1000, 1000 + CONTROL_SPLITS):
        tests, x_val, x_te, _ = split(x_all, y_all, seed)
        rng = np.random.default_rng(seed)
        for draw in range(CONTROLS_PER_SPLIT):
            for name, found in detect(tests, x_val, x_te, rng, seed * 100 + draw).items():
                control.setdefault(name, []).append(found)
    mean = lambda d: {k: np.mean(v, axis=0) for k, v in d.items()}  # noqa: E731
    return mean(hits), mean(control), time.perf_counter() - started


def table(accuracy: dict, control: dict, seeds: int) -> str:
    n_cases = len(SHIFTS) * len(FRACTIONS) * seeds
    header = (
        "| method | "
        + " | ".join(f"n={n}" for n in SAMPLE_SIZES)
        + " | no-shift rate at n=10..200 (worst Wilson 95% upper bound) |"
    )
    lines = [header, "|---|" + "---:|" * (len(SAMPLE_SIZES) + 1)]
    for name, values in PAPER.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " | (not in table) |")
    draws = CONTROL_SPLITS * CONTROLS_PER_SPLIT
    for name, values in accuracy.items():
        rates = ", ".join(f"{v:.2f}" for v in control[name])
        upper = max(wilson(round(v * draws), draws)[1] for v in control[name])
        lines.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + f" | {rates} ({upper:.2f}) |")
    lines.append("")
    lines.append(
        f"Detection accuracy over {n_cases} shifted cases per n ({len(SHIFTS)} shifts x {len(FRACTIONS)} fractions x "
        f"{seeds} seeds); no-shift rate over {CONTROL_SPLITS * CONTROLS_PER_SPLIT} control draws per n "
        f"({CONTROL_SPLITS} random splits x {CONTROLS_PER_SPLIT} draws). alpha = {ALPHA}."
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    accuracy, control, seconds = run(args.seeds)
    print(table(accuracy, control, args.seeds))
    print(f"\n({seconds:.0f} s)")


if __name__ == "__main__":
    main()
