"""Latent distributions and the formulas on them: every KL, log-density and log-mean-exp in vaekit.

Models never write these inline: a posterior is an object (:class:`DiagonalGaussian`, or the
autoencoder's :class:`PointMass`) that satisfies :class:`Posterior`, priors (``vaekit.nn.priors``)
are built from the same pieces, and the bounds call :func:`log_mean_exp`.

Units: nats. ``log_prob`` sums over the last (latent) dimension; ``kl_per_dim`` keeps it apart.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

LOG_2PI = math.log(2.0 * math.pi)
REDUCED_PRECISION = (torch.bfloat16, torch.float16)   # what autocast gives; the latent maths runs in float32


# -- formulas -----------------------------------------------------------------------------------------
def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag exp(logvar)) per dimension (not summed); broadcasts."""
    return -0.5 * ((z - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)


def gaussian_kl(q_mean: torch.Tensor, q_logvar: torch.Tensor,
                p_mean: torch.Tensor | None = None, p_logvar: torch.Tensor | None = None) -> torch.Tensor:
    """KL(q || p) per dimension between diagonal Gaussians, closed form; p = N(0, I) when omitted.

        KL = 0.5 (logvar_p - logvar_q + (var_q + (mean_q - mean_p)^2) / var_p - 1)

    which for p = N(0, I) is 0.5 (mean^2 + var - 1 - log var) (Kingma & Welling 2014, appendix B).
    """
    if p_mean is None:
        return 0.5 * (q_mean.pow(2) + torch.exp(q_logvar) - 1.0 - q_logvar)
    return 0.5 * (p_logvar - q_logvar + (torch.exp(q_logvar) + (q_mean - p_mean).pow(2)) * torch.exp(-p_logvar) - 1.0)


def pairwise_gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z_i,d; mean_j,d, exp(logvar_j,d)) for every pair (i, j) of rows: (M, L) x (N, L) -> (M, N, L).

    The minibatch estimates of the aggregate posterior (beta-TCVAE) are log-sum-exps over j of it."""
    return gaussian_log_prob(z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0))


def log_mean_exp(values: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """log (1/K) sum_k exp(values_k) along ``dim``, stably (the importance-weighted bounds)."""
    return torch.logsumexp(values, dim) - math.log(values.shape[dim])


# -- posteriors --------------------------------------------------------------------------------------
@runtime_checkable
class Posterior(Protocol):
    """What ``model.encode(x)`` returns: one distribution over codes per input row.

    ``mean`` (B, L) is the code a figure or the explorer shows; ``logvar`` is None for a point mass.
    ``deterministic`` posteriors have no density: ``log_prob`` and ``kl_per_dim`` raise.
    """

    mean: torch.Tensor
    logvar: torch.Tensor | None

    @property
    def deterministic(self) -> bool: ...
    def mode(self) -> torch.Tensor: ...
    def sample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor: ...
    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor: ...
    def log_prob(self, z: torch.Tensor) -> torch.Tensor: ...
    def kl_per_dim(self) -> torch.Tensor: ...


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))), one row per input.

    The encoder predicts ``mean`` and ``logvar`` (log-variance, so the variance is positive by
    construction). Sampling uses the reparameterisation trick z = mean + exp(logvar / 2) * eps,
    eps ~ N(0, I) (Kingma & Welling 2014, section 2.4), so gradients flow to mean and logvar.
    """

    deterministic = False

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        # Under bf16 autocast the heads come out in bfloat16 (8 bits of mantissa: a KL of 20 nats
        # would move in steps of 0.125); the samples, densities and KLs are computed in float32.
        if mean.dtype in REDUCED_PRECISION:
            mean, logvar = mean.float(), logvar.float()
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised sample(s): shape (B, L), or (n, B, L) when ``n`` is given."""
        shape = self.mean.shape if n is None else (n, *self.mean.shape)
        eps = torch.randn(shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.reparameterize(eps)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        """z = mean + std * eps for given standard-normal noise eps (leading sample dims allowed)."""
        return self.mean + self.std * eps

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over latent dimensions; z may carry leading sample dimensions."""
        return gaussian_log_prob(z, self.mean, self.logvar).sum(-1)

    def kl_per_dim(self, other: "DiagonalGaussian | None" = None) -> torch.Tensor:
        """KL(self || other) per latent dimension, closed form, shape (B, L); other = N(0, I) by default."""
        if other is None:
            return gaussian_kl(self.mean, self.logvar)
        return gaussian_kl(self.mean, self.logvar, other.mean, other.logvar)

    def kl(self, other: "DiagonalGaussian | None" = None) -> torch.Tensor:
        """KL(self || other) per input, in nats, shape (B,)."""
        return self.kl_per_dim(other).sum(-1)

    def precision_weighted(self, other: "DiagonalGaussian") -> "DiagonalGaussian":
        """The normalised product of two Gaussians: precisions add and means are precision-weighted
        (Sønderby et al. 2016, eq. 18-19, merging a bottom-up estimate with a top-down prior)."""
        precision_a, precision_b = torch.exp(-self.logvar), torch.exp(-other.logvar)
        var = 1.0 / (precision_a + precision_b)
        return DiagonalGaussian((self.mean * precision_a + other.mean * precision_b) * var, torch.log(var))


class PointMass:
    """The 'posterior' of a deterministic encoder (AE, WAE, VQ-VAE): all mass at the code.

    It has no density and no KL; sampling returns the code itself."""

    deterministic = True
    logvar = None

    def __init__(self, mean: torch.Tensor):
        self.mean = mean

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean if n is None else self.mean.expand(n, *self.mean.shape)

    def reparameterize(self, eps: torch.Tensor) -> torch.Tensor:
        return self.mean.expand(eps.shape)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        raise TypeError("a point mass has no density: a deterministic encoder defines no log q(z|x)")

    def kl_per_dim(self, other=None) -> torch.Tensor:
        raise TypeError("a point mass has no KL to a density: a deterministic encoder defines no KL term")
