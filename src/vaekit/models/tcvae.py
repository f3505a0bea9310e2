"""beta-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement in VAEs").

The KL term averaged over the data splits into three (their eq. 2):

    E_x KL(q(z|x) || p(z)) = I_q(x; z)                          index-code mutual information
                           + KL(q(z) || prod_j q(z_j))           total correlation (tc)
                           + sum_j KL(q(z_j) || p(z_j))          dimension-wise KL (dim_kl)

and the loss weights them alpha / beta / gamma: -E_q[log p(x|z)] + alpha MI + beta TC + gamma dimKL.
alpha = beta = gamma = 1 is the plain negative ELBO. The aggregate posterior q(z) = (1/N) sum_n
q(z|x_n) of a dataset of N images is estimated on a batch of B codes z_i ~ q(z|x_i) as a weighted
sum log q(z_i) ~= log sum_j w_ij q(z_i|x_j), and the same per dimension for log q(z_ij). Two
weightings (``--tc-estimator``):

* ``mws``, minibatch-weighted sampling (their eq. S6): w_ij = 1 / (N B) for every pair. The weights
  sum to 1/N instead of 1, so each log-density estimate is log N below the plain batch average
  (weights 1/B): MI comes out log N too high, TC (L - 1) log N too high and dim_kl L log N too low
  for L latent dimensions (11.0, 99.0 and -110.0 when every posterior is the prior, L = 10,
  N = 60,000, where all three are 0). The offsets are constants, so the gradients are those of the
  batch average, and the loss carries (alpha + beta (L - 1) - gamma L) log N, which is
  (beta - 1)(L - 1) log N at alpha = gamma = 1.
* ``mss``, minibatch-stratified sampling (their appendix C.2): the data are cut into strata of
  N / M images (M = B - 1), the stratum of z_i's own image is represented by that image (weight
  1/N) and one partner standing for the stratum's other N/M - 1 images (weight (N - M) / (N M)), and
  each of the other M - 1 strata by one image (weight 1/M). The weights sum to 1, so the estimates
  carry no log N offset: all three terms are 0 when every posterior is the prior, and within a few
  hundredths of a nat of the exact values on a mixture of 500 posteriors (tests/test_models.py).
  The partner of batch row i is row i + 1 (cyclically); the batch order is random.

The logged ``mi``, ``tc`` and ``dim_kl`` always use ``mss``, whichever estimator trains. The default
training estimator is ``mws``: it is the one of Chen et al.'s main text, and it keeps every run
trained so far (and the dSprites recipe's measurements) training and resuming exactly as before.
Either way the three estimates telescope: their sum is the Monte-Carlo estimate of the KL,
E[log q(z|x) - log p(z)], exactly (``kl_mc``). N is the training-set size, which the trainer tells
the model (kept in a buffer, so a loaded model has it).
``extras``: ``mi``, ``tc``, ``dim_kl``, ``kl_mc``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vaekit.models.base import ModelOutput
from vaekit.models.options import NON_NEGATIVE, ModelOptions, option
from vaekit.models.vae import VAE, kl_weight_option
from vaekit.nn.distributions import pairwise_gaussian_log_prob

TC_ESTIMATORS = ("mws", "mss")


@dataclass
class BetaTCVAEOptions(ModelOptions):
    alpha: float = option(1.0, "weight of the index-code mutual information", check=NON_NEGATIVE)
    beta: float = kl_weight_option(6.0, "weight of the total correlation (the KL's other two parts: --alpha, --gamma)")
    gamma: float = option(1.0, "weight of the dimension-wise KL", check=NON_NEGATIVE)
    tc_estimator: str = option("mws", "estimator of q(z) in the training loss: mws (minibatch-weighted, the "
                               "paper's main text) or mss (minibatch-stratified, its appendix C.2); the logged "
                               "mi, tc and dim_kl always use mss", choices=TC_ESTIMATORS)


def log_batch_weights(batch: int, dataset_size: int, estimator: str, *, dtype=torch.float32,
                      device=None) -> torch.Tensor:
    """log w_ij (B, B) of the estimate q(z_i) ~= sum_j w_ij q(z_i|x_j) (see the module docstring).

    ``dataset_size`` below the batch size is raised to it (a batch cannot hold more images than the
    data set)."""
    n = max(int(dataset_size), batch)
    if estimator == "mws":
        return torch.full((batch, batch), -math.log(n * batch), dtype=dtype, device=device)
    if estimator != "mss":
        raise ValueError(f"unknown estimator {estimator!r}: use one of {', '.join(TC_ESTIMATORS)}")
    if batch == 1:
        return torch.zeros((1, 1), dtype=dtype, device=device)    # the image itself is all there is
    m = batch - 1
    weights = torch.full((batch, batch), 1.0 / m, dtype=torch.float64)
    rows = torch.arange(batch)
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)          # the partner in z_i's own stratum
    weights[rows, rows] = 1.0 / n                                  # z_i's own image
    return weights.log().to(dtype=dtype, device=device)


def kl_decomposition(z: torch.Tensor, posterior, log_prior: torch.Tensor, dataset_size: int, *,
                     estimator: str) -> dict[str, torch.Tensor]:
    """Batch means of the three terms from codes z (B, L) drawn from ``posterior`` (B rows), and
    log p(z) (B,), with the ``estimator`` ("mss" or "mws") of q(z). Also returns ``kl``, the
    Monte-Carlo KL estimate that the three sum to."""
    log_qz_x = posterior.log_prob(z)                                          # (B,)
    pairs = pairwise_gaussian_log_prob(z, posterior.mean, posterior.logvar)   # (B, B, L): log q(z_i,l | x_j)
    batch = z.shape[0]
    if estimator == "mws":      # one weight for every pair, taken out of the log-sum-exps
        log_norm = math.log(max(int(dataset_size), batch) * batch)
        log_qz = torch.logsumexp(pairs.sum(2), dim=1) - log_norm
        log_prod_qzj = (torch.logsumexp(pairs, dim=1) - log_norm).sum(1)
    else:
        log_w = log_batch_weights(batch, dataset_size, estimator, dtype=pairs.dtype, device=pairs.device)
        log_qz = torch.logsumexp(pairs.sum(2) + log_w, dim=1)                     # (B,)
        log_prod_qzj = torch.logsumexp(pairs + log_w.unsqueeze(2), dim=1).sum(1)  # (B,)
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
        log_prior = self.log_prior(z)
        options = self.options
        n = int(self.dataset_size)
        terms = kl_decomposition(z, posterior, log_prior, n, estimator=options.tc_estimator)
        if options.tc_estimator == "mss":
            reported = terms
        else:       # the logged terms are the stratified ones: without mws's log N offsets
            with torch.no_grad():
                reported = kl_decomposition(z, posterior, log_prior, n, estimator="mss")
        tc_weight = options.beta if beta is None else beta
        loss = recon + options.alpha * terms["mi"] + tc_weight * terms["tc"] + options.gamma * terms["dim_kl"]
        kl_per_dim = self.prior.kl_per_dim(posterior).mean(0)
        return ModelOutput(loss=loss, recon=recon, kl=kl_per_dim.sum(), kl_per_dim=kl_per_dim,
                           extras={"mi": reported["mi"], "tc": reported["tc"], "dim_kl": reported["dim_kl"],
                                   "kl_mc": terms["kl"]})
