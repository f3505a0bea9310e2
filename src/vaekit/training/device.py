"""Which device a run trains on: ``--device auto`` picks CUDA, then Apple's MPS, then the CPU."""
from __future__ import annotations

import torch

from vaekit.errors import ConfigError


def mps_available() -> bool:
    return torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """The torch device for ``--device NAME``; a device that is asked for but absent is a ConfigError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but this torch sees no CUDA GPU: use --device auto or cpu")
    if name == "mps" and not mps_available():
        raise ConfigError("--device mps was asked for but MPS is not available here: use --device auto or cpu")
    return torch.device(name)
