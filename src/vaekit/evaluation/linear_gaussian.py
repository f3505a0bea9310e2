"""Linear-Gaussian baselines for real-valued data: probabilistic PCA and factor analysis.

Both are latent-variable models x = W z + mu + noise with z ~ N(0, I_q), the linear special case of
a Gaussian VAE with q latent units; their exact test NLL is what a VAE of the same latent size must
match on linear data and beat on nonlinear data.

* Probabilistic PCA (Tipping & Bishop 1999, "Probabilistic principal component analysis", JRSS B,
  eqs. 7-8): isotropic noise sigma^2 I. The maximum-likelihood fit is closed-form from the
  eigen-decomposition S = U diag(l) U^T of the training covariance: sigma^2 is the mean of the D - q
  smallest eigenvalues, W = U_q (L_q - sigma^2 I)^(1/2), so the marginal covariance
  C = W W^T + sigma^2 I has eigenvalues l_1..l_q and sigma^2 (D - q times).
* Factor analysis: diagonal noise, fitted by EM (scikit-learn's ``FactorAnalysis``).

NLLs are per example, in nats, of the data as given (the caller adds the log-Jacobian of any
standardisation, :attr:`vaekit.data.scaling.Scaling.log_jacobian`).
"""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np

log = logging.getLogger(__name__)

PPCA_MAX_DIMS = 4096     # one D x D eigen-decomposition
FA_MAX_DIMS = 512        # EM with an SVD per iteration: beyond this it costs minutes
FA_MAX_ROWS = 20_000


def ppca_nll(train: np.ndarray, test: np.ndarray, latent_dim: int) -> float:
    """Mean -log p(x) over ``test`` under the maximum-likelihood pPCA of ``train`` with ``latent_dim`` factors.

    ``latent_dim`` is capped at D - 1 (with q = D there is no noise left to estimate).
    """
    x = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    t = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    n, dims = x.shape
    q = max(0, min(latent_dim, dims - 1))
    mean = x.mean(0)
    centred = x - mean
    values, vectors = np.linalg.eigh(centred.T @ centred / n)       # ascending
    values = np.clip(values, 0, None)
    floor = 1e-12 * max(float(values.sum()), 1e-300)
    sigma2 = max(float(values[:dims - q].mean()), floor)
    top_values, top_vectors = np.maximum(values[dims - q:], sigma2), vectors[:, dims - q:]
    log_det = float(np.log(top_values).sum()) + (dims - q) * math.log(sigma2)
    e = t - mean
    projected = e @ top_vectors                                       # (N, q)
    # x^T C^-1 x = sum_j p_j^2 / l_j + (|x|^2 - |p|^2) / sigma^2
    quad = (projected ** 2 / top_values).sum(1) + ((e ** 2).sum(1) - (projected ** 2).sum(1)) / sigma2
    return float(np.mean(0.5 * (dims * math.log(2 * math.pi) + log_det + quad)))


def fa_nll(train: np.ndarray, test: np.ndarray, latent_dim: int, *, seed: int = 0) -> float:
    """Mean -log p(x) over ``test`` under factor analysis fitted on ``train`` (first FA_MAX_ROWS rows)."""
    from sklearn.decomposition import FactorAnalysis
    from sklearn.exceptions import ConvergenceWarning

    x = np.asarray(train, dtype=np.float64).reshape(len(train), -1)[:FA_MAX_ROWS]
    t = np.asarray(test, dtype=np.float64).reshape(len(test), -1)
    q = max(1, min(latent_dim, x.shape[1] - 1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = FactorAnalysis(n_components=q, random_state=seed).fit(x)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("factor analysis did not converge in %d EM iterations; fa_nll is its last estimate", model.n_iter_)
    return -float(model.score(t))
