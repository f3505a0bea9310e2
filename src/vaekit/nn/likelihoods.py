"""Observation models p(x|z): the reconstruction term of the ELBO.

The decoder outputs ``params`` shaped (B, P, *sample_shape): P numbers per data value (P = 1 for a
Bernoulli logit, 2 for a logistic's location and log-scale). Each likelihood turns them into
``log_prob(params, x)``, the log-likelihood of each image in nats (summed over pixels), and into
``mean(params)``, the expected image in [0, 1] that plots show.

Two flags keep the reported numbers honest:

* ``proper``: the likelihood is normalised over the space the data lives in. Cross-entropy on grey
  levels (Bernoulli without binarisation) and plain MSE are *not*; their "nats" are not nats.
* ``discrete``: the likelihood is a probability mass function over the data's discrete values, so
  -log p / (D log 2) is an honest bits/dim. Densities on [0, 1] (Gaussian, continuous Bernoulli) are
  proper but not discrete: their log-density is not the log-probability of an 8-bit image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaekit.nn.distributions import LOG_2PI, REDUCED_PRECISION
from vaekit.errors import ConfigError


def _sum_per_image(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Stochastic binarisation: each grey value x in [0, 1] becomes 1 with probability x."""
    return torch.bernoulli(x, generator=generator)


class Likelihood(nn.Module):
    """Base class. Subclasses set the class attributes and implement log_density and mean."""

    name: str = ""
    params_per_value: int = 1
    proper: bool = True
    discrete: bool = False

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per sample, in nats, always in float32 or wider: a decoder run under bf16
        autocast hands over bfloat16 parameters, and a sum of 784 terms near 230 nats in bfloat16
        moves in steps of 1."""
        if params.dtype in REDUCED_PRECISION:
            params = params.float()
        return self.log_density(params, x)

    def log_density(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        return self.name


class Bernoulli(Likelihood):
    """log p(x|z) = sum x log p + (1 - x) log(1 - p), p = sigmoid(logit).

    A proper likelihood of *binary* images. On grey levels (``binarize='none'``) it is the popular
    cross-entropy loss, which is not normalised over [0, 1]: we still train with it but flag it.
    """

    name = "bernoulli"

    def __init__(self, binarize: str = "dynamic"):
        super().__init__()
        if binarize not in ("none", "static", "dynamic"):
            raise ConfigError(f"unknown --binarize {binarize!r}: use none, static or dynamic")
        self.binarize = binarize
        self.proper = binarize != "none"
        self.discrete = binarize != "none"

    def log_density(self, params, x):
        logits = params[:, 0]
        if torch.is_grad_enabled() and logits.requires_grad:
            return -_sum_per_image(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))
        # Without autograd (evaluation, the IW bound) the same sum, -(softplus(l) - x l), is about
        # twice as fast computed in place in one buffer; with autograd the fused cross-entropy's
        # backward wins.
        logits = logits.flatten(1)
        loss = F.softplus(logits).addcmul_(x.flatten(1).to(logits.dtype), logits, value=-1)
        return -loss.sum(1)

    def mean(self, params):
        return torch.sigmoid(params[:, 0])

    def describe(self):
        return f"bernoulli (binarize={self.binarize})"


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli, lambda = sigmoid(logits) (Loaiza-Ganem & Cunningham 2019).

    C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda), and 2 artanh(1 - 2 sigmoid(l)) = -l, so
    C = l / tanh(l / 2). Near l = 0 its Taylor series gives log C = log 2 + l^2 / 12 + O(l^4).
    """
    safe = torch.where(logits.abs() < 1e-3, torch.ones_like(logits), logits)
    exact = torch.log(safe.abs()) - torch.log(torch.tanh(safe.abs() / 2))
    taylor = math.log(2.0) + logits.pow(2) / 12
    return torch.where(logits.abs() < 1e-3, taylor, exact)


class ContinuousBernoulli(Likelihood):
    """The continuous Bernoulli density on [0, 1]: the normalised version of cross-entropy on grey levels."""

    name = "continuous-bernoulli"

    def log_density(self, params, x):
        logits = params[:, 0]
        log_kernel = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return _sum_per_image(log_kernel + continuous_bernoulli_log_norm(logits))

    def mean(self, params):
        # E[x] = lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)) = sigmoid(l) / tanh(l/2) - 1/l,
        # which tends to 1/2 + l/12 near l = 0.
        # The two terms are each about 1/l and cancel near l = 0, so compute them in float64.
        logits = params[:, 0].double()
        safe = torch.where(logits.abs() < 1e-3, torch.ones_like(logits), logits)
        exact = torch.sigmoid(safe) / torch.tanh(safe / 2) - 1 / safe
        mean = torch.where(logits.abs() < 1e-3, 0.5 + logits / 12, exact).clamp(0, 1)
        return mean.to(params.dtype)


class Gaussian(Likelihood):
    """N(x; out, sigma^2) per value, identity link for the mean; sigma fixed, one learned scalar
    (``"learned"``), or learned per data value (``"learned-per-feature"``).

    With a linear decoder and one sigma this is exactly probabilistic PCA's observation model
    (Tipping & Bishop 1999); with one sigma per feature, factor analysis's.

    A learned sigma is the 'calibrated decoder' of Rybkin et al. 2021: its optimum is the RMS error,
    which balances reconstruction against the KL without hand-tuning beta. Where it starts matters:
    a sigma far above the error it will reach makes the reconstruction term weak, and the KL then
    drives the posterior to the prior before sigma has come down. :meth:`initialise` therefore starts
    it at the error a linear model of the same latent size leaves (the PCA residual), the optimum of
    the linear-Gaussian case, and the trainer starts the encoder's posterior variances at that
    model's (see :meth:`vaekit.models.vae.VAE.start_posterior_variance`).
    """

    name = "gaussian"
    LOG_SIGMA_MIN = -7.0  # sigma >= e^-7 ~ 0.0009: a learned sigma cannot diverge on values it reproduces exactly

    def __init__(self, sigma: float | str = "learned", sample_shape: tuple[int, ...] = ()):
        super().__init__()
        self.learned = sigma in ("learned", "learned-per-feature")
        self.per_feature = sigma == "learned-per-feature"
        if self.learned:
            shape = tuple(sample_shape) if self.per_feature else ()
            self.log_sigma = nn.Parameter(torch.zeros(shape))
        else:
            try:
                value = float(sigma)
            except (TypeError, ValueError):
                raise ConfigError(f"--sigma must be a positive number, 'learned' or 'learned-per-feature', not {sigma!r}") from None
            if not (value > 0 and math.isfinite(value)):
                raise ConfigError(f"--sigma must be a positive number, 'learned' or 'learned-per-feature', not {sigma!r}")
            self.register_buffer("log_sigma", torch.tensor(math.log(value)))

    @torch.no_grad()
    def initialise(self, train_x, latent_dim: int, *, rows: int = 10_000) -> float | None:
        """Start a learned sigma at the PCA residual of ``latent_dim`` components on ``train_x``, and
        return the log posterior variance the matching linear model has (for the encoder's start).

        One sigma: the probabilistic-PCA maximum-likelihood noise s^2, the mean of the discarded
        eigenvalues l_j of the covariance. Per feature: each feature's variance left unexplained by
        the leading components. The returned value is the mean over the kept components of
        log(s^2 / l_j), pPCA's posterior variances (Tipping & Bishop 1999: M = W^T W + s^2 I has
        eigenvalues l_j, and Cov[z|x] = s^2 M^-1); None where it is not defined. Uses the first
        ``rows`` samples; data wider than 4096 values keep sigma as it is.
        """
        x = torch.as_tensor(train_x[:rows], dtype=torch.float64).flatten(1)
        n, dims = x.shape
        if dims > 4096 or n < 2:
            return None
        centred = x - x.mean(0)
        values, vectors = torch.linalg.eigh(centred.T @ centred / n)   # ascending
        values = values.clamp(min=0)
        kept = min(latent_dim, dims)
        rest_values, rest_vectors = values[:dims - kept], vectors[:, :dims - kept]
        floor = 1e-3 * float(values.mean()) + 1e-12
        noise = max(float(rest_values.mean()) if dims > kept else 0.0, floor)
        if self.learned and self.per_feature:
            residual = (rest_vectors.pow(2) * rest_values).sum(1).clamp(min=floor)
            self.log_sigma.copy_((0.5 * residual.log().reshape(self.log_sigma.shape)).clamp(min=self.LOG_SIGMA_MIN))
        elif self.learned:
            self.log_sigma.fill_(max(0.5 * math.log(noise), self.LOG_SIGMA_MIN))
        noise = float(torch.exp(2 * self.log_sigma).mean()) if not self.learned else noise
        top = values[dims - kept:]
        if dims <= kept or float(top.min()) <= noise:
            return None
        return float(torch.log(noise / top).mean())

    def log_density(self, params, x):
        log_sigma = self.log_sigma.clamp(min=self.LOG_SIGMA_MIN) if self.learned else self.log_sigma
        z = (x - params[:, 0]) * torch.exp(-log_sigma)
        return _sum_per_image(-0.5 * (z.pow(2) + LOG_2PI) - log_sigma)

    def mean(self, params):
        return params[:, 0]

    def describe(self):
        if self.learned:
            return f"gaussian (sigma={'learned-per-feature' if self.per_feature else 'learned'})"
        return f"gaussian (sigma={self.log_sigma.exp().item():g})"


class DiscretizedLogistic(Likelihood):
    """An 8-bit likelihood: a logistic per value, integrated over each of the 256 bins.

    Follows Salimans et al. 2017 (PixelCNN++), one component: values k/255 are mapped to [-1, 1],
    bin k covers [x - 1/255, x + 1/255], and the two edge bins take the tails to -inf and +inf, so
    the 256 probabilities sum to 1. Data are rounded to the nearest 1/255 first: on data that are not
    8-bit that is a different data set, and the evaluation then reports no bits/dim (evaluate.py).

    Each bin edge is computed from the bin index as (k +- 1/2) / 127.5 - 1, so two neighbouring bins
    share their edge to the last bit. Computed as v +- 1/255 instead, the two roundings of one edge
    differ by about 6e-8, which at the smallest scale (e^-7, edges 1/scale ~ 1100 apart in units of
    the logistic) leaves gaps and overlaps between bins: in float32 the 256 bins summed to 1 - 1.6e-5.
    """

    name = "discretized-logistic"
    params_per_value = 2
    discrete = True

    def log_density(self, params, x):
        loc, log_scale = params[:, 0], params[:, 1].clamp(min=-7.0)
        k = torch.round(x * 255)                          # the bin index 0..255
        inv_scale = torch.exp(-log_scale)
        upper = inv_scale * ((k + 0.5) / 127.5 - 1.0 - loc)
        lower = inv_scale * ((k - 0.5) / 127.5 - 1.0 - loc)
        log_cdf_upper = upper - F.softplus(upper)        # log sigmoid(upper)
        log_sf_lower = -F.softplus(lower)                 # log (1 - sigmoid(lower))
        # log(sigmoid(u) - sigmoid(l)), computed stably as log sigmoid(u) + log(1 - exp(l - u)) + log sigmoid(-l)
        # using sigmoid(u) - sigmoid(l) = sigmoid(u) sigmoid(-l) (1 - exp(l - u)).
        log_bin = log_cdf_upper - F.softplus(lower) + torch.log(-torch.expm1(lower - upper).clamp(max=-1e-12))
        log_p = torch.where(k < 0.5, log_cdf_upper, torch.where(k > 254.5, log_sf_lower, log_bin))
        return _sum_per_image(log_p)

    def mean(self, params):
        return ((params[:, 0].clamp(-1, 1) + 1) / 2)


class SquaredError(Likelihood):
    """The autoencoder's loss: minus the sum of squared errors. Not a likelihood (no normaliser).

    The output is used as it is (identity link), so a linear AE is a linear map and can find the
    PCA subspace; images shown to users are clipped to [0, 1] by the plotting code.
    """

    name = "mse"
    proper = False

    def log_density(self, params, x):
        return -_sum_per_image((x - params[:, 0]).pow(2))

    def mean(self, params):
        return params[:, 0]


LIKELIHOODS = {
    "bernoulli": Bernoulli,
    "continuous-bernoulli": ContinuousBernoulli,
    "gaussian": Gaussian,
    "discretized-logistic": DiscretizedLogistic,
    "mse": SquaredError,
}


def build_likelihood(name: str, *, binarize: str = "dynamic", sigma: float | str = "learned",
                     sample_shape: tuple[int, ...] = ()) -> Likelihood:
    if name not in LIKELIHOODS:
        raise ConfigError(f"unknown likelihood {name!r}: choose one of {', '.join(LIKELIHOODS)}")
    if name == "bernoulli":
        return Bernoulli(binarize)
    if name == "gaussian":
        return Gaussian(sigma, sample_shape)
    return LIKELIHOODS[name]()


def observed(x: torch.Tensor, likelihood: Likelihood, seed: int) -> torch.Tensor:
    """The data a likelihood is scored on, fixed by ``seed``: a binarised copy for a binarising
    Bernoulli (the standard fixed binarisation of validation and test sets), else ``x`` itself."""
    if isinstance(likelihood, Bernoulli) and likelihood.binarize != "none":
        generator = torch.Generator(device=x.device).manual_seed(seed)
        return binarize(x, generator)
    return x
