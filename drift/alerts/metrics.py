"""A run's Prometheus metrics, for the SRE stack that watches batch jobs.

The key metric of a batch job is when it last succeeded: an alert rule on
`time() - drift_last_success_timestamp_seconds` catches a nightly job that stopped running, which
no drift alert can (docs/operations.md has the rule). Each run writes its metrics through
prometheus_client, to node_exporter's textfile collector (`[metrics] textfile`: a temporary file
beside it, renamed over it, so the collector never reads half a file) and/or to a Pushgateway
(`[metrics] pushgateway`, grouped by job: a run replaces its job's previous push).

The run has committed when they are written: a metrics file or a gateway that fails is logged
with its reason and never undoes the run (the next run writes them again).
"""

from __future__ import annotations

import logging
from datetime import datetime

from ..config import JobConfig
from ..record import RunRecord

log = logging.getLogger(__name__)


def registry_of(record: RunRecord, started: datetime, finished: datetime, open_alerts: int):
    """The run's metrics in a registry of their own (the process's default registry is not ours)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    job = record.job

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(name, doc, ("job", *labels), registry=registry)

    gauge("drift_last_success_timestamp_seconds", "When the job's last run completed (Unix time).").labels(job).set(
        finished.timestamp()
    )
    gauge("drift_run_duration_seconds", "Wall time of the job's last run.").labels(job).set((finished - started).total_seconds())
    stages = gauge("drift_run_stage_seconds", "Wall time of each stage of the job's last run.", ("stage",))
    for stage in record.stages:
        stages.labels(job, stage.stage).set(stage.seconds)
    severity = gauge(
        "drift_segment_severity", "The segment's verdict: 0 none, 1 info, 2 warning, 3 critical.", ("kind", "source")
    )
    errors = gauge(
        "drift_segment_input_error_ratio", "Share of the segment's sampled inputs that could not be read.", ("kind", "source")
    )
    sampled = gauge("drift_segment_sampled_items", "Inputs sampled for the segment in the last run.", ("kind", "source"))
    for segment in record.segments:
        severity.labels(job, segment.kind, segment.source).set(segment.severity.rank)
        errors.labels(job, segment.kind, segment.source).set(segment.n_errors / segment.n_sampled if segment.n_sampled else 0.0)
        sampled.labels(job, segment.kind, segment.source).set(segment.n_sampled)
    gauge("drift_alerts_open", "The job's open alerts, after its last run.").labels(job).set(open_alerts)
    return registry


def write_metrics(config: JobConfig, record: RunRecord, started: datetime, finished: datetime, open_alerts: int) -> int:
    """Write the run's metrics where [metrics] says; how many places took them."""
    from prometheus_client import push_to_gateway, write_to_textfile

    registry = registry_of(record, started, finished, open_alerts)
    written = 0
    if config.metrics.textfile is not None:
        try:
            config.metrics.textfile.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(config.metrics.textfile), registry)  # a temporary file, then a rename
            written += 1
        except OSError as exc:
            log.error("could not write the metrics file %s: %s", config.metrics.textfile, exc)
    if config.metrics.pushgateway is not None:
        try:
            push_to_gateway(config.metrics.pushgateway, job=record.job, registry=registry, timeout=config.metrics.timeout_s)
            written += 1
        except OSError as exc:  # urllib's URLError and HTTPError, refused connections, timeouts
            log.error("could not push the metrics to %s: %s", config.metrics.pushgateway, exc)
    return written
