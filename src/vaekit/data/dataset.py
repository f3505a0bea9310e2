"""The containers every loader returns: :class:`Split`, :class:`Dataset` and :class:`DatasetInfo`.

Conventions shared by all loaders:

* ``x`` is float32 with shape ``(N, *sample_shape)`` and values in ``[0, 1]``; images are
  channels-first ``(C, H, W)`` with ``C`` = 1 (grayscale) or 3 (RGB), flat vectors are ``(D,)``.
  Real-valued data (tables, arrays outside [0, 1]) are the exception: ``x`` then holds standardised
  values and ``scaling`` (:class:`vaekit.data.scaling.Scaling`) maps them back to the original units.
* ``y`` is int64 with shape ``(N,)`` and indexes ``class_names`` (``class_names[y[i]]`` is the name of
  sample ``i``), or ``None`` when the data set has no labels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vaekit.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


# eq=False: the fields are arrays, whose ``==`` is element-wise, so dataclass equality would fail.
@dataclass(frozen=True, eq=False)
class Split:
    """One part of a data set: samples ``x``, optional integer labels ``y`` and, for data sets with
    known generative factors (dsprites), the factor indices ``factors`` shaped ``(N, n_factors)``."""

    x: np.ndarray
    y: np.ndarray | None
    factors: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.y is not None and len(self.y) != len(self.x):
            raise ValueError(f"Split has {len(self.x)} samples but {len(self.y)} labels")
        if self.factors is not None and len(self.factors) != len(self.x):
            raise ValueError(f"Split has {len(self.x)} samples but {len(self.factors)} factor rows")

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set: three disjoint splits plus what is needed to interpret them.

    ``quantized_8bit`` is True when every value is a multiple of 1/255 (8-bit sources), which is
    what discrete likelihoods and bits-per-dimension figures assume. ``skipped`` lists the files
    (relative paths) that could not be read and were left out, so a front end can warn about them.
    ``ground_truth`` is set for data sets generated from known factors: an object with
    ``factor_names``, ``factor_sizes``, ``factor_types`` and ``observations(factors)`` (images for
    rows of factor indices), which :mod:`vaekit.disentanglement` samples from; None otherwise.
    ``scaling`` is set for real-valued data, whose ``x`` are standardised (see
    :mod:`vaekit.data.scaling`); ``feature_names`` names the columns of a table (then the samples
    are ``(D,)`` vectors shown as features, not pictures).
    """

    name: str
    train: Split
    val: Split
    test: Split
    sample_shape: tuple[int, ...]
    class_names: list[str] | None
    source: str
    quantized_8bit: bool
    skipped: tuple[str, ...] = ()
    ground_truth: Any = None
    scaling: Any = None
    feature_names: tuple[str, ...] | None = None

    @property
    def is_table(self) -> bool:
        """True for tables: samples are rows of named features, not images."""
        return self.feature_names is not None

    def split(self, name: str) -> Split:
        """Return the split called ``"train"``, ``"val"`` or ``"test"``."""
        if name not in SPLIT_NAMES:
            raise DataError(f"unknown split {name!r}: use one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)


@dataclass(frozen=True)
class DatasetInfo:
    """What :func:`vaekit.data.list_datasets` says about one named data set.

    ``available`` is True when the data can be loaded without a download. ``where`` is the folder or
    file it would be loaded from, ``"download from <url>"``, or the reason it cannot be had.
    """

    name: str
    description: str
    available: bool
    where: str | None
