"""Ground-truth factor models: what the disentanglement metrics sample from.

A ground truth is any object with

* ``factor_names`` and ``factor_sizes`` -- factor ``k`` takes the indices ``0 .. factor_sizes[k] - 1``;
* ``factor_types`` -- ``"categorical"`` (unordered, like a shape) or ``"ordinal"`` (an ordered quantity);
* ``observations(factors)`` -- the observations (float32 images) for rows of factor indices.

:class:`vaekit.data.dsprites.DSpritesFactors` is one (``dataset.ground_truth`` for dsprites data sets);
:class:`SimulatedFactors` wraps any function of the factors, which is how the tests build codes whose
right answer is known.

A representation is a function from a batch of observations to codes ``(n, d)``; for a vaekit model
it is the encoder mean (:func:`model_representation`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np

from vaekit.errors import ConfigError

FACTOR_TYPES = ("categorical", "ordinal")
Representation = Callable[[np.ndarray], np.ndarray]


class GroundTruth(Protocol):
    factor_names: Sequence[str]
    factor_sizes: Sequence[int]
    factor_types: Sequence[str]

    def observations(self, factors: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class SimulatedFactors:
    """A ground truth whose observations are ``render(factors)`` for rows of factor indices."""

    factor_sizes: tuple[int, ...]
    render: Callable[[np.ndarray], np.ndarray]
    factor_names: tuple[str, ...] | None = None
    factor_types: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        k = len(self.factor_sizes)
        if self.factor_names is None:
            object.__setattr__(self, "factor_names", tuple(f"factor_{i}" for i in range(k)))
        if self.factor_types is None:
            object.__setattr__(self, "factor_types", ("ordinal",) * k)
        check_ground_truth(self)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        return np.asarray(self.render(np.asarray(factors, dtype=np.int64)))


def check_ground_truth(ground_truth) -> None:
    sizes = list(ground_truth.factor_sizes)
    if not sizes or any(int(s) < 1 for s in sizes):
        raise ConfigError(f"factor sizes must be positive, not {sizes}")
    if len(ground_truth.factor_names) != len(sizes) or len(ground_truth.factor_types) != len(sizes):
        raise ConfigError("a ground truth needs one name and one type per factor")
    unknown = set(ground_truth.factor_types) - set(FACTOR_TYPES)
    if unknown:
        raise ConfigError(f"unknown factor type(s) {sorted(unknown)}: use {' or '.join(FACTOR_TYPES)}")


def sample_factors(ground_truth, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of factor indices drawn uniformly and independently, int64 ``(n, n_factors)``."""
    sizes = np.asarray(ground_truth.factor_sizes, dtype=np.int64)
    return rng.integers(0, sizes, size=(n, len(sizes)))


def represent(representation: Representation, ground_truth, factors: np.ndarray, *, chunk: int = 2048) -> np.ndarray:
    """Codes ``(n, d)`` (float64) of the observations of ``factors``, ``chunk`` observations at a time."""
    parts = []
    for start in range(0, len(factors), chunk):
        codes = np.asarray(representation(ground_truth.observations(factors[start:start + chunk])), dtype=np.float64)
        if codes.ndim != 2 or len(codes) != len(factors[start:start + chunk]):
            raise ConfigError(f"a representation must return one code row per observation, got shape {codes.shape}")
        if not np.isfinite(codes).all():
            raise ConfigError("the representation returned NaN or infinite codes")
        parts.append(codes)
    return np.concatenate(parts)


def sample_codes(representation: Representation, ground_truth, n: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(factors, codes)`` for ``n`` uniformly drawn factor rows."""
    factors = sample_factors(ground_truth, n, rng)
    return factors, represent(representation, ground_truth, factors)


def model_representation(model, *, batch_size: int = 500) -> Representation:
    """The encoder mean of a vaekit model (the posterior's mode), as a representation function."""
    from vaekit.latent import encode_means

    return lambda x: encode_means(model, np.asarray(x, dtype=np.float32), batch_size=batch_size)
