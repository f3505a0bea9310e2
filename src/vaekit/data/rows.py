"""Decoded samples written as numbers: a CSV table with the feature names as its header, or a .npy array.

What ``vaekit sample --out x.csv`` and ``vaekit reconstruct --out x.csv`` write. Values are in the
data's original units (the caller undoes the standardisation first). The CSV module quotes names
that hold commas or quotes; numbers are written to 8 significant digits, more than the float32
decoders compute (about 7).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence

import numpy as np

from vaekit.errors import ConfigError
from vaekit.files import replacing

ROW_SUFFIXES = (".csv", ".npy")


def writes_rows(path: str | Path) -> bool:
    """Whether ``path`` asks for numbers (.csv, .npy) rather than a picture."""
    return Path(path).suffix.lower() in ROW_SUFFIXES


def save_rows(path: str | Path, values: np.ndarray, feature_names: Sequence[str] | None) -> Path:
    """Write ``values`` (N, *sample_shape) to ``path``: .npy as they are (float64), .csv as one row per
    sample under a header of ``feature_names`` (tables only: images have no column names)."""
    path = Path(path)
    values = np.asarray(values, dtype=np.float64)
    suffix = path.suffix.lower()
    if suffix not in ROW_SUFFIXES:
        raise ConfigError(f"{path.name}: numbers are written as .csv or .npy, not {path.suffix or 'a file without a suffix'}")
    if suffix == ".csv" and feature_names is None:
        raise ConfigError(f"{path.name}: a CSV holds the rows of a table, and this run was trained on images: "
                          "write .npy (the arrays) or .png (the picture)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, values)
        else:
            if values.ndim != 2 or values.shape[1] != len(feature_names):
                raise ConfigError(f"{len(feature_names)} feature names for values shaped {values.shape}")
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(list(feature_names))
                writer.writerows([f"{v:.8g}" for v in row] for row in values)
    return path
