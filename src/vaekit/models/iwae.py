"""The importance-weighted autoencoder (Burda et al. 2016): train on the K-sample bound.

    L_K = E[ log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) ],   z_1..z_K ~ q(z|x)   (their eq. 8)

L_1 is the ELBO and L_K rises towards log p(x) as K grows, so the encoder is no longer asked to
cover the posterior with one Gaussian. ``loss`` is -L_K; the logged ``recon`` and ``kl`` are the
usual Monte-Carlo reconstruction term and closed-form KL (the ELBO's parts), and ``extras`` holds
the bound itself as ``iw_bound``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from vaekit.limits import check_memory
from vaekit.models.base import ModelOutput
from vaekit.models.options import ModelOptions, at_least, option
from vaekit.models.vae import VAE
from vaekit.nn.distributions import log_mean_exp


@dataclass
class IWAEOptions(ModelOptions):
    iw_k: int = option(5, "importance samples K of the training bound", check=at_least(1))


def training_note(k: int) -> str:
    """What eval.json says of a model trained on the K-sample bound."""
    return (f"trained on the importance-weighted bound with K = {k} samples; nelbo is the ELBO (K = 1) of the "
            "same model, nll the estimate with evaluation's K")


def check_sample_memory(model, k: int, n_train: int) -> None:
    """Refuse a K whose training step cannot fit in memory, before the first step: each step decodes
    K samples per image, and holds their targets and likelihood parameters at once."""
    batch, values = min(model.config.batch_size, n_train), math.prod(model.sample_shape)
    check_memory(4 * k * batch * values * (1 + model.likelihood.params_per_value),
                 f"--iw-k {k} ({k * batch:,} decoded samples of {values:,} values in each step of {batch} images)",
                 "use a smaller --iw-k or --batch-size")


class IWAE(VAE):
    @property
    def evaluation_notes(self) -> tuple[str, ...]:
        return (training_note(int(self.options.iw_k)),)

    def prepare_training(self, n_train: int, steps_per_epoch: int) -> None:
        check_sample_memory(self, int(self.options.iw_k), n_train)

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        posterior = self.encode(x)
        k, batch = int(self.options.iw_k), x.shape[0]
        z = posterior.sample(k, generator=generator)                             # (K, B, L)
        targets = x.unsqueeze(0).expand(k, *x.shape).reshape(k * batch, *x.shape[1:])
        log_px_z = self.log_likelihood(targets, z.reshape(k * batch, -1)).view(k, batch)
        log_w = log_px_z + self.log_prior(z) - posterior.log_prob(z)
        bound = log_mean_exp(log_w).mean()
        if self.prior.closed_form:
            kl_per_dim = self.prior.kl_per_dim(posterior).mean(0)
            kl = kl_per_dim.sum()
        else:
            kl_per_dim, kl = None, (-log_w - log_px_z).mean()     # E_q[log q - log p] over the K samples
        return ModelOutput(loss=-bound, recon=-log_px_z.mean(), kl=kl, kl_per_dim=kl_per_dim,
                           extras={"iw_bound": bound})
