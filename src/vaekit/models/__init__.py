"""Model registry: a name maps to an entry (model class, one-line description, paper, options class).

Adding a model is one module (the model class and the dataclass of its options, see
:mod:`vaekit.models.options`) and one line here; code outside vaekit adds one with :func:`register`.
This file imports no torch: ``vaekit --help`` reads the registry without loading any model code;
:func:`model_class` and :func:`options_class` import a model's module on first use.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vaekit.errors import ConfigError
from vaekit.models.options import ModelOptions, OptionInfo, describe


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    ``target`` and ``options`` are the model class and its options class (a
    :class:`~vaekit.models.options.ModelOptions` dataclass; None: the model has no options of its
    own), each either the class itself or a ``"module:Class"`` reference, imported on first use; a
    module starting with a dot is inside ``vaekit.models``. ``deterministic`` models have no
    posterior density (no KL, ELBO or NLL), and their likelihood defaults to mse.
    """

    name: str
    target: Any
    description: str
    paper: str
    options: Any = None
    deterministic: bool = False


_ENTRIES = [
    ModelEntry("ae", ".base:AutoEncoder", "deterministic autoencoder trained on reconstruction alone", "-",
               deterministic=True),
    ModelEntry("vae", ".vae:VAE", "variational autoencoder: the negative ELBO (beta = 1)", "Kingma & Welling 2014",
               options=".vae:VAEOptions"),
    ModelEntry("beta-vae", ".vae:VAE", "VAE with the KL weighted by beta (default 4)", "Higgins et al. 2017",
               options=".vae:BetaVAEOptions"),
    ModelEntry("iwae", ".iwae:IWAE", "K-sample importance-weighted bound as the training objective",
               "Burda et al. 2016", options=".iwae:IWAEOptions"),
    ModelEntry("beta-tcvae", ".tcvae:BetaTCVAE", "KL split into index-code MI, total correlation and dimension-wise "
               "KL, weighted alpha / beta / gamma (minibatch-weighted or -stratified sampling)", "Chen et al. 2018",
               options=".tcvae:BetaTCVAEOptions"),
    ModelEntry("factor-vae", ".factorvae:FactorVAE", "ELBO plus gamma x total correlation, estimated by a "
               "discriminator between codes and dimension-wise permuted codes", "Kim & Mnih 2018",
               options=".factorvae:FactorVAEOptions"),
    ModelEntry("dip-vae", ".dipvae:DIPVAE", "ELBO plus a penalty pushing the covariance of q(z) to the identity "
               "(type i or ii)", "Kumar et al. 2018", options=".dipvae:DIPVAEOptions"),
    ModelEntry("capacity-vae", ".capacity:CapacityVAE", "KL held at a capacity C raised linearly from 0: "
               "recon + gamma |KL - C|", "Burgess et al. 2018", options=".capacity:CapacityVAEOptions"),
    ModelEntry("info-vae", ".mmd:InfoVAE", "Gaussian-encoder VAE plus an MMD penalty between q(z) and the prior",
               "Zhao et al. 2019", options=".mmd:InfoVAEOptions"),
    ModelEntry("wae-mmd", ".mmd:WAEMMD", "deterministic encoder: reconstruction plus MMD between the codes and "
               "N(0, I)", "Tolstikhin et al. 2018", options=".mmd:WAEMMDOptions", deterministic=True),
    ModelEntry("vamp", ".vamp:VampVAE", "VAE whose prior (VampPrior) is a mixture of the posteriors of learned "
               "pseudo-inputs", "Tomczak & Welling 2018", options=".vamp:VampOptions"),
    ModelEntry("cvae", ".cvae:CVAE", "conditional VAE: class labels fed to encoder and decoder; "
               "class-conditional samples", "Sohn et al. 2015", options=".cvae:CVAEOptions"),
    ModelEntry("vq-vae", ".vqvae:VQVAE", "vector-quantised codes (commitment loss, EMA codebook) and a Markov-chain "
               "prior over the codes, fitted to the training set", "van den Oord et al. 2017",
               options=".vqvae:VQVAEOptions", deterministic=True),
    ModelEntry("hvae", ".hvae:HierarchicalVAE", "two-level hierarchical VAE with ladder-style top-down inference",
               "Sønderby et al. 2016", options=".hvae:HierarchicalVAEOptions"),
]

MODELS: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}


def register(entry: ModelEntry) -> ModelEntry:
    """Add a model to the registry: ``vaekit train --model NAME``, its flags, config keys and
    ``vaekit models NAME`` then know it, in this process."""
    if entry.name in MODELS:
        raise ConfigError(f"a model named {entry.name!r} is already registered")
    MODELS[entry.name] = entry
    return entry


def model_class(name: str):
    """The class behind a registered name (imports its module, and so torch)."""
    return _load(_lookup(name).target)


def options_class(name: str) -> type[ModelOptions]:
    """The options dataclass of a registered model (imports its module, and so torch)."""
    options = _lookup(name).options
    return ModelOptions if options is None else _load(options)


def model_options(name: str) -> list[OptionInfo]:
    """What ``vaekit models NAME`` lists: each option's name, type, default and help."""
    return describe(options_class(name))


def option_users() -> dict[str, list[str]]:
    """Every declared option name -> the registered models that take it, in registry order."""
    users: dict[str, list[str]] = {}
    for name in MODELS:
        for info in model_options(name):
            users.setdefault(info.name, []).append(name)
    return users


def build_model(config, sample_shape: tuple[int, ...], *, class_names: list[str] | None = None):
    """A freshly initialised model for ``config``; ``class_names`` are the labels of the data it will
    see (None: unlabelled), which a conditional model needs."""
    cls = model_class(config.model)
    if cls.conditional and not class_names:
        raise ConfigError(f"--model {config.model} needs class labels: train it on a labelled dataset "
                          "(fashion-mnist, mnist, digits, an .npz with y, or an image folder with sub-folders)")
    return cls(config, sample_shape, class_names=class_names)


def _load(reference):
    """A "module:Class" reference (the module relative to this package when it starts with a dot), or the class."""
    if not isinstance(reference, str):
        return reference
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module, __name__), attribute)


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


__all__ = ["MODELS", "ModelEntry", "ModelOptions", "AutoEncoder", "VAE", "ModelOutput", "build_model", "model_class",
           "options_class", "model_options", "option_users", "register"]
