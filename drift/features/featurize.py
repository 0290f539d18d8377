"""Open sampled inputs and turn them into features, per segment: the stage both engines share.

    sampled rows -> targets (files under roots, objects under bucket prefixes, inline bodies)
                 -> safe open in isolated workers -> each kind's featurizer -> FeatureSet per segment

`featurize` is what the local engine runs on the whole sample and what each Ray actor runs on its
share (drift.features.engines.ray_engine). Every row ends as features or as an InputError.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import JobConfig
from ..locations import is_local_url, scheme_of
from ..progress import Progress
from ..sources.log import inside_roots, resolve_uri
from ..sources.objects import ObjectRef, inside_prefixes, object_uri
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
        # crops of the baseline's own items, which static int8 on ONNX Runtime calibrates on
        self.calibration = None

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
        return {"clip": self.image_encoder, "text": self.text_encoder}[name]()

    def encoders_for(self, kinds: set[str]) -> set[str]:
        return {encoder for k in kinds for encoder in KINDS[k].embeddings(self.config).values()}

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
    """Open the sampled rows in isolated workers and turn them into features, per segment.

    Every row ends as features or as a classified error. The same code runs on this machine
    (engine "local") and inside each Ray actor on its share of the rows (engine "ray").
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
            featurizers[segment] = kind.featurizer(context, row["source"])
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
    for segment, featurizer in featurizers.items():
        segments[segment].features = featurizer.finish()
    return segments, outcomes


CALIBRATION_ITEMS = 64


def calibration_crops(rows: list[dict[str, Any]], context: Context) -> Any:
    """The crops static int8 calibrates on: a seeded sample of up to CALIBRATION_ITEMS of the
    window's images (and documents' first pages), opened as a run opens them. (n, size, size, 3) uint8."""
    import numpy as np

    from ..errors import EmbedderError

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
