"""The statistical engine: two-sample tests (tests), comparisons of feature sets (compare),
and the single verdict (verdict)."""
