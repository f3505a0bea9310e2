"""The variational autoencoder and the beta-VAE (Kingma & Welling 2014; Higgins et al. 2017).

loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)); with beta = 1 this is the negative ELBO.

The KL comes from the prior object (``vaekit.nn.priors``): closed form per dimension for N(0, I),
the one-sample Monte-Carlo estimate log q(z|x) - log p(z) for a VampPrior (``--prior vamp``).

``--free-bits L`` (Kingma et al. 2016, "Improved variational inference with inverse autoregressive
flow", eq. 15) replaces the KL term by sum_j max(L, KL_j), KL_j the batch-mean KL of dimension j:
no dimension is pushed below L nats, which keeps units from collapsing early in training. The
logged ``kl`` stays the true KL. Every VAE whose loss has a closed-form KL per dimension takes it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vaekit.errors import ConfigError
from vaekit.models.base import AutoEncoder, ModelOutput
from vaekit.models.options import NON_NEGATIVE, ModelOptions, option
from vaekit.nn.distributions import DiagonalGaussian


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


@dataclass
class ELBOTerms:
    """One reparameterised code per input and the batch means of the ELBO's two terms.

    ``kl_per_dim`` is None when the prior's KL is not closed form (then ``kl`` is the estimate)."""

    posterior: DiagonalGaussian
    z: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor | None


class VAE(AutoEncoder):
    variational = True
    generative = True
    priors = ("standard", "vamp")
    evaluation_notes: tuple[str, ...] = ()

    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        if self.free_bits and not self.per_dim_kl:
            raise ConfigError(f"--free-bits needs a KL per dimension, which the {config.prior or self.default_prior} "
                              "prior does not have in closed form")

    @property
    def beta(self) -> float:
        return float(self.options.beta)

    @property
    def free_bits(self) -> float | None:
        """--free-bits where this model declares it (None: off)."""
        return getattr(self.options, "free_bits", None)

    @property
    def per_dim_kl(self) -> bool:
        """Does the loss have a KL per latent dimension (which ``--free-bits`` needs)?"""
        return self.prior.closed_form

    def start_posterior_variance(self, log_var: float) -> bool:
        """Shift the encoder's log-variance outputs by ``log_var`` before training, so posteriors start
        at a variance the data call for rather than at about 1 (the prior's, where the KL is 0 and
        the posterior has nothing to gain from moving). Adam moves a bias by about the learning rate
        per step, so a log-variance that must reach -4 from 0 otherwise takes thousands of steps;
        a Gaussian likelihood's :meth:`~vaekit.nn.likelihoods.Gaussian.initialise` gives the value.
        Returns False (and changes nothing) for encoders without one fused [mean, log-variance] head."""
        if type(self).encode is not VAE.encode:
            return False
        heads = [m for m in self.encoder.modules() if isinstance(m, torch.nn.Linear)]
        if not heads or heads[-1].out_features != 2 * self.latent_dim or heads[-1].bias is None:
            return False
        with torch.no_grad():
            heads[-1].bias[self.latent_dim:] += log_var
        return True

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        # One fused head outputs [mean, logvar]; splitting a view costs nothing.
        mean, logvar = self.encoder(x).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def forward(self, x: torch.Tensor, *, beta: float | None = None, generator: torch.Generator | None = None,
                step: int | None = None, y: torch.Tensor | None = None) -> ModelOutput:
        """One-sample ELBO terms. ``beta`` overrides the configured weight (KL warm-up uses it)."""
        terms = self.elbo_terms(x, generator)
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=terms.recon + weight * self.kl_penalty(terms), recon=terms.recon, kl=terms.kl,
                           kl_per_dim=terms.kl_per_dim)

    def elbo_terms(self, x: torch.Tensor, generator: torch.Generator | None = None,
                   posterior: DiagonalGaussian | None = None, **condition) -> ELBOTerms:
        """The ELBO's terms at one code per input drawn from ``posterior`` (by default ``encode(x)``)."""
        posterior = self.encode(x, **condition) if posterior is None else posterior
        z = posterior.sample(generator=generator)
        recon = -self.log_likelihood(x, z, **condition).mean()
        if self.prior.closed_form:
            kl_per_dim = self.prior.kl_per_dim(posterior).mean(0)
            return ELBOTerms(posterior, z, recon, kl_per_dim.sum(), kl_per_dim)
        return ELBOTerms(posterior, z, recon, self.prior.kl(posterior, z).mean(), None)

    def kl_penalty(self, terms: ELBOTerms) -> torch.Tensor:
        """The KL term of the loss: the KL, or with free bits sum_j max(free_bits, KL_j)."""
        if self.free_bits and terms.kl_per_dim is not None:
            return terms.kl_per_dim.clamp(min=self.free_bits).sum()
        return terms.kl
