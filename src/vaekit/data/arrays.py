"""Loading samples from NumPy files: ``.npy`` (one array, no labels) or ``.npz`` (``x``, optional ``y``).

Both use NumPy's NPY format ("numpy.lib.format", https://numpy.org/doc/stable/reference/generated/
numpy.lib.format.html); ``.npz`` is a zip archive of ``.npy`` members, as written by ``np.savez``.
Files are read with ``allow_pickle=False``: a data file must never be able to run code.

Accepted sample arrays: ``(N, D)`` flat vectors, ``(N, H, W)`` grayscale images, ``(N, C, H, W)``
images with C = 1 or 3. Values: uint8 (divided by 255), bool, or finite floats in [0, 1], kept as
they are; other real values (floats outside [0, 1], integers) are real-valued data, standardised on
the training split (:mod:`vaekit.data.tables`, :mod:`vaekit.data.scaling`): ``(N, D)`` arrays per
feature (named x0, x1, ...), image-shaped ones with one mean and scale. ``standardize`` ("auto",
"on", "off") overrides that choice.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.data.dataset import Dataset
from vaekit.data.labels import encode_labels  # noqa: F401  (public here too)
from vaekit.data.scaling import needs_scaling
from vaekit.data.npy_header import check_array_file
from vaekit.data.splits import seeded_splits

NPY_SIGNATURE = b"\x93NUMPY"
ZIP_SIGNATURE = b"PK"
QUANTIZATION_TOLERANCE = 1e-6


def load_array_file(path: Path, *, name: str, seed: int, val_fraction: float, test_fraction: float,
                    val_size: int | None = None, standardize: str = "auto") -> Dataset:
    """Load a ``.npy`` or ``.npz`` file and split it with the seeded fractions."""
    x, y, label = _read(path)
    return dataset_from_arrays(x, y, name=name, source=str(path), label=label, seed=seed,
                               val_fraction=val_fraction, test_fraction=test_fraction, val_size=val_size,
                               standardize=standardize)


def dataset_from_arrays(x: np.ndarray, y: np.ndarray | None = None, *, name: str = "<array>",
                        source: str = "in-memory arrays", label: str = "x", seed: int = 0,
                        val_fraction: float = 0.1, test_fraction: float = 0.1, val_size: int | None = None,
                        standardize: str = "auto", feature_names: list[str] | None = None) -> Dataset:
    """Check, scale and split in-memory samples exactly as a .npz file holding ``x`` and ``y`` would be.

    Real-valued samples (see the module's docstring) are standardised on the training split;
    ``feature_names`` names the columns of ``(N, D)`` real-valued samples (default x0, x1, ...).
    """
    x = np.asarray(x)
    sample_array_shape = to_sample_array(x, label).shape
    if _real_valued(x, label, standardize):
        from vaekit.data.tables import drop_constant_features, real_valued_dataset

        values = x.astype(np.float64).reshape(sample_array_shape)
        labels, class_names = encode_labels(None if y is None else np.asarray(y), len(values), "y")
        names = None
        if values.ndim == 2:
            if feature_names is not None and len(feature_names) != values.shape[1]:
                raise DataError(f"{len(feature_names)} feature names for {values.shape[1]} features: give one name per column")
            names = [str(n) for n in feature_names] if feature_names is not None else [f"x{i}" for i in range(values.shape[1])]
            values, names = drop_constant_features(values, names, explicit=False, where=label)
        return real_valued_dataset(values, labels, class_names, name=name, source=source, seed=seed,
                                   val_fraction=val_fraction, test_fraction=test_fraction, val_size=val_size,
                                   feature_names=names)
    values, quantized = to_unit_interval(x, label)  # before reshaping, so errors use the caller's indices
    values = values.reshape(sample_array_shape)
    labels, class_names = encode_labels(None if y is None else np.asarray(y), len(values), "y")
    train, val, test = seeded_splits(values, labels, seed=seed, val_fraction=val_fraction,
                                     test_fraction=test_fraction, val_size=val_size)
    return Dataset(name=name, train=train, val=val, test=test, sample_shape=values.shape[1:],
                   class_names=class_names, source=source, quantized_8bit=quantized)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    signature = NPY_SIGNATURE if path.suffix.lower() == ".npy" else ZIP_SIGNATURE
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(signature))
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc}): check the path and its permissions") from exc
    if start != signature:
        kind = "a NumPy .npy file" if signature == NPY_SIGNATURE else "a NumPy .npz (zip) archive"
        raise DataError(f"{path} is not {kind}: save it with np.save / np.savez, or pass another file")
    check_array_file(path)      # before np.load, which allocates whatever the header announces
    try:
        if signature == NPY_SIGNATURE:
            return np.load(path, allow_pickle=False), None, path.name
        with np.load(path, allow_pickle=False) as archive:
            if "x" not in archive.files:
                keys = ", ".join(archive.files) or "none"
                raise DataError(f"{path} has no array named 'x' (arrays present: {keys}): "
                                "save the samples with np.savez(path, x=samples, y=labels)")
            y = archive["y"] if "y" in archive.files else None
            return archive["x"], y, f"{path.name}['x']"
    except ValueError as exc:
        if "pickle" in str(exc) or "Object arrays" in str(exc):
            raise DataError(f"{path} holds Python objects, which vaekit does not load because unpickling "
                            "can run code (allow_pickle=False): save plain numeric arrays instead") from exc
        raise DataError(f"{path} is damaged or not a valid NumPy file ({exc}): save it again") from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is damaged or truncated ({exc}): save it again") from exc


def to_sample_array(x: np.ndarray, label: str) -> np.ndarray:
    """Reshape to ``(N, *sample_shape)``: ``(N, D)`` stays, ``(N, H, W)`` gets a channel axis."""
    expected = "(N, D) vectors, (N, H, W) grayscale images or (N, C, H, W) images with C = 1 or 3"
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3):
        hint = " (channels-last? use x.transpose(0, 3, 1, 2))" if x.shape[3] in (1, 3) else ""
        raise DataError(f"{label} has shape {x.shape} but must be {expected}{hint}")
    elif x.ndim not in (2, 4):
        raise DataError(f"{label} has {x.ndim} dimensions (shape {x.shape}) but must be {expected}")
    if x.shape[0] == 0:
        raise DataError(f"{label} holds no samples (shape {x.shape}): pass a file with at least 3 samples")
    if 0 in x.shape:
        raise DataError(f"{label} has empty samples (shape {x.shape}): pass a file with non-empty samples")
    return x


def _real_valued(x: np.ndarray, label: str, standardize: str) -> bool:
    """Whether samples are treated as real-valued (standardised) data rather than [0, 1] values."""
    if x.dtype == np.uint8 or x.dtype.kind == "b" or x.dtype.kind not in "iuf":
        return standardize == "on" and x.dtype.kind in "iufb"
    if x.dtype.kind == "f":
        _check_finite(x, label)
    return standardize == "on" or (standardize == "auto" and (x.dtype.kind in "iu" or needs_scaling(x, "auto")))


def to_unit_interval(x: np.ndarray, label: str) -> tuple[np.ndarray, bool]:
    """Return ``(float32 values in [0, 1], quantized_8bit)``; reject anything else with a reason."""
    if x.dtype == np.uint8:
        return np.divide(x, np.float32(255), dtype=np.float32), True
    if x.dtype.kind == "b":
        return x.astype(np.float32), True
    if x.dtype.kind in "iu":
        raise DataError(f"{label} has integer type {x.dtype}: store 8-bit pixels as uint8 (0..255), "
                        "floats scaled to [0, 1], or standardise it (--standardize on / auto)")
    if x.dtype.kind != "f":
        raise DataError(f"{label} has type {x.dtype}, which is not numeric sample data: store uint8 "
                        "(0..255) or floats in [0, 1]")
    _check_finite(x, label)
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        raise DataError(f"{label} has values from {low:g} to {high:g} but with --standardize off they must lie in "
                        "[0, 1]: scale them to [0, 1], store uint8, or let vaekit standardise them (--standardize auto)")
    return x.astype(np.float32), _all_multiples_of_1_255(x)


def _all_multiples_of_1_255(x: np.ndarray, block: int = 1 << 20) -> bool:
    """True when every value is within QUANTIZATION_TOLERANCE of some k/255 (checked in blocks)."""
    flat = x.reshape(-1)
    for start in range(0, flat.size, block):
        scaled = flat[start:start + block].astype(np.float64) * 255
        if np.abs(scaled - np.rint(scaled)).max() > 255 * QUANTIZATION_TOLERANCE:
            return False
    return True


def _check_finite(x: np.ndarray, label: str) -> None:
    finite = np.isfinite(x)
    if finite.all():
        return
    n_nan = int(np.isnan(x).sum())
    n_inf = int(x.size - finite.sum()) - n_nan
    counts = " and ".join(f"{count} {kind} value{'s' if count > 1 else ''}"
                          for count, kind in ((n_nan, "NaN"), (n_inf, "infinite")) if count)
    first = np.unravel_index(int(np.argmin(finite)), x.shape)
    element = ", ".join(str(int(i)) for i in first)
    raise DataError(f"{label} contains {counts} (first at index {first[0]}, element [{element}]): "
                    "replace or drop them before loading")
