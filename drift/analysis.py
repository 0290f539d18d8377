"""Turn one window of the input log into per-segment features and classified errors.

This is the half of the flow that a baseline build and a run share:

    log -> window + sample (SQL) -> safe open in workers -> features per segment

Every sampled row ends as features or as an InputError; nothing is dropped.
"""

from __future__ import annotations

import hashlib
import logging
import re
import resource
import shutil
import tempfile
import weakref
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import polars as pl

from . import __version__
from .config import JobConfig
from .inputs import LogSample, Window, connect, inside_roots, local_path, open_log, resolve_uri, sample_window
from .isolation import Task, open_all
from .kinds import KINDS, FeatureSet, InputError
from .progress import Progress

Segment = tuple[str, str]  # (kind, source)

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
class StageTiming:
    stage: str
    seconds: float
    items: int
    cpu_seconds: float
    peak_rss_mb: float


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux; children are the worker processes that have exited.
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024.0


class StageClock:
    """Wall time, CPU time (including finished workers) and peak memory of each stage."""

    def __init__(self) -> None:
        self.timings: list[StageTiming] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, int]]:
        counter = {"items": 0}
        wall, cpu = time.perf_counter(), _cpu_seconds()
        try:
            yield counter
        finally:
            self.timings.append(
                StageTiming(name, time.perf_counter() - wall, counter["items"], _cpu_seconds() - cpu, _peak_rss_mb())
            )

    def frame(self, run_id: str) -> pl.DataFrame:
        return pl.DataFrame(
            [{"run_id": run_id, **t.__dict__} for t in self.timings],
            schema={
                "run_id": pl.Utf8,
                "stage": pl.Utf8,
                "seconds": pl.Float64,
                "items": pl.Int32,
                "cpu_seconds": pl.Float64,
                "peak_rss_mb": pl.Float64,
            },
        )


def file_label(source: str) -> str:
    """A source name as a file name part: readable, and unique (sources that read alike once
    sanitised, "acme corp" and "acme_corp", differ in the hash of their real name)."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "_", source)[:40]
    return f"{readable}-{hashlib.sha256(source.encode()).hexdigest()[:8]}"


class Context:
    """What the kinds may ask of a run: the config and the (lazily loaded) encoders."""

    def __init__(self, config: JobConfig, progress: Progress, spool_dir: Path | None = None):
        self.config = config
        self.progress = progress
        if spool_dir is None:  # nobody keeps the vectors (a baseline saves its own copy): a temporary folder
            spool_dir = Path(tempfile.mkdtemp(prefix="drift-spool-"))
            weakref.finalize(self, shutil.rmtree, spool_dir, ignore_errors=True)
        self.spool_dir = spool_dir  # where featurizers stream embeddings to
        self._image_encoder = None
        self._text_encoder = None
        self.keep_documents = False  # payload kinds hand the parsed documents on (union schemas)

    def spool_path(self, kind: str, source: str, embedding: str) -> Path:
        return self.spool_dir / f"{kind}.{file_label(source)}.{embedding}.parquet"

    def image_encoder(self):
        if self._image_encoder is None:
            from .embed.clip import ImageEncoder

            section = self.config.image
            with self.progress.status(f"loading image encoder {section.model} ({section.pretrained})"):
                self._image_encoder = ImageEncoder(
                    section.model, section.pretrained, section.seed, section.threads, section.architecture, section.quantize,
                    section.backend,
                )
        return self._image_encoder

    def text_encoder(self):
        if self._text_encoder is None:
            from .embed.text import TextEncoder

            section = self.config.document
            with self.progress.status(f"loading text encoder {section.text_model}"):
                self._text_encoder = TextEncoder(section.text_model, section.text_chars, self.config.image.threads)
        return self._text_encoder

    def encoder(self, name: str):
        return {"clip": self.image_encoder, "text": self.text_encoder}[name]()

    def encoders_for(self, kinds: set[str]) -> set[str]:
        return set().union(*(KINDS[k].encoders(self.config) for k in kinds)) if kinds else set()

    def embedder_identity(self, kinds: set[str]) -> dict[str, Any] | None:
        """The identity of every encoder these kinds use, by embedding name; None when they use none."""
        names = self.encoders_for(kinds)
        return {name: self.encoder(name).identity() for name in sorted(names)} or None


@dataclass
class SegmentData:
    kind: str
    source: str
    n_population: int
    n_sampled: int
    features: FeatureSet
    errors: list[InputError] = field(default_factory=list)

    def error_counts(self) -> dict[str, int]:
        """Input errors by category. Our own failures (internal) are not the inputs' and are left out."""
        counts: dict[str, int] = {}
        for error in self.errors:
            if not error.internal:
                counts[error.category] = counts.get(error.category, 0) + 1
        return counts

    @property
    def n_input_errors(self) -> int:
        return sum(self.error_counts().values())

    @property
    def internal_errors(self) -> list[InputError]:
        return [e for e in self.errors if e.internal]

    @property
    def n_judged(self) -> int:
        """Sampled inputs that ended as items or as input errors: what error rates are shares of."""
        return self.n_sampled - len(self.internal_errors)


@dataclass
class WindowAnalysis:
    window: Window
    sample: LogSample
    segments: dict[Segment, SegmentData]
    outcomes: dict[str, str]  # input_id -> "ok" | "error"


def received_seconds(rows: pl.DataFrame) -> pl.DataFrame:
    """input_id -> received_at as seconds since the epoch (UTC), the `received` table of a FeatureSet."""
    return rows.select(
        "input_id", (pl.col("received_at").dt.epoch("us").cast(pl.Float64) / 1e6).alias("received_at")
    )


def item_paths(rows: pl.DataFrame) -> pl.DataFrame:
    """input_id -> the local file it was read from, for the rows that name one."""
    paths = [local_path(uri, log_file) for uri, log_file in zip(rows["uri"], rows["log_file"])]
    return pl.DataFrame({"input_id": rows["input_id"], "path": pl.Series(paths, dtype=pl.Utf8)}).drop_nulls("path")


def _target(row: dict[str, Any], roots: list[Path]) -> tuple[Any, InputError | None]:
    if row["uri"] is None:
        return row["body"].encode("utf-8"), None
    uri = row["uri"]
    if "://" in uri and not uri.startswith("file://"):
        scheme = uri.split("://", 1)[0]
        return None, InputError(row["input_id"], "unsupported", f"uri scheme {scheme}:// is not readable yet")
    path = resolve_uri(uri, row["log_file"])
    if not inside_roots(path, roots):
        return None, InputError(row["input_id"], "outside_roots", f"{path} is outside [inputs] roots; not read")
    return path, None


def analyse_window(
    config: JobConfig, window: Window, context: Context, clock: StageClock, kinds: set[str] | None = None
) -> WindowAnalysis:
    """`kinds` limits the work to some input kinds (`drift fingerprint` opens only payloads)."""
    with clock.stage("sample") as counter:
        con = connect()
        try:
            open_log(con, config.inputs.log)
            sample = sample_window(con, window, config.sampling.max_per_segment, config.sampling.seed)
        finally:
            con.close()
        counter["items"] = sample.rows.height

    population = {(r["kind"], r["source"]): r["n_population"] for r in sample.population.iter_rows(named=True)}
    if kinds is not None:
        sample = replace(
            sample,
            rows=sample.rows.filter(pl.col("kind").is_in(sorted(kinds))),
            population=sample.population.filter(pl.col("kind").is_in(sorted(kinds))),
        )
    rows = sample.rows.to_dicts()
    segments: dict[Segment, SegmentData] = {}
    featurizers: dict[Segment, Any] = {}
    row_segment: dict[str, Segment] = {}
    outcomes: dict[str, str] = {}
    tasks: list[Task] = []
    limits: dict[str, dict[str, Any]] = {}

    with clock.stage("open_and_featurize") as counter:
        for row in rows:
            segment = (row["kind"], row["source"])
            kind = KINDS[row["kind"]]
            if segment not in segments:
                segments[segment] = SegmentData(row["kind"], row["source"], population.get(segment, 0), 0, FeatureSet())
                featurizers[segment] = kind.featurizer(context, row["source"])
            if row["kind"] not in limits:
                limits[row["kind"]] = kind.limits(context)
            segments[segment].n_sampled += 1
            row_segment[row["input_id"]] = segment
            target, refused = _target(row, config.inputs.roots)
            if refused is not None:
                segments[segment].errors.append(refused)
                outcomes[row["input_id"]] = "error"
                continue
            tasks.append(Task(row["input_id"], kind.open_input, target, limits[row["kind"]], kind.timeout(context), getattr(kind, "open_batch", None)))

        with context.progress.bar("opening and embedding inputs", total=len(rows)) as advance:
            advance(len(rows) - len(tasks))
            for input_id, opened in open_all(
                tasks,
                workers=config.limits.workers,
                memory_mb=config.limits.memory_mb,
                tasks_per_worker=config.limits.tasks_per_worker,
            ):
                segment = row_segment[input_id]
                if isinstance(opened, InputError):
                    segments[segment].errors.append(opened)
                    outcomes[input_id] = "error"
                else:
                    featurizers[segment].add(input_id, opened)
                    outcomes[input_id] = "ok"
                advance(1)
        received = received_seconds(sample.rows)
        paths = item_paths(sample.rows)
        for segment, featurizer in featurizers.items():
            features = featurizer.finish()
            # when each item arrived: payload checks compare times in the data with it
            features.tables["received"] = received.filter(pl.col("input_id").is_in(features.ids))
            # where each file is: the report's thumbnails (a baseline keeps its own, for typical items)
            if paths.height:
                features.tables["paths"] = paths.filter(pl.col("input_id").is_in(features.ids))
            segments[segment].features = features
        counter["items"] = len(rows)
    return WindowAnalysis(window, sample, segments, outcomes)


def report_internal_errors(analysis: WindowAnalysis) -> int:
    """drift's own failures on inputs go to stderr with their tracebacks: they are bugs, not data."""
    count = 0
    for data in analysis.segments.values():
        for error in data.internal_errors:
            count += 1
            log.error("drift failed on input %s (%s/%s), a bug in drift: %s\n%s",
                      error.input_id, data.kind, data.source, error.message, error.traceback or "")
    return count
