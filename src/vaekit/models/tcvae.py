"""beta-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement in VAEs").

The KL term averaged over the data splits into three (their eq. 2):

    E_x KL(q(z|x) || p(z)) = I_q(x; z)                          index-code mutual information
                           + KL(q(z) || prod_j q(z_j))           total correlation (tc)
                           + sum_j KL(q(z_j) || p(z_j))          dimension-wise KL (dim_kl)

and the loss weights them alpha / beta / gamma: -E_q[log p(x|z)] + alpha MI + beta TC + gamma dimKL.
alpha = beta = gamma = 1 is the plain negative ELBO. The aggregate posterior q(z) = (1/N) sum_n
q(z|x_n) is estimated on the minibatch by minibatch-weighted sampling (their eq. S6):

    log q(z_i) ~= log sum_j q(z_i|x_j) - log(N M)

for a batch of M codes z_i ~ q(z|x_i) from a dataset of N images, and the same per dimension for
log q(z_ij). The three estimates telescope: their sum is the Monte-Carlo estimate of the KL,
E[log q(z|x) - log p(z)], exactly. N is the training-set size, which the trainer tells the model
(kept in a buffer, so a loaded model has it). ``extras``: ``mi``, ``tc``, ``dim_kl``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.models.base import ModelOutput
from vaekit.models.options import NON_NEGATIVE, ModelOptions, option
from vaekit.models.vae import VAE, kl_weight_option
from vaekit.nn.distributions import pairwise_gaussian_log_prob


@dataclass
class BetaTCVAEOptions(ModelOptions):
    alpha: float = option(1.0, "weight of the index-code mutual information", check=NON_NEGATIVE)
    beta: float = kl_weight_option(6.0, "weight of the total correlation (the KL's other two parts: --alpha, --gamma)")
    gamma: float = option(1.0, "weight of the dimension-wise KL", check=NON_NEGATIVE)


def kl_decomposition(z: torch.Tensor, posterior, log_prior: torch.Tensor, dataset_size: int) -> dict[str, torch.Tensor]:
    """Batch means of the three terms from codes z (M, L) drawn from ``posterior`` (M rows), and
    log p(z) (M,). Also returns ``kl``, the Monte-Carlo KL estimate that the three sum to."""
    m = z.shape[0]
    log_qz_x = posterior.log_prob(z)                                       # (M,)
    pairs = pairwise_gaussian_log_prob(z, posterior.mean, posterior.logvar)  # (M, M, L)
    log_norm = math.log(dataset_size * m)
    log_qz = torch.logsumexp(pairs.sum(2), dim=1) - log_norm               # (M,)
    log_prod_qzj = (torch.logsumexp(pairs, dim=1) - log_norm).sum(1)       # (M,)
    return {"mi": (log_qz_x - log_qz).mean(), "tc": (log_qz - log_prod_qzj).mean(),
            "dim_kl": (log_prod_qzj - log_prior).mean(), "kl": (log_qz_x - log_prior).mean()}


class BetaTCVAE(VAE):
    priors = ("standard",)     # the dimension-wise KL term needs a factorised prior
    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        self.register_buffer("dataset_size", torch.ones((), dtype=torch.float64))

    def prepare_training(self, n_train: int, steps_per_epoch: int) -> None:
        self.dataset_size.fill_(n_train)

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        posterior = self.encode(x)
        z = posterior.sample(generator=generator)
        recon = -self.log_likelihood(x, z).mean()
        terms = kl_decomposition(z, posterior, self.log_prior(z), max(int(self.dataset_size), x.shape[0]))
        options = self.options
        tc_weight = options.beta if beta is None else beta
        loss = recon + options.alpha * terms["mi"] + tc_weight * terms["tc"] + options.gamma * terms["dim_kl"]
        kl_per_dim = self.prior.kl_per_dim(posterior).mean(0)
        return ModelOutput(loss=loss, recon=recon, kl=kl_per_dim.sum(), kl_per_dim=kl_per_dim,
                           extras={"mi": terms["mi"], "tc": terms["tc"], "dim_kl": terms["dim_kl"],
                                   "kl_mc": terms["kl"]})
