"""Standardisation of real-valued data, fitted on the training split, and its exact inverse.

A model of real-valued data (a table, or an array with values outside [0, 1]) trains on
``(x - mean) / scale``. The scaling is part of the data's description: run.json stores it, so
decoded values, samples and reconstructions go back to the original units without the data.

Densities change with units. If ``u = (x - m) / s`` then ``p_x(x) = p_u(u) / prod_d s_d``, so

    -log p_x(x) = -log p_u(u) + sum_d log s_d,

and :attr:`Scaling.log_jacobian` is that sum, the constant that puts an NLL measured on the
standardised values back into the original units (per example, in nats).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from vaekit.errors import DataError

logger = logging.getLogger(__name__)

STANDARDIZE_CHOICES = ("auto", "on", "off")


@dataclass(frozen=True, eq=False)
class Scaling:
    """``u = (x - mean) / scale``; ``mean`` and ``scale`` are float64 arrays shaped like one sample,
    or of shape ``()`` for one mean and scale shared by every value (images)."""

    mean: np.ndarray
    scale: np.ndarray
    sample_shape: tuple[int, ...]

    @classmethod
    def fit(cls, train_x: np.ndarray, *, per_feature: bool, names: list[str] | None = None) -> "Scaling":
        """Fit on the training samples: per feature (tables) or one mean and scale (images).

        A feature constant over the training split cannot be standardised; the loaders drop such
        columns before this, so meeting one here is an error that names it.
        """
        values = np.asarray(train_x, dtype=np.float64)
        # Moments of x / bound, then scaled back: squares of values near 1e308 would overflow float64.
        bound = np.abs(values).max(0) if per_feature else np.asarray(np.abs(values).max())
        bound = np.where((bound > 0) & np.isfinite(bound), bound, 1.0)
        scaled = values / bound
        if per_feature:
            mean, scale = scaled.mean(0) * bound, scaled.std(0) * bound
            flat = scale.reshape(-1)
            constant = np.flatnonzero(~(flat > 0))
            if constant.size:
                index = int(constant[0])
                label = names[index] if names is not None and index < len(names) else f"feature {index}"
                raise DataError(f"{label} is constant over the training split ({float(mean.reshape(-1)[index]):g}), so it "
                                "cannot be standardised: leave that column out")
        else:
            mean, scale = np.asarray(scaled.mean() * bound), np.asarray(scaled.std() * bound)
            if not scale > 0:
                raise DataError("the training data are constant, so they cannot be standardised: check the data")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
            raise DataError("the values are too large to standardise in float64: rescale them first")
        return cls(mean=mean, scale=scale, sample_shape=tuple(values.shape[1:]))

    @property
    def log_jacobian(self) -> float:
        """sum over one sample's values of log(scale): add it to an NLL in standardised units."""
        per_value = np.log(self.scale)
        if per_value.ndim == 0:
            return float(per_value) * math.prod(self.sample_shape)
        return float(per_value.sum())

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Original units -> standardised float32."""
        # x / s - m / s rather than (x - m) / s: the difference of two values near 1e308 overflows.
        standardised = np.asarray(x, dtype=np.float64) / self.scale - self.mean / self.scale
        with np.errstate(over="ignore"):
            values = standardised.astype(np.float32)
        if not np.isfinite(values).all():
            worst = float(np.abs(standardised).max())
            raise DataError(f"some values lie {worst:.3g} standard deviations from the training split's mean, beyond what "
                            "float32 holds: check the data for outliers, or rescale it")
        return values

    def inverse(self, u):
        """Standardised -> original units; keeps the type of ``u`` (a NumPy array or a torch tensor)."""
        if hasattr(u, "detach"):  # a torch tensor: stay on its device and dtype
            import torch

            mean = torch.as_tensor(self.mean, dtype=u.dtype, device=u.device)
            scale = torch.as_tensor(self.scale, dtype=u.dtype, device=u.device)
            return u * scale + mean
        return np.asarray(u, dtype=np.float64) * self.scale + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "log_jacobian": self.log_jacobian}

    @classmethod
    def from_dict(cls, values: dict[str, Any], sample_shape: tuple[int, ...]) -> "Scaling":
        mean = np.asarray(values["mean"], dtype=np.float64)
        scale = np.asarray(values["scale"], dtype=np.float64)
        if mean.shape != scale.shape or (mean.ndim and mean.shape != tuple(sample_shape)):
            raise DataError(f"the stored scaling has shapes {mean.shape} and {scale.shape}, not one sample's "
                            f"{tuple(sample_shape)}: the run's run.json is damaged")
        if not (np.all(np.isfinite(mean)) and np.all(scale > 0) and np.all(np.isfinite(scale))):
            raise DataError("the stored scaling holds non-finite means or non-positive scales: the run's run.json is damaged")
        return cls(mean=mean, scale=scale, sample_shape=tuple(sample_shape))


def needs_scaling(x: np.ndarray, standardize: str) -> bool:
    """Whether float samples ``x`` are standardised: ``on``; ``auto`` when any value lies outside [0, 1]."""
    if standardize not in STANDARDIZE_CHOICES:
        raise DataError(f"unknown standardize {standardize!r}: use one of {', '.join(STANDARDIZE_CHOICES)}")
    if standardize == "on":
        return True
    if standardize == "off":
        return False
    return bool(x.size) and (float(np.min(x)) < 0 or float(np.max(x)) > 1)
