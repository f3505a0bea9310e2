"""The VAE with a VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior"): ``--model vamp`` is
the VAE whose default prior is the mixture of the encoder's posteriors at learned pseudo-inputs
(``vaekit.nn.priors.VampPrior``), the same as ``--model vae --prior vamp``.

The KL to a mixture has no closed form, so the loss uses the one-sample Monte-Carlo estimate
log q(z|x) - log p(z) at the same z as the reconstruction term; ``kl`` in the logs and in
evaluation is that estimate too. Prior samples pick a pseudo-input uniformly and sample its posterior.
"""
from __future__ import annotations

from dataclasses import dataclass

from vaekit.models.options import ModelOptions
from vaekit.models.vae import VAE, kl_weight_option


@dataclass
class VampOptions(ModelOptions):
    """The KL weight only: the VampPrior's own option, --pseudo-inputs, belongs to the prior (TrainConfig)."""

    beta: float = kl_weight_option(1.0)


class VampVAE(VAE):
    priors = ("vamp",)
    default_prior = "vamp"
    # Version 0.1 kept the pseudo-inputs on the model itself.
    renamed_weights = {"pseudo_logits": "prior.pseudo_logits"}
