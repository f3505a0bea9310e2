"""Every formula in vaekit checked against an independent computation.

Oracles used here, none of which shares code with the library: torch.distributions, scipy.stats,
scipy.integrate quadrature, Gauss-Hermite quadrature, dense grids, scikit-learn's PCA, and Monte Carlo
with tolerances derived from the Monte-Carlo standard error (SE). Tolerances are stated where used.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.distributions as td
from scipy import integrate, stats
from scipy.special import expit

from conftest import unlabelled_dataset
from vaekit.training.config import TrainConfig
from vaekit.nn.distributions import DiagonalGaussian, standard_normal_log_prob
from vaekit.evaluation.evaluate import evaluate_model, importance_weighted_bound, pca_baseline_mse
from vaekit.nn.likelihoods import (Bernoulli, ContinuousBernoulli, DiscretizedLogistic, Gaussian, SquaredError,
                                build_likelihood, continuous_bernoulli_log_norm)
from vaekit.models import build_model

SHAPE = (1, 8, 8)
D = math.prod(SHAPE)


# ------------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------------

def _z_from_mc(mc: np.ndarray, target: np.ndarray) -> np.ndarray:
    """|mean(mc) - target| in units of the Monte-Carlo standard error, along axis 0."""
    se = mc.std(0, ddof=1) / math.sqrt(mc.shape[0])
    return np.abs(mc.mean(0) - target) / np.maximum(se, 1e-12)     # se = 0 when q = p: exact


def _per_value_params(values):
    """Likelihood params for single-value 'images': shape (B, 1, 1)."""
    return torch.as_tensor(values, dtype=torch.float64).reshape(-1, 1, 1)


# ------------------------------------------------------------------------------------------------
# 1. DiagonalGaussian
# ------------------------------------------------------------------------------------------------

MEANS = torch.tensor([[0.0, 1.5, -2.0, 0.3], [3.0, -0.1, 0.0, -4.0]], dtype=torch.float64)
LOGVARS = torch.tensor([[0.0, -1.0, 1.2, -4.0], [2.0, 0.5, -0.3, -6.0]], dtype=torch.float64)


def test_kl_per_dim_matches_torch_kl_divergence():
    q = DiagonalGaussian(MEANS, LOGVARS)
    oracle = td.kl_divergence(td.Normal(MEANS, torch.exp(0.5 * LOGVARS)),
                              td.Normal(torch.zeros_like(MEANS), torch.ones_like(MEANS)))
    assert q.kl_per_dim().shape == MEANS.shape
    torch.testing.assert_close(q.kl_per_dim(), oracle, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.kl(), oracle.sum(-1), rtol=1e-12, atol=1e-12)
    # KL(N(0,1) || N(0,1)) = 0 exactly.
    assert float(DiagonalGaussian(torch.zeros(1, 2), torch.zeros(1, 2)).kl().abs().max()) == 0.0


def test_kl_per_dim_matches_monte_carlo():
    """E_q[log q(z) - log p(z)] per dimension, with log densities from scipy and samples from numpy."""
    rng = np.random.default_rng(0)
    n = 200_000
    mean, logvar = MEANS.numpy(), LOGVARS.numpy()
    std = np.exp(0.5 * logvar)
    z = mean + std * rng.standard_normal((n, *mean.shape))
    log_ratio = stats.norm.logpdf(z, mean, std) - stats.norm.logpdf(z)
    kl = DiagonalGaussian(MEANS, LOGVARS).kl_per_dim().numpy()
    # Within 4.5 MC standard errors for each of the 8 dimensions (false-alarm rate ~1e-4 overall).
    assert np.all(_z_from_mc(log_ratio, kl) < 4.5), (log_ratio.mean(0), kl)


def test_log_prob_matches_torch_normal():
    q = DiagonalGaussian(MEANS, LOGVARS)
    z = torch.randn(7, *MEANS.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3
    oracle = td.Normal(MEANS, torch.exp(0.5 * LOGVARS)).log_prob(z).sum(-1)
    assert q.log_prob(z).shape == (7, 2)
    torch.testing.assert_close(q.log_prob(z), oracle, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(standard_normal_log_prob(z), td.Normal(0.0, 1.0).log_prob(z).sum(-1),
                               rtol=1e-12, atol=1e-12)


def test_reparameterised_samples_have_right_moments_and_gradients():
    mean = MEANS.clone().requires_grad_(True)
    logvar = LOGVARS.clone().requires_grad_(True)
    q = DiagonalGaussian(mean, logvar)
    n = 100_000
    z = q.sample(n, generator=torch.Generator().manual_seed(0))
    assert z.shape == (n, *MEANS.shape)
    assert q.sample().shape == MEANS.shape
    std = torch.exp(0.5 * LOGVARS)
    zs = z.detach()
    # Sample mean: SE = std / sqrt(n); sample std: SE ~= std / sqrt(2n). 5 SE each.
    assert torch.all((zs.mean(0) - MEANS).abs() < 5 * std / math.sqrt(n))
    assert torch.all((zs.std(0) - std).abs() < 5 * std / math.sqrt(2 * n))
    # The same generator seed gives the same draw.
    again = q.sample(n, generator=torch.Generator().manual_seed(0))
    assert torch.equal(zs, again.detach())
    # Pathwise gradients: z = mean + exp(logvar/2) eps, so dz/dmean = 1 and dz/dlogvar = (z - mean) / 2.
    z.sum().backward()
    torch.testing.assert_close(mean.grad, torch.full_like(MEANS, float(n)))
    torch.testing.assert_close(logvar.grad, 0.5 * (zs - MEANS).sum(0), rtol=1e-9, atol=1e-6)
    assert torch.all(logvar.grad != 0)


# ------------------------------------------------------------------------------------------------
# 2. Likelihoods
# ------------------------------------------------------------------------------------------------

def test_likelihood_flags():
    assert build_likelihood("mse").proper is False
    assert SquaredError.proper is False
    none = build_likelihood("bernoulli", binarize="none")
    assert none.proper is False and none.discrete is False
    for mode in ("static", "dynamic"):
        lik = build_likelihood("bernoulli", binarize=mode)
        assert lik.proper is True and lik.discrete is True
    dl = build_likelihood("discretized-logistic")
    assert dl.proper is True and dl.discrete is True and dl.params_per_value == 2
    for lik in (build_likelihood("gaussian", sigma="0.5"), build_likelihood("gaussian", sigma="learned"),
                build_likelihood("continuous-bernoulli")):
        assert lik.proper is True and lik.discrete is False


def test_bernoulli_is_normalised_and_matches_torch():
    lik = Bernoulli("dynamic")
    logits = torch.tensor([-30.0, -3.0, -0.2, 0.0, 0.7, 5.0, 30.0], dtype=torch.float64)
    params = _per_value_params(logits)
    p0 = lik.log_prob(params, torch.zeros(len(logits), 1, dtype=torch.float64)).exp()
    p1 = lik.log_prob(params, torch.ones(len(logits), 1, dtype=torch.float64)).exp()
    torch.testing.assert_close(p0 + p1, torch.ones_like(p0), rtol=0, atol=1e-12)
    torch.testing.assert_close(p1, torch.sigmoid(logits), rtol=1e-12, atol=1e-300)
    # A 2x2 image: the 16 binary images' probabilities sum to 1, and each matches torch's Bernoulli.
    img_logits = torch.tensor([[-1.0, 0.5], [2.0, -3.0]], dtype=torch.float64)
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64).view(16, 1, 2, 2)
    params = img_logits.expand(16, 1, 2, 2).unsqueeze(1)                         # (16, 1, 1, 2, 2)
    log_p = lik.log_prob(params, images)
    assert log_p.shape == (16,)
    oracle = td.Bernoulli(logits=img_logits).log_prob(images[:, 0]).flatten(1).sum(1)
    torch.testing.assert_close(log_p, oracle, rtol=1e-12, atol=1e-12)
    assert abs(float(log_p.exp().sum()) - 1.0) < 1e-12


CB_LOGITS = [-20.0, -8.0, -2.0, -0.5, -0.01, -9e-4, -1e-5, 0.0, 2e-4, 9.9e-4, 1.1e-3, 0.05, 1.0, 3.0, 20.0]


def test_continuous_bernoulli_integrates_to_one():
    """quad of exp(log_prob(x)) over [0, 1], including the Taylor branch |l| < 1e-3 and |l| = 20 (float64)."""
    lik = ContinuousBernoulli()
    for logit in CB_LOGITS:
        params = torch.tensor([[[logit]]], dtype=torch.float64)

        def density(x):
            return float(lik.log_prob(params, torch.tensor([[x]], dtype=torch.float64)).exp())

        total, err = integrate.quad(density, 0.0, 1.0, limit=200, epsabs=1e-12, epsrel=1e-12)
        assert abs(total - 1.0) < 1e-8, (logit, total, err)


def test_continuous_bernoulli_integrates_to_one_in_float32():
    """The float32 density (what training uses) on a 20,001-point Simpson grid: within 2e-6 of 1
    (float32 rounding of each density value is ~1e-7 relative)."""
    lik = ContinuousBernoulli()
    xs = np.linspace(0.0, 1.0, 20_001)
    x = torch.tensor(xs, dtype=torch.float32).reshape(-1, 1)
    for logit in CB_LOGITS:
        params = torch.full((len(xs), 1, 1), logit, dtype=torch.float32)
        density = lik.log_prob(params, x).double().exp().numpy()
        total = integrate.simpson(density, x=xs)
        assert abs(total - 1.0) < 2e-6, (logit, total)


def test_continuous_bernoulli_log_norm_matches_closed_form():
    # log(2 artanh(1 - 2 lambda) / (1 - 2 lambda)), in float64 numpy, away from lambda = 1/2.
    logits = np.array([-15.0, -6.0, -2.0, -0.7, -0.05, 0.01, 0.3, 1.0, 4.0, 9.0, 15.0])
    lam = expit(logits)
    closed = np.log(2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam))
    got64 = continuous_bernoulli_log_norm(torch.tensor(logits)).numpy()
    np.testing.assert_allclose(got64, closed, rtol=1e-9)
    got32 = continuous_bernoulli_log_norm(torch.tensor(logits, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got32, closed, rtol=2e-6)
    # Everywhere, including the Taylor branch, against -log of the unnormalised kernel's integral:
    # C(lambda) = 1 / int_0^1 lambda^x (1 - lambda)^(1 - x) dx.
    for logit in CB_LOGITS:
        log_lam, log_1m_lam = math.log(expit(logit)), math.log(expit(-logit))
        integral, _ = integrate.quad(lambda x: math.exp(x * log_lam + (1 - x) * log_1m_lam), 0, 1,
                                     epsabs=0, epsrel=1e-13)
        got = float(continuous_bernoulli_log_norm(torch.tensor(logit, dtype=torch.float64)))
        assert abs(got + math.log(integral)) < 1e-10, logit
    # The two branches meet continuously at |l| = 1e-3 (Taylor error O(l^4) ~ 1e-14).
    edge = torch.tensor([1e-3 - 1e-12, 1e-3, -1e-3 + 1e-12, -1e-3], dtype=torch.float64)
    values = continuous_bernoulli_log_norm(edge)
    assert abs(float(values[0] - values[1])) < 1e-12 and abs(float(values[2] - values[3])) < 1e-12


def test_continuous_bernoulli_matches_torch_distribution():
    lik = ContinuousBernoulli()
    logits = torch.tensor([-20.0, -3.0, -0.4, 0.1, 1.0, 6.0, 20.0], dtype=torch.float64)
    xs = torch.tensor([0.0, 0.01, 0.25, 0.5, 0.8, 0.999, 1.0], dtype=torch.float64)
    for logit in logits:
        params = logit.expand(len(xs)).reshape(-1, 1, 1)
        got = lik.log_prob(params, xs.reshape(-1, 1))
        oracle = td.ContinuousBernoulli(logits=logit).log_prob(xs)
        torch.testing.assert_close(got, oracle, rtol=1e-9, atol=1e-9)


def test_continuous_bernoulli_mean_matches_integral():
    lik = ContinuousBernoulli()
    for logit in CB_LOGITS:
        params = torch.tensor([[[logit]]], dtype=torch.float64)

        def x_density(x):
            return x * float(lik.log_prob(params, torch.tensor([[x]], dtype=torch.float64)).exp())

        expected, _ = integrate.quad(x_density, 0.0, 1.0, limit=200, epsabs=1e-13, epsrel=1e-12)
        got = float(lik.mean(params))
        assert abs(got - expected) < 1e-9, (logit, got, expected)
    # Each float64 value is also checked above against quadrature to 1e-9; float32 values away from the
    # cancellation zone just above |l| = 1e-3 (tested separately below) agree to 2e-6.
    params32 = torch.tensor([-20.0, -3.0, -0.5, -1e-4, 0.0, 5e-4, 0.5, 2.0, 20.0]).reshape(-1, 1, 1)
    torch.testing.assert_close(lik.mean(params32).double(), lik.mean(params32.double()), rtol=0, atol=2e-6)


def test_continuous_bernoulli_mean_is_accurate_in_float32_near_the_taylor_switch():
    lik = ContinuousBernoulli()
    logits = torch.logspace(-3, 0, 400, dtype=torch.float64)
    logits = torch.cat([-logits, logits]).reshape(-1, 1, 1)
    error = (lik.mean(logits.float()).double() - lik.mean(logits)).abs().max()
    assert float(error) < 1e-5      # float32 resolves 3e-8 near 0.5: 1e-5 is a lenient bar


BIN_CENTRES = np.arange(256) / 127.5 - 1.0           # the values k/255 mapped to [-1, 1]


def _dl_all_values(loc, log_scale, dtype):
    """log P(k/255) for k = 0..255 under one discretized logistic."""
    lik = DiscretizedLogistic()
    params = torch.tensor([loc, log_scale], dtype=dtype).expand(256, 2).reshape(256, 2, 1)
    x = (torch.arange(256, dtype=dtype) / 255).reshape(256, 1)
    return lik.log_prob(params, x)


# Bin centres are odd multiples of 1/255 and bin edges even ones: 0 and 128/255 are edges, -1 and 1 the
# outermost centres, 1.4 lies beyond the range.
DL_CASES = [(loc, ls) for loc in (-1.0, -0.3, 0.0, 128 / 255, 0.5 + 0.3 / 255, 1.0, 1.4)
            for ls in (-6.0, -3.0, 0.0, 2.0)]


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_discretized_logistic_sums_to_one(dtype, tol):
    for loc, log_scale in DL_CASES + [(0.2, -9.0)]:     # -9 is below the -7 floor: still a distribution
        log_p = _dl_all_values(loc, log_scale, dtype)
        assert torch.isfinite(log_p).all(), (loc, log_scale)
        total = float(log_p.double().exp().sum())
        assert abs(total - 1.0) < tol, (loc, log_scale, total)


def test_discretized_logistic_float32_bins_sum_to_one_at_every_scale():
    """float32, scales e^-7 (the floor) to e^2, locations across the range, on bin centres and edges
    and in between: the 256 probabilities sum to 1 within 1e-6 (they summed to 1 - 1.6e-5 at e^-7
    while neighbouring bins rounded their shared edge apart)."""
    locations = [*np.linspace(-1.1, 1.1, 41), 128 / 255 - 1 / 255, 0.5 + 0.3 / 255, -1 + 1 / 255, 1 - 1 / 255]
    worst = 0.0
    for log_scale in np.linspace(-7.0, 2.0, 19):
        for loc in locations:
            log_p = _dl_all_values(float(loc), float(log_scale), torch.float32)
            assert torch.isfinite(log_p).all(), (loc, log_scale)
            worst = max(worst, abs(float(log_p.double().exp().sum()) - 1.0))
    assert worst < 1e-6, worst


def test_discretized_logistic_matches_scipy_logistic_bins():
    """Every bin's probability against scipy.stats.logistic CDF differences (edge bins open-ended)."""
    for loc, log_scale in DL_CASES:
        scale = math.exp(log_scale)
        upper = stats.logistic.cdf(BIN_CENTRES + 1 / 255, loc, scale)
        lower = stats.logistic.cdf(BIN_CENTRES - 1 / 255, loc, scale)
        upper[-1], lower[0] = 1.0, 0.0
        oracle = upper - lower
        got = _dl_all_values(loc, log_scale, torch.float64).exp().numpy()
        np.testing.assert_allclose(got, oracle, rtol=1e-7, atol=1e-14, err_msg=f"loc={loc} log_scale={log_scale}")


def test_discretized_logistic_narrow_scale_concentrates_in_the_bin_of_the_location():
    for k in (0, 3, 100, 200, 255):
        for offset in (0.0, 0.6 / 255, -0.6 / 255):          # inside bin k, not at its centre
            loc = BIN_CENTRES[k] + offset
            log_p = _dl_all_values(loc, -7.0, torch.float64)
            assert int(log_p.argmax()) == k
            # Mass of bin k from the logistic CDF: > 0.75 at scale e^-7 with the location inside the bin.
            scale = math.exp(-7.0)
            hi = 1.0 if k == 255 else stats.logistic.cdf(BIN_CENTRES[k] + 1 / 255, loc, scale)
            lo = 0.0 if k == 0 else stats.logistic.cdf(BIN_CENTRES[k] - 1 / 255, loc, scale)
            assert abs(float(log_p[k].exp()) - (hi - lo)) < 1e-9
            assert float(log_p[k].exp()) > 0.75
    # A location exactly on the edge between bins 127 and 128 splits the mass evenly (logistic symmetry).
    log_p = _dl_all_values(0.0, -7.0, torch.float64)
    assert abs(float(log_p[127].exp()) - 0.5 * (1 - 2 * expit(-math.exp(7) * 2 / 255))) < 1e-12
    assert abs(float(log_p[127] - log_p[128])) < 1e-12
    # Grey values are rounded to the nearest 1/255 before scoring.
    lik = DiscretizedLogistic()
    params = torch.tensor([[[0.1], [-2.0]]]).expand(3, 2, 1)
    x = torch.tensor([[40 / 255], [40.4 / 255], [39.6 / 255]])
    assert torch.equal(lik.log_prob(params, x), lik.log_prob(params, x[:1]).expand(3))


def test_gaussian_fixed_sigma_matches_torch_normal():
    lik = Gaussian(sigma="0.3")
    gen = torch.Generator().manual_seed(0)
    params = torch.randn(4, 1, *SHAPE, generator=gen, dtype=torch.float64)
    x = torch.rand(4, *SHAPE, generator=gen, dtype=torch.float64) * 3 - 1     # identity link: any real x
    oracle = td.Normal(params[:, 0], 0.3).log_prob(x).flatten(1).sum(1)
    # rtol 1e-6: the fixed log(sigma) is stored as a float32 buffer, so sigma itself is only exact to ~3e-8.
    torch.testing.assert_close(lik.double().log_prob(params, x), oracle, rtol=1e-6, atol=0)
    torch.testing.assert_close(lik.mean(params), params[:, 0])
    assert not any(True for _ in lik.parameters())                             # fixed sigma is no parameter


def test_gaussian_small_fixed_sigma_is_the_sigma_used():
    lik = Gaussian(sigma="0.0001")
    mu = torch.zeros(1, 1, 4, dtype=torch.float64)
    x = torch.full((1, 4), 1e-4, dtype=torch.float64)
    oracle = td.Normal(0.0, 1e-4).log_prob(x).sum()
    assert abs(float(lik.double().log_prob(mu, x)) - float(oracle)) < 1e-3


def test_gaussian_learned_sigma_is_a_parameter_with_the_right_gradient():
    lik = Gaussian(sigma="learned").double()
    params_list = list(lik.parameters())
    assert len(params_list) == 1 and params_list[0] is lik.log_sigma
    with torch.no_grad():
        lik.log_sigma.fill_(math.log(0.4))
    gen = torch.Generator().manual_seed(1)
    mu = torch.randn(3, 1, 5, generator=gen, dtype=torch.float64)
    x = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    log_p = lik.log_prob(mu, x)
    torch.testing.assert_close(log_p, td.Normal(mu[:, 0], 0.4).log_prob(x).sum(1), rtol=1e-12, atol=1e-12)
    log_p.sum().backward()
    # d/d log(sigma) of sum log N(x; mu, sigma^2) = sum ((x - mu)^2 / sigma^2 - 1).
    expected = float(((x - mu[:, 0]) ** 2 / 0.16 - 1).sum())
    assert lik.log_sigma.grad is not None
    assert abs(float(lik.log_sigma.grad) - expected) < 1e-9


# ------------------------------------------------------------------------------------------------
# 3. The importance-weighted bound
# ------------------------------------------------------------------------------------------------

def _binary_data(n, seed):
    """Binary 8x8 images: four stripe/blob prototypes with 10% of the pixels flipped."""
    rng = np.random.default_rng(seed)
    protos = np.zeros((4, 8, 8), dtype=np.float32)
    protos[0, :, :4] = 1
    protos[1, :4, :] = 1
    protos[2, 2:6, 2:6] = 1
    protos[3, np.arange(8), np.arange(8)] = 1
    x = protos[rng.integers(0, 4, n)]
    flip = rng.random(x.shape) < 0.1
    return np.where(flip, 1 - x, x).reshape(n, *SHAPE).astype(np.float32)


def _make_dataset(train_x, val_x, test_x, shape):
    return unlabelled_dataset(train_x, val_x, test_x, name="tiny")


def _trained_vae(latent_dim, epochs, seed=0):
    from vaekit.training.trainer import train

    dataset = _make_dataset(_binary_data(400, seed), _binary_data(100, seed + 1), _binary_data(50, seed + 2), SHAPE)
    config = TrainConfig(model="vae", arch="mlp", hidden=[32], latent_dim=latent_dim, likelihood="bernoulli",
                         epochs=epochs, batch_size=50, lr=1e-2, seed=seed, device="cpu")
    model = train(config, dataset, out=None).model
    model.eval()
    return model


@pytest.fixture(scope="module")
def vae3():
    """The brief's small VAE (latent 3, one hidden layer of 32), trained for a few epochs."""
    return _trained_vae(3, epochs=5)


@pytest.fixture(scope="module")
def binary_images():
    return torch.as_tensor(_binary_data(4, seed=123))


def _gauss_hermite_expectation(model, x, nodes=30):
    """E_q[log p(x|z)] per image by tensor-product Gauss-Hermite quadrature over the latent space."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)            # weight exp(-t^2/2)
    w = w / w.sum()
    latent = model.latent_dim
    grid = np.array(list(itertools.product(t, repeat=latent)))
    weight = np.prod(np.array(list(itertools.product(w, repeat=latent))), axis=1)
    out = []
    with torch.no_grad():
        q = model.encode(x)
        for i in range(len(x)):
            z = q.mean[i].double() + q.std[i].double() * torch.as_tensor(grid)
            log_px_z = model.log_likelihood(x[i:i + 1].expand(len(z), *x.shape[1:]), z.float()).double()
            out.append(float((log_px_z * torch.as_tensor(weight)).sum()))
    return np.array(out)


def _repeat_bound(model, x, k, repeats, seed):
    """(repeats, B) independent draws of the IW estimate: each image repeated ``repeats`` times in one batch."""
    batch = x.repeat(repeats, 1, 1, 1)
    log_px, log_px_z = importance_weighted_bound(model, batch, k, generator=torch.Generator().manual_seed(seed))
    return log_px.view(repeats, len(x)).numpy(), log_px_z.view(repeats, len(x)).numpy()


def test_iw_with_one_sample_is_unbiased_for_the_elbo(vae3, binary_images):
    """K = 1: E[log p(x|z) + log p(z) - log q(z|x)] = E_q log p(x|z) - KL = the ELBO."""
    expected_recon = _gauss_hermite_expectation(vae3, binary_images)
    with torch.no_grad():
        kl = vae3.encode(binary_images).kl().double().numpy()
    elbo = expected_recon - kl
    log_px, log_px_z = _repeat_bound(vae3, binary_images, 1, repeats=20_000, seed=0)
    # 4.5 SE per image: the estimator's mean is the ELBO, and its second output is E_q log p(x|z).
    assert np.all(_z_from_mc(log_px, elbo) < 4.5), (log_px.mean(0), elbo)
    assert np.all(_z_from_mc(log_px_z, expected_recon) < 4.5), (log_px_z.mean(0), expected_recon)


def test_iw_estimate_tightens_as_k_grows(vae3, binary_images):
    expected_recon = _gauss_hermite_expectation(vae3, binary_images)
    with torch.no_grad():
        elbo = expected_recon - vae3.encode(binary_images).kl().double().numpy()
    means, ses = [], []
    # The same budget of 40,000 samples per K: many independent repeats of the noisy small-K estimates.
    for i, (k, repeats) in enumerate(((1, 40_000), (10, 4000), (100, 400), (1000, 40))):
        log_px, _ = _repeat_bound(vae3, binary_images, k, repeats=repeats, seed=10 + i)
        means.append(log_px.mean(0))
        ses.append(log_px.std(0, ddof=1) / math.sqrt(log_px.shape[0]))
        if k == 1000:
            assert np.all(log_px > elbo[None, :]), "every K=1000 estimate lies above the ELBO (nll < nelbo)"
    means, ses = np.array(means), np.array(ses)
    for a in range(3):
        step = means[a + 1] - means[a]
        noise = np.sqrt(ses[a] ** 2 + ses[a + 1] ** 2)
        assert np.all(step > -3 * noise), (a, step, noise)
    # ... and it does tighten: the gain from K=1 to K=1000 is far beyond the noise.
    gain = means[-1] - means[0]
    assert np.all(gain > 10 * np.sqrt(ses[0] ** 2 + ses[-1] ** 2)), gain


class _FixedNoisePosterior(DiagonalGaussian):
    """Serves its samples from a fixed noise tensor, in order, whatever the chunk sizes asked for."""

    def __init__(self, mean, logvar, eps):
        super().__init__(mean, logvar)
        self.eps, self.used = eps, 0

    def reparameterize(self, eps):
        n = eps.shape[0]
        e = self.eps[self.used:self.used + n]
        self.used += n
        return self.mean + self.std * e


class _FixedNoiseModel:
    joint_proposal = False

    def __init__(self, model, eps):
        self.model, self.eps = model, eps
        self.sample_shape, self.likelihood, self.latent_dim = model.sample_shape, model.likelihood, model.latent_dim
        self.prior, self.iw_noise_dim, self.iw_noise = model.prior, model.iw_noise_dim, model.iw_noise
        self.parameters = model.parameters

    def encode(self, x):
        q = self.model.encode(x)
        return _FixedNoisePosterior(q.mean, q.logvar, self.eps)

    def log_likelihood(self, x, z):
        return self.model.log_likelihood(x, z)

    def log_prior(self, z):
        return self.model.log_prior(z)


def test_iw_chunking_and_formula_with_fixed_noise(vae3, binary_images):
    """With the same noise, chunks of 1 sample and one chunk of K agree, and both equal
    log (1/K) sum_k w_k computed independently with torch.distributions."""
    k, x = 100, binary_images
    eps = torch.randn(k, len(x), vae3.latent_dim, generator=torch.Generator().manual_seed(5))
    one_chunk = importance_weighted_bound(_FixedNoiseModel(vae3, eps), x, k, memory_cap_bytes=2**40)
    tiny_chunks = importance_weighted_bound(_FixedNoiseModel(vae3, eps), x, k, memory_cap_bytes=1)
    for a, b in zip(one_chunk, tiny_chunks):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-5)
    with torch.no_grad():
        q = vae3.encode(x)
        z = q.mean + q.std * eps                                                        # (K, B, L)
        logits = vae3.decoder(z.reshape(-1, vae3.latent_dim))[:, 0].reshape(k, len(x), -1)
        log_px_z = td.Bernoulli(logits=logits.double()).log_prob(x.reshape(1, len(x), -1).double()).sum(-1)
        log_pz = td.Normal(0.0, 1.0).log_prob(z.double()).sum(-1)
        log_qz = td.Normal(q.mean.double(), q.std.double()).log_prob(z.double()).sum(-1)
        oracle = torch.logsumexp(log_px_z + log_pz - log_qz, 0) - math.log(k)
    torch.testing.assert_close(one_chunk[0], oracle, rtol=0, atol=1e-4)
    torch.testing.assert_close(one_chunk[1], log_px_z.mean(0), rtol=0, atol=1e-4)


def test_iw_chunked_and_unchunked_agree_within_monte_carlo_error(vae3, binary_images):
    """Chunks of one sample (memory_cap_bytes=1) and a single chunk give statistically equal estimates."""
    results = {}
    for name, cap in (("one", 2**40), ("tiny", 1)):
        batch = binary_images.repeat(25, 1, 1, 1)
        log_px, _ = importance_weighted_bound(vae3, batch, 100, generator=torch.Generator().manual_seed(7),
                                              memory_cap_bytes=cap)
        results[name] = log_px.view(25, -1).numpy()
    diff = results["one"].mean(0) - results["tiny"].mean(0)
    noise = np.sqrt(results["one"].var(0, ddof=1) / 25 + results["tiny"].var(0, ddof=1) / 25)
    assert np.all(np.abs(diff) < 4 * noise + 1e-6), (diff, noise)


def test_iw_same_seed_is_independent_of_memory_cap(vae3, binary_images):
    one = importance_weighted_bound(vae3, binary_images, 100, generator=torch.Generator().manual_seed(3),
                                    memory_cap_bytes=2**40)
    tiny = importance_weighted_bound(vae3, binary_images, 100, generator=torch.Generator().manual_seed(3),
                                     memory_cap_bytes=1)
    for a, b in zip(one, tiny):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-5)


def test_iw_approaches_the_exact_marginal_likelihood_in_1d():
    """latent_dim = 1: log p(x) = log int p(x|z) N(z; 0, 1) dz on a 20,001-point grid over [-10, 10]
    (float64 copy of the model, logsumexp); the K = 5000 IW estimate must close in on it from below."""
    model = _trained_vae(1, epochs=20)
    x = torch.as_tensor(_binary_data(8, seed=321))
    model64 = build_model(model.config, SHAPE).double()
    model64.load_state_dict(model.state_dict())

    def grid_log_px(points):
        dz = float(points[1] - points[0])
        out = []
        with torch.no_grad():
            for i in range(len(x)):
                log_px_z = model64.log_likelihood(x[i:i + 1].double().expand(len(points), *SHAPE), points[:, None])
                out.append(float(torch.logsumexp(log_px_z + td.Normal(0.0, 1.0).log_prob(points), 0)) + math.log(dz))
        return np.array(out)

    grid = torch.linspace(-10, 10, 20_001, dtype=torch.float64)
    exact = grid_log_px(grid)
    # The integrand vanishes at +-10 (N(10; 0, 1) ~ 1e-22), so this rectangle rule is the trapezoid rule.
    # The ReLU decoder makes it only piecewise smooth: halving the grid moves the answer by ~1e-5 (measured
    # 7e-6), a thousand times below the tolerances used here.
    assert np.allclose(grid_log_px(grid[::2]), exact, rtol=0, atol=1e-4)
    with torch.no_grad():
        elbo = _gauss_hermite_expectation(model, x, nodes=60) - model.encode(x).kl().double().numpy()
    assert np.all(elbo < exact)

    log_px, _ = _repeat_bound(model, x, 5000, repeats=16, seed=0)
    error = log_px.mean(0) - exact
    # Measured on 5 sets of 8 images (data seeds 321, 0-3) with this 20-epoch model: |error| per image
    # <= 0.016 nats, |error averaged over 8 images| <= 0.0031, K = 5000 leaving <= 2.5% of the ELBO's gap
    # (0.14-0.37 nats). The error depends on how well q fits: a 40-epoch model, whose q is too narrow for a
    # few images, left up to 0.22 nats on one image. Tolerances: 0.05 per image, 0.02 on average.
    assert np.all(np.abs(error) < 0.05), error
    assert abs(error.mean()) < 0.02, error
    se_mean = math.sqrt(np.sum(log_px.var(0, ddof=1) / log_px.shape[0])) / len(x)
    assert error.mean() < 3 * se_mean + 1e-3, (error.mean(), se_mean)     # 1e-3: float32 vs float64 model
    # The ELBO's gap is closed: K = 5000 leaves less than a fifth of it on average.
    assert np.mean(np.abs(error)) < 0.2 * np.mean(exact - elbo), (error, exact - elbo)


# ------------------------------------------------------------------------------------------------
# 4. evaluate_model
# ------------------------------------------------------------------------------------------------

REQUIRED_KEYS = {"split", "n", "likelihood", "proper_likelihood", "recon", "kl", "nelbo", "nll", "iw_samples",
                 "bits_per_dim", "mse", "kl_per_dim", "active_units", "pca_mse"}


@pytest.fixture(scope="module")
def grey_dataset():
    rng = np.random.default_rng(7)

    def part(n):
        # 8-bit grey images with some structure (a random-intensity blob on a noisy background).
        base = rng.integers(0, 60, size=(n, *SHAPE))
        base[:, :, 2:6, 2:6] += rng.integers(100, 190, size=(n, 1, 1, 1))
        return (base / 255.0).astype(np.float32)

    return _make_dataset(part(96), part(32), part(40), SHAPE)


@pytest.mark.parametrize("model_name,likelihood,binarize,proper,discrete", [
    ("vae", "bernoulli", "dynamic", True, True),
    ("vae", "bernoulli", "none", False, False),
    ("vae", "discretized-logistic", "dynamic", True, True),
    ("vae", "gaussian", "dynamic", True, False),
    ("vae", "continuous-bernoulli", "dynamic", True, False),
    ("ae", "mse", "dynamic", False, False),
])
def test_evaluate_model_reports_consistent_numbers(grey_dataset, model_name, likelihood, binarize, proper, discrete):
    torch.manual_seed(0)
    config = TrainConfig(model=model_name, arch="mlp", hidden=[32], latent_dim=3, likelihood=likelihood,
                         binarize=binarize, sigma="0.2").resolved()
    model = build_model(config, SHAPE)
    result = evaluate_model(model, grey_dataset, split="test", iw_samples=50, seed=0, batch_size=16)
    assert REQUIRED_KEYS <= set(result)
    test_x = grey_dataset.split("test").x
    assert result["split"] == "test" and result["n"] == len(test_x)
    assert result["likelihood"] == model.likelihood.describe()
    assert result["proper_likelihood"] is proper
    assert math.isfinite(result["recon"]) and math.isfinite(result["mse"])
    if model_name == "ae":
        for key in ("kl", "nelbo", "nll", "active_units", "kl_per_dim", "iw_samples", "bits_per_dim"):
            assert result[key] is None, key
        with torch.no_grad():
            recon = model.reconstruct(torch.as_tensor(test_x))
        assert abs(result["recon"] - float(((recon.double() - torch.as_tensor(test_x).double()) ** 2)
                                           .flatten(1).sum(1).mean())) < 1e-4
    else:
        assert result["iw_samples"] == 50
        assert result["nelbo"] == pytest.approx(result["recon"] + result["kl"], rel=1e-12, abs=1e-12)
        assert result["nll"] <= result["nelbo"]
        assert sum(result["kl_per_dim"]) == pytest.approx(result["kl"], rel=1e-9, abs=1e-12)
        assert len(result["kl_per_dim"]) == 3 and min(result["kl_per_dim"]) >= 0
        assert isinstance(result["active_units"], int) and 0 <= result["active_units"] <= 3
        if discrete:
            assert result["bits_per_dim"] == pytest.approx(result["nll"] / (D * math.log(2)), rel=1e-12)
        else:
            assert result["bits_per_dim"] is None
        if likelihood != "bernoulli" or binarize == "none":       # no binarisation: the model saw test_x itself
            xt = torch.as_tensor(test_x)
            with torch.no_grad():
                q = model.encode(xt)
                kl = td.kl_divergence(td.Normal(q.mean.double(), q.std.double()), td.Normal(0.0, 1.0))
                active = int((q.mean.double().var(0) > 0.01).sum())
                mse = float(((model.reconstruct(xt).double() - xt.double()) ** 2).mean())
            assert result["kl"] == pytest.approx(float(kl.sum(1).mean()), rel=1e-5)
            np.testing.assert_allclose(result["kl_per_dim"], kl.mean(0).numpy(), rtol=1e-5)
            assert result["active_units"] == active
            assert result["mse"] == pytest.approx(mse, rel=1e-5)
    assert result["pca_mse"] == pytest.approx(_sklearn_pca_mse(grey_dataset.train.x, test_x, 3), rel=1e-6)


def test_data_values_tells_binary_8bit_and_continuous_apart():
    from vaekit.evaluation.evaluate import data_values

    assert data_values(np.array([0.0, 1.0, 1.0], np.float32)) == "binary"
    assert data_values((np.arange(256) / 255).astype(np.float32)) == "8-bit"
    assert data_values(np.arange(17, dtype=np.float32) / 16) == "continuous"        # digits' 17 levels
    assert data_values(np.array([0.0, 1.0, 100.4 / 255], np.float32)) == "continuous"
    # Checked block by block: a stray value in a later block still counts.
    late = np.zeros(50, np.float32)
    late[-1] = 0.5
    assert data_values(late, block=16) == "continuous" and data_values(late[:-1], block=16) == "binary"


def test_discretized_logistic_reports_bits_per_dim_on_8bit_data_only(grey_dataset):
    """The same model on 8-bit data reports bits/dim = nll / (D log 2); on the same images moved off
    the 1/255 grid (which the likelihood silently rounds back) bits/dim is null, with a note."""
    torch.manual_seed(0)
    config = TrainConfig(model="vae", arch="mlp", hidden=[32], latent_dim=3, likelihood="discretized-logistic").resolved()
    model = build_model(config, SHAPE)
    on_grid = evaluate_model(model, grey_dataset, split="test", iw_samples=20, seed=0, regularity=False)
    assert on_grid["proper_likelihood"] is True and on_grid["notes"] == []
    assert on_grid["bits_per_dim"] == pytest.approx(on_grid["nll"] / (D * math.log(2)), rel=1e-12)
    test_x = grey_dataset.split("test").x
    shifted = np.clip(test_x + np.float32(0.3 / 255), 0, 1)
    continuous = _make_dataset(grey_dataset.train.x, grey_dataset.val.x, shifted, SHAPE)
    off_grid = evaluate_model(model, continuous, split="test", iw_samples=20, seed=0, regularity=False)
    assert off_grid["bits_per_dim"] is None
    assert any("not 8-bit" in note and "bits_per_dim is not reported" in note for note in off_grid["notes"])
    assert off_grid["proper_likelihood"] is True and math.isfinite(off_grid["nll"])


def test_bernoulli_without_binarisation_is_a_proper_likelihood_of_binary_data():
    """dSprites' recipes train on binary images with binarize = "none": then the Bernoulli is their exact
    likelihood, so the evaluation says so and reports bits/dim, as it does with binarisation."""
    data = _binary_data(40, seed=5)
    dataset = _make_dataset(data, data[:10], data, SHAPE)
    results = {}
    for binarize in ("none", "dynamic"):
        torch.manual_seed(0)
        config = TrainConfig(model="vae", arch="mlp", hidden=[16], latent_dim=2, likelihood="bernoulli",
                             binarize=binarize).resolved()
        results[binarize] = evaluate_model(build_model(config, SHAPE), dataset, split="test", iw_samples=10,
                                           seed=0, regularity=False)
    for result in results.values():
        assert result["proper_likelihood"] is True and result["notes"] == []
        assert result["bits_per_dim"] == pytest.approx(result["nll"] / (D * math.log(2)), rel=1e-12)
    # Binary data are their own binarisation: the same numbers either way.
    assert results["none"]["nll"] == pytest.approx(results["dynamic"]["nll"], rel=1e-9)


def test_evaluate_model_nll_matches_the_iw_bound_on_binarised_data(vae3):
    """Trained binary VAE: nll < nelbo by a clear margin, and bits/dim in a sane range."""
    data = _binary_data(60, seed=99)
    dataset = _make_dataset(data, data[:10], data, SHAPE)
    result = evaluate_model(vae3, dataset, split="test", iw_samples=200, seed=1)
    # Binary data are their own binarisation, so the IW bound on the raw images is the oracle.
    log_px, _ = importance_weighted_bound(vae3, torch.as_tensor(data), 2000,
                                          generator=torch.Generator().manual_seed(2))
    assert result["nll"] == pytest.approx(-float(log_px.mean()), abs=0.05)
    assert result["nll"] < result["nelbo"] - 0.1
    assert 0 < result["bits_per_dim"] < 1


# ------------------------------------------------------------------------------------------------
# 5. The PCA baseline
# ------------------------------------------------------------------------------------------------

def _sklearn_pca_mse(train_x, eval_x, k):
    from sklearn.decomposition import PCA

    train = train_x.reshape(len(train_x), -1).astype(np.float64)
    evals = eval_x.reshape(len(eval_x), -1).astype(np.float64)
    pca = PCA(n_components=k, svd_solver="full").fit(train)
    return float(((evals - pca.inverse_transform(pca.transform(evals))) ** 2).mean())


def test_pca_baseline_matches_sklearn():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(6, D)) * np.linspace(3, 0.5, 6)[:, None]

    def draw(n):
        return (rng.normal(size=(n, 6)) @ basis + 0.3 * rng.normal(size=(n, D)) + 0.5).astype(np.float32)

    train_x, eval_x = draw(300).reshape(300, *SHAPE), draw(120).reshape(120, *SHAPE)
    for k in (1, 2, 3, 6, 10, 40, 63):
        got = pca_baseline_mse(train_x, eval_x, k)
        assert got == pytest.approx(_sklearn_pca_mse(train_x, eval_x, k), rel=1e-6), k
    # k = D keeps everything: the error is zero up to rounding.
    assert pca_baseline_mse(train_x, eval_x, D) < 1e-20
    assert _sklearn_pca_mse(train_x, eval_x, D) < 1e-20
    # More components never hurt on the training data itself.
    on_train = [pca_baseline_mse(train_x, train_x, k) for k in range(0, D + 1, 8)]
    assert all(a >= b for a, b in zip(on_train, on_train[1:]))


def test_pca_baseline_above_4096_values_is_reproducible_and_leaves_the_global_stream_alone():
    """Above 4096 values per sample the basis comes from a randomised SVD: the same data give the same
    number whatever the global random state, the global stream is not consumed, and the number is
    sklearn's exact PCA to within the randomised method's accuracy."""
    rng = np.random.default_rng(3)
    dim = 4200
    basis = rng.normal(size=(5, dim)) * np.linspace(4, 1, 5)[:, None]

    def draw(n):
        return (rng.normal(size=(n, 5)) @ basis + 0.3 * rng.normal(size=(n, dim))).astype(np.float32)

    train_x, eval_x = draw(60), draw(20)
    results = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        before = torch.get_rng_state()
        results.append(pca_baseline_mse(train_x, eval_x, 3))
        assert torch.equal(torch.get_rng_state(), before)
    assert results[0] == results[1]
    assert results[0] == pytest.approx(_sklearn_pca_mse(train_x, eval_x, 3), rel=1e-6)
