"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior").

The prior is the encoder's posterior averaged over K learned pseudo-inputs u_k (their eq. 9):

    p(z) = (1/K) sum_k q(z | u_k)

so it is learned jointly with the model and approximates the aggregate posterior, the optimal prior
for the ELBO. Pseudo-inputs live in data space, as sigmoid(logits) in [0, 1] (the paper clips a
linear map with a hardtanh; a sigmoid keeps the gradient everywhere). The KL to a mixture has no
closed form, so the loss uses the one-sample Monte-Carlo estimate log q(z|x) - log p(z) at the same
z as the reconstruction term; ``kl`` in the logs and in evaluation is that estimate too, and
``kl_per_dim`` is the closed-form KL to N(0, I) (only a ranking of dimensions, not the model's KL).
``sample_prior`` picks a pseudo-input uniformly and samples its posterior.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from vaekit.nn.distributions import DiagonalGaussian
from vaekit.models.base import ModelOutput
from vaekit.models.options import ModelOptions, at_least, option
from vaekit.models.vae import VAE, kl_weight_option

MIXTURE_CHUNK_VALUES = 2**24


@dataclass
class VampOptions(ModelOptions):
    beta: float = kl_weight_option(1.0)
    pseudo_inputs: int = option(500, "number of learned pseudo-inputs, the prior's mixture components",
                                check=at_least(1))


def mixture_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log (1/K) sum_k N(z; means_k, diag exp(logvars_k)), summed over dimensions; z (..., L) -> (...).

    Rows of z are taken in chunks so that the (rows, K, L) intermediate stays near 64 MiB.
    """
    mixture = DiagonalGaussian(means, logvars)
    flat = z.reshape(-1, z.shape[-1])
    rows = max(1, MIXTURE_CHUNK_VALUES // (means.shape[0] * means.shape[1]))
    parts = [torch.logsumexp(mixture.log_prob(flat[i:i + rows].unsqueeze(1)), dim=-1)
             for i in range(0, flat.shape[0], rows)]
    return torch.cat(parts).view(z.shape[:-1]) - math.log(means.shape[0])


class VampVAE(VAE):
    standard_prior = False
    closed_form_kl = False
    evaluation_notes = ("the prior is the VampPrior (a mixture over pseudo-inputs): kl is a Monte-Carlo estimate "
                        "over the evaluation's K samples, and kl_per_dim (KL to N(0, I)) is not reported",)

    def __init__(self, config, sample_shape):
        super().__init__(config, sample_shape)
        self.pseudo_logits = nn.Parameter(0.1 * torch.randn(int(self.options.pseudo_inputs), *self.sample_shape))

    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.pseudo_logits)

    def prior_components(self) -> DiagonalGaussian:
        return self.encode(self.pseudo_inputs())

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        components = self.prior_components()
        return mixture_log_prob(z, components.mean, components.logvar)

    def sample_prior(self, n, *, generator=None, temperature=1.0):
        components = self.prior_components()
        device = components.mean.device
        index = torch.randint(components.mean.shape[0], (n,), generator=generator, device=device)
        noise = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return components.mean[index] + temperature * components.std[index] * noise

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        posterior = self.encode(x)
        z = posterior.sample(generator=generator)
        recon = -self.log_likelihood(x, z).mean()
        kl = (posterior.log_prob(z) - self.log_prior(z)).mean()
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=recon + weight * kl, recon=recon, kl=kl)
