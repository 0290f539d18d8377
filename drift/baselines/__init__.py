"""Baselines: the features of a reference window, stored as Parquet beside a manifest.

Layout of `<baseline dir>/<job>/<name>/`:

    manifest.json                      window, counts, code version, encoder identities, file sha256s
    <kind>.descriptors.parquet         source, input_id, one column per descriptor
    <kind>.<name>.embeddings.parquet   source, input_id, vector (fixed-size float32 array)
    <kind>.<table>.parquet             source + the kind's long tables (payload tags, values, ...)
    <kind>.received.parquet            source, input_id, received_at (epoch seconds): the baseline's
                                       days, for day-to-day variation and times in payloads
                                       (a baseline built before it had none: those checks then
                                       fall back to the family thresholds and value rules)
    errors.parquet                     kind, source, input_id, category, message

The manifest pins every encoder (by name): a run whose encoder differs is refused, because
distances between vectors from two different encoders mean nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

from .. import versions
from ..clock import StageClock
from ..config import JobConfig
from ..errors import BaselineError
from ..features.embed.arrow import to_arrow, to_matrix
from ..features.embed.identity import difference, file_sha256, same_encoder
from ..features.featurize import Context, SegmentData, calibration_crops
from ..features.kinds import FeatureSet
from ..features.window import WindowAnalysis, analyse_window, code_version, report_internal_errors
from ..locations import is_remote
from ..sources import sample_log
from ..sources.log import Window
from ..sources.objects import pull_folder, push_folder


class BaselineSegment(BaseModel):
    """One segment of a baseline, as its manifest records it."""

    model_config = ConfigDict(extra="ignore")

    kind: str
    source: str
    n_population: int
    n_sampled: int  # the inputs judged: error rates are shares of it, our own failures left out
    n_items: int
    n_errors: int
    errors: dict[str, int]


MANIFEST = "manifest.json"
CALIBRATION = "calibration.npy"  # static int8's crops ([image] backend = "onnxruntime", quantize = "int8")
FORMAT_VERSION = 2  # 2: the embedder is recorded per encoder ({"clip": ..., "text": ...})


def _by_kind(analysis: WindowAnalysis) -> dict[str, list[SegmentData]]:
    grouped: dict[str, list[SegmentData]] = {}
    for data in analysis.segments.values():
        grouped.setdefault(data.kind, []).append(data)
    return grouped


def _write_embeddings(path: Path, parts: list[SegmentData], name: str) -> None:
    sources, ids, matrices = [], [], []
    for data in parts:
        matrix = data.features.embeddings.get(name)
        if matrix is None:
            continue
        sources += [data.source] * len(data.features.ids)
        ids += data.features.ids
        matrices.append(matrix)
    matrix = np.concatenate(matrices) if matrices else np.zeros((0, 1), np.float32)
    table = pa.table(
        {"source": pa.array(sources, pa.string()), "input_id": pa.array(ids, pa.string()), "vector": to_arrow(matrix)}
    )
    pq.write_table(table, path)


def save(
    analysis: WindowAnalysis,
    directory: Path,
    *,
    job: str,
    name: str,
    embedder: dict | None,
    config: JobConfig,
    calibration: np.ndarray | None = None,
) -> dict:
    """Write the baseline into a new version beside the current one and publish it in one rename
    (versions.py): runs and readers see the old baseline, whole, until the swap."""
    staging = versions.new_version(directory)
    try:
        if calibration is not None:
            np.save(staging / CALIBRATION, calibration, allow_pickle=False)
        manifest = _write(analysis, staging, job=job, name=name, embedder=embedder, config=config)
    except BaseException:
        versions.discard(staging)
        raise
    versions.publish(staging, directory)
    return manifest


def _write(analysis: WindowAnalysis, staging: Path, *, job: str, name: str, embedder: dict | None, config: JobConfig) -> dict:
    for kind, parts in _by_kind(analysis).items():
        frames = [d.features.descriptors.with_columns(pl.lit(d.source).alias("source")) for d in parts if d.features.n]
        if frames:
            pl.concat(frames, how="diagonal_relaxed").write_parquet(staging / f"{kind}.descriptors.parquet")
        for emb in sorted({e for d in parts for e in d.features.embeddings}):
            _write_embeddings(staging / f"{kind}.{emb}.embeddings.parquet", parts, emb)
        for table in sorted({t for d in parts for t in d.features.tables}):
            frames = [
                d.features.tables[table].with_columns(pl.lit(d.source).alias("source"))
                for d in parts
                if table in d.features.tables
            ]
            pl.concat(frames, how="diagonal_relaxed").write_parquet(staging / f"{kind}.{table}.parquet")
    errors = [
        {"kind": d.kind, "source": d.source, "input_id": e.input_id, "category": e.category, "message": e.message}
        for d in analysis.segments.values()
        for e in d.errors
    ]
    pl.DataFrame(errors, schema={k: pl.Utf8 for k in ("kind", "source", "input_id", "category", "message")}).write_parquet(
        staging / "errors.parquet"
    )
    manifest = {
        "format_version": FORMAT_VERSION,
        "job": job,
        "name": name,
        "window": analysis.window.as_dict(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "embedder": embedder,
        "sampling": {"max_per_segment": config.baseline_sample, "seed": config.sampling.seed},
        "segments": [
            BaselineSegment(
                kind=d.kind,
                source=d.source,
                n_population=d.n_population,
                n_sampled=d.n_judged,
                n_items=d.features.n,
                n_errors=d.n_input_errors,
                errors=d.error_counts(),
            ).model_dump()
            for d in sorted(analysis.segments.values(), key=lambda d: (d.kind, d.source))
        ],
        "files": {p.name: file_sha256(p) for p in sorted([*staging.glob("*.parquet"), *staging.glob(CALIBRATION)])},
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def build(config: JobConfig, start: datetime, end: datetime, context: Context, clock: StageClock) -> dict:
    """`drift baseline build`. Holds the store's writer lock, so no run of the job reads the
    baseline while it is replaced, and no two builds write it at once."""
    from ..store import writer_lock

    if end <= start:
        raise BaselineError(f"baseline window is empty: --end {end.date()} is not after --start {start.date()}")
    with writer_lock(config.store.database):
        if config.image.backend == "onnxruntime" and config.image.quantize == "int8":
            # static int8's scales come from the baseline's own items, before any of them is embedded
            with clock.stage("calibrate"):
                sample = sample_log(config, Window(start, end), config.baseline_sample)
                context.calibration = calibration_crops(sample.rows.to_dicts(), context)
        analysis = analyse_window(config, Window(start, end), context, clock, max_per_segment=config.baseline_sample)
        internal = report_internal_errors(analysis)
        if not analysis.segments:
            raise BaselineError(
                f"no valid inputs in {start.date()} .. {end.date()} (end exclusive) in {config.inputs.log}; "
                "check the window and the log's received_at column"
            )
        with clock.stage("save_baseline"):
            embedder = context.embedder_identity({k for k, _ in analysis.segments})
            manifest = save(
                analysis,
                config.baseline_dir,
                job=config.name,
                name=config.baseline.name,
                embedder=embedder,
                config=config,
                calibration=context.calibration,
            )
            if is_remote(config.baseline.dir):
                _remote(
                    config,
                    lambda store: push_folder(
                        store, config.baseline_dir.resolve(), config.baseline_uri, MANIFEST, sorted(manifest["files"])
                    ),
                )
        return {**manifest, "internal_errors": internal, "warnings": power_warnings(manifest["segments"], config)}


NOTICE = 0.10  # a baseline too small to notice a wave of this share of broken items is warned about


def power_warnings(segments: list[dict], config: JobConfig) -> list[str]:
    """One line per segment whose baseline is too small for a wave of NOTICE broken items tonight to
    page with probability 0.9 at the job's width (drift.verdict.policy.never_seen_share), with
    [sampling] max_per_segment items a night."""
    from ..verdict.policy import never_seen_share, planned_level

    level = planned_level(config.policy, len(segments))
    lines = []
    for segment in segments:
        share = never_seen_share(segment["n_sampled"], config.sampling.max_per_segment, level, config.policy)
        if share is None or share > NOTICE:
            notice = "could not notice even a wave of only broken items" if share is None else f"would notice {share:.0%}"
            lines.append(
                f"{segment['kind']}/{segment['source']}: {segment['n_sampled']} baseline items; tonight's "
                f"{config.sampling.max_per_segment} {notice} of never-seen broken items, not {NOTICE:.0%}: "
                "widen the window or raise [baseline] max_per_segment"
            )
    return lines


def open_baseline(config: JobConfig) -> Baseline:
    """The job's baseline, verified; one that lives under s3:// is copied here first."""
    if not is_remote(config.baseline.dir):
        return Baseline(config.baseline_dir)
    local = config.baseline_dir.with_name(config.baseline_dir.name + ".pulled")

    def listed(manifest_path: Path) -> list[str]:
        try:
            return sorted(json.loads(manifest_path.read_text())["files"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BaselineError(f"baseline manifest {config.baseline_uri}/{MANIFEST} is unreadable: {exc}") from None

    _remote(config, lambda store: pull_folder(store, config.baseline_uri, local, MANIFEST, listed))
    return Baseline(local)


def _remote(config: JobConfig, action) -> None:
    """Do something with the baseline's prefix; the store's failures become one clear BaselineError."""
    from ..sources.objects import classify_error, object_store

    try:
        action(object_store(config.inputs.s3))
    except BaselineError:
        raise
    except Exception as exc:  # noqa: BLE001 - the store's own errors are classified; anything else is ours
        classified = classify_error(exc)
        if classified is None:
            raise
        category, message = classified
        if category == "missing":
            raise BaselineError(
                f"no baseline at {config.baseline_uri}; build it first: drift baseline build JOB --start YYYY-MM-DD --end YYYY-MM-DD"
            ) from None
        raise BaselineError(f"baseline {config.baseline_uri}: {category}: {message}") from None


class Baseline:
    """A loaded, verified baseline."""

    def __init__(self, directory: Path):
        # The version the link points at now: a build that publishes a new one meanwhile
        # (versions.py) does not change what this run reads.
        self.path = directory  # the name users know (a link to the current version)
        self.directory = directory = directory.resolve()
        # each of the kind's files read once and split by source, each segment's part handed out
        # once: a job of many segments reads its baseline in time proportional to it, not squared
        self._unread: dict[Path, dict[str, pl.DataFrame]] = {}
        self._columns: dict[Path, pl.DataFrame] = {}
        self._handed: dict[Path, set[str]] = {}
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            raise BaselineError(
                f"no baseline at {directory}; build it first: drift baseline build JOB --start YYYY-MM-DD --end YYYY-MM-DD"
            )
        try:
            self.manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BaselineError(f"baseline manifest {manifest_path} is unreadable: {exc}") from None
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise BaselineError(f"baseline {directory} has format {self.manifest.get('format_version')}; rebuild it")
        for file, expected in self.manifest["files"].items():
            path = directory / file
            if not path.exists() or file_sha256(path) != expected:
                raise BaselineError(f"baseline file {path} is missing or changed since the baseline was built; rebuild it")
        self.segments = {(s["kind"], s["source"]): BaselineSegment.model_validate(s) for s in self.manifest["segments"]}

    @property
    def name(self) -> str:
        return self.manifest["name"]

    def calibration(self) -> np.ndarray | None:
        """The crops static int8 was calibrated on, when this baseline was built with it."""
        if CALIBRATION not in self.manifest["files"]:
            return None
        return np.load(self.directory / CALIBRATION, allow_pickle=False)

    @property
    def embedder(self) -> dict | None:
        return self.manifest.get("embedder")

    def check_embedder(self, context: Context) -> None:
        """Refuse a run whose encoders would make vectors that cannot be compared with the baseline's."""
        recorded = self.embedder or {}
        kinds = {kind for kind, _ in self.segments}
        for name in sorted(context.encoders_for(kinds) & set(recorded)):
            old, new = recorded[name], context.encoder_identity(name)
            if not same_encoder(old, new):
                label, section = ("image", "[image]") if name == "clip" else ("text", "[document] text_model")
                what = difference(old, new)
                if what.startswith(("device", "precision")):
                    # fp32 vectors of a CPU and a GPU differ in their last digits (docs/operations.md#gpus)
                    section = "[image] device and precision" if name == "clip" else "[document] text_device"
                raise BaselineError(
                    f"the {label} encoder differs from baseline {self.name!r}'s: baseline {old['model']} "
                    f"({old['source']}, sha256 {old['weights_sha256'][:12]}), this run {new['model']} "
                    f"({new['source']}, sha256 {new['weights_sha256'][:12]}); it differs in: {what}; rebuild the "
                    f"baseline with this encoder, or set {section} back to the baseline's"
                )

    def _part(self, path: Path, source: str) -> pl.DataFrame:
        """A source's rows of one of the baseline's files, without its source column."""
        if path not in self._unread:
            frame = pl.read_parquet(path)
            self._unread[path] = {key[0]: part.drop("source") for key, part in frame.partition_by("source", as_dict=True).items()}
            self._columns[path] = frame.clear().drop("source")
            self._handed[path] = set()
        part = self._unread[path].pop(source, None)
        if part is not None:
            self._handed[path].add(source)
            return part
        if source in self._handed[path]:  # asked for again: read from the file once more
            return pl.read_parquet(path).filter(pl.col("source") == source).drop("source")
        return self._columns[path]  # the file has no rows of this source

    def features(self, kind: str, source: str) -> FeatureSet:
        def read(path: Path) -> pl.DataFrame | None:
            if not path.exists():
                return None
            return self._part(path, source)

        descriptors = read(self.directory / f"{kind}.descriptors.parquet")
        if descriptors is None:
            descriptors = pl.DataFrame({"input_id": pl.Series([], dtype=pl.Utf8)})
        # Columns that are all null in this segment came from other segments of the kind.
        descriptors = descriptors.select(
            [c for c in descriptors.columns if descriptors[c].null_count() < descriptors.height or c == "input_id"]
        )
        features = FeatureSet(ids=descriptors["input_id"].to_list(), descriptors=descriptors)
        for path in sorted(self.directory.glob(f"{kind}.*.embeddings.parquet")):
            name = path.name[len(kind) + 1 : -len(".embeddings.parquet")]
            table = self._part(path, source).to_arrow()
            matrix = to_matrix(table["vector"])
            order = {input_id: row for row, input_id in enumerate(table["input_id"].to_pylist())}
            features.embeddings[name] = matrix[[order[i] for i in features.ids]]
        for path in sorted(self.directory.glob(f"{kind}.*.parquet")):
            table = path.name[len(kind) + 1 : -len(".parquet")]
            if table in ("descriptors",) or table.endswith(".embeddings"):
                continue
            features.tables[table] = read(path)
        return features
