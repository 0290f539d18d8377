"""Turn one window of the input log into per-segment features and classified errors.

This is the half of the flow that a baseline build and a run share:

    log -> window + sample (SQL) -> safe open in workers -> features per segment

Every sampled row ends as features or as an InputError; nothing is dropped.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl

from .. import __version__
from ..clock import StageClock
from ..config import JobConfig
from ..sources import sample_log
from ..sources.log import LogSample, Window, local_path
from ..sources.objects import object_uri
from .featurize import Context, Segment, SegmentData, featurize

log = logging.getLogger(__name__)


def code_version(package: Path | None = None) -> str:
    """The package version plus a hash of its source, so a baseline records exactly which code made it:
    the Python modules, the compiled walker's Cython source and the demo's job file, each with its path."""
    digest = hashlib.sha256()
    package = package or Path(__file__).parent
    for path in sorted(p for pattern in ("*.py", "*.pyx", "*.toml") for p in package.rglob(pattern)):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return f"{__version__}+src.{digest.hexdigest()[:10]}"


@dataclass
class WindowAnalysis:
    window: Window
    sample: LogSample
    segments: dict[Segment, SegmentData]
    outcomes: dict[str, str]  # input_id -> "ok" | "error"


def received_seconds(rows: pl.DataFrame) -> pl.DataFrame:
    """input_id -> received_at as seconds since the epoch (UTC), the `received` table of a FeatureSet."""
    return rows.select("input_id", (pl.col("received_at").dt.epoch("us").cast(pl.Float64) / 1e6).alias("received_at"))


def item_paths(rows: pl.DataFrame) -> pl.DataFrame:
    """input_id -> where the item was read from (a local file, or an s3:// object), for the rows that name one."""
    paths = [object_uri(uri, log_file) or local_path(uri, log_file) for uri, log_file in zip(rows["uri"], rows["log_file"])]
    return pl.DataFrame({"input_id": rows["input_id"], "path": pl.Series(paths, dtype=pl.Utf8)}).drop_nulls("path")


def analyse_window(
    config: JobConfig,
    window: Window,
    context: Context,
    clock: StageClock,
    kinds: set[str] | None = None,
    max_per_segment: int | None = None,
) -> WindowAnalysis:
    """`kinds` limits the work to some input kinds (`drift fingerprint` opens only payloads);
    `max_per_segment` overrides [sampling]'s (a baseline samples [baseline] max_per_segment)."""
    with clock.stage("sample") as counter:
        sample = sample_log(config, window, max_per_segment)
        counter["items"] = sample.rows.height

    population = {(r["kind"], r["source"]): r["n_population"] for r in sample.population.iter_rows(named=True)}
    if kinds is not None:
        sample = replace(
            sample,
            rows=sample.rows.filter(pl.col("kind").is_in(sorted(kinds))),
            population=sample.population.filter(pl.col("kind").is_in(sorted(kinds))),
        )
    with clock.stage("open_and_featurize") as counter:
        with context.progress.bar("opening and embedding inputs", total=sample.rows.height) as advance:
            if config.engine.kind == "ray":
                from .engines.ray_engine import featurize_on_ray

                segments, outcomes = featurize_on_ray(sample.rows, context, advance)
            else:
                segments, outcomes = featurize(sample.rows.to_dicts(), context, advance)
        received = received_seconds(sample.rows)
        paths = item_paths(sample.rows)
        for segment, data in segments.items():
            data.n_population = population.get(segment, 0)
            features = data.features
            # when each item arrived: payload checks compare times in the data with it
            features.tables["received"] = received.filter(pl.col("input_id").is_in(features.ids))
            # where each file is: the report's thumbnails (a baseline keeps its own, for typical items)
            if paths.height:
                features.tables["paths"] = paths.filter(pl.col("input_id").is_in(features.ids))
        counter["items"] = sample.rows.height
        if context.feature_cache() is not None:
            hits = sum(data.cache_hits + data.cache_copies for data in segments.values())
            counter["cache_hits"], counter["cache_misses"] = hits, sample.rows.height - hits
    return WindowAnalysis(window, sample, segments, outcomes)


def report_internal_errors(analysis: WindowAnalysis) -> int:
    """drift's own failures on inputs go to stderr with their tracebacks: they are bugs, not data."""
    count = 0
    for data in analysis.segments.values():
        for error in data.internal_errors:
            count += 1
            log.error(
                "drift failed on input %s (%s/%s), a bug in drift: %s\n%s",
                error.input_id,
                data.kind,
                data.source,
                error.message,
                error.traceback or "",
            )
    return count
