"""vaekit: autoencoders and variational autoencoders, trained and evaluated honestly.

The top-level names are imported lazily so that ``vaekit --help`` answers without importing torch.
"""
from __future__ import annotations

import importlib
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

_LAZY = {
    "load": "vaekit.training.run",
    "Run": "vaekit.training.run",
    "train": "vaekit.api",
    "evaluate": "vaekit.evaluation.evaluate",
    "load_dataset": "vaekit.data",
    "list_datasets": "vaekit.data",
    "TrainConfig": "vaekit.training.config",
    "VaekitError": "vaekit.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vaekit' has no attribute {name!r}")
