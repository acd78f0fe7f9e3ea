"""Arrow helpers shared by the descriptor groups (fixed-size float32 lists <-> numpy)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def fixed_list(mat: np.ndarray) -> pa.FixedSizeListArray:
    """``(N, D)`` matrix -> ``fixed_size_list<float32, D>`` array of N rows."""
    mat = np.ascontiguousarray(mat, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1), pa.float32()), mat.shape[1])


def list_to_np(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A list column of N equal-length float vectors -> float32 ``(N, D)`` (``(0, dim)`` when empty)."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, dim), np.float32)
    return np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(arr), -1)
