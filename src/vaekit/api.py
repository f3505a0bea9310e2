"""Training from Python in one call: ``vaekit.train(x, model="vae", latent_dim=8, out="runs/mine")``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vaekit.errors import ConfigError, DataError
from vaekit.training.config import TrainConfig, build_config, normalise_keys


def train(data: Any = "fashion-mnist", out: str | Path | None = None, *, y: np.ndarray | None = None,
          config: str | Path | TrainConfig | None = None, overwrite: bool = False, callbacks=(),
          **options: Any):
    """Train a model and return a :class:`vaekit.training.trainer.TrainResult` (``.model``, ``.history``, ...).

    ``data`` is a dataset name (``"fashion-mnist"``, ``"mnist"``, ``"digits"``), a path (.npy, .npz,
    image folder), a :class:`vaekit.data.Dataset`, or samples shaped (N, H, W), (N, C, H, W) or (N, D)
    as a NumPy array, a torch tensor or nested lists (uint8 or floats in [0, 1]), with optional
    integer labels ``y``.
    ``options`` are :class:`TrainConfig` fields (``model``, ``arch``, ``latent_dim``, ``epochs``, ...);
    ``config`` is a TOML/YAML file or a TrainConfig they override. With ``out=None`` nothing is
    written to disk.
    """
    from vaekit.data import Dataset
    from vaekit.data.arrays import dataset_from_arrays
    from vaekit.training.run import config_dataset
    from vaekit.training.trainer import train as train_run

    if isinstance(config, TrainConfig):
        values = config.to_dict()
        if {"val_size", "val-size", "val_fraction", "val-fraction"} & set(options):
            values["val_fraction"] = values["val_size"] = None   # the given one replaces the config's
        values.update(normalise_keys(options, source="train()"))
        cfg = TrainConfig.from_dict(values, source="train()").resolved()
    else:
        if "dataset" not in options and isinstance(data, (str, Path, Dataset)):
            # The data decide defaults such as the likelihood (gaussian for tables), so name them first.
            options = {**options, "dataset": data.name if isinstance(data, Dataset) else str(data)}
        cfg = build_config(config, options)
    if isinstance(data, Dataset):
        dataset = data
        cfg.dataset = data.name
    elif isinstance(data, (str, os.PathLike)):
        cfg.dataset = os.fspath(data)
        dataset = config_dataset(cfg)
    else:
        x, labels = _as_array(data, "data"), None if y is None else _as_array(y, "y")
        dataset = dataset_from_arrays(x, labels, seed=0, val_fraction=cfg.val_fraction or 0.1, val_size=cfg.val_size)
        cfg.dataset = "<array>"
    return train_run(cfg, dataset, out, overwrite=overwrite, callbacks=callbacks)


def _as_array(values: Any, name: str) -> np.ndarray:
    """A NumPy array from an array, a torch tensor (any device) or nested lists of numbers."""
    if isinstance(values, np.ndarray):
        return values
    if hasattr(values, "detach") and hasattr(values, "cpu"):         # a torch tensor, without importing torch
        return values.detach().cpu().numpy()
    if not isinstance(values, (list, tuple)) and not hasattr(values, "__array__"):
        raise ConfigError(f"train() takes as {name} a dataset name, a path, a vaekit Dataset, or samples as a NumPy "
                          f"array, a torch tensor or nested lists, not {type(values).__name__}")
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:
        raise DataError(f"{name} cannot be made into one array ({str(exc).splitlines()[0][:200]}): pass samples "
                        "of one shape, (N, H, W), (N, C, H, W) or (N, D)") from None
