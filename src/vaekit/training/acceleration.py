"""Opt-in speed settings for training on accelerators: bfloat16 autocast and torch.compile.

Both are off by default. On the 2-core CPU the benchmarks were measured on, ``torch.compile`` made
training slower than eager mode, and bf16 autocast changes the numbers a run computes (the forward
pass runs its matrix products in bfloat16; weights, gradients, the optimizer and every evaluation
stay float32). They exist for GPUs, where both usually pay: ``--precision bf16`` for tensor cores,
``--compile reduce-overhead`` to replay each step as a CUDA graph. BENCHMARKS.md ("Speed") says
what has been measured and where.

bf16 pays only where the hardware multiplies bfloat16 matrices: a CUDA GPU of compute capability
8.0 or newer, or a CPU with AVX512-BF16 or AMX (x86) or BF16 (Arm). Elsewhere torch emulates the
products and they are slower than float32: on a 2-core AMD EPYC with AVX2 only, a training step of
the recipes' models took 9 to 14 times as long in bf16. :func:`bf16_dot_products` tells the two
apart, ``--precision auto`` picks bf16 only where it pays, and a run asked for bf16 where it does not
is warned.
"""
from __future__ import annotations

import contextlib
import logging

import torch

from vaekit.cpuinfo import cpu_flags, cpu_name
from vaekit.training.config import COMPILE_MODES, PRECISIONS
from vaekit.errors import ConfigError

log = logging.getLogger(__name__)


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")   # x86's two, and Arm's (its "Features" line)


def bf16_dot_products(device: torch.device, cpuinfo: str | None = None) -> bool | None:
    """Whether ``device`` multiplies bfloat16 matrices in hardware, so that ``--precision bf16`` can
    pay: CUDA asks torch (no emulation counted), a CPU reads its flags (``cpuinfo``: the text of
    /proc/cpuinfo, read when not given). None where it cannot tell: MPS, or a CPU whose flags are
    not readable."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type != "cpu":
        return None
    flags = cpu_flags(cpuinfo)
    if flags is None:
        return None
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run trains in: ``auto`` is bf16 where the device has bfloat16 dot products
    and fp32 elsewhere (also where it cannot tell); fp32 and bf16 are themselves. bf16 asked for on
    a device without bfloat16 dot products is kept, with a warning: it is several times slower there."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    has_bf16 = bf16_dot_products(device)
    if precision == "auto":
        chosen = "bf16" if has_bf16 else "fp32"
        log.info("--precision auto: %s (%s)", chosen, _hardware(device, has_bf16))
        return chosen
    if precision == "bf16" and has_bf16 is False:
        log.warning("--precision bf16 on %s, which has no bfloat16 dot products: torch emulates them, and a training "
                    "step is several times slower than in fp32 (9 to 14 times for the recipes' models on a 2-core "
                    "AMD EPYC); use --precision fp32 or auto", _device_name(device))
    return precision


def describe_hardware(device: torch.device, precision: str) -> dict:
    """What a run records of where it trained: the device type and name, whether it has bfloat16 dot
    products (None: cannot tell), the CPU threads torch uses, and the precision it trained in."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "cpu":
        name = cpu_name()
    else:
        name = device.type
    return {"device": device.type, "name": name, "bf16_dot_products": bf16_dot_products(device),
            "threads": torch.get_num_threads(), "precision": precision}


def _device_name(device: torch.device) -> str:
    return f"this CPU ({cpu_name()})" if device.type == "cpu" else f"this GPU ({torch.cuda.get_device_name(device)})"


def _hardware(device: torch.device, has_bf16: bool | None) -> str:
    if has_bf16 is None:
        return f"vaekit cannot tell whether {device.type} has bfloat16 dot products"
    return f"{_device_name(device)} {'has' if has_bf16 else 'has no'} bfloat16 dot products"


def autocast(precision: str, device: torch.device):
    """The context the training forward pass runs in: bf16 autocast, or nothing for fp32 (a
    precision already resolved by :func:`resolve_precision`: not ``auto``)."""
    if precision not in ("fp32", "bf16"):
        raise ConfigError(f"unknown precision {precision!r} for autocast: resolve it first (fp32 or bf16)")
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
