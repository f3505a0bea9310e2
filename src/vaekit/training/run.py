"""The run folder: everything needed to rebuild, resume and report a training run.

    RUN/
      run.json                     what was trained on what: config, data shape, class names, versions
      config.json                  the resolved training config (a valid --config file)
      metrics.jsonl                one JSON object per epoch
      checkpoints/best.safetensors weights at the best validation loss
      checkpoints/last.safetensors weights + optimizer + training state, for --resume
      eval.json                    written by `vaekit evaluate`
"""
from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaekit.training.config import TrainConfig
from vaekit.errors import ConfigError, RunError
from vaekit.files import atomic_write_text

RUN_FORMAT = "vaekit-run/1"
# What --overwrite removes: the run's files, and what tracking (--log) and export wrote from it.
RUN_FILES = ("run.json", "config.json", "metrics.jsonl", "eval.json", "checkpoints",
             "tracking.json", "tensorboard", "mlruns", "onnx")


def versions() -> dict[str, str]:
    import torch

    from vaekit import __version__

    return {"vaekit": __version__, "torch": torch.__version__, "python": platform.python_version()}


def describe_data(dataset) -> dict[str, Any]:
    """What run.json records of the data a run trains on."""
    return {"name": dataset.name, "source": dataset.source, "sample_shape": list(dataset.sample_shape),
            "class_names": dataset.class_names, "quantized_8bit": dataset.quantized_8bit,
            "n_train": len(dataset.train), "n_val": len(dataset.val), "n_test": len(dataset.test)}


def write_run_info(path: Path, config: TrainConfig, data: dict[str, Any], model, launch: dict[str, Any] | None,
                   *, created: str | None = None) -> None:
    """Write run.json and config.json (atomically): the only place either is written.

    ``data`` is :func:`describe_data` of the dataset, ``launch`` what a torchrun launch records (None
    for one process); ``created`` keeps the time a resumed run was first created."""
    info: dict[str, Any] = {
        "format": RUN_FORMAT,
        "config": config.to_dict(),
        "data": data,
        "model": {"parameters": sum(p.numel() for p in model.parameters()), "likelihood": model.likelihood.describe()},
        "versions": versions(),
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if launch is not None:
        info["distributed"] = launch
    atomic_write_text(path / "run.json", json.dumps(info, indent=2) + "\n")
    atomic_write_text(path / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")


def holds_run(path: Path) -> bool:
    return (path / "run.json").exists() or (path / "checkpoints").exists()


def check_run_dir(path: Path, *, overwrite: bool) -> None:
    """Refuse a file, or a folder that already holds a run (unless ``overwrite``). Touches nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder: choose another --out")
    if path.is_dir() and holds_run(path) and not overwrite:
        raise RunError(f"{path} already holds a run: continue it with `vaekit train --resume {path}`, "
                       "pass --overwrite to replace it, or choose another --out")


def prepare_run_dir(path: Path, *, overwrite: bool) -> None:
    """Make an empty run folder. An existing run is refused unless ``overwrite`` (then its files go)."""
    path = Path(path)
    check_run_dir(path, overwrite=overwrite)
    if path.is_dir() and holds_run(path):
        for name in RUN_FILES:
            target = path / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    path.mkdir(parents=True, exist_ok=True)


@dataclass
class Run:
    """A run folder opened for reading."""

    path: Path
    info: dict[str, Any]

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.info["config"], source=str(self.path / "run.json")).resolved()

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.info["data"]["sample_shape"])

    @property
    def class_names(self) -> list[str] | None:
        return self.info["data"].get("class_names")

    def history(self) -> list[dict[str, Any]]:
        file = self.path / "metrics.jsonl"
        if not file.exists():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    def evaluation(self) -> dict[str, Any] | None:
        file = self.path / "eval.json"
        return json.loads(file.read_text()) if file.exists() else None

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise RunError(f"unknown checkpoint {which!r}: use best or last")
        return self.path / "checkpoints" / f"{which}.safetensors"

    def load_model(self, which: str = "best", device: str = "cpu"):
        from vaekit.training.checkpoint import load_checkpoint
        from vaekit.models import build_model

        model = build_model(self.config, self.sample_shape, class_names=self.class_names)
        load_checkpoint(self.checkpoint_path(which), device=device).load_model(model)
        return model.to(device).eval()


def open_run(path: str | Path) -> Run:
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist")
    file = path / "run.json"
    if not file.is_file():
        raise RunError(f"{path} is not a vaekit run (no run.json): pass the folder given to `vaekit train --out`")
    try:
        info = json.loads(file.read_text())
        if info.get("format") != RUN_FORMAT:
            raise ValueError(f"format {info.get('format')!r}")
        info["config"], info["data"]["sample_shape"]
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(f"{file} is corrupt or not from this vaekit ({exc}): train the run again") from None
    return Run(path, info)


def config_dataset(config: TrainConfig, *, data_dir: str | None = None, progress=None):
    """The dataset a config names, split exactly as training split it (``data_dir`` overrides the config's)."""
    from vaekit.data import load_dataset

    return load_dataset(config.dataset, data_dir=data_dir or config.data_dir, val_fraction=config.val_fraction,
                        val_size=config.val_size, image_size=config.image_size, progress=progress, stream=config.stream, cache=config.cache,
                        max_memory=config.max_memory)


def load_model_and_data(run: str | Path, *, data_dir: str | None = None, device: str = "cpu"):
    """``(model, dataset)`` for a run folder: its best weights and the data it was trained on, same splits."""
    from vaekit.training.device import resolve_device

    opened = open_run(run)
    config = opened.config
    if config.dataset == "<array>":
        raise ConfigError(f"{opened.path} was trained from in-memory arrays, which the run folder does not hold: "
                          "use it from Python with your arrays (vaekit.evaluation.evaluate.evaluate_model, vaekit.latent)")
    model = opened.load_model("best", device=resolve_device(device))
    dataset = config_dataset(config, data_dir=data_dir)
    if tuple(dataset.sample_shape) != opened.sample_shape:
        raise ConfigError(f"the dataset's shape {tuple(dataset.sample_shape)} differs from the run's "
                          f"{opened.sample_shape}: pass the data the run was trained on with --data-dir")
    return model, dataset


def load(run: str | Path, which: str = "best", device: str = "cpu"):
    """Load a trained model from its run folder: ``model = vaekit.load("runs/fmnist")``.

    The model is in eval mode; ``model.encode(x)`` returns the posterior, ``model.decode(z)`` images.
    """
    return open_run(run).load_model(which, device)
