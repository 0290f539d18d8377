"""Embed items in batches as they arrive, and stream the vectors to Parquet.

Workers keep opening inputs while a batch is encoded, and nothing but the current batch is held in
memory: each batch's vectors go straight to a Parquet file. The tests need all vectors at once, so
`matrix` reads them back, aligned on the featurizer's ids.

Not every item has every embedding (a plain-text document has no page to render): such rows are
NaN, and the embedding tests leave them out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .arrow import to_arrow, to_matrix


class EmbeddingSpool:
    def __init__(self, encode: Callable[[list[Any]], np.ndarray], dim: int, batch_size: int, path: Path):
        self.encode = encode
        self.dim = dim
        self.batch_size = batch_size
        self.path = path
        self.pending: list[Any] = []
        self.pending_ids: list[str] = []
        self.writer = None
        self.written = False

    def add(self, input_id: str, value: Any) -> None:
        self.pending.append(value)
        self.pending_ids.append(input_id)
        if len(self.pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.pending:
            return
        vectors = self.encode(self.pending)
        table = pa.table({"input_id": pa.array(self.pending_ids, pa.string()), "vector": to_arrow(vectors)})
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.written = True
        self.pending, self.pending_ids = [], []

    def matrix(self, ids: list[str]) -> np.ndarray:
        """Every vector, in the order of `ids`; NaN rows for ids that were never added."""
        import pyarrow.parquet as pq

        self._flush()
        out = np.full((len(ids), self.dim), np.nan, dtype=np.float32)
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if not self.written:
            return out
        table = pq.read_table(self.path)
        row_of = {input_id: row for row, input_id in enumerate(ids)}
        rows = [row_of[i] for i in table["input_id"].to_pylist()]
        out[rows] = to_matrix(table["vector"])
        return out
