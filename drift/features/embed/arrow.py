"""Embedding matrices in Parquet: one fixed-size float32 list per row, the same in every file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_arrow(matrix: np.ndarray) -> pa.FixedSizeListArray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel(), pa.float32()), matrix.shape[1])


def to_matrix(column: pa.ChunkedArray | pa.FixedSizeListArray) -> np.ndarray:
    """(rows, dim) float32 from a fixed-size list column."""
    vectors = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return vectors.values.to_numpy().reshape(len(vectors), vectors.type.list_size)
