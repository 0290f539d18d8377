"""Logs, inputs and baselines in a bucket: a real S3 endpoint (moto's server) on 127.0.0.1."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from drift.baselines import build
from drift.clock import StageClock
from drift.config import load_job
from drift.errors import ConfigError
from drift.features.featurize import Context
from drift.features.window import analyse_window
from drift.pipeline import run_job
from drift.progress import QUIET
from drift.record import RunRecord
from drift.report.pictures import report_pictures
from drift.sources.log import Window

from .conftest import BASE_DAY, photo

if not os.environ.get("CI"):  # CI installs the extras: there a missing one is a failure, not a skip
    pytest.importorskip("s3fs")
    pytest.importorskip("moto")
from .s3_server import enforce_iam, s3_endpoint  # noqa: E402

QUIET_DAY = f"{BASE_DAY + timedelta(days=3):%Y-%m-%d}"
SETUP_KEYS = {"AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "setup", "AWS_DEFAULT_REGION": "us-east-1"}


def _client(upstream: str):
    import boto3

    return boto3.client(
        "s3", endpoint_url=upstream, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup"
    )


def _upload(client, bucket: str, folder: Path, prefix: str) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")


def _s3_job(local_job: Path, endpoint: str, bucket: str, extra: str = "") -> Path:
    text = local_job.read_text()
    text = text.replace('log = "logs/*.parquet"', f'log = "s3://{bucket}/logs/*.parquet"')
    text = text.replace('roots = ["data"]', f'roots = ["s3://{bucket}/data/"]')
    text = text.replace('[baseline]\nname = "ref"', f'[baseline]\nname = "ref"\ndir = "s3://{bucket}/baselines"')
    text = text.replace('path = "alerts.jsonl"', 'path = "alerts-s3.jsonl"')
    text += f'\n[inputs.s3]\nendpoint = "{endpoint}"\nregion = "us-east-1"\nurl_style = "path"\ntimeout_s = 2\n'
    text += '\n[store]\ndatabase = "s3-run.duckdb"\n' + extra
    path = local_job.with_name("s3.toml")
    path.write_text(text)
    return path


def _verdicts(summary: dict) -> list:
    return sorted(
        (
            s["kind"],
            s["source"],
            s["status"],
            s["severity"],
            s["n_sampled"],
            s["n_errors"],
            tuple(sorted((f["check"], f["target"], f["status"]) for f in s["findings"])),
        )
        for s in summary["segments"]
    )


def test_a_world_in_a_bucket_gives_the_verdicts_it_gives_on_disk(world, monkeypatch, tmp_path_factory):
    root, local_job = world
    monkeypatch.setenv("DRIFT_CACHE", str(tmp_path_factory.mktemp("cache")))
    for key, value in SETUP_KEYS.items():
        monkeypatch.setenv(key, value)
    with s3_endpoint() as (endpoint, upstream):
        client = _client(upstream)
        client.create_bucket(Bucket="agent")
        _upload(client, "agent", root / "data", "data")
        _upload(client, "agent", root / "logs", "logs")
        # the feature cache in the bucket too: written by the first run, read by the second
        s3_job = _s3_job(local_job, endpoint, "agent", '\n[cache]\ndir = "s3://agent/feature-cache"\n')

        results = {}
        for job in (local_job, s3_job):
            config = load_job(job)
            build(config, BASE_DAY, BASE_DAY + timedelta(days=3), Context(config, QUIET), StageClock())
            results[job.name] = run_job(config, QUIET_DAY).summary
        rerun = run_job(load_job(s3_job), QUIET_DAY).record
        keys = {o["Key"] for o in client.list_objects_v2(Bucket="agent", Prefix="baselines/t/ref/")["Contents"]}
        cached = {o["Key"] for o in client.list_objects_v2(Bucket="agent", Prefix="feature-cache/")["Contents"]}
        # the report's thumbnails come from the bucket too
        photo_key = next(
            o["Key"] for o in client.list_objects_v2(Bucket="agent", Prefix="data/")["Contents"] if o["Key"].endswith(".jpg")
        )
        record = RunRecord.model_validate(
            {
                "run_id": "r", "job": "t", "window": {"start": "2026-03-05", "end": "2026-03-06"},
                "baseline": {"name": "ref", "window": {"start": "2026-03-01", "end": "2026-03-04"}},
                "segments": [{"kind": "image", "source": "app", "status": "ok",
                              "evidence": {"unlike": [{"input_id": "p", "path": f"s3://agent/{photo_key}"}]}}],
            }
        )  # fmt: skip
        pictures = report_pictures(record, load_job(s3_job))

    assert _verdicts(results["s3.toml"]) == _verdicts(results["job.toml"])
    assert _verdicts(rerun.model_dump(mode="json")) == _verdicts(results["job.toml"])
    [featurized] = [s for s in rerun.stages if s.stage == "open_and_featurize"]
    assert featurized.cache_misses == 0 and featurized.cache_hits == featurized.items
    assert any(k.endswith(".parquet") and "/part-" in k for k in cached) and any(
        k.startswith("feature-cache/uses/") for k in cached
    )
    assert sum(s["n_sampled"] for s in results["s3.toml"]["segments"]) > 100
    assert "baselines/t/ref/manifest.json" in keys and any(k.endswith(".embeddings.parquet") for k in keys)
    assert results["s3.toml"]["baseline"]["dir"].endswith(".pulled")
    assert pictures[("image", "p")].startswith("data:image/jpeg;base64,")


def test_missing_denied_slow_and_outside_objects_are_input_errors(tmp_path, tiny_clip, monkeypatch):
    import random

    from .conftest import write_job

    for key, value in SETUP_KEYS.items():
        monkeypatch.setenv(key, value)
    day = BASE_DAY
    rng = random.Random(0)
    rows = []
    with s3_endpoint() as (endpoint, upstream):
        client = _client(upstream)
        client.create_bucket(Bucket="guarded")
        for name in ("a", "b", "c"):
            client.put_object(Bucket="guarded", Key=f"data/ok/{name}.jpg", Body=photo(rng))
            rows.append({"input_id": name, "uri": f"s3://guarded/data/ok/{name}.jpg"})
        client.put_object(Bucket="guarded", Key="data/denied/d.jpg", Body=photo(rng))
        client.put_object(Bucket="guarded", Key="data/slow/s.jpg", Body=photo(rng))
        client.put_object(Bucket="guarded", Key="data/big.jpg", Body=b"\xff" * 50_000)
        rows += [
            {"input_id": "denied", "uri": "s3://guarded/data/denied/d.jpg"},
            {"input_id": "slow", "uri": "data/slow/s.jpg"},  # relative: against the log's own prefix
            {"input_id": "gone", "uri": "s3://guarded/data/nowhere.jpg"},
            {"input_id": "big", "uri": "s3://guarded/data/big.jpg"},
            {"input_id": "outside", "uri": "s3://guarded/private/x.jpg"},
            {"input_id": "climb", "uri": "s3://guarded/data/../private/x.jpg"},
        ]
        log = tmp_path / "log.parquet"
        pl.DataFrame(
            [{**r, "received_at": (day + timedelta(hours=1)).isoformat(), "kind": "image", "source": "cam"} for r in rows]
        ).write_parquet(log)
        client.upload_file(str(log), "guarded", "log.parquet")
        job = _s3_job(write_job(tmp_path, tiny_clip), endpoint, "guarded")
        job.write_text(
            job.read_text()
            .replace("s3://guarded/logs/*.parquet", "s3://guarded/log.parquet")
            .replace("batch_size = 16", "batch_size = 16\nmax_bytes = 30000")
        )
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "unused")
        for key, value in enforce_iam(upstream, "arn:aws:s3:::guarded/data/denied/*").items():
            monkeypatch.setenv(key, value)

        config = load_job(job)
        analysis = analyse_window(config, Window(day, day + timedelta(days=1)), Context(config, QUIET), StageClock())

    [segment] = analysis.segments.values()
    errors = {e.input_id: e.category for e in segment.errors}
    assert errors == {
        "denied": "forbidden",
        "slow": "timeout",
        "gone": "missing",
        "big": "too_large",
        "outside": "outside_roots",
        "climb": "outside_roots",
    }
    assert sorted(segment.features.ids) == ["a", "b", "c"]


def test_credentials_are_never_read_from_the_job_file(tmp_path, tiny_clip):
    from .conftest import write_job

    job = write_job(tmp_path, tiny_clip)
    job.write_text(job.read_text() + '\n[inputs.s3]\naccess_key_id = "AKIA..."\n')
    with pytest.raises(ConfigError, match=r"\[inputs.s3\] access_key_id: unknown key"):
        load_job(job)
