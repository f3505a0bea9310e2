"""Encoder and decoder networks, chosen by ``arch``: linear, mlp, gated or conv.

Networks know shapes, not probability. An encoder maps a batch of inputs (B, *sample_shape) to
(B, out_dim), where out_dim is 2 * latent_dim for a VAE (mean and log-variance from one fused head)
or latent_dim for an AE. A decoder maps (B, latent_dim) to (B, P, *sample_shape): P likelihood
parameters per data value.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from vaekit.errors import ConfigError
from vaekit.limits import check_memory
from vaekit.nn.upsampling import SubPixelConvTranspose2d

ARCHS = ("linear", "mlp", "gated", "conv")


class Unflatten(nn.Module):
    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)   # a view unless x comes strided (channels-last)


def _mlp(widths: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-2], widths[1:-1]):
        # In place: saves a buffer per layer; a Linear's backward does not need its output.
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU(inplace=True)]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return layers


class GatedDense(nn.Module):
    """A gated dense layer: h = (W x + b) * sigmoid(V x + c).

    Tomczak & Welling 2018 (VampPrior), section 4 and their code's ``GatedDense`` (which holds the two
    products as two Linear layers, ``h`` and ``g``); the gate plays the part of the MLP's ReLU. Here the
    two products are one Linear of twice the width, rows [W; V], which computes the same thing in one
    matrix product. Initialisation: torch's Linear default (the paper's code uses He's), which for
    either layout draws every weight from the same distribution (it depends on fan-in alone).
    """

    def __init__(self, fan_in: int, fan_out: int):
        super().__init__()
        self.fan_out = fan_out
        self.linear = nn.Linear(fan_in, 2 * fan_out)   # rows [:fan_out] are W, b; rows [fan_out:] are V, c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gate_units(self.linear(x))


def gate_units(h: torch.Tensor) -> torch.Tensor:
    """Gated units from the two products side by side, h = [W x + b, V x + c]: their first half times
    the sigmoid of their second."""
    value, gate = h.chunk(2, dim=-1)
    return value * torch.sigmoid(gate)


def _gated_mlp(widths: list[int]) -> list[nn.Module]:
    """Gated hidden layers, then a plain Linear to the outputs (so a decoder ends Linear -> Unflatten)."""
    layers: list[nn.Module] = [GatedDense(fan_in, fan_out) for fan_in, fan_out in zip(widths[:-2], widths[1:-1])]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    return layers


def dense_stack(arch: str, widths: list[int]) -> nn.Sequential:
    """Hidden layers of the arch's units (gated for ``gated``, Linear + ReLU otherwise), then a plain
    Linear: widths [in, hidden..., out]. For the small networks inside a model (heads, conditional priors)."""
    return nn.Sequential(*(_gated_mlp if arch == "gated" else _mlp)(widths))


def conv_sizes(size: int) -> list[int]:
    """Spatial sizes of the conv stack: halve (kernel 4, stride 2, padding 1) while the side is >= 8.

    28 -> 14 -> 7, 32 -> 16 -> 8 -> 4, 64 -> ... -> 4, 8 -> 4. The decoder walks the list backwards,
    using output_padding to land on odd sides exactly.
    """
    sizes = [size]
    while sizes[-1] >= 8:
        sizes.append(sizes[-1] // 2)
    return sizes


def build_networks(arch: str, sample_shape: tuple[int, ...], latent_dim: int, encoder_out: int,
                   params_per_value: int, hidden: list[int], channels: list[int]) -> tuple[nn.Module, nn.Module]:
    """Return (encoder, decoder) for the given architecture.

    They are first laid out on the meta device (shapes only: nothing allocated, no random number
    drawn), so that widths whose weights cannot fit in memory (``--hidden 1000000000``) are refused,
    naming the size, before torch tries to allocate them.
    """
    args = (arch, sample_shape, latent_dim, encoder_out, params_per_value, hidden, channels)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        planned = _networks(*args)
    weights = sum(p.numel() for network in planned for p in network.parameters())
    check_memory(4 * weights, f"the encoder and decoder's {weights:,} float32 parameters (training needs about four "
                 "times as much again, for gradients and Adam's moments)",
                 "choose a smaller --hidden, --channels or --latent-dim")
    return _networks(*args)


def _networks(arch: str, sample_shape: tuple[int, ...], latent_dim: int, encoder_out: int,
              params_per_value: int, hidden: list[int], channels: list[int]) -> tuple[nn.Module, nn.Module]:
    if latent_dim < 1:
        raise ConfigError(f"latent dimension must be at least 1, not {latent_dim}")
    n_values = math.prod(sample_shape)
    out_shape = (params_per_value, *sample_shape)
    if arch == "linear":
        return (nn.Sequential(nn.Flatten(), nn.Linear(n_values, encoder_out)),
                nn.Sequential(nn.Linear(latent_dim, n_values * params_per_value), Unflatten(out_shape)))
    if arch in ("mlp", "gated"):
        if not hidden or min(hidden) < 1:
            raise ConfigError(f"--hidden needs positive widths, got {hidden}")
        stack = _mlp if arch == "mlp" else _gated_mlp
        encoder = nn.Sequential(nn.Flatten(), *stack([n_values, *hidden, encoder_out]))
        decoder = nn.Sequential(*stack([latent_dim, *reversed(hidden), n_values * params_per_value]), Unflatten(out_shape))
        return encoder, decoder
    if arch == "conv":
        return _conv_networks(sample_shape, latent_dim, encoder_out, params_per_value, channels)
    raise ConfigError(f"unknown --arch {arch!r}: choose one of {', '.join(ARCHS)}")


def _conv_networks(sample_shape, latent_dim, encoder_out, params_per_value, channels):
    if len(sample_shape) != 3:
        raise ConfigError("--arch conv needs images (N, C, H, W); this dataset holds flat vectors: use --arch mlp")
    c, h, w = sample_shape
    if h != w:
        raise ConfigError(f"--arch conv needs square images, got {h}x{w}: resize them or use --arch mlp")
    sizes = conv_sizes(h)
    stages = len(sizes) - 1
    if stages == 0:
        raise ConfigError(f"images of side {h} are too small for --arch conv (need at least 8): use --arch mlp")
    if not channels or min(channels) < 1:
        raise ConfigError(f"--channels needs positive widths, got {channels}")
    widths = [channels[min(i, len(channels) - 1)] for i in range(stages)]
    down: list[nn.Module] = []
    fan_in = c
    for width in widths:
        down += [nn.Conv2d(fan_in, width, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
        fan_in = width
    flat = widths[-1] * sizes[-1] ** 2
    encoder = nn.Sequential(*down, nn.Flatten(), nn.Linear(flat, encoder_out))

    up: list[nn.Module] = [nn.Linear(latent_dim, flat), nn.ReLU(inplace=True), Unflatten((widths[-1], sizes[-1], sizes[-1]))]
    for i in range(stages - 1, -1, -1):
        fan_out = widths[i - 1] if i > 0 else c * params_per_value
        pad = sizes[i] - 2 * sizes[i + 1]
        if i > 0:
            up += [nn.ConvTranspose2d(widths[i], fan_out, 4, stride=2, padding=1, output_padding=pad), nn.ReLU(inplace=True)]
        else:  # few output channels: the same layer in sub-pixel form runs faster on the CPU (upsampling.py)
            up.append(SubPixelConvTranspose2d(widths[i], fan_out, output_padding=pad))
    # Parameters are laid out parameter-major: channel p * C + k holds parameter p of channel k.
    up.append(Unflatten((params_per_value, c, h, w)))
    # Channels-last weights make the convolution kernels run channels-last (faster on the CPU,
    # measured in BENCHMARKS.md "Speed"); the layers still take and return NCHW tensors.
    return encoder.to(memory_format=torch.channels_last), nn.Sequential(*up).to(memory_format=torch.channels_last)
