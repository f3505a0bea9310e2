"""Figures and reports. :mod:`.images` draws one latent-space figure per function (a model and its
dataset in, a :class:`~vaekit.figures.images.Made` out); :mod:`.plots` and :mod:`.curves` turn arrays
into matplotlib figures; :mod:`.report` and :mod:`.html` build the self-contained HTML pages.

The figure functions are re-exported here: ``vaekit.figures.reconstruction(model, dataset)``.
"""
from __future__ import annotations

import importlib

_FIGURES = ("Made", "reconstruction", "samples", "decoded", "interpolation", "interpolation_grid", "traversal",
            "latent_map", "arithmetic", "denoising")


def __getattr__(name: str):
    if name in _FIGURES:
        return getattr(importlib.import_module(f"{__name__}.images"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_FIGURES)
