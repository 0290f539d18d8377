"""Where featurization runs: worker processes on this machine (drift.features.featurize), or a
Ray cluster (ray_engine). Both open inputs with the same isolated code and end every sampled row
as features or as a classified error."""
