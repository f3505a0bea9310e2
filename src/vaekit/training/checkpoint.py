"""Checkpoints in safetensors: tensors in the file, everything else as JSON in its metadata.

Loading never unpickles: safetensors holds raw tensors only, and the training state (epoch, step,
optimizer hyper-parameters, best validation loss) is JSON. Writes go to a temporary file in the
same folder and are moved into place with ``os.replace``, so a checkpoint is either the old one or
the new one, never half of each, even if the process dies mid-write. A full disk is a one-line
:class:`~vaekit.errors.StorageError` that leaves the previous checkpoint in place.

The metadata is checked when read: a checkpoint whose training state is not what vaekit wrote (an
epoch of ``"abc"``, a missing key) is a :class:`~vaekit.errors.RunError`, never a traceback.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from vaekit.errors import RunError
from vaekit.files import replacing, storage_error

META_KEY = "vaekit"
# The training state every checkpoint records, and the type of each value.
STATE_TYPES = {"epoch": int, "step": int, "best_val_loss": float, "best_epoch": int, "epochs_since_best": int}


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def save_checkpoint(path: Path, model: torch.nn.Module, state: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None,
                    auxiliary_optimizer: torch.optim.Optimizer | None = None,
                    record: dict[str, Any] | None = None) -> None:
    """Write model weights (keys ``model.*``), optionally the optimizer (``optim.*``) and a model's
    auxiliary optimizer (``aux_optim.*``, e.g. FactorVAE's discriminator), atomically.

    ``record`` is the epoch's metrics line, kept in the metadata so that a run killed before the line
    reached metrics.jsonl can still write it (:mod:`vaekit.training.commit`)."""
    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"state": state}
    if record is not None:
        meta["record"] = record
    for prefix, key, opt_object in (("optim", "optimizer", optimizer),
                                     ("aux_optim", "auxiliary_optimizer", auxiliary_optimizer)):
        if opt_object is None:
            continue
        opt = opt_object.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, slots in opt["state"].items():
            for name, value in slots.items():
                if torch.is_tensor(value):
                    tensors[f"{prefix}.{index}.{name}"] = _cpu(value)
                else:
                    scalars.setdefault(str(index), {})[name] = value
        meta[key] = {"param_groups": opt["param_groups"], "scalars": scalars}
    for name, value in (extra_tensors or {}).items():
        tensors[f"extra.{name}"] = _cpu(value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_checkpoint(path, tensors, meta)


def write_checkpoint(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` and the JSON ``meta`` to ``path`` atomically (a full disk: StorageError)."""
    with replacing(path) as tmp:
        try:
            save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)})
        except SafetensorError as exc:  # safetensors reports the OS error in its text
            raise storage_error(Path(path), exc) or RunError(
                f"cannot write checkpoint {path}: {str(exc).splitlines()[0]}") from None


class Checkpoint:
    """A loaded checkpoint: tensors by group, and the JSON metadata."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]):
        self.tensors = tensors
        self.meta = meta

    @property
    def state(self) -> dict[str, Any]:
        """The training state (epoch, step, best validation loss ...), checked when loaded."""
        return self.meta.get("state", {})

    @property
    def record(self) -> dict[str, Any] | None:
        """The metrics line of the epoch this checkpoint was written after (None in checkpoints of older vaekit versions)."""
        return self.meta.get("record")

    def group(self, prefix: str) -> dict[str, torch.Tensor]:
        prefix = prefix + "."
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def load_model(self, model: torch.nn.Module) -> None:
        weights = {model.renamed_weights.get(k, k): v for k, v in self.group("model").items()}
        expected = model.state_dict()
        if set(weights) != set(expected) or any(weights[k].shape != expected[k].shape for k in expected):
            raise RunError("the checkpoint's weights do not match the model in config.json: the run folder is inconsistent")
        model.load_state_dict(weights)

    def load_optimizer(self, optimizer: torch.optim.Optimizer, *, auxiliary: bool = False) -> None:
        """Restore the optimizer, or with ``auxiliary`` the model's auxiliary optimizer."""
        prefix, key = ("aux_optim", "auxiliary_optimizer") if auxiliary else ("optim", "optimizer")
        info = self.meta.get(key)
        if info is None:
            raise RunError(f"this checkpoint holds no {key.replace('_', ' ')} state, so training cannot resume from it")
        try:
            state: dict[int, dict[str, Any]] = {}
            for tensor_name, value in self.group(prefix).items():
                index, name = tensor_name.split(".", 1)
                state.setdefault(int(index), {})[name] = value
            for index, scalars in info["scalars"].items():
                state.setdefault(int(index), {}).update(scalars)
            optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RunError(f"this checkpoint's {key.replace('_', ' ')} state is damaged ({type(exc).__name__}: {exc}): "
                           "train the run again, or resume from a backup of last.safetensors") from None
        mismatch = _state_mismatch(optimizer)
        if mismatch is not None:
            raise RunError(f"this checkpoint's {key.replace('_', ' ')} state does not fit the model in config.json "
                           f"({mismatch}): the run folder is inconsistent")


# Per-parameter state tensors shaped as their parameter (Adam, AdamW, SGD with momentum).
_PARAMETER_SHAPED = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


def _state_mismatch(optimizer: torch.optim.Optimizer) -> str | None:
    """What in the loaded state is shaped unlike its parameter, or None. torch pairs state with
    parameters by position and does not check shapes; its fused Adam then reads past the end of a
    smaller buffer (a segmentation fault), so the check comes before the first step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, param in enumerate(params):
        for name, value in optimizer.state.get(param, {}).items():
            if name in _PARAMETER_SHAPED and torch.is_tensor(value) and value.shape != param.shape:
                return (f"{name} of parameter {index} is {tuple(value.shape)}, the parameter "
                        f"{tuple(param.shape)}")
    return None


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} is missing: the run is incomplete (train it again, or --resume if last.safetensors exists)")
    try:
        tensors = load_file(str(path), device=str(device))
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise RunError(f"checkpoint {path} is corrupt ({str(exc).splitlines()[0]}): retrain, or restore it from a backup") from None
    problem = metadata_problem(meta)
    if problem is not None:
        raise RunError(f"checkpoint {path} has damaged metadata ({problem}): retrain, or restore it from a backup")
    return Checkpoint(tensors, meta)


def load_metadata(path: Path) -> dict[str, Any]:
    """A checkpoint's JSON metadata alone, without reading its tensors (checked as :func:`load_checkpoint` does)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunError(f"checkpoint {path} is corrupt ({str(exc).splitlines()[0]}): retrain, or restore it from a backup") from None
    problem = metadata_problem(meta)
    if problem is not None:
        raise RunError(f"checkpoint {path} has damaged metadata ({problem}): retrain, or restore it from a backup")
    return meta


def metadata_problem(meta: Any) -> str | None:
    """What is wrong with a checkpoint's JSON metadata, or None. A state key may be missing (old files)."""
    if not isinstance(meta, dict):
        return f"the metadata is a {type(meta).__name__}, not an object"
    state = meta.get("state", {})
    if not isinstance(state, dict):
        return f"the state is a {type(state).__name__}, not an object"
    for key, kind in STATE_TYPES.items():
        if key not in state:
            continue
        value = state[key]
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return f"{key} is {value!r}, not a whole number >= 0"
        if kind is float and not (isinstance(value, (int, float)) and not isinstance(value, bool) and value == value):
            return f"{key} is {value!r}, not a number"
    record = meta.get("record")
    if record is not None and not (isinstance(record, dict) and record.get("epoch") == state.get("epoch")):
        return "its metrics record does not belong to its epoch"
    return None


def training_state(checkpoint: Checkpoint, path: Path) -> dict[str, Any]:
    """The full training state a resume needs, or :class:`RunError` naming the missing key."""
    missing = [key for key in STATE_TYPES if key not in checkpoint.state]
    if missing:
        raise RunError(f"checkpoint {path} lacks {', '.join(missing)} in its training state, so training cannot "
                       "resume from it: train the run again")
    return checkpoint.state
