"""Class labels: integers or strings mapped to indices into sorted class names."""
from __future__ import annotations

import numpy as np

from vaekit.errors import DataError


def encode_labels(y: np.ndarray | None, n: int, label: str) -> tuple[np.ndarray | None, list[str] | None]:
    """Map labels to int64 indices into the sorted unique labels, which become the class names."""
    if y is None:
        return None, None
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{label} has shape {y.shape} but must hold one label per sample, shape ({n},): "
                        "save matching x and y arrays")
    if y.dtype.kind not in "iuUS":
        raise DataError(f"{label} has type {y.dtype} but labels must be integers (or strings): "
                        "save them with y.astype(int)")
    values, indices = np.unique(y, return_inverse=True)
    names = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in values.tolist()]
    return indices.reshape(-1).astype(np.int64), names
