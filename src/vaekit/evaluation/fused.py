"""log p(x|z) for many codes per image, when the decoder ends in a Linear layer and p(x|z) is a Bernoulli.

The importance-weighted bound decodes K codes per image; at K = 1000 the decoder's last layer and
the likelihood are nearly all of the work. With logits l = W h + b (h: the last hidden layer),

    log p(x|z) = sum_d x_d l_d - softplus(l_d) = h . (W^T x) + b . x - sum_d softplus(l_d).

Three ways to the same numbers, the fastest that applies:

1. the whole loop over the K codes in one C call (native/decoder.c, ``vaekit_mlp_bernoulli``) for a
   decoder Linear -> ReLU -> Linear from a thin code, with MKL's packed GEMM, whose address is
   looked up in the loaded torch library and which must first reproduce torch on a small problem;
2. chunk by chunk with the C kernels for the first layer and the likelihood (one pass over the
   logits for both terms), the product by torch with MKL's packed weight;
3. in torch: the data term as one dot product of length H per code (W^T x once per image) instead of
   a pass over the D logits, and the softplus sum as log(1 + exp(l)) in place (cheap vectorised
   passes where ``F.softplus`` is one slow one; the same absolute error, under 1e-6 per value), a
   row where exp overflows (some l > 88) recomputed with ``F.softplus``.

Measured in BENCHMARKS.md ("Speed"); each equals ``model.log_likelihood`` to float rounding
(tests/test_fused_eval.py).
"""
from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.evaluation import native
from vaekit.nn.likelihoods import Bernoulli
from vaekit.nn.networks import Unflatten


log = logging.getLogger(__name__)

# The whole-loop kernel's chunk: rows (decodes) per product, so that the hidden layer and the logits
# stay in a core's cache between the three steps: 256 measured best of 128-500 (BENCHMARKS.md, "Speed").
WHOLE_ROWS = 256
_BLAS_NAMES = ("cblas_sgemm_pack_get_size", "cblas_sgemm_pack", "cblas_sgemm_compute")
_blas_lock = threading.Lock()
_blas: list = []          # [addresses or None] once looked up and checked


# A first layer with at most this many inputs (the latent code) is computed by the C kernel: torch's
# product with so few inputs per output runs far below the BLAS's speed.
THIN_CODE = 64


def _split_decoder(model) -> tuple[nn.Module, nn.Linear] | None:
    """(everything before the last Linear, the last Linear) when ``model`` scores x with the plain
    ``likelihood.log_prob(decoder(z), x)`` of a Bernoulli and its decoder ends Linear -> Unflatten."""
    from vaekit.models.base import AutoEncoder

    if getattr(type(model), "log_likelihood", None) is not AutoEncoder.log_likelihood:
        return None   # the model scores x its own way (conditional, hierarchical, wrapped)
    decoder = getattr(model, "decoder", None)
    if not isinstance(getattr(model, "likelihood", None), Bernoulli) or not isinstance(decoder, nn.Sequential):
        return None
    if len(decoder) < 2 or not isinstance(decoder[-1], Unflatten) or not isinstance(decoder[-2], nn.Linear):
        return None
    return decoder[:-2], decoder[-2]


def _packed(weight: torch.Tensor, rows: int):
    """MKL's packed copy of ``weight`` for products with ``rows`` rows, or None where there is none."""
    if weight.device.type != "cpu" or weight.dtype != torch.float32 or not torch.backends.mkl.is_available():
        return None
    try:
        return torch.ops.mkl._mkl_reorder_linear_weight(weight, rows)
    except (AttributeError, RuntimeError):
        return None


def _find_blas() -> tuple[int, int, int] | None:
    """Addresses of MKL's packed-GEMM functions in the torch library this process has loaded, or None
    (a torch built without MKL, or one that does not export them)."""
    if not torch.backends.mkl.is_available():
        return None
    for path in sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*")):
        try:
            lib = ctypes.CDLL(str(path))
            return tuple(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value for name in _BLAS_NAMES)
        except (OSError, AttributeError):
            continue
    return None


def blas_for_whole_loop(kernels) -> tuple[int, int, int] | None:
    """The packed-GEMM addresses for ``kernels.mlp_bernoulli``, once it has reproduced torch's result
    on a small problem in this process; else None (then the chunked path runs)."""
    with _blas_lock:
        if not _blas:
            found = _find_blas()
            if found is not None:
                problem = _check_whole_loop(kernels, found)
                if problem:
                    log.warning("the native decoder loop failed its check (%s): vaekit uses the chunked path", problem)
                    found = None
            _blas.append(found)
        return _blas[0]


def _check_whole_loop(kernels, blas) -> str | None:
    """Why the whole-loop kernel cannot be trusted (its result on a small problem against float64
    torch), or None."""
    generator = torch.Generator().manual_seed(0)
    k, batch, latent, hidden, d = 7, 3, 4, 40, 37
    z = torch.randn(k, batch, latent, generator=generator)
    w1, b1 = torch.randn(hidden, latent, generator=generator), torch.randn(hidden, generator=generator)
    w2, b2 = torch.randn(d, hidden, generator=generator) / 4, torch.randn(d, generator=generator)
    x = torch.bernoulli(torch.full((batch, d), 0.5), generator=generator)
    out = torch.empty(k, batch)
    w1t = w1.t().contiguous()
    status = kernels.mlp_bernoulli(z.data_ptr(), k, batch, latent, w1t.data_ptr(), b1.data_ptr(), hidden, w2.data_ptr(),
                                   b2.data_ptr(), d, x.data_ptr(), 2, *blas, out.data_ptr())
    logits = torch.relu(z.double() @ w1.double().t() + b1.double()) @ w2.double().t() + b2.double()
    expected = (x.double() * logits - F.softplus(logits)).sum(-1)
    error = (out.double() - expected).abs().max().item() if status == 0 else float("nan")
    return None if error < 1e-3 else f"status {status}, largest difference {error:.3g}"


class LinearBernoulli:
    """``scorer(z)`` is ``model.log_likelihood`` of the images ``x`` at codes ``z`` of shape (n, B, L),
    image b's codes at [:, b]: the result is (n, B)."""

    def __init__(self, body: nn.Module, last: nn.Linear, x: torch.Tensor, rows: int):
        self.body, self.last, self.rows = body, last, rows
        self.x = x.flatten(1).to(last.weight.dtype).contiguous()
        on_cpu = self.x.device.type == "cpu" and self.x.dtype == torch.float32
        self.kernels = native.decoder_kernels() if on_cpu else None
        self.first = None          # (W^T, b) of a first Linear -> ReLU the kernel computes
        if self.kernels is not None and len(body) == 2 and isinstance(body[1], nn.ReLU) and \
                isinstance(body[0], nn.Linear) and body[0].bias is not None and body[0].in_features <= THIN_CODE:
            self.first = (body[0].weight.t().contiguous(), body[0].bias.contiguous())
        # The whole loop in C (decoder.c, vaekit_mlp_bernoulli): the same sums without a Python step per chunk.
        self.blas = blas_for_whole_loop(self.kernels) if self.first is not None and last.bias is not None else None
        if self.kernels is None:
            self.xw = self.x @ last.weight                  # (B, H): W^T x per image
            self.xb = self.x @ last.bias if last.bias is not None else self.x.new_zeros(len(self.x))
        # The whole loop packs the weight itself; the chunked paths use torch's packed copy.
        self.packed = _packed(last.weight, rows) if self.blas is None else None

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        if self.packed is not None and self.last.bias is not None:
            return torch.ops.mkl._mkl_linear(h, self.packed, self.last.weight, self.last.bias, self.rows)
        return self.last(h)

    def all_codes(self, z: torch.Tensor) -> torch.Tensor | None:
        """log p(x|z) for all codes z (K, B, L) at once, shape (K, B), by the whole-loop kernel; None
        where it does not apply (then call the scorer chunk by chunk)."""
        if self.blas is None:
            return None
        k, batch, latent = z.shape
        z = z.contiguous()
        weight_t, bias = self.first
        w2, b2 = self.last.weight.contiguous(), self.last.bias.contiguous()
        out = torch.empty(k, batch, dtype=z.dtype)
        status = self.kernels.mlp_bernoulli(z.data_ptr(), k, batch, latent, weight_t.data_ptr(), bias.data_ptr(),
                                            weight_t.shape[1], w2.data_ptr(), b2.data_ptr(), w2.shape[0], self.x.data_ptr(),
                                            max(1, WHOLE_ROWS // batch), *self.blas, out.data_ptr())
        if status != 0:
            raise MemoryError("the native decoder loop could not allocate its buffers")
        return out

    def _hidden(self, z: torch.Tensor) -> torch.Tensor:
        """The last hidden layer for codes z (n, B, L), rows image-major: row b * n + s is z[s, b]."""
        n, batch = z.shape[:2]
        if self.first is None:
            return self.body(z.transpose(0, 1).reshape(batch * n, -1))
        weight_t, bias = self.first
        z = z.contiguous()
        h = torch.empty(batch * n, weight_t.shape[1], dtype=z.dtype)
        self.kernels.linear_relu(z.data_ptr(), weight_t.data_ptr(), bias.data_ptr(), batch, n, z.shape[2],
                                 weight_t.shape[1], h.data_ptr())
        return h

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        n, batch = z.shape[:2]
        # Image-major rows, so that each image's data term is one matrix-vector product (bmm).
        h = self._hidden(z)
        if self.kernels is not None:
            logits = self._logits(h).contiguous()
            out = torch.empty(batch * n, dtype=logits.dtype)
            self.kernels.bernoulli_rows(logits.data_ptr(), self.x.data_ptr(), batch, n, logits.shape[1], out.data_ptr())
            return out.view(batch, n).t()
        data_term = torch.bmm(h.view(batch, n, -1), self.xw.unsqueeze(-1)).view(batch, n) + self.xb.unsqueeze(1)
        logits = self._logits(h)
        softplus_sum = logits.exp_().add_(1).log_().sum(1)       # in place: logits are not needed again
        overflow = ~torch.isfinite(softplus_sum)
        if overflow.any():
            softplus_sum[overflow] = F.softplus(self._logits(h[overflow])).sum(1)
        return (data_term - softplus_sum.view(batch, n)).t()


def linear_bernoulli(model, x: torch.Tensor, rows: int) -> LinearBernoulli | None:
    """The fused scorer for ``model`` and images ``x`` (chunks of ``rows`` decodes), or None when the
    model does not have the form it needs (then use ``model.log_likelihood``)."""
    parts = _split_decoder(model)
    return None if parts is None else LinearBernoulli(*parts, x, rows)
