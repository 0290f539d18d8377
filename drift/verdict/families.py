"""The check families: their default effect thresholds and severities (docs/statistics.md).

Data, not logic: the job file's [policy] is validated against the names (config) and the verdict applies
it (drift.verdict.policy); the families' names are declared once, in drift.record.Family.
"""

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
    ("schema_breaking", "lag_ks"): 1.0,  # a time's lag to receipt moved by a baseline sd (and at least an hour)
    ("embedding", "conformal"): 0.05,  # 5 points more of today's items unlike the baseline than expected
    ("descriptor", "conformal"): 0.05,
    ("descriptor", "tail"): 0.05,  # 5 points more of today's items beyond the baseline's extreme than expected
    ("schema_breaking", "magnitude"): 1.0,  # ten times larger or smaller, or most values outside the baseline's range
    ("descriptor", "fisher"): 0.2,  # yes/no descriptors: Cohen's h, "small"
    ("descriptor", "chi2"): 0.2,  # categories: Jensen-Shannon distance, as for enum shares
}
