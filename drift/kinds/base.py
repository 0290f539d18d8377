"""The contract every input kind honours, so the pipeline never branches on the kind.

A kind has two halves:

* `open_input(target, limits) -> dict` runs in a worker process (see drift.isolation) on untrusted
  bytes. It returns what the parent needs (descriptors, small pixel arrays, parsed structure) or
  raises `InputProblem` with a category; anything else it raises is classified by the pool.
* `open_batch(targets, limits) -> list`, optional, opens many small inputs in one worker call:
  per target its opened dict or the exception it raised (drift.isolation batches such tasks).
* `Featurizer` runs in the parent: it receives the opened items one by one, as they arrive, and
  turns them into a `FeatureSet`. Streaming lets the image encoder work while workers decode.

Comparison is generic (drift.stats.compare) over the FeatureSet's parts: numeric and categorical
descriptors, embeddings and per-item structure tables. A kind adds checks of its own only through
`extra_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


class InputProblem(Exception):
    """A classified reason why one input could not become an item."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category
        self.message = message

    def __reduce__(self):  # keep the category when the exception crosses a process boundary
        return (InputProblem, (self.category, self.message))


INTERNAL = "internal"  # drift's own code failed on the input: a bug to report, not a property of the input


@dataclass
class InputError:
    input_id: str
    category: str
    message: str
    traceback: str | None = None  # for INTERNAL: where our code failed

    @property
    def internal(self) -> bool:
        return self.category == INTERNAL


def _no_descriptors() -> pl.DataFrame:
    # polars is imported where frames are made, not at the top: the workers import this module and
    # make none (it would cost each of them 0.2 s at start)
    import polars as pl

    return pl.DataFrame()


@dataclass
class FeatureSet:
    """Features of one segment's items, all aligned on `ids` (descriptors, embeddings) or keyed by input_id."""

    ids: list[str] = field(default_factory=list)
    descriptors: pl.DataFrame = field(default_factory=_no_descriptors)  # input_id + one column per descriptor
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (n, d) float32
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # kind-specific long tables
    # what is computed from these features alone, kept while they live (a baseline's day-to-day
    # variation, reused by every night that compares with it)
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    @classmethod
    def concat(cls, parts: list[FeatureSet], position: dict[str, int]) -> FeatureSet:
        """One segment's features from pieces featurized apart (Ray actors), in the order
        `position` gives each input_id: the order the same items would have had in one piece."""
        import numpy as np
        import polars as pl

        ids = sorted((i for part in parts for i in part.ids), key=position.__getitem__)
        rank = pl.DataFrame({"input_id": ids, "_rank": range(len(ids))}, schema={"input_id": pl.Utf8, "_rank": pl.Int64})
        frames = [part.descriptors for part in parts if part.descriptors.height]
        descriptors = (
            pl.concat(frames, how="diagonal_relaxed").join(rank, on="input_id").sort("_rank").drop("_rank")
            if frames else pl.DataFrame({"input_id": pl.Series([], dtype=pl.Utf8)})
        )
        embeddings = {}
        for name in sorted({name for part in parts for name in part.embeddings}):
            stacked = np.concatenate([part.embeddings[name] for part in parts if name in part.embeddings])
            order = [i for part in parts if name in part.embeddings for i in part.ids]
            row = {input_id: r for r, input_id in enumerate(order)}
            embeddings[name] = stacked[[row[i] for i in ids]]
        tables = {}
        for name in sorted({name for part in parts for name in part.tables}):
            pieces = [part.tables[name] for part in parts if name in part.tables]
            if name == "schema":  # the window's union JSON Schema: merged, not stacked
                tables[name] = _merged_schema(pieces)
                continue
            # each item's rows keep their order; items follow the sample (a stable sort)
            tables[name] = (
                pl.concat(pieces, how="diagonal_relaxed").with_columns(pl.col("input_id").replace_strict(position, default=None, return_dtype=pl.Int64).alias("_rank"))
                .sort("_rank", maintain_order=True).drop("_rank")
            )
        return cls(ids=ids, descriptors=descriptors, embeddings=embeddings, tables=tables)

    def received(self) -> pl.DataFrame | None:
        """input_id -> received_at (epoch seconds), or None when unknown (a baseline built before it was kept)."""
        table = self.tables.get("received")
        return table if table is not None and table.height else None


def _merged_schema(pieces: list[pl.DataFrame]) -> pl.DataFrame:
    import orjson
    import polars as pl
    from genson import SchemaBuilder

    builder = SchemaBuilder()
    for piece in pieces:
        for text in piece["schema"]:
            builder.add_schema(orjson.loads(text))
    return pl.DataFrame({"schema": [orjson.dumps(builder.to_schema()).decode()]})


class Featurizer(Protocol):
    def add(self, input_id: str, opened: dict[str, Any]) -> None: ...

    def finish(self) -> FeatureSet: ...


class Kind(Protocol):
    name: ClassVar[str]
    # module-level function (picklable) executed in a worker process
    open_input: Callable[[Any, dict[str, Any]], dict[str, Any]]

    def limits(self, context) -> dict[str, Any]: ...

    def timeout(self, context) -> float: ...

    def encoders(self, config) -> set[str]: ...  # embedding names this kind makes ("clip", "text")

    def featurizer(self, context, source: str) -> Featurizer: ...

    def extra_checks(self, ref: FeatureSet, cur: FeatureSet, context) -> list: ...


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


def read_limited(path, max_bytes: int) -> bytes:
    """Read a file (or an object in a bucket), refusing it before reading when it is over the size limit."""
    import os

    if type(path).__name__ == "ObjectRef":  # imported only where a bucket is read
        from ..objects import ObjectError, read_object

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
