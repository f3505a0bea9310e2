"""Latent distributions: the approximate posterior q(z|x) and the prior p(z) = N(0, I).

Every latent formula lives here; models never write the KL or a log-density inline.
Units: nats. ``log_prob`` sums over latent dimensions; ``kl_per_dim`` keeps them apart.
"""
from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


class DiagonalGaussian:
    """q(z|x) = N(mean, diag(exp(logvar))), one row per input.

    The encoder predicts ``mean`` and ``logvar`` (log-variance, so the variance is positive by
    construction). Sampling uses the reparameterisation trick z = mean + exp(logvar / 2) * eps,
    eps ~ N(0, I) (Kingma & Welling 2014, section 2.4), so gradients flow to mean and logvar.
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor):
        self.mean = mean
        self.logvar = logvar

    @property
    def std(self) -> torch.Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def deterministic(self) -> bool:
        return False

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
        return -0.5 * ((z - self.mean).pow(2) * torch.exp(-self.logvar) + self.logvar + LOG_2PI).sum(-1)

    def kl_per_dim(self) -> torch.Tensor:
        """KL(q || N(0, I)) per latent dimension, closed form, shape (B, L).

        KL = 0.5 * (mean^2 + var - 1 - log var)   (Kingma & Welling 2014, appendix B).
        """
        return 0.5 * (self.mean.pow(2) + torch.exp(self.logvar) - 1.0 - self.logvar)

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per input, in nats, shape (B,)."""
        return self.kl_per_dim().sum(-1)


class PointPosterior:
    """The 'posterior' of a plain autoencoder: a point mass at the code. It has no KL and no density."""

    def __init__(self, mean: torch.Tensor):
        self.mean = mean
        self.logvar = None

    @property
    def deterministic(self) -> bool:
        return True

    def mode(self) -> torch.Tensor:
        return self.mean

    def sample(self, n: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.mean if n is None else self.mean.expand(n, *self.mean.shape)
