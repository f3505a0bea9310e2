"""Model registry: a name maps to a class; adding a model is one module and one line here."""
from __future__ import annotations

from ..config import TrainConfig
from ..errors import ConfigError
from .base import AutoEncoder, ModelOutput
from .vae import VAE

MODELS = {
    "ae": AutoEncoder,      # deterministic autoencoder, MSE (or any likelihood) reconstruction
    "vae": VAE,             # beta = 1: the negative ELBO
    "beta-vae": VAE,        # the same model with beta != 1 weighting the KL
}


def build_model(config: TrainConfig, sample_shape: tuple[int, ...]) -> AutoEncoder:
    if config.model not in MODELS:
        raise ConfigError(f"unknown model {config.model!r}: choose one of {', '.join(MODELS)}")
    return MODELS[config.model](config, sample_shape)


__all__ = ["MODELS", "AutoEncoder", "VAE", "ModelOutput", "build_model"]
