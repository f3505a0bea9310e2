"""The variational autoencoder and the beta-VAE (Kingma & Welling 2014; Higgins et al. 2017).

loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || N(0, I)); with beta = 1 this is the negative ELBO.
"""
from __future__ import annotations

import torch

from ..distributions import DiagonalGaussian
from .base import AutoEncoder, ModelOutput


class VAE(AutoEncoder):
    variational = True

    @property
    def beta(self) -> float:
        return float(self.config.beta)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        # One fused head outputs [mean, logvar]; splitting a view costs nothing.
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def forward(self, x: torch.Tensor, *, beta: float | None = None, generator: torch.Generator | None = None) -> ModelOutput:
        """One-sample ELBO terms. ``beta`` overrides the configured weight (KL warm-up uses it)."""
        posterior = self.encode(x)
        z = posterior.sample(generator=generator)
        recon = -self.log_likelihood(x, z).mean()
        kl_per_dim = posterior.kl_per_dim().mean(0)
        kl = kl_per_dim.sum()
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=recon + weight * kl, recon=recon, kl=kl, kl_per_dim=kl_per_dim)
