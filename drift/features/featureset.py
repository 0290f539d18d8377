"""The ground floor of the features stage: what every kind makes of its items (`FeatureSet`) and
how an item that could not be made is classified (`InputProblem` in a worker, `InputError` after).

Imported by the worker processes too: nothing here imports polars, numpy or pyarrow at the top (it
would cost each worker 0.2 s at start); they are imported where frames are made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


def is_numeric(dtype) -> bool:
    """A descriptor column compared as a number (a yes/no one as 0/1), not as categories: the one
    rule the comparison, the store's long table and the exports share."""
    import polars as pl

    return dtype.is_numeric() or dtype == pl.Boolean


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
            if frames
            else pl.DataFrame({"input_id": pl.Series([], dtype=pl.Utf8)})
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
                pl.concat(pieces, how="diagonal_relaxed")
                .with_columns(pl.col("input_id").replace_strict(position, default=None, return_dtype=pl.Int64).alias("_rank"))
                .sort("_rank", maintain_order=True)
                .drop("_rank")
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
