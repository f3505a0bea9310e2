"""Checkpoints in safetensors: tensors in the file, everything else as JSON in its metadata.

Loading never unpickles: safetensors holds raw tensors only, and the training state (epoch, step,
optimizer hyper-parameters, best validation loss) is JSON. Writes go to a temporary file in the
same folder and are moved into place with ``os.replace``, so a checkpoint is either the old one or
the new one, never half of each, even if the process dies mid-write.
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
from vaekit.files import replacing

META_KEY = "vaekit"


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous().clone()


def save_checkpoint(path: Path, model: torch.nn.Module, state: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None,
                    extra_tensors: dict[str, torch.Tensor] | None = None,
                    auxiliary_optimizer: torch.optim.Optimizer | None = None) -> None:
    """Write model weights (keys ``model.*``), optionally the optimizer (``optim.*``) and a model's
    auxiliary optimizer (``aux_optim.*``, e.g. FactorVAE's discriminator), atomically."""
    tensors = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"state": state}
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
    with replacing(path) as tmp:
        save_file(tensors, tmp, metadata={META_KEY: json.dumps(meta)})


class Checkpoint:
    """A loaded checkpoint: tensors by group, and the JSON metadata."""

    def __init__(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]):
        self.tensors = tensors
        self.meta = meta

    @property
    def state(self) -> dict[str, Any]:
        return self.meta.get("state", {})

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
        state: dict[int, dict[str, Any]] = {}
        for key, value in self.group(prefix).items():
            index, name = key.split(".", 1)
            state.setdefault(int(index), {})[name] = value
        for index, scalars in info["scalars"].items():
            state.setdefault(int(index), {}).update(scalars)
        optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


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
    return Checkpoint(tensors, meta)
