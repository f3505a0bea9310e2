"""The plain (deterministic) autoencoder, and the interface every model shares.

A model owns an encoder, a decoder and a likelihood (see ``networks`` and ``likelihoods``):

* ``encode(x)`` returns the posterior over codes (a point mass for the AE);
* ``decode(z)`` returns the expected image in [0, 1], shaped like the data;
* ``forward(x)`` returns a :class:`ModelOutput` whose fields are the logged metric names.

Class attributes tell the trainer, the evaluation and the latent toolkit what a model is:

* ``variational``: the encoder gives a posterior density, so KL, ELBO and an IW bound exist;
* ``generative``: codes drawn by ``sample_prior`` decode to meaningful images (not so for the AE);
* ``standard_prior``: the prior is N(0, I) (else the toolkit samples through ``sample_prior``);
* ``closed_form_kl``: the KL to the prior is ``posterior.kl_per_dim()`` (else a Monte-Carlo estimate);
* ``conditional``: the model takes class labels ``y`` (the trainer passes each batch's labels).

Optional hooks the trainer calls when a model defines them (kept generic, no model names):
``prepare_training(n_train, steps_per_epoch)``, ``auxiliary_optimizer()`` with
``auxiliary_loss(out.auxiliary, generator=...)`` (a second network with its own optimizer), and
``after_epoch(batches)`` (fit something to the training data, e.g. a prior over discrete codes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vaekit.training.config import TrainConfig
from vaekit.nn.distributions import PointPosterior, standard_normal_log_prob
from vaekit.nn.likelihoods import build_likelihood
from vaekit.nn.networks import build_networks


@dataclass
class ModelOutput:
    """Batch means, in nats per image. ``kl`` and ``kl_per_dim`` are None for the AE.

    ``extras`` holds further scalar terms a model logs (``tc``, ``mmd``, ``commitment``...): the
    trainer writes them to metrics.jsonl as ``train_<name>`` and ``val_<name>``. ``auxiliary`` is
    whatever the model's ``auxiliary_loss`` needs (FactorVAE: the detached codes).
    """

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor | None = None
    kl_per_dim: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    auxiliary: Any = None


class AutoEncoder(nn.Module):
    """x -> z = encoder(x) -> decoder(z); trained to minimise the reconstruction loss alone."""

    variational = False
    generative = False
    standard_prior = True
    closed_form_kl = True
    conditional = False
    # Why torchrun training is refused, for a model whose training state DDP would not keep in step.
    single_process_reason: str | None = None
    evaluation_notes: tuple[str, ...] = (
        "a plain autoencoder has no posterior or prior: kl, nelbo, nll and active_units do not apply",)

    def __init__(self, config: TrainConfig, sample_shape: tuple[int, ...]):
        super().__init__()
        self.config = config
        self.options = config.options      # the model's own options: a dataclass its registry entry names
        self.sample_shape = tuple(sample_shape)
        self.latent_dim = config.latent_dim
        self.likelihood = build_likelihood(config.likelihood, binarize=config.binarize, sigma=config.sigma)
        encoder_out = 2 * config.latent_dim if self.variational else config.latent_dim
        self.encoder, self.decoder = build_networks(
            config.arch, self.sample_shape, config.latent_dim, encoder_out,
            self.likelihood.params_per_value, config.hidden, config.channels)

    def encode(self, x: torch.Tensor):
        return PointPosterior(self.encoder(x))

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters, shape (B, P, *sample_shape)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The expected image under p(x|z), values in [0, 1], shape (B, *sample_shape)."""
        return self.likelihood.mean(self.decoder(z))

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image, in nats."""
        return self.likelihood.log_prob(self.decoder(z), x)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last dimension, in nats; N(0, I) unless a model learns its prior."""
        return standard_normal_log_prob(z)

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` codes from the prior, shape (n, latent_dim), on the model's device."""
        device = next(self.parameters()).device
        return temperature * torch.randn(n, self.latent_dim, generator=generator, device=device)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: the reconstruction used for MSE and plots."""
        return self.decode(self.encode(x).mode())

    def forward(self, x: torch.Tensor, *, beta: float | None = None, generator: torch.Generator | None = None,
                step: int | None = None, y: torch.Tensor | None = None) -> ModelOutput:
        recon = -self.log_likelihood(x, self.encoder(x)).mean()
        return ModelOutput(loss=recon, recon=recon)
