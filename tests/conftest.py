"""Shared fixtures: tiny datasets and a quick-training config, so the suite stays fast on 2 cores."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vaekit.training.config import TrainConfig
from vaekit.training.trainer import Callback


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory):
    """Keep tests out of the user's cache (judging classifiers are cached there); shared by the session."""
    previous = os.environ.get("VAEKIT_CACHE_DIR")
    os.environ["VAEKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("vaekit-cache"))
    yield
    if previous is None:
        os.environ.pop("VAEKIT_CACHE_DIR", None)
    else:
        os.environ["VAEKIT_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def digits_dataset():
    from vaekit.data import load_dataset

    return load_dataset("digits")


def unlabelled_dataset(train_x, val_x, test_x, *, name: str = "memory"):
    """A vaekit Dataset around ready-made float arrays (no labels), for tests that build their own data."""
    from vaekit.data import Dataset, Split

    return Dataset(name=name, train=Split(train_x, None), val=Split(val_x, None), test=Split(test_x, None),
                   sample_shape=tuple(train_x.shape[1:]), class_names=None, source="memory", quantized_8bit=False)


class StopAfter(Callback):
    """A callback that interrupts training after a given epoch, like Ctrl-C would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt


def quick_config(**overrides) -> TrainConfig:
    values = dict(dataset="digits", model="vae", arch="mlp", hidden=[32], latent_dim=3, epochs=2,
                  batch_size=64, lr=3e-3, seed=0, device="cpu")
    values.update(overrides)
    return TrainConfig.from_dict(values).resolved()


@pytest.fixture
def tiny_npz(tmp_path) -> Path:
    """200 random 8x8 grey images with 4 classes, as uint8, in a .npz."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(200, 8, 8), dtype=np.uint8)
    y = rng.integers(0, 4, size=200)
    path = tmp_path / "tiny.npz"
    np.savez(path, x=x, y=y)
    return path


def run_cli(*args: str, cwd: Path | None = None, env_extra: dict | None = None, timeout: int = 300):
    """Run `python -m vaekit ARGS` in a subprocess, as a user would, and return the completed process."""
    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "vaekit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
