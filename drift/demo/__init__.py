"""`drift demo`: a synthetic world of agent inputs, a baseline, a quiet day and a drifted day."""
