"""A two-level hierarchical VAE with ladder-style inference (Sønderby et al. 2016, "Ladder
variational autoencoders").

Generative model, top down:  z2 ~ N(0, I),  z1 ~ p(z1 | z2) = N(mu_p(z2), sigma_p^2(z2)),  x ~ p(x | z1).

Inference: a deterministic bottom-up pass d = f(x) gives q(z2 | x) and a bottom-up estimate
N(mu_hat, sigma_hat^2) for z1; going down, that estimate is merged with the generative p(z1 | z2)
by precision weighting (their eq. 17-19):

    sigma_q^2 = 1 / (sigma_hat^-2 + sigma_p^-2),   mu_q = (mu_hat sigma_hat^-2 + mu_p sigma_p^-2) sigma_q^2,

so q(z1 | x, z2) = N(mu_q, sigma_q^2) shares the top-down path with the generative model. The ELBO is

    E_q[ log p(x|z1) + log p(z1|z2) + log p(z2) - log q(z1|x,z2) - log q(z2|x) ],

whose KL part is KL(q(z2|x) || N(0, I)) + E_q(z2|x) KL(q(z1|x,z2) || p(z1|z2)), both closed form
per dimension given the sampled z2. The importance-weighted bound uses the same proposal
q(z1, z2 | x) = q(z2|x) q(z1|x,z2) through ``log_importance_weights``.

The code the latent toolkit sees is the concatenation z = [z1, z2] (``--latent-dim`` in total,
``--top-latent-dim`` of it for z2): ``decode(z)`` decodes z1, ``log_prior(z)`` is log p(z1|z2) + log p(z2),
``sample_prior`` samples ancestrally, and ``encode(x)`` returns q(z1 | x, z2 = E[z2|x]) next to
q(z2|x) (a diagonal summary for plots; evaluation uses the exact two-level proposal).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from vaekit.nn.distributions import DiagonalGaussian, standard_normal_log_prob
from vaekit.nn.networks import build_networks
from vaekit.errors import ConfigError
from vaekit.models.base import ModelOutput
from vaekit.models.options import option
from vaekit.models.vae import VAE, VAEOptions


@dataclass
class HierarchicalVAEOptions(VAEOptions):
    top_latent_dim: int | None = option(None, "dimensions of the top level z2; z1 gets the rest of --latent-dim",
                                        computed="half of --latent-dim")

    def resolve(self, config) -> "HierarchicalVAEOptions":
        top = max(1, config.latent_dim // 2) if self.top_latent_dim is None else self.top_latent_dim
        return replace(self, top_latent_dim=top)

    def validate(self, config) -> None:
        super().validate(config)
        if self.top_latent_dim is not None and not 1 <= self.top_latent_dim < config.latent_dim:
            raise ConfigError(f"--top-latent-dim must be between 1 and --latent-dim - 1 = {config.latent_dim - 1} "
                              f"(hvae splits --latent-dim between its two levels), not {self.top_latent_dim}")


def gaussian_kl_per_dim(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """KL(q || p) per dimension for diagonal Gaussians, closed form:
    0.5 (logvar_p - logvar_q + (var_q + (mean_q - mean_p)^2) / var_p - 1)."""
    return 0.5 * (p.logvar - q.logvar + (torch.exp(q.logvar) + (q.mean - p.mean).pow(2)) * torch.exp(-p.logvar) - 1.0)


def precision_weighted(estimate: DiagonalGaussian, prior: DiagonalGaussian) -> DiagonalGaussian:
    """Merge a bottom-up estimate with the top-down prior by adding precisions (Sønderby et al. eq. 18-19)."""
    precision_e, precision_p = torch.exp(-estimate.logvar), torch.exp(-prior.logvar)
    var = 1.0 / (precision_e + precision_p)
    return DiagonalGaussian((estimate.mean * precision_e + prior.mean * precision_p) * var, torch.log(var))


class HierarchicalVAE(VAE):
    standard_prior = False
    closed_form_kl = False
    evaluation_notes = ("two latent levels: kl is the Monte-Carlo estimate of KL(q(z1,z2|x) || p(z1,z2)) over the "
                        "evaluation's K samples (kl_per_dim is not reported); nll uses the ladder proposal q(z2|x) q(z1|x,z2)",)

    def __init__(self, config, sample_shape):
        super().__init__(config, sample_shape)
        self.top_dim = int(self.options.top_latent_dim)
        self.bottom_dim = config.latent_dim - self.top_dim
        width = max(64, 4 * config.latent_dim)
        # The bottom-up features d come from the configured encoder; the decoder reads z1 only.
        self.encoder, self.decoder = build_networks(config.arch, self.sample_shape, self.bottom_dim, width,
                                                    self.likelihood.params_per_value, config.hidden, config.channels)
        self.bottom_head = nn.Sequential(nn.ReLU(), nn.Linear(width, 2 * self.bottom_dim))
        self.top_head = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2 * self.top_dim))
        self.top_down = nn.Sequential(nn.Linear(self.top_dim, width), nn.ReLU(), nn.Linear(width, 2 * self.bottom_dim))
        self.iw_noise_dim = config.latent_dim

    # -- the two levels ----------------------------------------------------------------------------
    def bottom_up(self, x) -> tuple[DiagonalGaussian, DiagonalGaussian]:
        """(q(z2|x), the bottom-up estimate for z1)."""
        d = self.encoder(x)
        return DiagonalGaussian(*self.top_head(d).chunk(2, -1)), DiagonalGaussian(*self.bottom_head(d).chunk(2, -1))

    def conditional_prior(self, z2) -> DiagonalGaussian:
        """p(z1 | z2)."""
        return DiagonalGaussian(*self.top_down(z2).chunk(2, -1))

    def split(self, z):
        return z[..., :self.bottom_dim], z[..., self.bottom_dim:]

    # -- the toolkit interface ---------------------------------------------------------------------
    def encode(self, x) -> DiagonalGaussian:
        q2, estimate = self.bottom_up(x)
        q1 = precision_weighted(estimate, self.conditional_prior(q2.mean))
        return DiagonalGaussian(torch.cat([q1.mean, q2.mean], -1), torch.cat([q1.logvar, q2.logvar], -1))

    def decoder_params(self, z):
        return self.decoder(z[..., :self.bottom_dim])

    def decode(self, z):
        return self.likelihood.mean(self.decoder_params(z))

    def log_likelihood(self, x, z):
        return self.likelihood.log_prob(self.decoder_params(z), x)

    def log_prior(self, z):
        z1, z2 = self.split(z)
        return self.conditional_prior(z2).log_prob(z1) + standard_normal_log_prob(z2)

    def sample_prior(self, n, *, generator=None, temperature=1.0):
        device = next(self.parameters()).device
        z2 = temperature * torch.randn(n, self.top_dim, generator=generator, device=device)
        p1 = self.conditional_prior(z2)
        z1 = p1.mean + temperature * p1.std * torch.randn(n, self.bottom_dim, generator=generator, device=device)
        return torch.cat([z1, z2], -1)

    # -- bounds ------------------------------------------------------------------------------------
    def log_importance_weights(self, x, noise):
        """log p(x|z1) and log w = log p(x, z1, z2) - log q(z1, z2 | x) for noise (n, B, L), each (n, B)."""
        n, batch = noise.shape[:2]
        q2, estimate = self.bottom_up(x)
        eps1, eps2 = self.split(noise)
        z2 = q2.reparameterize(eps2)                                          # (n, B, L2)
        p1 = self.conditional_prior(z2)
        q1 = precision_weighted(estimate, p1)                                 # broadcasts over n
        z1 = q1.reparameterize(eps1)
        targets = x.unsqueeze(0).expand(n, *x.shape).reshape(n * batch, *x.shape[1:])
        log_px_z = self.likelihood.log_prob(self.decoder(z1.reshape(n * batch, -1)), targets).view(n, batch)
        log_w = (log_px_z + p1.log_prob(z1) + standard_normal_log_prob(z2) - q1.log_prob(z1) - q2.log_prob(z2))
        return log_px_z, log_w

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        q2, estimate = self.bottom_up(x)
        z2 = q2.sample(generator=generator)
        p1 = self.conditional_prior(z2)
        q1 = precision_weighted(estimate, p1)
        z1 = q1.sample(generator=generator)
        recon = -self.log_likelihood(x, z1).mean()
        kl2 = q2.kl_per_dim().mean(0)
        kl1 = gaussian_kl_per_dim(q1, p1).mean(0)
        kl_per_dim = torch.cat([kl1, kl2])
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=recon + weight * self.kl_penalty(kl_per_dim), recon=recon, kl=kl_per_dim.sum(),
                           kl_per_dim=kl_per_dim, extras={"kl_top": kl2.sum(), "kl_bottom": kl1.sum()})
