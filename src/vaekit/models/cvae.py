"""The conditional VAE (Sohn et al. 2015, "Learning structured output representation using deep
conditional generative models"): a class label y is given to both networks.

    q(z | x, y) = N(mu(x) + a_y, diag exp(logvar(x) + b_y)),   p(x | z, y) = decoder([z, onehot(y)])

so the code need not carry the class, and ``-ELBO`` bounds -log p(x|y) (evaluation conditions on
each test image's true label). The label enters the encoder as a learned shift of its output (what
a linear layer on [features, onehot(y)] gives) and the decoder as a one-hot input next to z.

Label index C (after the C classes) means "unknown". Training replaces each label by it with
probability ``--label-dropout`` (default 0.1), so the same networks also model images without a
label; calls without ``y`` (the latent-space toolkit's reconstructions, interpolations, prior
samples) use it. ``with model.conditioned(label):`` makes calls without ``y`` use that class
instead: ``vaekit sample RUN --label 3`` draws class-conditional samples that way.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.errors import ConfigError
from vaekit.models.base import ModelOutput
from vaekit.models.options import FRACTION, option
from vaekit.models.vae import VAE, VAEOptions
from vaekit.nn.distributions import DiagonalGaussian
from vaekit.nn.networks import build_networks


@dataclass
class CVAEOptions(VAEOptions):
    label_dropout: float = option(0.1, "share of training images whose label is replaced by 'unknown', so the "
                                       "model also works without labels", check=FRACTION)


class CVAE(VAE):
    conditional = True
    priors = ("standard",)
    evaluation_notes = ("a conditional model: recon, kl, nelbo and nll are of p(x|y) given each image's true label, "
                        "and mse is of reconstructions given the label; prior samples (completeness, fd) use the "
                        "'unknown' label",)

    def __init__(self, config, sample_shape, *, class_names: list[str]):
        super().__init__(config, sample_shape, class_names=class_names)
        self.num_classes = len(class_names)
        width = self.num_classes + 1                 # the classes and "unknown"
        _, self.decoder = build_networks(config.arch, self.sample_shape, config.latent_dim + width,
                                         2 * config.latent_dim, self.likelihood.params_per_value,
                                         config.hidden, config.channels)
        self.label_shift = nn.Embedding(width, 2 * config.latent_dim)
        nn.init.zeros_(self.label_shift.weight)
        self._default_label = self.num_classes

    @property
    def unknown_label(self) -> int:
        return self.num_classes

    def _labels(self, y: torch.Tensor | None, batch: int, device) -> torch.Tensor:
        if y is None:
            return torch.full((batch,), self._default_label, dtype=torch.long, device=device)
        return torch.as_tensor(y, device=device).long().reshape(batch)

    @contextmanager
    def conditioned(self, label: int):
        """Within the block, calls without ``y`` use class ``label`` (an index into the class names)."""
        if not 0 <= int(label) < self.num_classes:
            raise ConfigError(f"label {label} is out of range: this model knows classes 0 to {self.num_classes - 1}")
        previous, self._default_label = self._default_label, int(label)
        try:
            yield self
        finally:
            self._default_label = previous

    def encode(self, x, y=None) -> DiagonalGaussian:
        labels = self._labels(y, x.shape[0], x.device)
        mean, logvar = (self.encoder(x) + self.label_shift(labels)).chunk(2, dim=-1)
        return DiagonalGaussian(mean, logvar)

    def decoder_params(self, z, y=None):
        labels = self._labels(y, z.shape[0], z.device)
        return self.decoder(torch.cat([z, F.one_hot(labels, self.num_classes + 1).to(z.dtype)], dim=-1))

    def decode(self, z, y=None):
        return self.likelihood.mean(self.decoder_params(z, y))

    def log_likelihood(self, x, z, y=None):
        return self.likelihood.log_prob(self.decoder_params(z, y), x)

    def reconstruct(self, x, y=None):
        return self.decode(self.encode(x, y).mode(), y)

    def forward(self, x, *, beta=None, generator=None, step=None, y=None) -> ModelOutput:
        labels = self._labels(y, x.shape[0], x.device)
        if self.training and self.options.label_dropout > 0:
            drop = torch.rand(x.shape[0], generator=generator, device=x.device) < self.options.label_dropout
            labels = torch.where(drop, torch.full_like(labels, self.unknown_label), labels)
        terms = self.elbo_terms(x, generator, y=labels)
        weight = self.beta if beta is None else beta
        return ModelOutput(loss=terms.recon + weight * self.kl_penalty(terms), recon=terms.recon, kl=terms.kl,
                           kl_per_dim=terms.kl_per_dim)
