"""Model-specific training options: their types, command-line help, defaults and checks.

Each option is a :class:`vaekit.training.config.TrainConfig` field that is ``None`` unless the chosen model
uses it (the registry in ``vaekit.models`` says which model uses which, and its default). Torch-free:
the config and the CLI read this module without loading any model.
"""
from __future__ import annotations

import math
from typing import Any

from vaekit.errors import ConfigError
from vaekit.models import MODELS

# field: (type, help for `vaekit train`)
OPTIONS: dict[str, tuple[type, str]] = {
    "iw_k": (int, "iwae: importance samples K of the training bound (default 5)"),
    "alpha": (float, "beta-tcvae: weight of the index-code mutual information (default 1)"),
    "gamma": (float, "beta-tcvae: dimension-wise KL weight (default 1); factor-vae: total-correlation weight "
                     "(default 10); capacity-vae: weight of |KL - C| (default 1000)"),
    "disc_lr": (float, "factor-vae: learning rate of the discriminator's Adam (default 1e-4)"),
    "dip_type": (str, "dip-vae: i (covariance of the posterior means) or ii (of q(z)) (default i)"),
    "lambda_od": (float, "dip-vae: weight of the off-diagonal covariance penalty (default 10)"),
    "lambda_d": (float, "dip-vae: weight of the diagonal penalty (default 10 x lambda-od for type i, lambda-od for ii)"),
    "capacity_max": (float, "capacity-vae: final KL capacity C in nats (default 25)"),
    "capacity_epochs": (float, "capacity-vae: epochs over which C rises from 0 to its maximum (default: all epochs)"),
    "mmd_weight": (float, "info-vae / wae-mmd: weight of the MMD penalty (default 10)"),
    "mmd_kernel": (str, "info-vae / wae-mmd: rbf or imq (inverse multiquadric) (default rbf / imq)"),
    "pseudo_inputs": (int, "vamp: number of learned pseudo-inputs, the prior's mixture components (default 500)"),
    "label_dropout": (float, "cvae: share of training images whose label is replaced by 'unknown', so the model "
                             "also works without labels (default 0.1)"),
    "codebook_size": (int, "vq-vae: codebook entries (default 64)"),
    "code_dim": (int, "vq-vae: dimension of each code vector; latent-dim / code-dim codes per image (default 4)"),
    "commitment": (float, "vq-vae: commitment loss weight (default 0.25)"),
    "ema_decay": (float, "vq-vae: decay of the EMA codebook updates (default 0.99)"),
    "top_latent_dim": (int, "hvae: dimensions of the top level z2; z1 gets the rest of --latent-dim (default half)"),
    "free_bits": (float, "VAEs with a per-dimension KL: nats per dimension below which the KL is not penalised"),
}

CHOICES = {"dip_type": ("i", "ii"), "mmd_kernel": ("rbf", "imq")}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def users(name: str) -> list[str]:
    return [model for model, entry in MODELS.items() if name in entry.options]


def fill_defaults(cfg) -> None:
    """Set the chosen model's options that were not given to their registry defaults (in place)."""
    entry = MODELS.get(cfg.model)
    if entry is None:
        return
    for name, default in entry.options.items():
        if getattr(cfg, name) is None and default is not None:
            setattr(cfg, name, default(cfg) if callable(default) else default)
    if cfg.prior == "vamp" and cfg.pseudo_inputs is None:
        cfg.pseudo_inputs = 500


def check(cfg) -> None:
    """Refuse options the model does not use, and out-of-range values, with one clear line."""
    entry = MODELS[cfg.model]
    for name in (*OPTIONS, "beta"):
        value = getattr(cfg, name)
        if value is not None and name not in entry.options and not (name == "beta" and cfg.model == "ae") \
                and not (name == "pseudo_inputs" and cfg.prior == "vamp"):
            where = ", ".join(users(name))
            raise ConfigError(f"{flag(name)} does not apply to --model {cfg.model} (it is an option of {where})")
    if cfg.kl_warmup > 0 and cfg.beta is None and not entry.deterministic:
        raise ConfigError(f"--kl-warmup ramps the KL weight beta, which --model {cfg.model} does not have")
    for name, choices in CHOICES.items():
        value = getattr(cfg, name)
        if value is not None and value not in choices:
            raise ConfigError(f"unknown {flag(name)} {value!r}: choose one of {', '.join(choices)}")
    _at_least(cfg, "iw_k", 1)
    _at_least(cfg, "pseudo_inputs", 1)
    _at_least(cfg, "codebook_size", 2)
    _at_least(cfg, "code_dim", 1)
    for name in ("alpha", "gamma", "lambda_od", "lambda_d", "capacity_max", "mmd_weight", "commitment", "free_bits"):
        value = getattr(cfg, name)
        if value is not None and not (value >= 0 and math.isfinite(value)):
            raise ConfigError(f"{flag(name)} must be a non-negative number, not {value}")
    for name in ("disc_lr", "capacity_epochs"):
        value = getattr(cfg, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{flag(name)} must be a positive number, not {value}")
    for name in ("label_dropout", "ema_decay"):
        value = getattr(cfg, name)
        if value is not None and not 0 <= value < 1:
            raise ConfigError(f"{flag(name)} must be in [0, 1), not {value}")
    if cfg.code_dim is not None and cfg.latent_dim % cfg.code_dim:
        raise ConfigError(f"--latent-dim {cfg.latent_dim} is not a multiple of --code-dim {cfg.code_dim}: "
                          "each image gets latent-dim / code-dim code vectors")
    if cfg.top_latent_dim is not None and not 1 <= cfg.top_latent_dim < cfg.latent_dim:
        raise ConfigError(f"--top-latent-dim must be between 1 and --latent-dim - 1 = {cfg.latent_dim - 1} "
                          f"(hvae splits --latent-dim between its two levels), not {cfg.top_latent_dim}")


def _at_least(cfg, name: str, low: int) -> None:
    value = getattr(cfg, name)
    if value is not None and value < low:
        raise ConfigError(f"{flag(name)} must be at least {low}, not {value}")


def option_type(name: str) -> Any:
    return OPTIONS[name][0]
