"""Honest numbers for a trained model: ELBO terms, the importance-weighted likelihood and its fast
paths, the PCA baseline, the judging classifier and the regularity of the latent space.

``evaluate_model`` and ``evaluate`` (a run folder) live in :mod:`vaekit.evaluation.evaluate`; they are
re-exported here, imported on first use.
"""
from __future__ import annotations

import importlib

_LAZY = {"evaluate": "evaluate", "evaluate_model": "evaluate", "Evaluation": "evaluate",
         "pca_baseline_mse": "evaluate"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
