"""Model registry: a name maps to an entry (module, class, one-line description, paper, options).

Adding a model is one module and one line here. This file imports no torch: ``vaekit models`` and
config validation read the registry without loading any model code; :func:`model_class` imports a
model's module on first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from vaekit.errors import ConfigError


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``options`` maps the TrainConfig fields that apply to this model (beyond the shared ones) to
    their defaults; a default may be a function of the config (e.g. DIP-VAE's lambda_d of its
    lambda_od). ``deterministic`` models have no posterior density: no KL, ELBO or NLL.
    """

    name: str
    target: str          # "module:Class" inside vaekit.models
    description: str
    paper: str
    options: dict = field(default_factory=dict)
    deterministic: bool = False


_FREE_BITS = {"free_bits": None}

_ENTRIES = [
    ModelEntry("ae", "base:AutoEncoder", "deterministic autoencoder trained on reconstruction alone", "-",
               deterministic=True),
    ModelEntry("vae", "vae:VAE", "variational autoencoder: the negative ELBO (beta = 1)", "Kingma & Welling 2014",
               {"beta": 1.0, **_FREE_BITS}),
    ModelEntry("beta-vae", "vae:VAE", "VAE with the KL weighted by beta (default 4)", "Higgins et al. 2017",
               {"beta": 4.0, **_FREE_BITS}),
    ModelEntry("iwae", "iwae:IWAE", "K-sample importance-weighted bound as the training objective",
               "Burda et al. 2016", {"iw_k": 5}),
    ModelEntry("beta-tcvae", "tcvae:BetaTCVAE", "KL split into index-code MI, total correlation and dimension-wise "
               "KL, weighted alpha / beta / gamma (minibatch-weighted sampling)", "Chen et al. 2018",
               {"alpha": 1.0, "beta": 6.0, "gamma": 1.0}),
    ModelEntry("factor-vae", "factorvae:FactorVAE", "ELBO plus gamma x total correlation, estimated by a "
               "discriminator between codes and dimension-wise permuted codes", "Kim & Mnih 2018",
               {"beta": 1.0, "gamma": 10.0, "disc_lr": 1e-4, **_FREE_BITS}),
    ModelEntry("dip-vae", "dipvae:DIPVAE", "ELBO plus a penalty pushing the covariance of q(z) to the identity "
               "(type i or ii)", "Kumar et al. 2018",
               {"beta": 1.0, "dip_type": "i", "lambda_od": 10.0,
                "lambda_d": lambda c: c.lambda_od * (10.0 if c.dip_type == "i" else 1.0), **_FREE_BITS}),
    ModelEntry("capacity-vae", "capacity:CapacityVAE", "KL held at a capacity C raised linearly from 0: "
               "recon + gamma |KL - C|", "Burgess et al. 2018",
               {"gamma": 1000.0, "capacity_max": 25.0, "capacity_epochs": lambda c: float(c.epochs), **_FREE_BITS}),
    ModelEntry("info-vae", "mmd:InfoVAE", "Gaussian-encoder VAE plus an MMD penalty between q(z) and the prior",
               "Zhao et al. 2019", {"beta": 1.0, "mmd_weight": 10.0, "mmd_kernel": "rbf", **_FREE_BITS}),
    ModelEntry("wae-mmd", "mmd:WAEMMD", "deterministic encoder: reconstruction plus MMD between the codes and "
               "N(0, I)", "Tolstikhin et al. 2018", {"mmd_weight": 10.0, "mmd_kernel": "imq"}, deterministic=True),
    ModelEntry("vamp", "vamp:VampVAE", "VAE whose prior (VampPrior) is a mixture of the posteriors of learned "
               "pseudo-inputs", "Tomczak & Welling 2018", {"beta": 1.0, "pseudo_inputs": 500}),
    ModelEntry("cvae", "cvae:CVAE", "conditional VAE: class labels fed to encoder and decoder; "
               "class-conditional samples", "Sohn et al. 2015",
               {"beta": 1.0, "label_dropout": 0.1, **_FREE_BITS}),
    ModelEntry("vq-vae", "vqvae:VQVAE", "vector-quantised codes (commitment loss, EMA codebook) and a Markov-chain "
               "prior over the codes, fitted to the training set", "van den Oord et al. 2017",
               {"codebook_size": 64, "code_dim": 4, "commitment": 0.25, "ema_decay": 0.99}, deterministic=True),
    ModelEntry("hvae", "hvae:HierarchicalVAE", "two-level hierarchical VAE with ladder-style top-down inference",
               "Sønderby et al. 2016",
               {"beta": 1.0, "top_latent_dim": lambda c: max(1, c.latent_dim // 2), **_FREE_BITS}),
]

MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def model_class(name: str):
    """The class behind a registered name (imports its module, and so torch)."""
    entry = _lookup(name)
    module, cls = entry.target.split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def build_model(config, sample_shape: tuple[int, ...], *, class_names: list[str] | None = None):
    """A freshly initialised model for ``config``; ``class_names`` are the labels of the data it will
    see (None: unlabelled), which a conditional model needs."""
    cls = model_class(config.model)
    if cls.conditional and not class_names:
        raise ConfigError(f"--model {config.model} needs class labels: train it on a labelled dataset "
                          "(fashion-mnist, mnist, digits, an .npz with y, or an image folder with sub-folders)")
    return cls(config, sample_shape, class_names=class_names)


def _lookup(name: str) -> ModelEntry:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: choose one of {', '.join(MODELS)}")
    return MODELS[name]


def __getattr__(name: str):
    # The model classes, imported on first use so that this package stays torch-free.
    lazy = {"AutoEncoder": "base", "ModelOutput": "base", "VAE": "vae"}
    if name in lazy:
        return getattr(importlib.import_module(f"{__name__}.{lazy[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MODELS", "ModelEntry", "AutoEncoder", "VAE", "ModelOutput", "build_model", "model_class"]
