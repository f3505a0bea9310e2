"""Which device a run trains on: ``--device auto`` picks CUDA, then Apple's MPS, then the CPU."""
from __future__ import annotations

import torch

from vaekit.errors import ConfigError


def mps_available() -> bool:
    return torch.backends.mps.is_available()


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for ``--device NAME`` (also "cuda:1" or a ``torch.device``); a device that is
    asked for but absent, or a name torch does not know, is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda (or cuda:N) or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} was asked for but this torch sees no CUDA GPU: use --device auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name} was asked for but this machine has {torch.cuda.device_count()} CUDA "
                          "GPU(s), numbered from 0")
    if device.type == "mps" and not mps_available():
        raise ConfigError(f"--device {name} was asked for but MPS is not available here: use --device auto or cpu")
    return device
