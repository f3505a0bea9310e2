"""DCI: disentanglement, completeness and informativeness (Eastwood & Williams, ICLR 2018).

For each factor k a predictor is trained from the whole code to the factor; its feature importances
form column k of an importance matrix R (n_dims x n_factors). With P[j, k] = R[j, k] / sum_k R[j, k],

    disentanglement = sum_j rho_j (1 - H_K(P[j, :])),   rho_j = sum_k R[j, k] / sum R   (entropy base K)
    completeness    = sum_k  w_k  (1 - H_D(R[:, k] / sum_j R[j, k])),  w_k = sum_j R[j, k] / sum R  (base D)
    informativeness = the predictors' accuracy on held-out points.

Predictors, as in Locatello et al. (ICML 2019): one scikit-learn GradientBoostingClassifier per factor
(default settings: 100 trees of depth 3), importances are its impurity-based ``feature_importances_``,
10,000 training and 5,000 held-out points. (Eastwood & Williams used lasso and random-forest regressors
and 1 - NRMSE as informativeness.) Gradient boosting grows one tree per class and stage, so factors
with many values (40 orientations) dominate the cost; fewer points make it proportionally cheaper.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vaekit.disentanglement.factors import Representation, sample_codes


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """1 - H(p) per row, in units of log(base); rows are normalised first, all-zero rows give 0."""
    total = p.sum(axis=1, keepdims=True)
    p = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
    logs = np.log(np.where(p > 0, p, 1.0))
    h = -(p * logs).sum(axis=1) / np.log(base) if base > 1 else np.zeros(len(p))
    return 1.0 - h


def dci_from_importance(importance: np.ndarray) -> tuple[float, float, list, list]:
    """(disentanglement, completeness, per-dimension disentanglement, per-factor completeness)."""
    importance = np.abs(np.asarray(importance, dtype=np.float64))
    n_dims, n_factors = importance.shape
    per_dim = _one_minus_entropy(importance, n_factors)
    per_factor = _one_minus_entropy(importance.T, n_dims)
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    rho = weights.sum(axis=1) / weights.sum()
    w = weights.sum(axis=0) / weights.sum()
    return float(rho @ per_dim), float(w @ per_factor), per_dim.tolist(), per_factor.tolist()


def _fit_factor(train_codes, train_y, eval_codes, eval_y, seed: int) -> tuple[np.ndarray | None, float, float]:
    """(importances, train accuracy, held-out accuracy) of one factor's boosted trees; a factor with
    one value has nothing to predict: no importance, perfect accuracy."""
    from sklearn.ensemble import GradientBoostingClassifier

    if len(np.unique(train_y)) < 2:
        return None, 1.0, 1.0
    model = GradientBoostingClassifier(random_state=seed).fit(train_codes, train_y)
    return model.feature_importances_, float(model.score(train_codes, train_y)), float(model.score(eval_codes, eval_y))


def dci_from_codes(train_codes, train_factors, eval_codes, eval_factors, *, seed: int = 0,
                   workers: int | None = None) -> dict:
    """DCI from codes and factors. The factors' predictors are fitted in ``workers`` threads (default:
    the CPU count; scikit-learn grows trees without the GIL), biggest factor first; each fit is seeded
    alone, so the result does not depend on ``workers``."""
    n_dims, n_factors = train_codes.shape[1], train_factors.shape[1]
    workers = max(1, min(workers or os.cpu_count() or 1, n_factors))
    order = sorted(range(n_factors), key=lambda k: -len(np.unique(train_factors[:, k])))  # trees per stage = classes
    with ThreadPoolExecutor(max_workers=workers) as pool:
        fits = {k: pool.submit(_fit_factor, train_codes, train_factors[:, k], eval_codes, eval_factors[:, k], seed)
                for k in order}
        fits = {k: future.result() for k, future in fits.items()}
    importance = np.zeros((n_dims, n_factors))
    for k, (weights, _, _) in fits.items():
        if weights is not None:
            importance[:, k] = weights
    train_accuracy = [fits[k][1] for k in range(n_factors)]
    eval_accuracy = [fits[k][2] for k in range(n_factors)]
    disentanglement, completeness, per_dim, per_factor = dci_from_importance(importance)
    return {"disentanglement": disentanglement, "completeness": completeness,
            "informativeness": float(np.mean(eval_accuracy)), "informativeness_train": float(np.mean(train_accuracy)),
            "informativeness_per_factor": eval_accuracy, "disentanglement_per_dim": per_dim,
            "completeness_per_factor": per_factor, "importance_matrix": importance.tolist()}


def dci(representation: Representation, ground_truth, *, rng: np.random.Generator, num_train: int = 10_000,
        num_eval: int = 5_000, workers: int | None = None) -> dict:
    """DCI on ``num_train`` training and ``num_eval`` held-out observations (see the module docstring),
    the factors' predictors fitted in ``workers`` threads (default: one per CPU)."""
    train_factors, train_codes = sample_codes(representation, ground_truth, num_train, rng)
    eval_factors, eval_codes = sample_codes(representation, ground_truth, num_eval, rng)
    return dci_from_codes(train_codes, train_factors, eval_codes, eval_factors, seed=int(rng.integers(2**31)),
                          workers=workers)
