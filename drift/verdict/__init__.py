"""The one place a verdict is decided: two-sample tests behind one result shape (tests), the
comparisons of a segment's features with its baseline (compare, structure, temporal), the
check families (families), the policy that makes findings and pages (policy), and what changed
in words (headline)."""
