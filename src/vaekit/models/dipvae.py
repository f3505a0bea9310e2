"""DIP-VAE (Kumar et al. 2018, "Variational inference of disentangled latent concepts from unlabeled
observations").

The ELBO plus a penalty that pushes a covariance of the aggregate posterior towards the identity:

    lambda_od sum_{i != j} Cov_ij^2 + lambda_d sum_i (Cov_ii - 1)^2

* type i:  Cov = Cov_x[mu(x)], the covariance of the posterior means (their eq. 6);
* type ii: Cov = Cov_x[mu(x)] + E_x[diag sigma^2(x)], the covariance of q(z) itself (eq. 7).

Both are estimated on the minibatch. The paper's settings: type i lambda_d = 10 lambda_od, type ii
lambda_d = lambda_od. ``extras``: the two penalties before weighting, ``dip_od`` and ``dip_d``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vaekit.models.base import ModelOutput
from vaekit.models.options import NON_NEGATIVE, option
from vaekit.models.vae import VAE, VAEOptions


@dataclass
class DIPVAEOptions(VAEOptions):
    dip_type: str = option("i", "i (covariance of the posterior means) or ii (of q(z))", choices=("i", "ii"))
    lambda_od: float = option(10.0, "weight of the off-diagonal covariance penalty", check=NON_NEGATIVE)
    lambda_d: float | None = option(None, "weight of the diagonal penalty", check=NON_NEGATIVE,
                                    computed="10 x lambda-od for type i, lambda-od for ii")

    def resolve(self, config) -> "DIPVAEOptions":
        paper = self.lambda_od * (10.0 if self.dip_type == "i" else 1.0)    # the paper's settings
        return replace(self, lambda_d=paper if self.lambda_d is None else self.lambda_d)


def dip_covariance(mean: torch.Tensor, logvar: torch.Tensor, dip_type: str) -> torch.Tensor:
    """The (L, L) covariance DIP-VAE regularises, from a batch of posterior means and log-variances."""
    centred = mean - mean.mean(0, keepdim=True)
    cov = centred.T @ centred / mean.shape[0]               # Cov[mu], the maximum-likelihood estimate
    if dip_type == "ii":
        cov = cov + torch.diag(torch.exp(logvar).mean(0))
    return cov


def dip_penalties(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of squared off-diagonal entries, sum of squared (diagonal - 1))."""
    diagonal = torch.diagonal(cov)
    off = cov - torch.diag(diagonal)
    return off.pow(2).sum(), (diagonal - 1).pow(2).sum()


class DIPVAE(VAE):
    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        terms = self.elbo_terms(x, generator)
        weight = self.beta if beta is None else beta
        off, diag = dip_penalties(dip_covariance(terms.posterior.mean, terms.posterior.logvar, self.options.dip_type))
        loss = terms.recon + weight * self.kl_penalty(terms) + self.options.lambda_od * off + self.options.lambda_d * diag
        return ModelOutput(loss=loss, recon=terms.recon, kl=terms.kl, kl_per_dim=terms.kl_per_dim,
                           extras={"dip_od": off, "dip_d": diag})
