"""Scores from batches that share one factor: the BetaVAE score and the FactorVAE score.

Both train a simple classifier to tell *which* factor was held fixed from what the codes of a batch
look like; the score is its accuracy on fresh batches. Settings follow Locatello et al. (ICML 2019):
batches of 64, 10,000 training and 5,000 evaluation points.
"""
from __future__ import annotations

import numpy as np

from vaekit.disentanglement.factors import Representation, represent, sample_factors

BATCHES_PER_CALL = 32  # points generated (and encoded) together


def beta_vae_score(representation: Representation, ground_truth, *, rng: np.random.Generator,
                   batch_size: int = 64, num_train: int = 10_000, num_eval: int = 5_000) -> dict:
    """BetaVAE score (Higgins et al., ICLR 2017, section 3).

    One point: pick a factor k uniformly; draw ``batch_size`` pairs of factor rows that agree on
    factor k and are independent otherwise; the feature is the mean over the pairs of the absolute
    difference of their codes, ``mean_l |z(x1_l) - z(x2_l)|``, and the label is k. A logistic
    regression (scikit-learn defaults, as Locatello et al.) is fitted on ``num_train`` points; the
    score is its accuracy on ``num_eval`` new points. 1 is the best; chance is 1 / n_factors.
    """
    from sklearn.linear_model import LogisticRegression

    train_x, train_y = _beta_vae_points(representation, ground_truth, num_train, batch_size, rng)
    eval_x, eval_y = _beta_vae_points(representation, ground_truth, num_eval, batch_size, rng)
    classifier = LogisticRegression(max_iter=2000).fit(train_x, train_y)
    return {"score": float(classifier.score(eval_x, eval_y)),
            "train_accuracy": float(classifier.score(train_x, train_y))}


def _beta_vae_points(representation, ground_truth, n: int, batch_size: int, rng) -> tuple[np.ndarray, np.ndarray]:
    n_factors = len(ground_truth.factor_sizes)
    features, labels = [], []
    for start in range(0, n, BATCHES_PER_CALL):
        m = min(BATCHES_PER_CALL, n - start)
        fixed = rng.integers(0, n_factors, size=m)
        first = sample_factors(ground_truth, m * batch_size, rng).reshape(m, batch_size, -1)
        second = sample_factors(ground_truth, m * batch_size, rng).reshape(m, batch_size, -1)
        second[np.arange(m), :, fixed] = first[np.arange(m), :, fixed]
        both = np.concatenate([first.reshape(m * batch_size, -1), second.reshape(m * batch_size, -1)])
        codes = represent(representation, ground_truth, both)
        z1, z2 = codes[:m * batch_size].reshape(m, batch_size, -1), codes[m * batch_size:].reshape(m, batch_size, -1)
        features.append(np.abs(z1 - z2).mean(axis=1))
        labels.append(fixed)
    return np.concatenate(features), np.concatenate(labels)


def factor_vae_score(representation: Representation, ground_truth, *, rng: np.random.Generator,
                     batch_size: int = 64, num_train: int = 10_000, num_eval: int = 5_000,
                     num_variance_estimate: int = 10_000) -> dict:
    """FactorVAE score (Kim & Mnih, ICML 2018, section 4).

    Each code dimension is divided by its standard deviation over ``num_variance_estimate`` random
    observations, which makes the score blind to each dimension's scale, and dimensions that do not
    vary at all are left out (they cannot be normalised). Kim & Mnih prune "collapsed" dimensions; we
    set no threshold on the scale (disentanglement_lib's default threshold is 0 too): a threshold
    relative to the largest variance would drop informative dimensions that merely have a small scale
    (a perfect code whose factors span different ranges). A collapsed unit that still wobbles a little
    keeps a normalised variance near 1 in every batch, so it does not win the vote.

    One point: pick a factor k, draw a batch in which factor k has one fixed random value and the
    others vary; the dimension with the smallest normalised variance over the batch votes for k. The
    majority-vote classifier maps each dimension to the factor it was most often voted for on
    ``num_train`` points; the score is its accuracy on ``num_eval`` new points. 1 is the best; chance
    is about 1 / n_factors.
    """
    _, codes = _random_codes(representation, ground_truth, num_variance_estimate, rng)
    variance = codes.var(axis=0, ddof=1)
    active = variance > 0
    if not active.any():
        return {"score": 0.0, "train_accuracy": 0.0, "active_dims": 0}
    n_dims = len(variance)
    train_votes = _factor_vae_votes(representation, ground_truth, num_train, batch_size, variance, active, rng)
    eval_votes = _factor_vae_votes(representation, ground_truth, num_eval, batch_size, variance, active, rng)
    chosen = train_votes.argmax(axis=1)           # the factor each dimension stands for
    rows = np.arange(n_dims)
    return {"score": float(eval_votes[rows, chosen].sum() / num_eval),
            "train_accuracy": float(train_votes[rows, chosen].sum() / num_train),
            "active_dims": int(active.sum())}


def _random_codes(representation, ground_truth, n: int, rng):
    factors = sample_factors(ground_truth, n, rng)
    return factors, represent(representation, ground_truth, factors)


def _factor_vae_votes(representation, ground_truth, n: int, batch_size: int, variance: np.ndarray,
                      active: np.ndarray, rng) -> np.ndarray:
    n_factors = len(ground_truth.factor_sizes)
    votes = np.zeros((len(variance), n_factors), dtype=np.int64)
    for start in range(0, n, BATCHES_PER_CALL):
        m = min(BATCHES_PER_CALL, n - start)
        fixed = rng.integers(0, n_factors, size=m)
        factors = sample_factors(ground_truth, m * batch_size, rng).reshape(m, batch_size, -1)
        factors[np.arange(m), :, fixed] = factors[np.arange(m), :1, fixed]
        codes = represent(representation, ground_truth, factors.reshape(m * batch_size, -1))
        local = codes.reshape(m, batch_size, -1).var(axis=1, ddof=1) / np.where(active, variance, 1.0)
        local[:, ~active] = np.inf
        np.add.at(votes, (local.argmin(axis=1), fixed), 1)
    return votes
