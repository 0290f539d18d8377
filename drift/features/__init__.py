"""Inputs become features: each kind opens its items in isolated workers (isolation) and turns
them into a FeatureSet per segment (featurize, on this machine or on Ray: engines), with
embeddings (embed) and JSON-structure fingerprints (fingerprint). FeatureSet and the classified
errors are on this floor's ground (featureset)."""
