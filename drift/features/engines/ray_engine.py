"""Featurization on a Ray cluster, through Ray Data.

The driver has drawn the sample. It hands Ray a manifest of it (one row per sampled input: id,
kind, source, uri or inline body, the log file that named it) and Ray Data runs `map_batches` over
an actor pool. Each actor loads the encoders once, in its constructor, and runs on its share of the
rows the very code the local engine runs (drift.features.featurize): inputs opened in worker
processes under the same time and memory limits, errors classified the same way, so a hostile
file costs one error row, never an actor. It returns, per segment of its batch, the features and
errors of its rows. Ray does not keep order: the driver writes what comes back as Parquet beside
the manifest, then joins the pieces by input_id into the order of the sample, so a run on Ray
stores what the same run would store locally (vectors within float tolerance: a batch groups
other items). Comparing, deciding and storing stay on the driver.

Traps handled here (see docs/operations.md):
- an actor pool that reserves every CPU starves Ray Data's own tasks and hangs
  (ray-project/ray#44687): actors reserve one CPU each, and the pool leaves one CPU free;
- ActorPoolStrategy(size=...) sets the pool, not the deprecated `concurrency=`;
- token authentication (Ray >= 2.59): a local cluster started here makes its own token; a remote
  one needs RAY_AUTH_TOKEN in the driver's environment, which Ray reads itself (never the job file).
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from ...errors import DriftError
from ...progress import QUIET
from ..featurize import Context, Segment, SegmentData, featurize
from ..kinds import FeatureSet

MANIFEST_COLUMNS = ("input_id", "kind", "source", "uri", "body", "log_file")


class _Featurizer:
    """One Ray actor: the encoders, loaded once, and the isolated workers of drift.features.featurize."""

    def __init__(self, config, keep_documents: bool, calibration) -> None:
        self.context = Context(config, QUIET)
        self.context.keep_documents = keep_documents  # `drift fingerprint` wants the union schema
        self.context.calibration = calibration  # static int8's, from the baseline

    def __call__(self, batch):
        import pyarrow as pa

        rows = batch.select(list(MANIFEST_COLUMNS)).to_pylist()
        segments, _ = featurize(rows, self.context)
        out = {"kind": [], "source": [], "input_ids": [], "piece": []}
        for (kind, source), data in segments.items():
            data.features.cache = {}
            out["kind"].append(kind)
            out["source"].append(source)
            out["input_ids"].append(list(data.features.ids) + [e.input_id for e in data.errors])
            counts = (data.n_sampled, data.cache_hits, data.cache_copies)
            out["piece"].append(pickle.dumps((counts, data.features, data.errors), protocol=5))
        return pa.table(out, schema=_results_schema())


def connect(engine) -> Any:
    """Join the configured cluster (or start a local one) once per process."""
    try:
        import ray
    except ImportError:
        raise DriftError("[engine] kind = 'ray' needs the ray extra: pip install -e '.[ray]'") from None
    # Ray Data logs each dataset's plan at INFO; a nightly run's stderr is for what needs a person
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not ray.is_initialized():
        address = engine.address or os.environ.get("RAY_ADDRESS") or "local"
        try:
            ray.init(
                address=None if address == "local" else address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DriftError(f"[engine] cannot reach the Ray cluster at {address!r}: {exc}") from None
    return ray


def pool_size(engine, cluster_cpus: float, cluster_gpus: float = 0.0) -> int:
    """How many actors of `cpus_per_actor` CPUs (and `gpus_per_actor` GPUs), leaving at least one CPU
    of the cluster to Ray Data's own tasks: a pool that reserves every CPU hangs the dataset
    (ray-project/ray#44687). A pool the cluster cannot place is refused, with the reason, rather
    than left waiting for resources that never come."""
    free = int(cluster_cpus) - 1
    fit = max(1, free // engine.cpus_per_actor)
    if engine.gpus_per_actor:
        if cluster_gpus < engine.gpus_per_actor:
            raise DriftError(
                f"[engine] gpus_per_actor = {engine.gpus_per_actor:g}, but the Ray cluster has {cluster_gpus:g} GPU(s); "
                "set gpus_per_actor = 0 to featurize on CPUs, or join a cluster with GPU nodes"
            )
        fit = min(fit, int(cluster_gpus / engine.gpus_per_actor + 1e-9))
    size = engine.actors if engine.actors is not None else fit
    if size * engine.cpus_per_actor > free:
        raise DriftError(
            f"[engine] {size} actor(s) of {engine.cpus_per_actor} CPU(s) would reserve every CPU of this "
            f"{int(cluster_cpus)}-CPU cluster, and Ray Data would hang (ray-project/ray#44687); "
            f"use at most {max(free, 0)} CPU(s) in all (actors x cpus_per_actor)"
        )
    if size * engine.gpus_per_actor > cluster_gpus + 1e-9:
        raise DriftError(
            f"[engine] {size} actor(s) of {engine.gpus_per_actor:g} GPU(s) need {size * engine.gpus_per_actor:g} GPU(s); "
            f"the Ray cluster has {cluster_gpus:g}: lower [engine] actors or gpus_per_actor"
        )
    return size


def featurize_on_ray(
    rows: pl.DataFrame, context: Context, advance: Callable[[int], None]
) -> tuple[dict[Segment, SegmentData], dict[str, str]]:
    config = context.config
    engine = config.engine
    ray = connect(engine)
    import pyarrow.parquet as pq
    from ray.data import ActorPoolStrategy, DataContext

    DataContext.get_current().enable_progress_bars = False  # drift draws its own bar
    manifest = rows.select(list(MANIFEST_COLUMNS)).to_arrow()
    if manifest.num_rows == 0:
        return {}, {}
    # The manifest and the results are the run's own working files: kept while the run joins them,
    # never beside the report (the results hold whole feature sets).
    with tempfile.TemporaryDirectory(prefix="drift-ray-") as folder:
        pq.write_table(manifest, Path(folder) / "manifest.parquet")
        batches = max(1, -(-manifest.num_rows // engine.batch_size))
        resources = ray.cluster_resources()
        size = min(pool_size(engine, resources.get("CPU", 1), resources.get("GPU", 0.0)), batches)
        dataset = (
            ray.data.from_arrow(manifest)
            .repartition(batches)
            .map_batches(
                _Featurizer,
                fn_constructor_args=(config, context.keep_documents, context.calibration),
                batch_size=engine.batch_size,
                batch_format="pyarrow",
                compute=ActorPoolStrategy(size=size),
                num_cpus=engine.cpus_per_actor,  # Ray sets the actor's OMP_NUM_THREADS, torch's default, to it
                # Ray sets CUDA_VISIBLE_DEVICES to the actor's GPUs: [image] device = 'auto' finds its own
                **({"num_gpus": engine.gpus_per_actor} if engine.gpus_per_actor else {}),
            )
        )
        results = Path(folder) / "results.parquet"
        with pq.ParquetWriter(results, _results_schema()) as writer:
            for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                writer.write_table(batch.cast(_results_schema()))  # Ray may widen types on the way back
                advance(sum(len(ids) for ids in batch["input_ids"].to_pylist()))
        return join(pq.read_table(results), rows["input_id"].to_list())


def _results_schema():
    import pyarrow as pa

    return pa.schema(
        [("kind", pa.string()), ("source", pa.string()), ("input_ids", pa.list_(pa.string())), ("piece", pa.large_binary())]
    )


def join(results, order: list[str]) -> tuple[dict[Segment, SegmentData], dict[str, str]]:
    """The actors' pieces, joined per segment by input_id in the order of the sample."""
    position = {input_id: i for i, input_id in enumerate(order)}
    parts: dict[Segment, list[tuple[tuple[int, int, int], FeatureSet, list]]] = {}
    for kind, source, piece in zip(results["kind"].to_pylist(), results["source"].to_pylist(), results["piece"].to_pylist()):
        parts.setdefault((kind, source), []).append(pickle.loads(piece))
    segments: dict[Segment, SegmentData] = {}
    outcomes: dict[str, str] = {}
    for segment in sorted(
        parts, key=lambda s: min((position[i] for p in parts[s] for i in p[1].ids + [e.input_id for e in p[2]]), default=0)
    ):
        pieces = parts[segment]
        errors = sorted((e for _, _, errs in pieces for e in errs), key=lambda e: position[e.input_id])
        features = FeatureSet.concat([features for _, features, _ in pieces], position)
        n_sampled, hits, copies = (sum(counts[i] for counts, _, _ in pieces) for i in range(3))
        segments[segment] = SegmentData(segment[0], segment[1], 0, n_sampled, features, errors, hits, copies)
        outcomes |= {i: "ok" for i in features.ids} | {e.input_id: "error" for e in errors}
    return segments, outcomes
