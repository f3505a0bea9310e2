"""The run folder: everything needed to rebuild, resume and report a training run.

    RUN/
      run.json                     what was trained on what: config, data shape and place, class names,
                                   versions; its "format" marks the folder as vaekit's
      config.json                  the resolved training config (a valid --config file)
      metrics.jsonl                one JSON object per epoch
      checkpoints/best.safetensors weights at the best validation loss
      checkpoints/last.safetensors weights + optimizer + training state (+ the epoch's metrics), for --resume
      eval.json                    written by `vaekit evaluate`
      README.md                    the model card, rewritten from the files above (vaekit.training.card)
      report.html, figures/*.png   written by `vaekit report` and the figure commands
      .lock                        while a command writes into the run (vaekit.training.lock)

Only a folder whose run.json carries the run format counts as a run: ``--overwrite`` replaces such a
folder and removes only the files above, and refuses any other folder that holds files of those names.
How each epoch is committed, and recovered after a kill, is in :mod:`vaekit.training.commit`.
"""
from __future__ import annotations

import json
import shutil
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaekit.training.config import TrainConfig
from vaekit.errors import ConfigError, RunError
from vaekit.files import atomic_write_text, remove_temporaries
from vaekit.training.card import write_card
from vaekit.training.commit import BEST, CHECKPOINTS, LAST, METRICS, history, recover
from vaekit.training.lock import holder_of, lock_run

log = logging.getLogger(__name__)

RUN_FORMAT = "vaekit-run/1"
# What vaekit writes into a run folder, and so what --overwrite may remove (nothing else).
RUN_FILES = ("run.json", "config.json", METRICS, "eval.json", "report.html", "tracking.json")
# Folders that tracking (--log) and export write whole: --overwrite removes them with the run.
OUTPUT_FOLDERS = ("tensorboard", "mlruns", "onnx")
CHECKPOINT_FILES = (LAST, BEST)
FIGURES = "figures"
# The figures the latent-space commands write by default, as RUN/figures/<name>.png.
FIGURE_NAMES = ("reconstruct", "sample", "decode", "interpolate", "interpolate-grid", "traverse", "latent-map", "arithmetic",
                "denoise")


def versions() -> dict[str, str]:
    import torch

    from vaekit import __version__

    return {"vaekit": __version__, "torch": torch.__version__, "python": platform.python_version()}


def describe_data(dataset, location: dict[str, Any] | None = None) -> dict[str, Any]:
    """What run.json records of the data a run trains on; ``location`` is the data's absolute path and
    fingerprint (:func:`vaekit.training.data_location.data_location`; None for named data or arrays)."""
    described = {"name": dataset.name, "source": dataset.source, "sample_shape": list(dataset.sample_shape),
                 "class_names": dataset.class_names, "quantized_8bit": dataset.quantized_8bit,
                 "n_train": len(dataset.train), "n_val": len(dataset.val), "n_test": len(dataset.test),
                 "path": None if location is None else location["path"],
                 "fingerprint": None if location is None else location["fingerprint"]}
    if getattr(dataset, "scaling", None) is not None:
        described["scaling"] = dataset.scaling.to_dict()
    if getattr(dataset, "feature_names", None) is not None:
        described["feature_names"] = list(dataset.feature_names)
    return described


def figure_path(run: str | Path, name: str) -> Path:
    """Where a latent-space command writes its figure by default: ``RUN/figures/<name>.png``."""
    if name not in FIGURE_NAMES:
        raise ValueError(f"{name!r} is not one of vaekit's figure names")
    return Path(run) / FIGURES / f"{name}.png"


def write_run_info(path: Path, config: TrainConfig, data: dict[str, Any], model, launch: dict[str, Any] | None,
                   *, created: str | None = None, hardware: dict[str, Any] | None = None) -> None:
    """Write run.json and config.json (atomically): the only place either is written.

    ``data`` is :func:`describe_data` of the dataset, ``launch`` what a torchrun launch records (None
    for one process); ``created`` keeps the time a resumed run was first created; ``hardware`` is
    where it trained (the trainer's :meth:`~vaekit.training.trainer.Trainer.hardware`)."""
    info: dict[str, Any] = {
        "format": RUN_FORMAT,
        "config": config.to_dict(),
        "data": data,
        "model": {"parameters": sum(p.numel() for p in model.parameters()), "likelihood": model.likelihood.describe()},
        "versions": versions(),
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if hardware is not None:
        info["hardware"] = hardware
    if launch is not None:
        info["distributed"] = launch
    atomic_write_text(path / "run.json", json.dumps(info, indent=2) + "\n")
    atomic_write_text(path / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    write_card(path)  # README.md, the model card (vaekit.training.card)


def is_run(path: Path) -> bool:
    """Whether ``path`` holds vaekit's run marker: a run.json object of the run format."""
    try:
        info = json.loads((Path(path) / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("format") == RUN_FORMAT


def _foreign_files(path: Path) -> list[str]:
    """The names in ``path`` that vaekit would write, in a folder that is not a vaekit run."""
    names = (*RUN_FILES, CHECKPOINTS, FIGURES, *OUTPUT_FOLDERS)
    return [name for name in names if (path / name).exists()]


def check_run_dir(path: str | Path, *, overwrite: bool) -> None:
    """Refuse a file, a folder in use, a run (unless ``overwrite``) and a folder of someone else's files
    that a run would overwrite (always: ``overwrite`` replaces only vaekit's runs). Touches nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file, not a folder: choose another --out")
    if not path.is_dir():
        return
    holder = holder_of(path)
    if holder is not None:
        lock_run(path).release()  # raises the error naming the holder (or takes over a lock just released)
    if is_run(path):
        if not overwrite:
            raise RunError(f"{path} already holds a run: continue it with `vaekit train --resume {path}`, "
                           "pass --overwrite to replace it, or choose another --out")
        return
    foreign = _foreign_files(path)
    if foreign:
        raise RunError(f"{path} holds {', '.join(foreign)} but no vaekit run.json, so vaekit did not write them: "
                       "choose another --out (--overwrite replaces only a vaekit run)")


def prepare_run_dir(path: str | Path, *, overwrite: bool) -> None:
    """Ready ``path`` for a new run, holding its lock: refuse what :func:`check_run_dir` refuses, and
    with ``overwrite`` remove the previous run's files: those vaekit writes, and nothing else."""
    path = Path(path)
    check_run_dir(path, overwrite=overwrite)
    path.mkdir(parents=True, exist_ok=True)
    if is_run(path):
        # run.json, the marker, goes last: a kill midway leaves a folder --overwrite still recognises.
        _empty(path / CHECKPOINTS, CHECKPOINT_FILES)
        _empty(path / FIGURES, tuple(f"{name}.png" for name in FIGURE_NAMES))
        for name in OUTPUT_FOLDERS:
            shutil.rmtree(path / name, ignore_errors=True)
        for name in reversed(RUN_FILES):
            (path / name).unlink(missing_ok=True)
    remove_temporaries(path)


def _empty(folder: Path, names: tuple[str, ...]) -> None:
    """Remove ``names`` and temporary files from ``folder``, then the folder if nothing else is left."""
    if not folder.is_dir():
        return
    for name in names:
        (folder / name).unlink(missing_ok=True)
    remove_temporaries(folder)
    left = list(folder.iterdir())
    if left:
        log.warning("kept %d file(s) in %s that vaekit did not name (e.g. %s)", len(left), folder, left[0].name)
    else:
        folder.rmdir()


def open_for_writing(path: str | Path, *, command: str | None = None):
    """Lock a run folder for writing and finish any commit a killed process left half done
    (:func:`vaekit.training.commit.recover`); returns the lock, to release when done (or use ``with``).
    :class:`RunError` if ``path`` is not a run, or another process writes into it."""
    open_run(path)
    lock = lock_run(path, command=command)
    try:
        recover(Path(path))
    except BaseException:
        lock.release()
        raise
    return lock


@dataclass
class Run:
    """A run folder opened for reading."""

    path: Path
    info: dict[str, Any]

    @property
    def config(self) -> TrainConfig:
        try:
            return TrainConfig.from_dict(self.info["config"], source=str(self.path / "run.json")).resolved()
        except ConfigError as exc:
            raise RunError(f"{self.path / 'run.json'} holds an invalid config ({exc}): train the run again") from None

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.info["data"]["sample_shape"])

    @property
    def class_names(self) -> list[str] | None:
        return self.info["data"].get("class_names")

    @property
    def feature_names(self) -> list[str] | None:
        """A table's feature names (None for images)."""
        return self.info["data"].get("feature_names")

    @property
    def scaling(self):
        """The standardisation of real-valued data (:class:`vaekit.data.scaling.Scaling`), else None."""
        from vaekit.data.scaling import Scaling

        stored = self.info["data"].get("scaling")
        return None if stored is None else Scaling.from_dict(stored, self.sample_shape)

    def history(self) -> list[dict[str, Any]]:
        """One record per epoch from metrics.jsonl; damaged lines are skipped with a warning in the log."""
        return history(self.path / METRICS)

    def evaluation(self) -> dict[str, Any] | None:
        """eval.json, or None before `vaekit evaluate`; :class:`RunError` if it is not a JSON object."""
        file = self.path / "eval.json"
        if not file.exists():
            return None
        try:
            result = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RunError(f"{file} is damaged ({exc}): evaluate the run again (`vaekit evaluate {self.path}`)") from None
        if not isinstance(result, dict):
            raise RunError(f"{file} holds a {type(result).__name__}, not an object: evaluate the run again "
                           f"(`vaekit evaluate {self.path}`)")
        return result

    def checkpoint_path(self, which: str = "best") -> Path:
        if which not in ("best", "last"):
            raise RunError(f"unknown checkpoint {which!r}: use best or last")
        return self.path / CHECKPOINTS / f"{which}.safetensors"

    def load_model(self, which: str = "best", device: str = "cpu"):
        from vaekit.training.checkpoint import load_checkpoint
        from vaekit.models import build_model

        model = build_model(self.config, self.sample_shape, class_names=self.class_names)
        load_checkpoint(self.checkpoint_path(which), device=device).load_model(model)
        model.scaling, model.feature_names = self.scaling, self.feature_names
        return model.to(device).eval()


def open_run(path: str | Path) -> Run:
    """A run folder opened for reading; :class:`RunError` if it is missing, not a run, or damaged."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist")
    file = path / "run.json"
    if not file.is_file():
        raise RunError(f"{path} is not a vaekit run (no run.json): pass the folder given to `vaekit train --out`")
    try:
        info = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunError(f"{file} is corrupt or not from this vaekit ({str(exc).splitlines()[0]}): train the run again") from None
    problem = _run_info_problem(info)
    if problem is not None:
        raise RunError(f"{file} is corrupt or not from this vaekit ({problem}): train the run again")
    run = Run(path, info)
    run.config  # noqa: B018  (checks it now, with a one-line error, rather than in the middle of a command)
    return run


def _run_info_problem(info: Any) -> str | None:
    """What makes a parsed run.json unusable, or None."""
    if not isinstance(info, dict):
        return f"a {type(info).__name__}, not an object"
    if info.get("format") != RUN_FORMAT:
        return f"format {info.get('format')!r}"
    if not isinstance(info.get("config"), dict):
        return f"its config is {type(info.get('config')).__name__}, not an object"
    data = info.get("data")
    if not isinstance(data, dict):
        return f"its data is {type(data).__name__}, not an object"
    shape = data.get("sample_shape")
    if not (isinstance(shape, list) and shape and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)):
        return f"its data.sample_shape is {shape!r}, not a list of positive whole numbers"
    names = data.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        return "its data.class_names is not a list of names"
    return None


def config_dataset(config: TrainConfig, *, data_dir: str | None = None, progress=None):
    """The dataset a config names, split exactly as training split it (``data_dir`` overrides the config's)."""
    from vaekit.data import load_dataset

    return load_dataset(config.dataset, data_dir=data_dir or config.data_dir, val_fraction=config.val_fraction,
                        val_size=config.val_size, image_size=config.image_size, progress=progress, stream=config.stream, cache=config.cache,
                        max_memory=config.max_memory, standardize=config.standardize, columns=config.columns,
                        label_column=config.label_column, missing=config.missing)


def run_dataset(run: Run, *, dataset: str | None = None, data_dir: str | None = None, progress=None):
    """The data ``run`` was trained on, split as training split them, found as
    :mod:`vaekit.training.data_location` describes (``dataset``: the path or name given by the user)."""
    from vaekit.training.data_location import find_data

    config = run.config
    found = find_data(run.path, config.dataset, run.info["data"], dataset=dataset, data_dir=data_dir)
    config.dataset = found
    loaded = config_dataset(config, data_dir=data_dir, progress=progress)
    if tuple(loaded.sample_shape) != run.sample_shape:
        raise ConfigError(f"the dataset's shape {tuple(loaded.sample_shape)} differs from the run's "
                          f"{run.sample_shape}: pass the data the run was trained on with --dataset PATH or --data-dir")
    return loaded


def load_model_and_data(run: str | Path, *, data_dir: str | None = None, device: str = "cpu", dataset: str | None = None):
    """``(model, dataset)`` for a run folder: its best weights and the data it was trained on, same splits
    (``dataset`` names the data when they moved, or for a run trained from arrays)."""
    from vaekit.training.device import resolve_device

    opened = open_run(run)
    data = run_dataset(opened, dataset=dataset, data_dir=data_dir)
    model = opened.load_model("best", device=resolve_device(device))
    return model, data


def load(run: str | Path, which: str = "best", device: str = "cpu"):
    """Load a trained model from its run folder: ``model = vaekit.load("runs/fmnist")``.

    The model is in eval mode; ``model.encode(x)`` returns the posterior, ``model.decode(z)`` images.
    ``device`` is cpu, cuda (or cuda:N), mps or auto; one this machine lacks is a ConfigError.
    """
    from vaekit.training.device import resolve_device

    return open_run(run).load_model(which, resolve_device(device))
