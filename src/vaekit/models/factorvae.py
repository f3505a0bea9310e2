"""FactorVAE (Kim & Mnih 2018, "Disentangling by factorising").

    loss = -E_q[log p(x|z)] + beta KL(q(z|x) || N(0, I)) + gamma TC,   TC ~= E_q(z)[log D(z) / (1 - D(z))]

The total correlation KL(q(z) || prod_j q(z_j)) is estimated by the density-ratio trick: a
discriminator D learns to tell codes z ~ q(z) from codes whose dimensions were shuffled
independently across the batch (samples of prod_j q(z_j), their algorithm 2), and its logit is the
log density ratio. D has its own Adam (lr ``--disc-lr``, betas (0.5, 0.9) as in the paper); the
trainer steps it after the model's step through the generic auxiliary-optimizer hook, and its
weights and optimizer state are checkpointed, so resume stays exact.

Departures from the paper, both for CPU budgets: D is an MLP of 4 hidden layers of 256 units
(theirs: 6 x 1000), and the permuted codes come from the same minibatch (theirs: a second one).
The VAE's gradient does not reach D's weights (D is applied with detached weights there).
``extras``: ``tc`` (the estimate above) and, for the discriminator, ``disc_loss``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from vaekit.models.base import ModelOutput
from vaekit.models.options import NON_NEGATIVE, POSITIVE, option
from vaekit.models.vae import VAE, VAEOptions


@dataclass
class FactorVAEOptions(VAEOptions):
    gamma: float = option(10.0, "weight of the total correlation", check=NON_NEGATIVE)
    disc_lr: float = option(1e-4, "learning rate of the discriminator's Adam", check=POSITIVE)

DISC_WIDTH = 256
DISC_LAYERS = 4


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shuffle each column of z (B, L) independently across the batch: samples of prod_j q(z_j)."""
    batch, dim = z.shape
    order = torch.argsort(torch.rand(batch, dim, generator=generator, device=z.device), dim=0)
    return torch.gather(z, 0, order)


class FactorVAE(VAE):
    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        layers: list[nn.Module] = []
        width = config.latent_dim
        for _ in range(DISC_LAYERS):
            layers += [nn.Linear(width, DISC_WIDTH), nn.LeakyReLU(0.2)]
            width = DISC_WIDTH
        layers.append(nn.Linear(width, 2))          # logits of (real code, permuted code)
        self.discriminator = nn.Sequential(*layers)

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        return list(self.discriminator.parameters())

    def auxiliary_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.auxiliary_parameters(), lr=float(self.options.disc_lr), betas=(0.5, 0.9))

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        """Batch mean of logit(real) - logit(permuted) = log D(z) / (1 - D(z)), D's weights detached."""
        weights = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        logits = functional_call(self.discriminator, weights, (z,))
        return (logits[:, 0] - logits[:, 1]).mean()

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        terms = self.elbo_terms(x, generator)
        weight = self.beta if beta is None else beta
        tc = self.total_correlation(terms.z)
        loss = terms.recon + weight * self.kl_penalty(terms) + float(self.options.gamma) * tc
        return ModelOutput(loss=loss, recon=terms.recon, kl=terms.kl, kl_per_dim=terms.kl_per_dim,
                           extras={"tc": tc}, auxiliary=terms.z.detach())

    def auxiliary_loss(self, codes: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Cross-entropy of D on real codes (class 0) and dimension-wise permuted codes (class 1)."""
        permuted = permute_dims(codes, generator)
        logits = self.discriminator(torch.cat([codes, permuted]))
        labels = torch.cat([torch.zeros(len(codes)), torch.ones(len(codes))]).long().to(codes.device)
        return F.cross_entropy(logits, labels)
