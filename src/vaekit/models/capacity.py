"""The capacity-annealed beta-VAE (Burgess et al. 2018, "Understanding disentangling in beta-VAE").

    loss = -E_q[log p(x|z)] + gamma |KL(q(z|x) || N(0, I)) - C|,   C = C_max min(1, step / annealing steps)

The KL is held near a target capacity C that rises linearly from 0 to C_max (their eq. 8; on
dSprites they used gamma = 1000 and C_max = 25 nats). The encoder can only spend information as C
allows, so it spends it first on the factors that reduce the reconstruction error most. The
annealing length is ``--capacity-epochs`` times the steps per epoch, which the trainer tells the
model before training (kept in a buffer, so a loaded model knows it). Outside training (step None)
C is C_max. ``extras``: ``capacity`` (the current C).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from vaekit.models.base import ModelOutput
from vaekit.models.options import NON_NEGATIVE, POSITIVE, ModelOptions, option
from vaekit.models.vae import VAE, free_bits_option


@dataclass
class CapacityVAEOptions(ModelOptions):
    gamma: float = option(1000.0, "weight of |KL - C|", check=NON_NEGATIVE)
    capacity_max: float = option(25.0, "final KL capacity C in nats", check=NON_NEGATIVE)
    capacity_epochs: float | None = option(None, "epochs over which C rises from 0 to its maximum", check=POSITIVE,
                                           computed="all epochs")
    free_bits: float | None = free_bits_option()

    def resolve(self, config) -> "CapacityVAEOptions":
        epochs = float(config.epochs) if self.capacity_epochs is None else self.capacity_epochs
        return replace(self, capacity_epochs=epochs)


def capacity_at(step: int | None, capacity_max: float, annealing_steps: float) -> float:
    """C(step) = C_max min(1, step / annealing_steps); C_max when step is None."""
    if step is None or annealing_steps <= 0:
        return float(capacity_max)
    return float(capacity_max) * min(1.0, step / annealing_steps)


class CapacityVAE(VAE):
    def __init__(self, config, sample_shape, *, class_names=None):
        super().__init__(config, sample_shape, class_names=class_names)
        self.register_buffer("steps_per_epoch", torch.zeros((), dtype=torch.float64))

    def prepare_training(self, n_train: int, steps_per_epoch: int) -> None:
        self.steps_per_epoch.fill_(steps_per_epoch)

    def capacity(self, step: int | None) -> float:
        annealing = float(self.options.capacity_epochs) * float(self.steps_per_epoch)
        return capacity_at(step, self.options.capacity_max, annealing)

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        terms = self.elbo_terms(x, generator)
        capacity = self.capacity(step)
        loss = terms.recon + float(self.options.gamma) * (self.kl_penalty(terms) - capacity).abs()
        return ModelOutput(loss=loss, recon=terms.recon, kl=terms.kl, kl_per_dim=terms.kl_per_dim,
                           extras={"capacity": x.new_tensor(capacity)})
