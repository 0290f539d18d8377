"""Featurization on a real local Ray cluster gives what the local engine gives."""

from __future__ import annotations

import os
from datetime import timedelta

import numpy as np
import pytest

from drift.baselines import build, open_baseline
from drift.clock import StageClock
from drift.config import load_job
from drift.features.featurize import Context
from drift.features.window import analyse_window
from drift.pipeline import _segment_verdicts
from drift.progress import QUIET
from drift.sources.log import Window

from .conftest import BASE_DAY, assert_same_analysis, write_day, write_job

if os.environ.get("CI"):
    import ray  # noqa: F401 - CI installs the extra: a missing Ray is a failure there, not a skip
else:
    ray = pytest.importorskip("ray")

DAY = BASE_DAY + timedelta(days=4)


@pytest.fixture
def ray_world(tmp_path, tiny_clip):
    for d in range(3):
        write_day(tmp_path, BASE_DAY + timedelta(days=d), seed=d, n=24)
    hostile = tmp_path / "data" / "hostile.jpg"
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    good = {"received_at": (DAY + timedelta(hours=1)).isoformat(), "source": "phone", "body": None}
    extra = [
        {**good, "input_id": "hostile", "kind": "image", "uri": "../data/hostile.jpg"},
        {**good, "input_id": "gone", "kind": "image", "uri": "../data/nowhere.jpg"},
        {**good, "input_id": "escape", "kind": "image", "uri": "/etc/hostname"},
    ]
    write_day(tmp_path, DAY, seed=11, n=24, degrade_images=True, break_orders=True, extra_rows=extra)
    local = write_job(tmp_path, tiny_clip)
    ray_job = tmp_path / "ray.toml"
    ray_job.write_text(
        local.read_text()
        .replace("[baseline]", '[engine]\nkind = "ray"\naddress = "local"\nbatch_size = 40\n\n[baseline]')
        .replace('path = "alerts.jsonl"', 'path = "alerts-ray.jsonl"')
        # its own feature cache: the local analysis's entries would leave Ray nothing to featurize
        + '\n[store]\ndatabase = "ray.duckdb"\n\n[cache]\ndir = "ray-cache"\n'
    )
    return local, ray_job


def _analyse(job):
    config = load_job(job)
    window = Window(DAY, DAY + timedelta(days=1))
    return analyse_window(config, window, Context(config, QUIET), StageClock())


def test_ray_engine_gives_the_local_features_errors_and_verdicts(ray_cluster, ray_world):
    local_job, ray_job = ray_world
    here, there = _analyse(local_job), _analyse(ray_job)

    assert_same_analysis(here, there)
    errors = {e.input_id: e.category for d in there.segments.values() for e in d.errors}
    assert errors["hostile"] in ("corrupt", "truncated")
    assert (errors["gone"], errors["escape"]) == ("missing", "outside_roots")

    # the verdicts: both nights against one baseline, decided as a run decides
    config = load_job(local_job)
    build(config, BASE_DAY, BASE_DAY + timedelta(days=3), Context(config, QUIET), StageClock())
    baseline = open_baseline(config)
    decided = {}
    for name, analysis in (("local", here), ("ray", there)):
        verdicts = _segment_verdicts(config, analysis, baseline, Context(config, QUIET))
        decided[name] = {
            segment: (v.status, v.drifted, v.severity, sorted((f.check, f.target, f.status) for f in v.findings))
            for segment, v in verdicts.items()
        }
    assert decided["ray"] == decided["local"]
    assert any(drifted for _, drifted, _, _ in decided["local"].values())


def test_pieces_featurized_apart_join_in_the_order_of_the_sample():
    """What actors return, in any order, becomes the segment one process would have made."""
    import orjson
    import polars as pl
    from genson import SchemaBuilder

    from drift.features.kinds import FeatureSet

    def piece(ids, docs):
        return FeatureSet(
            ids=ids,
            descriptors=pl.DataFrame({"input_id": ids, "n_keys": [float(len(d)) for d in docs]}),
            embeddings={"clip": np.array([[float(i[-1]), 1.0] for i in ids], dtype=np.float32)},
            tables={
                "tags": pl.DataFrame(
                    {"input_id": [i for i in ids for _ in (0, 1)], "path": [p for _ in ids for p in ("$.a", "$.b")]}
                ),
                "schema": pl.DataFrame({"schema": [orjson.dumps(_schema(docs)).decode()]}),
            },
        )

    def _schema(docs):
        builder = SchemaBuilder()
        for doc in docs:
            builder.add_object(doc)
        return builder.to_schema()

    late, early = piece(["x3", "x1"], [{"a": 1}, {"a": "s", "b": None}]), piece(["x2"], [{"c": [1]}])
    merged = FeatureSet.concat([late, early], {"x1": 0, "x2": 1, "x3": 2})
    assert merged.ids == ["x1", "x2", "x3"]
    assert merged.descriptors["input_id"].to_list() == ["x1", "x2", "x3"]
    assert merged.descriptors["n_keys"].to_list() == [2.0, 1.0, 1.0]
    assert merged.embeddings["clip"][:, 0].tolist() == [1.0, 2.0, 3.0]
    assert merged.tables["tags"]["input_id"].to_list() == ["x1", "x1", "x2", "x2", "x3", "x3"]
    assert orjson.loads(merged.tables["schema"]["schema"][0]) == _schema([{"a": 1}, {"a": "s", "b": None}, {"c": [1]}])


def test_the_actor_pool_always_leaves_a_cpu_to_ray_data():
    """An actor pool that reserves every CPU hangs Ray Data (ray-project/ray#44687): refused, clearly."""
    from drift.config import EngineSection
    from drift.errors import DriftError
    from drift.features.engines.ray_engine import pool_size

    assert pool_size(EngineSection(kind="ray"), 2) == 1
    assert pool_size(EngineSection(kind="ray", cpus_per_actor=4), 16) == 3
    assert pool_size(EngineSection(kind="ray", actors=5), 16) == 5
    with pytest.raises(DriftError, match=r"2 actor\(s\) of 1 CPU\(s\) would reserve every CPU of this 2-CPU cluster"):
        pool_size(EngineSection(kind="ray", actors=2), 2)
    with pytest.raises(DriftError, match="ray-project/ray#44687"):
        pool_size(EngineSection(kind="ray", cpus_per_actor=2), 2)


def test_gpu_actors_fit_the_clusters_gpus_or_are_refused_with_the_reason():
    from drift.config import EngineSection
    from drift.errors import DriftError
    from drift.features.engines.ray_engine import pool_size

    assert pool_size(EngineSection(kind="ray", gpus_per_actor=0), 16, 0) == 15  # CPU actors, as before
    assert pool_size(EngineSection(kind="ray", gpus_per_actor=1), 16, 2) == 2  # one actor per GPU
    assert pool_size(EngineSection(kind="ray", gpus_per_actor=0.5), 16, 2) == 4  # two actors share a GPU
    with pytest.raises(DriftError, match=r"gpus_per_actor = 1, but the Ray cluster has 0 GPU\(s\)"):
        pool_size(EngineSection(kind="ray", gpus_per_actor=1), 16, 0)
    with pytest.raises(DriftError, match=r"3 actor\(s\) of 1 GPU\(s\) need 3 GPU\(s\); the Ray cluster has 2"):
        pool_size(EngineSection(kind="ray", actors=3, gpus_per_actor=1), 16, 2)


def test_a_run_asking_for_gpus_the_cluster_lacks_is_refused_before_any_work(ray_cluster, ray_world):
    from drift.errors import DriftError

    _, ray_job = ray_world
    config = load_job(ray_job)
    config.engine.gpus_per_actor = 1
    with pytest.raises(DriftError, match=r"but the Ray cluster has 0 GPU\(s\); set gpus_per_actor = 0"):
        analyse_window(config, Window(DAY, DAY + timedelta(days=1)), Context(config, QUIET), StageClock())


def test_ray_actors_read_and_write_the_jobs_feature_cache(ray_cluster, ray_world):
    local_job, ray_job = ray_world
    clock = StageClock()
    config = load_job(ray_job)
    cold = analyse_window(config, Window(DAY, DAY + timedelta(days=1)), Context(config, QUIET), clock)
    warm_clock = StageClock()
    warm = analyse_window(config, Window(DAY, DAY + timedelta(days=1)), Context(config, QUIET), warm_clock)
    assert_same_analysis(cold, warm)
    [cold_stage] = [s for s in clock.stages if s.stage == "open_and_featurize"]
    [warm_stage] = [s for s in warm_clock.stages if s.stage == "open_and_featurize"]
    n = sum(d.n_sampled for d in cold.segments.values())
    assert cold_stage.cache_hits == 0
    # all but the rows with no bytes to key ("gone" is missing, "escape" is outside the roots)
    assert (warm_stage.cache_hits, warm_stage.cache_misses) == (n - 2, 2)
    # and the local engine reads what the actors wrote: one cache, both engines
    local = load_job(local_job)
    local.cache.dir = config.cache.dir
    local_clock = StageClock()
    here = analyse_window(local, Window(DAY, DAY + timedelta(days=1)), Context(local, QUIET), local_clock)
    assert_same_analysis(here, warm)
    assert [s.cache_hits for s in local_clock.stages if s.stage == "open_and_featurize"] == [n - 2]
