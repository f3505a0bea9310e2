"""What the benchmark measures besides the loops themselves: the machine's matrix-multiply speed,
the model's floating-point work, counted from its layers' shapes, and a process's peak memory."""
from __future__ import annotations

import math
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn


def matmul_gflops(size: int = 2048, repeats: int = 3) -> float:
    """fp32 GFLOP/s of a ``size`` x ``size`` matrix product, the best of ``repeats`` (after one warm-up)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def layer_flops(module: nn.Module, sample: torch.Tensor) -> list[tuple[str, int]]:
    """Multiply-add FLOPs (2 per multiply-add) of each Linear / Conv2d / ConvTranspose2d for one input row.

    Counted from the shapes the layers see in one forward pass of ``sample`` (batch of 1):
    Linear 2 * in * out; Conv2d 2 * C_out * H_out * W_out * C_in * k_h * k_w; ConvTranspose2d
    2 * C_in * H_in * W_in * C_out * k_h * k_w (every input pixel meets the whole kernel).
    """
    counts: list[tuple[str, int]] = []

    def hook(layer, inputs, output):
        x = inputs[0]
        if isinstance(layer, nn.Linear):
            counts.append((type(layer).__name__, 2 * layer.in_features * layer.out_features * (x.numel() // x.shape[-1])))
        elif isinstance(layer, nn.ConvTranspose2d):
            kh, kw = layer.kernel_size
            counts.append((type(layer).__name__, 2 * x[0].numel() * layer.out_channels * kh * kw // layer.groups))
        elif isinstance(layer, nn.Conv2d):
            kh, kw = layer.kernel_size
            counts.append((type(layer).__name__, 2 * output[0].numel() * layer.in_channels * kh * kw // layer.groups))

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            module(sample)
    finally:
        for h in handles:
            h.remove()
    return counts


def vae_flops(encoder: nn.Module, decoder: nn.Module, sample_shape, latent_dim: int) -> dict[str, int]:
    """Per image: forward FLOPs of encoder and decoder, a training step's (forward + both backward
    products, less the input gradient of the first layer, which nothing needs), and per importance
    sample of the IW bound (one decoder pass)."""
    enc = layer_flops(encoder, torch.rand(1, *sample_shape))
    dec = layer_flops(decoder, torch.randn(1, latent_dim))
    forward = sum(f for _, f in enc) + sum(f for _, f in dec)
    first = enc[0][1] if enc else 0
    return {"encoder": sum(f for _, f in enc), "decoder": sum(f for _, f in dec),
            "train_step": 3 * forward - first, "iw_sample": sum(f for _, f in dec)}


def peak_rss_mib() -> float | None:
    """This process's peak resident memory (VmHWM) in MiB, or None where /proc is missing."""
    return _status_mib("VmHWM")


def _current_rss_mib() -> float | None:
    """This process's resident memory now (VmRSS) in MiB, or None where /proc is missing."""
    return _status_mib("VmRSS")


def _status_mib(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    """The machine a benchmark ran on. ``cpu_bf16``: whether the CPU has bfloat16 dot products
    (AVX512-BF16 or AMX), which decides whether ``--precision bf16`` pays on it; None without /proc/cpuinfo."""
    from vaekit.cpuinfo import cpu_name
    from vaekit.training.acceleration import bf16_dot_products

    cpu, bf16 = cpu_name(), bf16_dot_products(torch.device("cpu"))
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    from vaekit import __version__

    return {"cpu": cpu, "cpu_bf16": bf16, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "vaekit": __version__,
            "python": platform.python_version(), "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "load_average": list(load) if load else None}
