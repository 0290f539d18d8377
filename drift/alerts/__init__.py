"""Alerts: which findings page (policy), the outbox in the run's transaction (outbox), and the
places they go (sinks), delivered with retries (deliver)."""
