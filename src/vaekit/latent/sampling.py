"""Where to draw new codes from: the prior N(0, T^2 I), or a Gaussian mixture fitted to the encoded data.

A VAE is trained so that its aggregate posterior q(z) = E_x[q(z|x)] is close to the prior, so prior
samples decode to plausible images. A plain autoencoder has no prior: its codes can sit anywhere,
and N(0, I) samples mostly land where no training image was encoded. Fitting a Gaussian mixture to
the encoded training set and sampling from it (as in Ghosh et al. 2020, "From variational to
deterministic autoencoders") gives an AE something to sample from, and often sharpens VAE samples.

Models with a prior of their own (the VampPrior, the two-level HVAE, VQ-VAE's prior over codes) set
a prior other than N(0, I) (``model.prior.standard`` is False); "prior" samples then come from ``model.sample_prior``.
"""
from __future__ import annotations

import logging
import warnings

import numpy as np

from vaekit.errors import ConfigError
from vaekit.limits import check_seed

log = logging.getLogger(__name__)

SAMPLERS = ("prior", "gmm")
GMM_COMPONENTS = 10


def prior_samples(latent_dim: int, n: int, *, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` codes z ~ N(0, T^2 I), shape (n, latent_dim). T < 1 trades variety for typical samples."""
    _check(n, temperature, seed)
    return temperature * np.random.default_rng(seed).standard_normal((n, latent_dim))


def model_prior_samples(model, n: int, *, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` codes from a model's own prior (a VampPrior, a hierarchy, a prior over discrete codes), as
    ``model.sample_prior`` draws them; ``temperature`` scales its noise. Shape (n, latent_dim)."""
    import torch

    _check(n, temperature, seed)
    device = next(model.parameters()).device
    with torch.inference_mode():
        codes = model.sample_prior(n, generator=torch.Generator(device=device).manual_seed(seed), temperature=temperature)
    return codes.float().cpu().numpy()


def fit_aggregate_posterior(means: np.ndarray, *, components: int = GMM_COMPONENTS, seed: int = 0):
    """A full-covariance sklearn ``GaussianMixture`` fitted to encoded posterior means (N, L)."""
    from sklearn.mixture import GaussianMixture

    means = np.asarray(means, np.float64)
    if len(means) < 2:
        raise ConfigError(f"a mixture needs at least 2 encoded images, not {len(means)}")
    components = max(1, min(components, len(means) // 2))
    # A small ridge keeps the covariances invertible when some dimensions are (nearly) constant,
    # as inactive VAE units are.
    mixture = GaussianMixture(n_components=components, covariance_type="full", reg_covar=1e-5,
                              random_state=seed, max_iter=200)
    return mixture.fit(means)


def mixture_samples(mixture, n: int, *, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` codes from a fitted ``GaussianMixture``: a component by its weight, then N(mean_k, T^2 cov_k)."""
    _check(n, temperature, seed)
    rng = np.random.default_rng(seed)
    component = rng.choice(len(mixture.weights_), size=n, p=mixture.weights_ / mixture.weights_.sum())
    cholesky = np.linalg.cholesky(mixture.covariances_)            # (K, L, L)
    noise = rng.standard_normal((n, mixture.means_.shape[1]))
    return mixture.means_[component] + temperature * np.einsum("nij,nj->ni", cholesky[component], noise)


def ae_prior_warning() -> str:
    return ("a plain autoencoder has no prior: N(0, I) codes mostly fall where no image was encoded, so these "
            "samples show little; use --sampler gmm (in Python sampler='gmm'), a mixture fitted to the encoded training images")


def sample_codes(model, n: int, *, sampler: str = "prior", temperature: float = 1.0, seed: int = 0,
                 train_means: np.ndarray | None = None, components: int = GMM_COMPONENTS) -> np.ndarray:
    """``n`` codes for ``model`` from ``sampler``: "prior" or "gmm" (needs ``train_means``, the encoded
    training split). Prior samples from a plain autoencoder are allowed but warn (``UserWarning``)."""
    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}: use {' or '.join(SAMPLERS)}")
    if sampler == "prior":
        if not model.generative:
            warnings.warn(ae_prior_warning(), UserWarning, stacklevel=2)
        if not model.prior.standard:
            return model_prior_samples(model, n, temperature=temperature, seed=seed)
        return prior_samples(model.latent_dim, n, temperature=temperature, seed=seed)
    if train_means is None:
        raise ConfigError("the gmm sampler needs the encoded training images (train_means)")
    mixture = fit_aggregate_posterior(train_means, components=components, seed=seed)
    log.info("fitted a %d-component Gaussian mixture to %d codes", mixture.n_components, len(train_means))
    return mixture_samples(mixture, n, temperature=temperature, seed=seed)


def _check(n: int, temperature: float, seed: int) -> None:
    if n < 1:
        raise ConfigError(f"-n must be at least 1, not {n}")
    check_seed(seed)
    if not (temperature > 0 and np.isfinite(temperature)):
        raise ConfigError(f"--temperature must be a positive number, not {temperature}")
