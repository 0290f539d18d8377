"""Open sampled inputs and turn them into features, per segment: the stage both engines share.

    sampled rows -> targets (files under roots, objects under bucket prefixes, inline bodies)
                 -> safe open in isolated workers -> each kind's featurizer -> FeatureSet per segment

`featurize` is what the local engine runs on the whole sample and what each Ray actor runs on its
share (drift.features.engines.ray_engine). Every row ends as features or as an InputError.

Through the feature cache (drift.features.cache), only what it has not seen is opened: each row's
bytes are hashed, the cache's entries for those hashes are read, byte-identical copies in the
window are opened once, and every item, read or made, is assembled into the segment's FeatureSet
the same way, in the order of the sample.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import JobConfig
from ..errors import EmbedderError
from ..locations import is_local_url, scheme_of
from ..progress import Progress
from ..sources.log import inside_roots, resolve_uri
from ..sources.objects import ObjectRef, inside_prefixes, object_uri
from .embed.identity import difference, same_encoder
from .isolation import Task, open_all
from .kinds import KINDS, FeatureSet, InputError

Segment = tuple[str, str]  # (kind, source)


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
        self._cache: Any = None
        self._relied_on: dict[str, dict[str, Any]] = {}  # encoder -> the remembered identity this run used
        # crops of the baseline's own items, which static int8 on ONNX Runtime calibrates on
        self.calibration = None

    def feature_cache(self):
        """The job's feature cache, or None: [cache] enabled = false, or the parsed documents are
        wanted (`drift fingerprint`'s union schema), which the cache does not keep."""
        if self.keep_documents:
            return None
        if self._cache is None:
            from .cache import FeatureCache

            self._cache = FeatureCache.of(self.config) or False
        return self._cache or None

    def spool_path(self, kind: str, source: str, embedding: str) -> Path:
        return self.spool_dir / f"{kind}.{file_label(source)}.{embedding}.parquet"

    def image_encoder(self):
        if self._image_encoder is None:
            from .embed.clip import ImageEncoder

            section = self.config.image
            with self.progress.status(f"loading image encoder {section.model} ({section.pretrained})"):
                self._image_encoder = ImageEncoder(
                    section.model,
                    section.pretrained,
                    section.seed,
                    section.threads,
                    section.architecture,
                    section.quantize,
                    section.backend,
                    self.calibration,
                    device=section.device,
                    precision=section.precision,
                )
        return self._image_encoder

    def crop_size(self) -> int:
        """The image encoder's input size: from the loaded encoder, or else from open_clip's
        configuration of the model, so that items can be opened before the encoder exists (the
        calibration of static int8 needs crops before it can make the encoder)."""
        if self._image_encoder is not None:
            return self._image_encoder.image_size
        remembered = self._remembered_identity("clip")
        if remembered is not None:
            return int(remembered["preprocess"]["size"])
        import open_clip

        section = self.config.image
        if section.architecture is not None:
            open_clip.add_model_config(str(section.architecture))
        size = ((open_clip.get_model_config(section.model) or {}).get("vision_cfg") or {}).get("image_size")
        if size is None:
            return self.image_encoder().image_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    def text_encoder(self):
        if self._text_encoder is None:
            from .embed.text import TextEncoder

            section = self.config.document
            with self.progress.status(f"loading text encoder {section.text_model}"):
                self._text_encoder = TextEncoder(
                    section.text_model, section.text_chars, self.config.image.threads, device=section.text_device
                )
        return self._text_encoder

    def encoder(self, name: str):
        encoder = {"clip": self.image_encoder, "text": self.text_encoder}[name]()
        relied_on = self._relied_on.pop(name, None)
        if relied_on is not None and not same_encoder(relied_on, encoder.identity()):
            # the run has compared and keyed by the remembered identity: vectors of another would be wrong
            raise EmbedderError(
                f"the {name} encoder loaded now differs from the identity the feature cache remembers for its "
                f"configuration ({difference(relied_on, encoder.identity())}); clear it with `drift cache prune "
                f"{self.config.path} --all` and run again"
            )
        return encoder

    def encoders_for(self, kinds: set[str]) -> set[str]:
        return {encoder for k in kinds for encoder in KINDS[k].embeddings(self.config).values()}

    def embedder_identity(self, kinds: set[str]) -> dict[str, Any] | None:
        """The identity of every encoder these kinds use, by embedding name; None when they use none."""
        names = self.encoders_for(kinds)
        return {name: self.encoder_identity(name) for name in sorted(names)} or None

    def encoder_identity(self, name: str) -> dict[str, Any]:
        """An encoder's identity, without loading it when the feature cache remembers the identity
        of this very configuration: a run whose items are all in the cache never needs the encoder."""
        loaded = {"clip": self._image_encoder, "text": self._text_encoder}[name]
        if loaded is not None:
            return loaded.identity()
        remembered = self._remembered_identity(name)
        if remembered is not None:
            self._relied_on[name] = remembered
            return remembered
        identity = self.encoder(name).identity()
        cache = self.feature_cache()
        if cache is not None:
            from .cache import encoder_recipe

            cache.remember_encoder(encoder_recipe(self.config, name, self.calibration), identity)
        return identity

    def _remembered_identity(self, name: str) -> dict[str, Any] | None:
        cache = self.feature_cache()
        if cache is None:
            return None
        from .cache import encoder_recipe

        return cache.remembered_encoder(encoder_recipe(self.config, name, self.calibration))


@dataclass
class SegmentData:
    kind: str
    source: str
    n_population: int
    n_sampled: int
    features: FeatureSet
    errors: list[InputError] = field(default_factory=list)
    cache_hits: int = 0  # items read from the feature cache
    cache_copies: int = 0  # items whose bytes another item of the window had: opened once

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


def _target(row: dict[str, Any], roots: list[str], s3) -> tuple[Any, InputError | None]:
    if row["uri"] is None:
        return row["body"].encode("utf-8"), None
    uri = row["uri"]
    log_file = row["log_file"]
    target = object_uri(uri, log_file)
    if target is not None:
        if not inside_prefixes(target, roots):
            return None, InputError(row["input_id"], "outside_roots", f"{target} is outside [inputs] roots; not read")
        return ObjectRef(target, s3), None
    scheme = scheme_of(uri)
    if scheme is not None and not is_local_url(uri):
        return None, InputError(row["input_id"], "unsupported", f"uri scheme {scheme}:// is not readable; use s3:// or a path")
    path = resolve_uri(uri, log_file)
    if not inside_roots(path, roots):
        return None, InputError(row["input_id"], "outside_roots", f"{path} is outside [inputs] roots; not read")
    return path, None


def featurize(
    rows: list[dict[str, Any]], context: Context, advance=lambda n=1: None
) -> tuple[dict[Segment, SegmentData], dict[str, str]]:
    """Turn the sampled rows into features, per segment, through the feature cache when the job has one.

    Every row ends as features or as a classified error. The same code runs on this machine
    (engine "local") and inside each Ray actor on its share of the rows (engine "ray").
    """
    cache = context.feature_cache()
    if cache is None:
        return _open_and_featurize(rows, context, advance)
    return _through_cache(cache, rows, context, advance)


def _open_and_featurize(
    rows: list[dict[str, Any]], context: Context, advance=lambda n=1: None, checkpoint=None, every: int = 0
) -> tuple[dict[Segment, SegmentData], dict[str, str]]:
    """Open the rows in isolated workers and turn them into features, per segment.

    With a `checkpoint`, the features made so far are finished and handed to it every `every`
    opened inputs (with the errors since the last one), so that a run killed halfway keeps what it
    made (the feature cache writes them); the segments returned then carry counts and errors only,
    their features having gone to the checkpoints.
    """
    config = context.config
    segments: dict[Segment, SegmentData] = {}
    featurizers: dict[Segment, Any] = {}
    row_segment: dict[str, Segment] = {}
    outcomes: dict[str, str] = {}
    tasks: list[Task] = []
    limits: dict[str, dict[str, Any]] = {}
    for row in rows:
        segment = (row["kind"], row["source"])
        kind = KINDS[row["kind"]]
        if segment not in segments:
            segments[segment] = SegmentData(row["kind"], row["source"], 0, 0, FeatureSet())
        if row["kind"] not in limits:
            limits[row["kind"]] = kind.limits(context)
        segments[segment].n_sampled += 1
        row_segment[row["input_id"]] = segment
        target, refused = _target(row, config.inputs.roots, config.inputs.s3)
        if refused is not None:
            segments[segment].errors.append(refused)
            outcomes[row["input_id"]] = "error"
            continue
        tasks.append(
            Task(
                row["input_id"],
                kind.open_input,
                target,
                limits[row["kind"]],
                kind.timeout(context),
                getattr(kind, "open_batch", None),
            )
        )

    advance(len(rows) - len(tasks))
    pieces: dict[Segment, list[FeatureSet]] = {segment: [] for segment in segments}
    fresh: set[Segment] = set()  # segments with items since the last checkpoint
    errors: list[InputError] = []  # errors since the last checkpoint

    def finish_pieces() -> None:
        done = {}
        for segment in sorted(fresh):
            done[segment] = featurizers.pop(segment).finish()
            pieces[segment].append(done[segment])
        if checkpoint is not None:
            checkpoint(done, list(errors))
        fresh.clear()
        errors.clear()

    since = 0
    for input_id, opened in open_all(
        tasks,
        workers=config.limits.workers,
        memory_mb=config.limits.memory_mb,
        tasks_per_worker=config.limits.tasks_per_worker,
    ):
        segment = row_segment[input_id]
        if isinstance(opened, InputError):
            segments[segment].errors.append(opened)
            errors.append(opened)
            outcomes[input_id] = "error"
        else:
            # made at the first item, not before: a segment whose inputs all fail needs no encoder
            if segment not in featurizers:
                featurizers[segment] = KINDS[segment[0]].featurizer(context, segment[1])
            featurizers[segment].add(input_id, opened)
            fresh.add(segment)
            outcomes[input_id] = "ok"
        advance(1)
        since += 1
        if checkpoint is not None and since >= every:
            finish_pieces()
            since = 0
    finish_pieces()
    if checkpoint is not None:  # the checkpoints had the pieces; the cache assembles the segments from its entries
        return segments, outcomes
    for segment, parts in pieces.items():
        # without checkpoints a segment is one piece, or none when every input failed
        segments[segment].features = parts[0] if parts else _no_items(context, segment)
    return segments, outcomes


CHECKPOINT_ITEMS = 128  # a run killed halfway loses at most this many inputs' work (and smaller pieces embed in smaller batches)


def _through_cache(
    cache, rows: list[dict[str, Any]], context: Context, advance
) -> tuple[dict[Segment, SegmentData], dict[str, str]]:
    from .cache import UNCACHED, Entry, content_keys, identity

    config = context.config
    refused: dict[str, InputError] = {}
    targets: dict[str, tuple[Any, int]] = {}
    max_bytes = {kind: KINDS[kind].limits(context)["max_bytes"] for kind in {row["kind"] for row in rows}}
    for row in rows:
        target, problem = _target(row, config.inputs.roots, config.inputs.s3)
        if problem is not None:
            refused[row["input_id"]] = problem
        else:
            targets[row["input_id"]] = (target, max_bytes[row["kind"]])
    keys = content_keys(targets)
    kinds = sorted({row["kind"] for row in rows if keys.get(row["input_id"])})
    identities = {kind: identity(kind, context) for kind in kinds}
    found = {
        kind: cache.lookup(identities[kind], [keys[r["input_id"]] for r in rows if r["kind"] == kind and keys.get(r["input_id"])])
        for kind in kinds
    }

    leader: dict[tuple[str, str], str] = {}  # (kind, content key) -> the input_id opened for it
    copy_of: dict[str, str] = {}  # input_id -> the input_id whose identical bytes were opened
    to_open = []
    for row in rows:
        input_id, key = row["input_id"], keys.get(row["input_id"])
        if input_id in refused or (key is not None and key in found[row["kind"]]):
            continue
        if key is not None and (row["kind"], key) in leader:
            copy_of[input_id] = leader[(row["kind"], key)]
            continue
        if key is not None:
            leader[(row["kind"], key)] = input_id
        to_open.append(row)
    advance(len(rows) - len(to_open))
    made: dict[str, Entry] = {}
    failed: dict[str, InputError] = {}
    key_of = {input_id: key for (_, key), input_id in leader.items()}
    kind_of = {row["input_id"]: row["kind"] for row in to_open}

    def checkpoint(pieces: dict[Segment, FeatureSet], errors: list[InputError]) -> None:
        """Write what was made since the last checkpoint: a run killed after it keeps it."""
        new = {}
        for features in pieces.values():
            new |= _entries_of(features)
        made.update(new)
        failed.update({error.input_id: error for error in errors})
        entries: dict[str, dict[str, Entry]] = {}
        for input_id, entry in new.items():
            if input_id in key_of:
                entries.setdefault(kind_of[input_id], {})[key_of[input_id]] = entry
        for error in errors:
            if error.input_id in key_of and error.category not in UNCACHED:
                entries.setdefault(kind_of[error.input_id], {})[key_of[error.input_id]] = Entry(
                    error=(error.category, error.message)
                )
        for kind, fresh in entries.items():
            cache.write(identities[kind], fresh)

    _open_and_featurize(to_open, context, advance, checkpoint, CHECKPOINT_ITEMS)
    cache.flush()

    segments: dict[Segment, SegmentData] = {}
    items: dict[Segment, list[tuple[str, Entry]]] = {}
    late_errors: dict[Segment, list[InputError]] = {}
    outcomes: dict[str, str] = {}
    for row in rows:
        segment = (row["kind"], row["source"])
        if segment not in segments:
            segments[segment] = SegmentData(row["kind"], row["source"], 0, 0, FeatureSet())
            items[segment], late_errors[segment] = [], []
        data = segments[segment]
        data.n_sampled += 1
        input_id, key = row["input_id"], keys.get(row["input_id"])
        if input_id in refused:  # as when opened: refusals first, then the rest in the sample's order
            data.errors.append(refused[input_id])
            outcomes[input_id] = "error"
            continue
        origin = copy_of.get(input_id, input_id)
        data.cache_copies += input_id in copy_of
        if key is not None and key in found[row["kind"]]:
            entry = found[row["kind"]][key]
            data.cache_hits += 1
        elif origin in made:
            entry = made[origin]
        else:  # it failed to open, or its copy did: the same failure, under its own id
            error = failed[origin]
            late_errors[segment].append(error if origin == input_id else replace(error, input_id=input_id))
            outcomes[input_id] = "error"
            continue
        if entry.error is not None:
            late_errors[segment].append(InputError(input_id, *entry.error))
            outcomes[input_id] = "error"
        else:
            items[segment].append((input_id, entry))
            outcomes[input_id] = "ok"
    for segment, data in segments.items():
        data.errors += late_errors[segment]
        data.features = _assembled(items[segment], context, segment) if items[segment] else _no_items(context, segment)
        _spool(data.features, context, segment)
    return segments, outcomes


def _entries_of(features: FeatureSet) -> dict[str, Any]:
    """Each item's features, apart from its input_id: what the cache keeps and copies share."""
    from .cache import Entry

    row_of = {input_id: r for r, input_id in enumerate(features.ids)}
    entries = {
        row["input_id"]: Entry(descriptors={k: v for k, v in row.items() if k != "input_id"})
        for row in features.descriptors.iter_rows(named=True)
    }
    for name, matrix in features.embeddings.items():
        for input_id, entry in entries.items():
            entry.vectors[name] = matrix[row_of[input_id]]
    for name, table in features.tables.items():
        rows = {k[0]: v.drop("input_id") for k, v in table.partition_by("input_id", as_dict=True).items()} if table.height else {}
        empty = table.drop("input_id").clear()
        for input_id, entry in entries.items():
            entry.tables[name] = rows.get(input_id, empty)
    return entries


def _assembled(items: list[tuple[str, Any]], context: Context, segment: Segment) -> FeatureSet:
    """One segment's FeatureSet from its items' entries, in the order of the sample."""
    import numpy as np
    import polars as pl

    ids = [input_id for input_id, _ in items]
    descriptors = pl.DataFrame(
        [{"input_id": input_id, **entry.descriptors} for input_id, entry in items], infer_schema_length=None
    )
    embeddings = {}
    for name in sorted({name for _, entry in items for name in entry.vectors}):
        dim = next(len(entry.vectors[name]) for _, entry in items if name in entry.vectors)
        absent = np.full(dim, np.nan, dtype=np.float32)
        embeddings[name] = np.stack([np.asarray(entry.vectors.get(name, absent), dtype=np.float32) for _, entry in items])
    tables = {}
    for name in sorted({name for _, entry in items for name in entry.tables}):
        pieces = [
            entry.tables[name].with_columns(pl.lit(input_id, dtype=pl.Utf8).alias("input_id"))
            for input_id, entry in items
            if name in entry.tables
        ]
        table = pl.concat(pieces, how="vertical_relaxed")
        tables[name] = table.select("input_id", *[c for c in table.columns if c != "input_id"])
    return FeatureSet(ids=ids, descriptors=descriptors, embeddings=embeddings, tables=tables)


def _no_items(context: Context, segment: Segment) -> FeatureSet:
    """A segment whose every input failed: the empty FeatureSet its kind makes."""
    return KINDS[segment[0]].featurizer(context, segment[1]).finish()


def _spool(features: FeatureSet, context: Context, segment: Segment) -> None:
    """The segment's vectors where its featurizer would have streamed them (kept beside the report)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .embed.arrow import to_arrow

    for name, matrix in features.embeddings.items():
        present = ~np.isnan(matrix).any(axis=1) if matrix.size else np.zeros(len(matrix), dtype=bool)
        path = context.spool_path(segment[0], segment[1], name)
        if not present.any():
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = [input_id for input_id, keep in zip(features.ids, present) if keep]
        pq.write_table(pa.table({"input_id": pa.array(ids, pa.string()), "vector": to_arrow(matrix[present])}), path)


CALIBRATION_ITEMS = 64


def calibration_crops(rows: list[dict[str, Any]], context: Context) -> Any:
    """The crops static int8 calibrates on: a seeded sample of up to CALIBRATION_ITEMS of the
    window's images (and documents' first pages), opened as a run opens them. (n, size, size, 3) uint8."""
    import numpy as np

    config = context.config
    seed = config.sampling.seed
    wanted = {"image"} | ({"document"} if config.document.page_embedding else set())
    rows = sorted(
        (r for r in rows if r["kind"] in wanted),
        key=lambda r: hashlib.md5(f"{seed}:calibration:{r['input_id']}".encode()).hexdigest(),
    )
    tasks = []
    for row in rows[: CALIBRATION_ITEMS * 2]:  # room for the ones that fail to open
        target, refused = _target(row, config.inputs.roots, config.inputs.s3)
        if refused is None:
            kind = KINDS[row["kind"]]
            tasks.append(Task(row["input_id"], kind.open_input, target, kind.limits(context), kind.timeout(context)))
    crops = []
    for _, opened in open_all(
        tasks, workers=config.limits.workers, memory_mb=config.limits.memory_mb, tasks_per_worker=config.limits.tasks_per_worker
    ):
        crop = None if isinstance(opened, InputError) else opened.get("pixels", opened.get("page"))
        if crop is not None and len(crops) < CALIBRATION_ITEMS:
            crops.append(crop)
    if not crops:
        raise EmbedderError(
            "[image] quantize = 'int8' on ONNX Runtime is calibrated on the baseline's images or "
            "document pages, and its window has none that open"
        )
    return np.stack(crops).astype(np.uint8)
