"""What a figure function returns: :class:`Made` (its own module, so that :mod:`vaekit.figures.images`
and :mod:`vaekit.figures.tables`, which draws the table runs' figures for it, both use it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Made:
    """A figure, the one-line summary of what it measured, and any warnings raised on the way;
    ``values``, for the figures that decode samples (samples, reconstructions, decoded codes), the
    decoded samples in the data's original units, for writing as numbers (``--out x.csv``)."""

    figure: Any
    summary: str
    warnings: list[str] = field(default_factory=list)
    values: np.ndarray | None = None
