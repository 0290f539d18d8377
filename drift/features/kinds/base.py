"""The contract every input kind honours, so the pipeline never branches on the kind.

A kind has two halves:

* `open_input(target, limits) -> dict` runs in a worker process (see drift.features.isolation) on untrusted
  bytes. It returns what the parent needs (descriptors, small pixel arrays, parsed structure) or
  raises `InputProblem` with a category; anything else it raises is classified by the pool.
* `open_batch(targets, limits) -> list`, optional, opens many small inputs in one worker call:
  per target its opened dict or the exception it raised (drift.features.isolation batches such tasks).
* `Featurizer` runs in the parent: it receives the opened items one by one, as they arrive, and
  turns them into a `FeatureSet`. Streaming lets the image encoder work while workers decode.

Comparison is generic (drift.verdict.compare) over the FeatureSet's parts: numeric and categorical
descriptors, embeddings and, for a kind whose items are `structured` (JSON), the structure tables.
A kind declares what it makes; it never compares, so the features stage imports nothing of the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ..featureset import INTERNAL, FeatureSet, InputError, InputProblem

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "INTERNAL",
    "FeatureSet",
    "InputError",
    "InputProblem",
    "Kind",
    "Featurizer",
    "DescriptorFeaturizer",
    "input_bytes",
    "read_limited",
]


class Featurizer(Protocol):
    def add(self, input_id: str, opened: dict[str, Any]) -> None: ...

    def finish(self) -> FeatureSet: ...


class Kind(Protocol):
    name: ClassVar[str]
    # module-level function (picklable) executed in a worker process
    open_input: Callable[[Any, dict[str, Any]], dict[str, Any]]

    def limits(self, context) -> dict[str, Any]: ...

    def timeout(self, context) -> float: ...

    # the embeddings it makes -> the encoder of each ("clip", "text"): what it needs loaded
    def embeddings(self, config) -> dict[str, str]: ...

    def featurizer(self, context, source: str) -> Featurizer: ...

    # Its items are JSON documents, fingerprinted into structure tables (tags, values, keys,
    # shapes): the verdict compares them path by path beside the descriptors and embeddings.
    structured: ClassVar[bool]
    # The descriptors each item gets: name -> "number" (a yes/no one as 0/1) or "category".
    descriptors: ClassVar[dict[str, str]]
    # The long tables its FeatureSet holds: name -> columns, in order.
    tables: ClassVar[dict[str, tuple[str, ...]]]


class DescriptorFeaturizer:
    """Collects per-item descriptor dicts into a DataFrame; the base of every kind's featurizer."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def add(self, input_id: str, opened: dict[str, Any]) -> None:
        self.ids.append(input_id)
        self.rows.append({"input_id": input_id, **opened["descriptors"]})

    def descriptor_frame(self) -> pl.DataFrame:
        import polars as pl

        if not self.rows:
            return pl.DataFrame({"input_id": pl.Series([], dtype=pl.Utf8)})
        return pl.DataFrame(self.rows, infer_schema_length=None)

    def finish(self) -> FeatureSet:
        return FeatureSet(ids=list(self.ids), descriptors=self.descriptor_frame())


def input_bytes(target, max_bytes: int) -> bytes:
    """An input's bytes, inline or read from its file or object, refused over the kind's size limit
    either way (a file before it is read)."""
    if isinstance(target, bytes):
        if len(target) > max_bytes:
            raise InputProblem("too_large", f"{len(target)} bytes, over the limit of {max_bytes}")
        return target
    return read_limited(target, max_bytes)


def read_limited(path, max_bytes: int) -> bytes:
    """Read a file (or an object in a bucket), refusing it before reading when it is over the size limit."""
    import os

    if type(path).__name__ == "ObjectRef":  # imported only where a bucket is read
        from ...sources.objects import ObjectError, read_object

        try:
            return read_object(path, max_bytes)
        except ObjectError as exc:
            raise InputProblem(exc.category, exc.message) from None

    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise InputProblem("missing", f"file not found: {path}") from None
    except OSError as exc:
        raise InputProblem("unreadable", f"{type(exc).__name__}: {exc}") from None
    if size > max_bytes:
        raise InputProblem("too_large", f"{size} bytes, over the limit of {max_bytes}")
    try:
        with open(path, "rb") as handle:
            return handle.read(max_bytes + 1)
    except IsADirectoryError:
        raise InputProblem("unreadable", f"is a folder: {path}") from None
    except OSError as exc:
        raise InputProblem("unreadable", f"{type(exc).__name__}: {exc}") from None
