"""The conv decoder's last layer, ConvTranspose2d(kernel 4, stride 2, padding 1), in sub-pixel form.

A transposed convolution with stride 2 computes each output phase from a 2x2 neighbourhood of the
input (Shi et al. 2016, "sub-pixel convolution"). For output pixel 2m + r along one axis:

    r = 0 (even): input pixels m - 1 and m, kernel taps 3 and 1;
    r = 1 (odd):  input pixels m and m + 1, kernel taps 2 and 0.

So one ordinary 2x2 convolution over the input padded by one pixel, with 4 * C_out output channels
(one group per phase pair), yields every output pixel; interleaving the groups gives the result.
Block (p, q) of that convolution holds output pixels 2p - 1 and 2p in each axis.

On the CPU, PyTorch's transposed-convolution kernels are slow when the layer has few output
channels, as the decoder's last layer has (C_out = image channels x likelihood parameters, often 1).
The sub-pixel form runs the same arithmetic through the regular convolution kernels; it is used
only on the CPU (benchmarks/ and BENCHMARKS.md "Speed" show the measurement). The module subclasses
``nn.ConvTranspose2d``, so parameters, names and initialisation are PyTorch's and checkpoints are
interchangeable either way; tests/test_speed_paths.py checks it against ``F.conv_transpose2d``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# _TAPS[j][t]: the kernel tap that block phase j (0: output pixel 2p - 1, 1: output pixel 2p) applies
# to the t-th input pixel of its 2x2 window (input pixels p - 1 and p).
_TAPS = ((2, 0), (3, 1))


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, output_padding=p)``, sub-pixel on the CPU."""

    def __init__(self, in_channels: int, out_channels: int, output_padding: int = 0):
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1, output_padding=output_padding)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or output_size is not None:
            return super().forward(x, output_size)
        b, _, h, w = x.shape
        c_out = self.out_channels
        taps = torch.tensor(_TAPS, device=x.device)
        # weight (c_in, c_out, kh, kw) -> (j, k, c_out, c_in, t, u) with kh = taps[j][t], kw = taps[k][u].
        kernel = self.weight[:, :, taps[:, None, :, None], taps[None, :, None, :]]
        kernel = kernel.permute(2, 3, 1, 0, 4, 5).reshape(4 * c_out, self.in_channels, 2, 2)
        bias = self.bias.repeat(4) if self.bias is not None else None
        blocks = F.conv2d(x, kernel, bias, padding=1)                        # (B, 4 C_out, h + 1, w + 1)
        blocks = blocks.view(b, 2, 2, c_out, h + 1, w + 1).permute(0, 3, 4, 1, 5, 2)
        full = blocks.reshape(b, c_out, 2 * h + 2, 2 * w + 2)              # rows -1 .. 2h of the output
        pad_h, pad_w = self.output_padding
        return full[:, :, 1:1 + 2 * h + pad_h, 1:1 + 2 * w + pad_w]
