"""log p(x|z) for many codes per image, when the decoder ends in a Linear layer and p(x|z) is a Bernoulli.

The importance-weighted bound decodes K codes per image; at K = 1000 the decoder's last layer and
the likelihood are nearly all of the work. With logits l = W h + b (h: the last hidden layer),

    log p(x|z) = sum_d x_d l_d - softplus(l_d) = h . (W^T x) + b . x - sum_d softplus(l_d).

Three ways to the same numbers, the fastest that applies:

1. the loop over the K codes in chunks of about WHOLE_ROWS decodes, on buffers allocated once per
   batch, for a decoder Linear -> ReLU -> Linear from a thin code: the first layer by a C kernel
   (native/decoder.c), the last layer's product by ``torch.mm(..., out=)`` into the preallocated
   logits, and the likelihood with the bias added on the way by a second C kernel (one pass over the
   logits), which writes each chunk's sums straight into the (B, K) result;
2. chunk by chunk with the C kernels for the first layer and the likelihood, the product by torch;
3. in torch: the data term as one dot product of length H per code (W^T x once per image) instead of
   a pass over the D logits, and the softplus sum as log(1 + exp(l)) in place (cheap vectorised
   passes where ``F.softplus`` is one slow one; the same absolute error, under 1e-6 per value), a
   row where exp overflows (some l > 88) recomputed with ``F.softplus``.

Only public interfaces: the products are torch's own operators, and the C kernels touch nothing but
contiguous float32 tensors allocated here, by ``data_ptr()``. (An earlier version handed the C loop
MKL's packed-GEMM functions, looked up by address inside torch's library, and used torch's private
MKL operators: a torch or MKL release could change those under it and crash the process.)

Measured in BENCHMARKS.md ("Speed"); each equals ``model.log_likelihood`` to float rounding
(tests/test_fused_eval.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.evaluation import native
from vaekit.nn.likelihoods import Bernoulli
from vaekit.nn.networks import Unflatten


# The whole loop's chunk: rows (decodes) per product, so that the hidden layer and the logits stay in
# a core's cache between the three steps (BENCHMARKS.md, "Speed").
WHOLE_ROWS = 256
_FLOAT = 4   # bytes per float32, for pointers into the buffers


# A first layer with at most this many inputs (the latent code) is computed by the C kernel: torch's
# product with so few inputs per output runs far below the BLAS's speed.
THIN_CODE = 64


def _split_decoder(model) -> tuple[nn.Module, nn.Linear] | None:
    """(everything before the last Linear, the last Linear) when ``model`` scores x with the plain
    ``likelihood.log_prob(decoder(z), x)`` of a Bernoulli and its decoder ends Linear -> Unflatten."""
    from vaekit.models.base import AutoEncoder

    if not isinstance(model, AutoEncoder) or type(model).log_likelihood is not AutoEncoder.log_likelihood \
            or type(model).decoder_params is not AutoEncoder.decoder_params:
        return None   # the model scores x its own way (conditional, hierarchical, wrapped)
    decoder = model.decoder
    if not isinstance(model.likelihood, Bernoulli) or not isinstance(decoder, nn.Sequential):
        return None
    if len(decoder) < 2 or not isinstance(decoder[-1], Unflatten) or not isinstance(decoder[-2], nn.Linear):
        return None
    return decoder[:-2], decoder[-2]


class LinearBernoulli:
    """``scorer(z)`` is ``model.log_likelihood`` of the images ``x`` at codes ``z`` of shape (n, B, L),
    image b's codes at [:, b]: the result is (n, B)."""

    def __init__(self, body: nn.Module, last: nn.Linear, x: torch.Tensor):
        self.body, self.last = body, last
        self.x = x.flatten(1).to(last.weight.dtype).contiguous()
        on_cpu = self.x.device.type == "cpu" and self.x.dtype == torch.float32
        self.kernels = native.decoder_kernels() if on_cpu else None
        self.first = None          # (W^T, b) of a first Linear -> ReLU the kernel computes
        if self.kernels is not None and len(body) == 2 and isinstance(body[1], nn.ReLU) and \
                isinstance(body[0], nn.Linear) and body[0].bias is not None and body[0].in_features <= THIN_CODE:
            self.first = (body[0].weight.t().contiguous(), body[0].bias.contiguous())
        if self.kernels is None:
            self.xw = self.x @ last.weight                  # (B, H): W^T x per image
            self.xb = self.x @ last.bias if last.bias is not None else self.x.new_zeros(len(self.x))
        else:
            # The likelihood kernel adds the bias, so the product is a plain one; W^T as a view (the
            # BLAS reads it transposed in place, as fast here as a transposed copy).
            self.weight_t = last.weight.t()
            self.bias = last.bias.contiguous() if last.bias is not None else None

    def _bias_ptr(self) -> int | None:
        return None if self.bias is None else self.bias.data_ptr()

    @torch.no_grad()   # torch.mm(out=) refuses tensors that track gradients; the kernels ignore autograd anyway
    def all_codes(self, z: torch.Tensor) -> torch.Tensor | None:
        """log p(x|z) for all codes z (K, B, L) at once, shape (K, B), by the whole loop; None where it
        does not apply (then call the scorer chunk by chunk)."""
        if self.first is None:
            return None
        k, batch, latent = z.shape
        z = z.contiguous()
        weight_t, bias = self.first
        hidden, d = weight_t.shape[1], self.x.shape[1]
        per_chunk = max(1, min(k, WHOLE_ROWS // batch))
        h = torch.empty(per_chunk * batch, hidden, dtype=z.dtype)
        logits = torch.empty(per_chunk * batch, d, dtype=z.dtype)
        out = torch.empty(batch, k, dtype=z.dtype)                    # image-major: each chunk's sums land in place
        linear_relu, bernoulli_rows = self.kernels.linear_relu, self.kernels.bernoulli_rows
        z_ptr, out_ptr, x_ptr, b2_ptr = z.data_ptr(), out.data_ptr(), self.x.data_ptr(), self._bias_ptr()
        w1_ptr, b1_ptr, h_ptr, logits_ptr = weight_t.data_ptr(), bias.data_ptr(), h.data_ptr(), logits.data_ptr()
        full = (h, logits)
        for s0 in range(0, k, per_chunk):
            n = min(per_chunk, k - s0)
            h_n, logits_n = full if n == per_chunk else (h[:n * batch], logits[:n * batch])
            linear_relu(z_ptr + s0 * batch * latent * _FLOAT, w1_ptr, b1_ptr, batch, n, latent, hidden, h_ptr)
            torch.mm(h_n, self.weight_t, out=logits_n)
            bernoulli_rows(logits_ptr, b2_ptr, x_ptr, batch, n, d, out_ptr + s0 * _FLOAT, k)
        return out.t()

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
            logits = torch.mm(h, self.weight_t)
            out = torch.empty(batch, n, dtype=logits.dtype)
            self.kernels.bernoulli_rows(logits.data_ptr(), self._bias_ptr(), self.x.data_ptr(), batch, n, logits.shape[1],
                                        out.data_ptr(), n)
            return out.t()
        data_term = torch.bmm(h.view(batch, n, -1), self.xw.unsqueeze(-1)).view(batch, n) + self.xb.unsqueeze(1)
        logits = self.last(h)
        softplus_sum = logits.exp_().add_(1).log_().sum(1)       # in place: logits are not needed again
        overflow = ~torch.isfinite(softplus_sum)
        if overflow.any():
            softplus_sum[overflow] = F.softplus(self.last(h[overflow])).sum(1)
        return (data_term - softplus_sum.view(batch, n)).t()


def linear_bernoulli(model, x: torch.Tensor) -> LinearBernoulli | None:
    """The fused scorer for ``model`` and images ``x``, or None when the model does not have the form
    it needs (then use ``model.log_likelihood``)."""
    parts = _split_decoder(model)
    return None if parts is None else LinearBernoulli(*parts, x)
