"""Small pictures of inputs for people (the investigation notebook, reports), made safely.

The inputs are untrusted: a decompression bomb or a hostile PDF must not run in an analyst's
kernel. Each picture is made in an isolated worker (drift.features.isolation: time and memory limits, the
job's size and pixel limits, the same decoders the job uses) and comes back as a small PNG,
re-encoded: the raw file never leaves the worker.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..features.isolation import Task, open_all
from ..features.kinds.base import InputError, InputProblem, read_limited

SIZE = 256


def default_limits(kind: str, config=None) -> dict[str, Any]:
    """The job file's limits ([image], [document]); their defaults for callers without a job file."""
    from ..config import DocumentSection, ImageSection

    if kind == "image":
        section = config.image if config is not None else ImageSection()
        return {"max_bytes": section.max_bytes, "max_pixels": section.max_pixels}
    section = config.document if config is not None else DocumentSection()
    return {"max_bytes": section.max_bytes, "max_pages": section.max_pages}


def image_thumbnail(target: Any, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: an image's first frame, decoded as the job decodes it, as a PNG of at most SIZE px."""
    from ..features.kinds.image import decode_image

    data = target if isinstance(target, bytes) else read_limited(target, limits["max_bytes"])
    if not data:
        raise InputProblem("empty", "the file is empty")
    rgb, _ = decode_image(data, limits)
    return {"png": _encode(rgb, limits)}


def document_thumbnail(target: Any, limits: dict[str, Any]) -> dict[str, Any]:
    """Worker side: a PDF's first page rendered at most SIZE px high, as a PNG."""
    import pypdfium2 as pdfium
    from PIL import Image

    from ..features.kinds.document import render_first_page

    data = target if isinstance(target, bytes) else read_limited(target, limits["max_bytes"])
    if b"%PDF-" not in data[:1024]:
        raise InputProblem("not_pdf", "no %PDF- header in the first 1024 bytes")
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise InputProblem("corrupt", str(exc)[:300]) from None
    try:
        if len(pdf) == 0:
            raise InputProblem("corrupt", "the document has no pages")
        size = limits.get("size", SIZE)
        pixels = render_first_page(pdf[0], size)  # as the page embedding sees it, letterboxed on white
        if pixels is None:
            raise InputProblem("corrupt", "the first page has no area")
        image = Image.fromarray(pixels)
    except pdfium.PdfiumError as exc:
        raise InputProblem("corrupt", str(exc)[:300]) from None
    finally:
        pdf.close()
    return {"png": _encode(image, limits)}


def _encode(image, limits: dict[str, Any]) -> bytes:
    """Downscaled to the size asked and re-encoded: PNG, or JPEG where bytes count (reports)."""
    size = limits.get("size", SIZE)
    image = image.convert("RGB") if image.mode not in ("RGB", "L") else image.copy()
    image.thumbnail((size, size))
    out = io.BytesIO()
    if limits.get("format") == "JPEG":
        image.save(out, format="JPEG", quality=80, optimize=True)
    else:
        image.save(out, format="PNG", optimize=True)
    return out.getvalue()


OPENERS = {"image": image_thumbnail, "document": document_thumbnail}


def thumbnails(
    kind: str,
    paths: dict[str, Path],
    limits: dict[str, Any] | None = None,
    *,
    size: int = SIZE,
    timeout: float = 15.0,
    workers: int = 2,
    memory_mb: int = 2048,
    fmt: str = "PNG",
) -> dict[str, bytes | InputError]:
    """input_id -> PNG (or JPEG) bytes, or the InputError that input ended as, for `paths` of one kind."""
    limits = {**default_limits(kind), **(limits or {}), "size": size, "format": fmt}
    tasks = [Task(input_id, OPENERS[kind], path, limits, timeout) for input_id, path in paths.items()]
    results: dict[str, bytes | InputError] = {}
    for input_id, opened in open_all(tasks, workers=workers, memory_mb=memory_mb, tasks_per_worker=200):
        results[input_id] = opened if isinstance(opened, InputError) else opened["png"]
    return results
