"""A run's Prometheus metrics: the textfile read by prometheus_client's own parser, and a real
Pushgateway (Debian's prometheus-pushgateway, started here on 127.0.0.1; .ci/run installs it)
read back from its /metrics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from drift.alerts.metrics import write_metrics
from drift.config import load_job
from drift.errors import ConfigError
from drift.pipeline import run_job
from drift.progress import QUIET

from .conftest import free_port, local_server
from .test_pipeline import DRIFT_DAY, build_baseline


@pytest.fixture
def pushgateway():
    port = free_port()
    with local_server("prometheus-pushgateway", [f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"], port) as url:
        yield url


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """name, labels -> value; the Pushgateway's own empty `instance` grouping label left out."""
    return {
        (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if (k, v) != ("instance", "")))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_run_writes_its_metrics_to_the_textfile_and_the_pushgateway(world, pushgateway, tmp_path):
    _, job = world
    job.write_text(job.read_text() + f'\n[metrics]\ntextfile = "metrics/drift.prom"\npushgateway = "{pushgateway}"\n')
    build_baseline(job)
    config = load_job(job)
    before = datetime.now(UTC).timestamp()
    result = run_job(config, DRIFT_DAY, QUIET)
    record = result.record

    textfile = config.metrics.textfile
    assert textfile.parent.name == "metrics" and sorted(p.name for p in textfile.parent.iterdir()) == ["drift.prom"]
    for text in (textfile.read_text(), httpx.get(f"{pushgateway}/metrics", timeout=5).text):
        got = samples(text)
        job_label = (("job", "t"),)
        assert before <= got[("drift_last_success_timestamp_seconds", job_label)] <= datetime.now(UTC).timestamp()
        assert got[("drift_run_duration_seconds", job_label)] > 0
        assert got[("drift_alerts_open", job_label)] == len(record.alerts) > 0
        stages = {dict(labels)["stage"] for name, labels in got if name == "drift_run_stage_seconds"}
        assert {"sample", "open_and_featurize", "compare", "store", "deliver", "report"} <= stages
        for segment in record.segments:
            labels = tuple(sorted({"job": "t", "kind": segment.kind, "source": segment.source}.items()))
            assert (
                got[("drift_segment_severity", labels)] == {"none": 0, "info": 1, "warning": 2, "critical": 3}[segment.severity]
            )
            assert got[("drift_segment_sampled_items", labels)] == segment.n_sampled
            assert got[("drift_segment_input_error_ratio", labels)] == pytest.approx(segment.n_errors / segment.n_sampled)
    assert "metrics" in {s.stage for s in record.stages}


def test_a_dead_pushgateway_is_logged_and_never_undoes_the_run(world, caplog, tmp_path):
    _, job = world
    job.write_text(job.read_text() + f'\n[metrics]\npushgateway = "http://127.0.0.1:{free_port()}"\ntimeout_s = 2\n')
    build_baseline(job)
    config = load_job(job)
    with caplog.at_level(logging.ERROR, logger="drift.alerts.metrics"):
        result = run_job(config, DRIFT_DAY, QUIET)
    assert result.record.segments and "could not push the metrics to http://127.0.0.1" in caplog.text
    # written again by hand, to a file: one place took them
    config.metrics.textfile = tmp_path / "again.prom"
    now = datetime.now(UTC)
    assert write_metrics(config, result.record, now - timedelta(seconds=5), now, 0) == 1


def test_the_metrics_file_must_be_one_node_exporter_reads(world):
    _, job = world
    job.write_text(job.read_text() + '\n[metrics]\ntextfile = "drift.txt"\n')
    with pytest.raises(ConfigError, match=r"\[metrics\] textfile: .*node_exporter reads only \*\.prom files"):
        load_job(job)
