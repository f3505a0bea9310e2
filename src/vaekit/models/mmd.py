"""InfoVAE and the MMD Wasserstein autoencoder: match the aggregate posterior to the prior by MMD.

The maximum mean discrepancy between the codes of a batch and as many draws from N(0, I) is
estimated without bias by the U-statistic (Gretton et al. 2012, eq. 3):

    MMD^2 = 1/(n(n-1)) sum_{i != j} k(z_i, z_j) + 1/(m(m-1)) sum_{i != j} k(p_i, p_j) - 2/(nm) sum_{i,j} k(z_i, p_j)

with an RBF kernel exp(-|a - b|^2 / C) or the inverse multiquadric C / (C + |a - b|^2), C = 2 L
for an L-dimensional prior N(0, I) (the scale Tolstikhin et al. use, 2 L sigma^2 with sigma = 1).
The estimate can be negative; its expectation is the true MMD^2, 0 when q(z) = p(z).

* ``info-vae`` (Zhao et al. 2019, "InfoVAE"): -E_q[log p(x|z)] + beta KL(q(z|x) || p(z)) + lambda MMD(q(z), p(z)),
  a Gaussian encoder, so evaluation reports the IW bound (their (1 - alpha) is our beta, their
  alpha + lambda - 1 our ``--mmd-weight``);
* ``wae-mmd`` (Tolstikhin et al. 2018, "Wasserstein auto-encoders", algorithm 2): a deterministic
  encoder, -log p(x|z) (squared error by default) + lambda MMD(codes, p(z)). It has no posterior
  density, so it defines no ELBO and no likelihood bound; its prior samples are meaningful, though.

``extras``: ``mmd``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from vaekit.models.base import AutoEncoder, ModelOutput
from vaekit.models.options import NON_NEGATIVE, ModelOptions, option
from vaekit.models.vae import VAE, VAEOptions

KERNELS = ("rbf", "imq")
MMD_WEIGHT_HELP = "weight of the MMD penalty"
KERNEL_HELP = "rbf or imq (inverse multiquadric)"


@dataclass
class InfoVAEOptions(VAEOptions):
    mmd_weight: float = option(10.0, MMD_WEIGHT_HELP, check=NON_NEGATIVE)
    mmd_kernel: str = option("rbf", KERNEL_HELP, choices=KERNELS)


@dataclass
class WAEMMDOptions(ModelOptions):
    mmd_weight: float = option(10.0, MMD_WEIGHT_HELP, check=NON_NEGATIVE)
    mmd_kernel: str = option("imq", KERNEL_HELP, choices=KERNELS)


def kernel_matrix(a: torch.Tensor, b: torch.Tensor, kind: str, scale: float) -> torch.Tensor:
    """k(a_i, b_j) for all pairs, (n, m)."""
    sq = torch.cdist(a, b).pow(2)
    if kind == "rbf":
        return torch.exp(-sq / scale)
    if kind == "imq":
        return scale / (scale + sq)
    raise ValueError(f"unknown kernel {kind!r}")


def mmd_unbiased(z: torch.Tensor, p: torch.Tensor, kind: str = "rbf", scale: float | None = None) -> torch.Tensor:
    """The unbiased U-statistic estimate of MMD^2 between samples z (n, L) and p (m, L); n, m >= 2."""
    n, m = z.shape[0], p.shape[0]
    scale = 2.0 * z.shape[1] if scale is None else scale
    k_zz, k_pp, k_zp = kernel_matrix(z, z, kind, scale), kernel_matrix(p, p, kind, scale), kernel_matrix(z, p, kind, scale)
    within_z = (k_zz.sum() - k_zz.diagonal().sum()) / (n * (n - 1))
    within_p = (k_pp.sum() - k_pp.diagonal().sum()) / (m * (m - 1))
    return within_z + within_p - 2.0 * k_zp.mean()


def _mmd_to_prior(model, z: torch.Tensor, generator) -> torch.Tensor:
    if z.shape[0] < 2:
        return z.new_zeros(())
    prior = model.sample_prior(z.shape[0], generator=generator).to(z.dtype)
    return mmd_unbiased(z, prior, model.options.mmd_kernel)


class InfoVAE(VAE):
    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        terms = self.elbo_terms(x, generator)
        weight = self.beta if beta is None else beta
        mmd = _mmd_to_prior(self, terms.z, generator)
        loss = terms.recon + weight * self.kl_penalty(terms) + self.options.mmd_weight * mmd
        return ModelOutput(loss=loss, recon=terms.recon, kl=terms.kl, kl_per_dim=terms.kl_per_dim, extras={"mmd": mmd})


class WAEMMD(AutoEncoder):
    generative = True
    evaluation_notes = ("wae-mmd has a deterministic encoder, so there is no posterior density: it defines no ELBO "
                        "and no likelihood bound (kl, nelbo, nll, bits_per_dim are null); recon is the loss at the code",)

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        z = self.encoder(x)
        recon = -self.log_likelihood(x, z).mean()
        mmd = _mmd_to_prior(self, z, generator)
        return ModelOutput(loss=recon + self.options.mmd_weight * mmd, recon=recon, extras={"mmd": mmd})
