"""Opt-in speed settings for training on accelerators: bfloat16 autocast and torch.compile.

Both are off by default. On the 2-core CPU the benchmarks were measured on, ``torch.compile`` made
training slower than eager mode, and bf16 autocast changes the numbers a run computes (the forward
pass runs its matrix products in bfloat16; weights, gradients, the optimizer and every evaluation
stay float32). They exist for GPUs, where both usually pay: ``--precision bf16`` for tensor cores,
``--compile reduce-overhead`` to replay each step as a CUDA graph. BENCHMARKS.md ("Speed") says
what has been measured and where.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from vaekit.training.config import COMPILE_MODES, PRECISIONS
from vaekit.errors import ConfigError

log = logging.getLogger(__name__)


def autocast(precision: str, device: torch.device):
    """The context the training forward pass runs in: bf16 autocast, or nothing for fp32."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def compile_networks(model: torch.nn.Module, mode: str, **options) -> None:
    """Compile the model's encoder and decoder in place (``nn.Module.compile``), or nothing for "off".

    In place, so parameter names and checkpoints are unchanged. The loss, the sampling noise and
    the optimizer stay in eager mode: they are small, and the noise generator would break the graph.
    ``options`` go to ``torch.compile`` (tests pass ``backend="eager"`` to skip code generation).
    """
    if mode not in COMPILE_MODES:
        raise ConfigError(f"unknown --compile {mode!r}: choose one of {', '.join(COMPILE_MODES)}")
    if mode == "off":
        return
    for network in (model.encoder, model.decoder):
        network.compile(mode=mode, **options)
    log.info("compiled the encoder and decoder with torch.compile(mode=%r)", mode)
