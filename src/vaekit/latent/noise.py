"""Denoising: corrupt images, reconstruct them through the code, and measure PSNR against the clean ones.

An autoencoder's reconstruction maps an image back to what the decoder can produce, so noise the
training data never showed tends to be removed; PSNR says by how much.
"""
from __future__ import annotations

import numpy as np

from vaekit.errors import ConfigError

CORRUPTIONS = ("gaussian", "mask")


def corrupt(x: np.ndarray, noise: float, *, kind: str = "gaussian", seed: int = 0) -> np.ndarray:
    """A corrupted copy of images ``x`` in [0, 1].

    * ``gaussian``: add N(0, noise^2) to every value, then clip to [0, 1];
    * ``mask``: set a random fraction ``noise`` of the pixels to 0 (all channels of a pixel together).
    """
    if kind not in CORRUPTIONS:
        raise ConfigError(f"unknown corruption {kind!r}: use {' or '.join(CORRUPTIONS)}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ConfigError(f"--noise must be a non-negative number, not {noise}")
    if kind == "mask" and noise > 1:
        raise ConfigError(f"--noise is the fraction of pixels masked with --kind mask, so at most 1, not {noise}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    if kind == "gaussian":
        return np.clip(x + noise * rng.standard_normal(x.shape).astype(np.float32), 0.0, 1.0)
    # Images (N, C, H, W) share one mask over their channels; flat vectors (N, D) mask values.
    mask_shape = (x.shape[0], 1, *x.shape[2:]) if x.ndim == 4 else x.shape
    keep = rng.random(mask_shape) >= noise
    return (x * keep).astype(np.float32)


def psnr(estimate: np.ndarray, clean: np.ndarray, *, peak: float = 1.0) -> np.ndarray:
    """Peak signal-to-noise ratio per image, in dB: 10 log10(peak^2 / MSE), MSE over all values of an image.

    Identical images give +inf.
    """
    estimate = np.asarray(estimate, np.float64)
    clean = np.asarray(clean, np.float64)
    mse = ((estimate - clean) ** 2).reshape(len(clean), -1).mean(1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak ** 2 / mse)
