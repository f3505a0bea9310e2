"""Seeded train/validation/test splits.

Every split is a pure function of ``(n, seed, fractions)`` (or of a validation part of absolute size
``val_size`` instead of ``val_fraction``): the indices come from ``np.random.default_rng(seed).permutation(n)``,
so the same seed gives the same split on every machine and every run, and the three parts never overlap.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from vaekit.errors import ConfigError, DataError
from vaekit.data.dataset import Split


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise :class:`ConfigError` unless both fractions are in (0, 1) and sum to less than 1."""
    for label, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
            raise ConfigError(f"{label} is {value!r} but must be a number between 0 and 1 (exclusive)")
    if val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction + test_fraction is {val_fraction + test_fraction:g}, which leaves nothing "
            "to train on: make their sum smaller than 1"
        )


def check_val_size(val_size: int) -> None:
    """Raise :class:`ConfigError` unless ``val_size`` is a whole number of samples, at least 1."""
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Integral) or val_size < 1:
        raise ConfigError(f"val_size is {val_size!r} but must be a whole number of samples, at least 1")


def split_sizes(n: int, val_fraction: float, test_fraction: float,
                val_size: int | None = None) -> tuple[int, int, int]:
    """Return ``(n_train, n_val, n_test)`` for ``n`` samples.

    A part whose fraction is positive gets at least one sample, and train always keeps at least one,
    so tiny data sets still yield three non-empty parts. A fraction of 0 gives an empty part (used
    internally for data sets that come with an official test set). ``val_size``, when given, is the
    validation part's size exactly (``val_fraction`` is then unused); it must leave train a sample.
    """
    if n < 3:
        raise DataError(f"the data set has only {n} sample(s); at least 3 are needed to make train, "
                        "validation and test splits: add more samples")
    if val_size is not None:
        check_val_size(val_size)
        n_test = _part_size(n, test_fraction)
        most = n - n_test - 1
        if val_size > most:
            after = f" ({n_test} go to the test split)" if n_test else ""
            raise DataError(f"a validation split of {val_size} samples leaves nothing to train on: the data set "
                            f"has {n} samples to split{after}, so val_size (--val-size) can be at most {most}")
        return n - val_size - n_test, val_size, n_test
    sizes = [_part_size(n, val_fraction), _part_size(n, test_fraction)]
    while n - sum(sizes) < 1:  # rounding up tiny parts can starve train: shrink the larger part
        larger = 0 if sizes[0] >= sizes[1] else 1
        sizes[larger] -= 1
    n_val, n_test = sizes
    return n - n_val - n_test, n_val, n_test


def _part_size(n: int, fraction: float) -> int:
    if fraction <= 0:
        return 0
    return max(1, math.floor(n * fraction + 0.5))


def split_indices(
    n: int, *, seed: int, val_fraction: float, test_fraction: float, val_size: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return sorted, disjoint index arrays ``(train, val, test)`` covering ``range(n)``."""
    _, n_val, n_test = split_sizes(n, val_fraction, test_fraction, val_size)
    order = np.random.default_rng(seed).permutation(n)
    test = np.sort(order[:n_test])
    val = np.sort(order[n_test:n_test + n_val])
    train = np.sort(order[n_test + n_val:])
    return train, val, test


def take(x: np.ndarray, y: np.ndarray | None, indices: np.ndarray) -> Split:
    """The samples (and labels) at ``indices`` as a :class:`Split`."""
    return Split(x=x[indices], y=None if y is None else y[indices])


def seeded_splits(x: np.ndarray, y: np.ndarray | None, *, seed: int, val_fraction: float,
                  test_fraction: float, val_size: int | None = None) -> tuple[Split, Split, Split]:
    """Cut one array of samples (and labels) into seeded ``(train, val, test)`` splits."""
    train, val, test = split_indices(len(x), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                     val_size=val_size)
    return take(x, y, train), take(x, y, val), take(x, y, test)
