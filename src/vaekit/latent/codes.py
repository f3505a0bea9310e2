"""Moving between images and codes: posterior means, decoded images, reconstructions, KL per dimension.

Everything here takes and returns NumPy arrays: images are float32 shaped ``(N, *sample_shape)``,
codes ``(N, latent_dim)``. Images given to the encoder are the data set's grey values in [0, 1]
(a binarising Bernoulli model was trained on binarised copies; grey values are their expectation).
Real-valued data (tables; ``model.scaling`` set) stay in the model's standardised units here, as the
data set's ``x`` are; :func:`decode_values` and ``model.to_data_units`` give the original units.
"""
from __future__ import annotations

import numpy as np
import torch

from vaekit.errors import ConfigError
from vaekit.training.run import load_model_and_data  # noqa: F401  (part of vaekit.latent's API)

BATCH_SIZE = 500


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def encode_means(model, x: np.ndarray, *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Posterior means E[z|x] (the code itself for an AE), float32 ``(N, latent_dim)``."""
    device = _device(model)
    parts = [model.encode(torch.as_tensor(x[start:start + batch_size], device=device)).mean.float().cpu().numpy()
             for start in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, model.latent_dim), np.float32)


@torch.inference_mode()
def decode_images(model, z: np.ndarray, *, clip: bool | None = None, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Decode codes of any leading shape ``(..., latent_dim)`` into images ``(..., *sample_shape)``.

    ``clip`` limits the result to [0, 1]: the gaussian and mse decoders are not bounded, and images
    outside [0, 1] cannot be shown or compared with the data. By default (None) images are clipped
    and real-valued data (``model.scaling`` set), whose standardised values are unbounded, are not.
    """
    if clip is None:
        clip = model.scaling is None
    z = np.asarray(z, dtype=np.float32)
    lead = z.shape[:-1]
    flat = z.reshape(-1, z.shape[-1])
    device = _device(model)
    parts = [model.decode(torch.as_tensor(flat[start:start + batch_size], device=device)).float().cpu().numpy()
             for start in range(0, len(flat), batch_size)]
    images = np.concatenate(parts) if parts else np.zeros((0, *model.sample_shape), np.float32)
    if clip:
        images = np.clip(images, 0.0, 1.0)
    return images.reshape(*lead, *model.sample_shape)


def decode_values(model, z: np.ndarray) -> np.ndarray:
    """Decoded samples in the data's original units, float64: a table's rows as its columns were
    (``model.to_data_units`` of the standardised decoder mean); images as :func:`decode_images`."""
    return np.asarray(model.to_data_units(decode_images(model, z)), dtype=np.float64)


def reconstruct(model, x: np.ndarray) -> np.ndarray:
    """The posterior-mean reconstruction decode(E[z|x]), clipped to [0, 1] for images (standardised
    values, unclipped, for real-valued data)."""
    return decode_images(model, encode_means(model, x))


@torch.inference_mode()
def mean_kl_per_dim(model, x: np.ndarray, *, batch_size: int = BATCH_SIZE) -> np.ndarray | None:
    """KL(q(z|x) || N(0, I)) per latent dimension, averaged over ``x``, in nats; None for an AE.

    A dimension whose KL is near 0 carries no information about x: the posterior equals the prior
    there ("inactive" or "collapsed" units).
    """
    if not model.variational:
        return None
    device = _device(model)
    total = torch.zeros(model.latent_dim, dtype=torch.float64)
    for start in range(0, len(x), batch_size):
        posterior = model.encode(torch.as_tensor(x[start:start + batch_size], device=device))
        total += posterior.kl_per_dim().double().sum(0).cpu()
    return (total / max(len(x), 1)).numpy()


def check_codes(codes, latent_dim: int) -> np.ndarray:
    """Codes given by hand (lists of numbers) as a float64 ``(N, latent_dim)`` array, or
    :class:`ConfigError` naming the first bad one."""
    rows = [np.asarray(code, dtype=np.float64).reshape(-1) for code in codes]
    if not rows:
        raise ConfigError("no codes given: give at least one, e.g. --z 0,0")
    for i, row in enumerate(rows):
        if row.size != latent_dim or not np.all(np.isfinite(row)):
            raise ConfigError(f"code {i + 1} has {row.size} numbers{'' if np.all(np.isfinite(row)) else ' (not all finite)'}: "
                              f"this model's codes are {latent_dim} finite numbers")
    return np.stack(rows)


def check_indices(indices, n: int, *, what: str = "image index", split: str = "test") -> list[int]:
    """The indices as ints, or :class:`ConfigError` naming the valid range of the ``split``."""
    indices = [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise ConfigError(f"{what} {bad[0]} is out of range: the {split} split has {n} images, "
                          f"so use 0 to {n - 1}")
    return indices
