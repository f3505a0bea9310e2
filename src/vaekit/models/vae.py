"""The variational autoencoder and the beta-VAE (Kingma & Welling 2014; Higgins et al. 2017).

loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || N(0, I)); with beta = 1 this is the negative ELBO.

``--free-bits L`` (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
flow", eq. 15) replaces the KL term by sum_j max(L, KL_j), KL_j the batch-mean KL of dimension j:
no dimension is pushed below L nats, which keeps units from collapsing early in training. The
logged ``kl`` stays the true KL. Every VAE whose loss has a per-dimension KL takes the option.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vaekit.nn.distributions import DiagonalGaussian
from vaekit.models.base import AutoEncoder, ModelOutput
from vaekit.models.options import NON_NEGATIVE, ModelOptions, option


def kl_weight_option(default: float = 1.0, help: str = "weight of the KL term"):
    """``beta``: the trainer ramps a model's beta up from 0 over --kl-warmup."""
    return option(default, help, check=NON_NEGATIVE)


def free_bits_option():
    return option(None, "nats per latent dimension below which the KL is not penalised (Kingma et al. 2016)",
                  check=NON_NEGATIVE)


@dataclass
class VAEOptions(ModelOptions):
    beta: float = kl_weight_option(1.0)
    free_bits: float | None = free_bits_option()


@dataclass
class BetaVAEOptions(VAEOptions):
    beta: float = kl_weight_option(4.0)


class VAE(AutoEncoder):
    variational = True
    generative = True
    evaluation_notes: tuple[str, ...] = ()

    @property
    def beta(self) -> float:
        return float(self.options.beta)

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        # One fused head outputs [mean, logvar]; splitting a view costs nothing.
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def forward(self, x: torch.Tensor, *, beta: float | None = None, generator: torch.Generator | None = None,
                step: int | None = None, y: torch.Tensor | None = None) -> ModelOutput:
        """One-sample ELBO terms. ``beta`` overrides the configured weight (KL warm-up uses it)."""
        _, _, recon, kl_per_dim = self.elbo_terms(x, generator)
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=recon + weight * self.kl_penalty(kl_per_dim), recon=recon, kl=kl_per_dim.sum(),
                           kl_per_dim=kl_per_dim)

    def elbo_terms(self, x: torch.Tensor, generator: torch.Generator | None = None):
        """(posterior, one reparameterised code z per image, batch-mean -log p(x|z), batch-mean KL per dimension)."""
        posterior = self.encode(x)
        z = posterior.sample(generator=generator)
        recon = -self.log_likelihood(x, z).mean()
        return posterior, z, recon, posterior.kl_per_dim().mean(0)

    def kl_penalty(self, kl_per_dim: torch.Tensor) -> torch.Tensor:
        """The KL term of the loss from batch-mean KLs per dimension: their sum, or with free bits
        sum_j max(free_bits, KL_j)."""
        free_bits = getattr(self.options, "free_bits", None)
        if free_bits:
            return kl_per_dim.clamp(min=free_bits).sum()
        return kl_per_dim.sum()
