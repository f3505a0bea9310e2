"""The plain (deterministic) autoencoder, and the contract every model keeps.

A model owns an encoder and a decoder (``vaekit.nn.networks``), a likelihood p(x|z)
(``vaekit.nn.likelihoods``) and a prior p(z) (``vaekit.nn.priors``), and answers:

* ``encode(x)``: the posterior over codes, a :class:`~vaekit.nn.distributions.Posterior`
  (a point mass for the AE);
* ``decode(z)``: the expected data under p(x|z), shaped like the data (images in [0, 1]);
* ``log_likelihood(x, z)``: log p(x|z) per input, in nats;
* ``forward(x, ...)``: a :class:`ModelOutput` whose fields are the logged metric names.

``x`` is a float batch shaped ``(B, *sample_shape)``; ``encode`` and ``decode`` also take NumPy arrays
(the networks' input hooks convert them, and refuse other shapes with the one expected).

What a model is, as class attributes (read directly by the trainer, the evaluation and the toolkit):

* ``variational``: the encoder gives a posterior density, so KL, ELBO and an IW bound exist;
* ``generative``: codes from ``model.prior`` decode to meaningful data (not so for the AE);
* ``conditional``: the model takes class labels ``y`` (the trainer passes each batch's labels);
* ``joint_proposal``: the IW bound's proposal is not one diagonal Gaussian over z, so the model
  scores importance samples itself (``log_importance_weights``, with ``iw_noise_dim`` noise values, drawn by ``iw_noise``);
* ``priors``: the priors its maths allows (``--prior``), ``default_prior`` the one it gets;
* ``single_process_reason``: why torchrun training is refused (None: it is not);
* ``renamed_weights``: checkpoint names of older versions mapped to today's;
* ``evaluation_notes``: what eval.json should say about this model's numbers.

Instance attributes: ``config``, ``sample_shape``, ``latent_dim``, ``class_names`` (the names of
the labels of the data it was trained on, or None), ``prior``, ``likelihood``; for real-valued data,
``scaling`` (the data's standardisation: the model works on standardised values, and
``to_data_units`` maps what it decodes back to the original units) and ``feature_names`` (a
table's columns); both None otherwise.

Hooks the trainer calls on every model; the defaults here do nothing:

* ``prepare_training(n_train, steps_per_epoch)``, before the first step (dataset size, epoch length);
* ``start_posterior_variance(log_var)``, before the first step, with the log posterior variance of
  the linear-Gaussian model of the data (Gaussian likelihoods only);
* ``auxiliary_parameters()`` / ``auxiliary_optimizer()`` / ``auxiliary_loss(auxiliary, generator=)``:
  a second network with its own optimizer, stepped after the model's step (FactorVAE);
* ``after_epoch(batches)``, after each epoch, with the training data in order (a prior fitted to
  the codes, such as VQ-VAE's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import torch
from torch import nn

from vaekit.errors import DataError
from vaekit.nn.distributions import PointMass
from vaekit.nn.likelihoods import build_likelihood
from vaekit.nn.networks import build_networks
from vaekit.nn.priors import Prior, build_prior

if TYPE_CHECKING:  # the config is built by vaekit.training, a layer above the models
    from vaekit.training.config import TrainConfig


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

    def values(self, *, extras: bool = False) -> dict[str, float]:
        """The logged terms as floats (a device sync): loss, recon, kl where defined, and with
        ``extras`` the model's further terms."""
        values = {"loss": self.loss.item(), "recon": self.recon.item()}
        if self.kl is not None:
            values["kl"] = self.kl.item()
        if extras:
            values.update({name: value.item() for name, value in self.extras.items()})
        return values


class AutoEncoder(nn.Module):
    """x -> z = encoder(x) -> decoder(z); trained to minimise the reconstruction loss alone."""

    variational = False
    generative = False
    conditional = False
    joint_proposal = False
    priors: tuple[str, ...] = ("standard",)
    default_prior = "standard"
    single_process_reason: str | None = None
    # Weights whose names changed since version 0.1 (old name -> new), so older checkpoints load.
    renamed_weights: dict[str, str] = {}
    evaluation_notes: tuple[str, ...] = (
        "a plain autoencoder has no posterior or prior: kl, nelbo, nll and active_units do not apply",)

    def __init__(self, config: TrainConfig, sample_shape: tuple[int, ...], *, class_names: list[str] | None = None):
        super().__init__()
        self.config = config
        self.options = config.options      # the model's own options: a dataclass its registry entry names
        self.sample_shape = tuple(sample_shape)
        self.latent_dim = config.latent_dim
        self.class_names = list(class_names) if class_names else None
        # The prior's slot comes first, so its parameters (a VampPrior's pseudo-inputs) come first in
        # model.parameters(): the order in which older runs saved their optimizer state. It is built
        # last, so the networks draw the same initial weights from a seed as they always did.
        self.register_module("prior", None)
        self.likelihood = build_likelihood(config.likelihood, binarize=config.binarize, sigma=config.sigma,
                                           sample_shape=self.sample_shape)
        self.scaling = None            # set by the trainer and by vaekit.load for real-valued data
        self.feature_names = None
        encoder_out = 2 * config.latent_dim if self.variational else config.latent_dim
        self.encoder, self.decoder = build_networks(
            config.arch, self.sample_shape, config.latent_dim, encoder_out,
            self.likelihood.params_per_value, config.hidden, config.channels)
        # encode(x) and decode(z) take NumPy arrays too, moved to the model's device and dtype; a batch of
        # the wrong shape, or of integer pixels, is refused saying what the model expects (see _network_input).
        self.encoder.register_forward_pre_hook(self._encoder_input)
        self.decoder.register_forward_pre_hook(self._decoder_input)
        self.prior: Prior = self.build_prior(config.prior or self.default_prior)

    # -- the prior ---------------------------------------------------------------------------------
    def build_prior(self, name: str) -> Prior:
        """The prior called ``name`` over this model's codes (``--prior``: one of ``self.priors``, which
        the config checked)."""
        return build_prior(name, self.latent_dim, sample_shape=self.sample_shape,
                           pseudo_inputs=self.config.pseudo_inputs, encode=self.encode)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the last dimension, in nats."""
        return self.prior.log_prob(z)

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """``n`` codes from the prior, shape (n, latent_dim), on the model's device."""
        return self.prior.sample(n, generator=generator, temperature=temperature)

    # -- what the networks are given ----------------------------------------------------------------
    def _encoder_input(self, network: nn.Module, args: tuple) -> tuple:
        x = _network_input(args[0], network, "encode(x)")
        if tuple(x.shape[1:]) != self.sample_shape:
            expected = ", ".join(["B", *map(str, self.sample_shape)])
            hint = " (one sample: add a batch axis, x[None])" if tuple(x.shape) == self.sample_shape else ""
            raise DataError(f"encode(x) takes a batch of samples shaped ({expected}), not {tuple(x.shape)}{hint}")
        if not x.is_floating_point():
            kind = str(x.dtype).removeprefix("torch.")
            raise DataError(f"encode(x) takes values in [0, 1] as floats, not {kind} (divide 8-bit pixels by 255)")
        return (x, *args[1:])

    def _decoder_input(self, network: nn.Module, args: tuple) -> tuple:
        return (_network_input(args[0], network, "decode(z)"), *args[1:])

    # -- encoding and decoding ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor):
        return PointMass(self.encoder(x))

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters, shape (B, P, *sample_shape)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The expected data under p(x|z) (images: values in [0, 1]), shape (B, *sample_shape)."""
        return self.likelihood.mean(self.decoder_params(z))

    def to_data_units(self, x):
        """Decoded values in the data's original units (undoes the standardisation of real-valued
        data; images and other data in [0, 1] are returned unchanged)."""
        return x if self.scaling is None else self.scaling.inverse(x)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per input, in nats."""
        return self.likelihood.log_prob(self.decoder_params(z), x)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: the reconstruction used for MSE and plots."""
        return self.decode(self.encode(x).mode())

    @property
    def iw_noise_dim(self) -> int:
        """Standard-normal values per importance sample (the code's size unless ``joint_proposal``)."""
        return self.latent_dim

    def iw_noise(self, k: int, batch: int, generator: torch.Generator | None, device) -> torch.Tensor:
        """The standard-normal noise of K importance samples for ``batch`` inputs, shaped (K, B, iw_noise_dim)."""
        dtype = next(self.parameters()).dtype
        return torch.randn((k, batch, self.iw_noise_dim), generator=generator, device=device, dtype=dtype)

    def log_importance_weights(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z), log p(x, z) - log q(z|x)) for noise (n, B, iw_noise_dim), each (n, B).

        Only models with ``joint_proposal`` define it; for the others the evaluation computes the same
        from ``encode``, ``log_likelihood`` and ``prior`` in memory-capped chunks (``vaekit.evaluation.iw``)."""
        raise NotImplementedError(f"{type(self).__name__} has a diagonal-Gaussian proposal: use vaekit.evaluation.iw")

    # -- training ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, *, beta: float | None = None, generator: torch.Generator | None = None,
                step: int | None = None, y: torch.Tensor | None = None) -> ModelOutput:
        recon = -self.log_likelihood(x, self.encoder(x)).mean()
        return ModelOutput(loss=recon, recon=recon)

    def start_posterior_variance(self, log_var: float) -> bool:
        """Start the posterior variances at exp(``log_var``) before training; False where the model has
        none to start (the AE: a point mass), as here."""
        return False

    def prepare_training(self, n_train: int, steps_per_epoch: int) -> None:
        """Called once before training with the training-set size and the steps per epoch."""

    def auxiliary_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by ``auxiliary_optimizer`` rather than by the loss."""
        return []

    def auxiliary_optimizer(self) -> torch.optim.Optimizer | None:
        """An optimizer for a second network, stepped on ``auxiliary_loss`` after each model step."""
        return None

    def auxiliary_loss(self, auxiliary: Any, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """The second network's loss from ``ModelOutput.auxiliary``; needed only with an auxiliary optimizer."""
        raise NotImplementedError(f"{type(self).__name__} has no auxiliary network")

    def after_epoch(self, batches: Iterable[torch.Tensor]) -> None:
        """Called after each epoch with the training data in order (a lazy iterable: untouched, it costs nothing)."""

    def divergence_advice(self) -> str:
        """What to try when the training loss becomes NaN or infinite (the end of that one-line error)."""
        return "try a lower --lr, --grad-clip 1.0 or --kl-warmup 5"


def _network_input(values, network: nn.Module, call: str) -> torch.Tensor:
    """``values`` as a tensor: a tensor as it is (the training path pays nothing), a NumPy array or
    nested lists moved to ``network``'s device, floats in its dtype; anything else is a
    :class:`DataError` naming ``call``."""
    if isinstance(values, torch.Tensor):
        return values
    weights = next(network.parameters())
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        array = None
    if array is None or array.dtype.kind not in "biuf":
        raise DataError(f"{call} takes a torch tensor or a NumPy array of numbers, not {type(values).__name__}")
    tensor = torch.as_tensor(array, device=weights.device)
    return tensor.to(weights.dtype) if tensor.is_floating_point() else tensor
