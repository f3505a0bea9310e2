"""Mutual information between discretised codes and factors, and the Mutual Information Gap (MIG).

MIG (Chen et al., NeurIPS 2018, eq. 6): for each factor v_k, the gap between the two code dimensions
that hold the most information about it, in units of the factor's entropy,

    MIG = 1/K  sum_k  ( I(z_j(1); v_k) - I(z_j(2); v_k) ) / H(v_k),

averaged over factors. Chen et al. estimate I(z_j; v_k) from the full posterior; like Locatello et al.
(ICML 2019) we use the encoder mean on 10,000 random observations, discretised into 20 equal-width
bins per dimension, and the plug-in estimate from the contingency table. 1 is the best: each factor
is captured by exactly one dimension; a code that ignores the factors scores about 0.
"""
from __future__ import annotations

import numpy as np

from vaekit.disentanglement.factors import Representation, sample_codes

BINS = 20


def discretize(codes: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column cut into ``bins`` equal-width bins over its own range; int64 bin numbers 0..bins-1."""
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], bins=bins)
        out[:, j] = np.clip(np.digitize(codes[:, j], edges[1:-1]), 0, bins - 1)
    return out


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in mutual information (nats) of two equally long arrays of non-negative integers."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    n_b = int(b.max()) + 1
    joint = np.bincount(a * n_b + b, minlength=(int(a.max()) + 1) * n_b).reshape(-1, n_b) / len(a)
    pa, pb = joint.sum(axis=1, keepdims=True), joint.sum(axis=0, keepdims=True)
    nonzero = joint > 0
    return float((joint[nonzero] * np.log(joint[nonzero] / (pa @ pb)[nonzero])).sum())


def entropy(a: np.ndarray) -> float:
    """Plug-in entropy (nats) of an array of integers."""
    _, counts = np.unique(np.asarray(a), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def mutual_information_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``(n_dims, n_factors)`` matrix of I(z_j; v_k) in nats."""
    return np.array([[mutual_information(discrete_codes[:, j], factors[:, k]) for k in range(factors.shape[1])]
                     for j in range(discrete_codes.shape[1])])


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, *, bins: int = BINS) -> dict:
    """MIG of given codes and factor indices; factors that take one value only are left out."""
    information = mutual_information_matrix(discretize(codes, bins), factors)
    ordered = np.sort(information, axis=0)[::-1]
    second = ordered[1] if len(ordered) > 1 else np.zeros(information.shape[1])
    entropies = np.array([entropy(factors[:, k]) for k in range(factors.shape[1])])
    varied = entropies > 0
    gaps = np.full(information.shape[1], np.nan)
    gaps[varied] = (ordered[0][varied] - second[varied]) / entropies[varied]
    return {"score": float(np.mean(gaps[varied])) if varied.any() else float("nan"),
            "per_factor": [None if np.isnan(g) else float(g) for g in gaps],
            "mutual_information": information.tolist(), "factor_entropy": entropies.tolist()}


def mig(representation: Representation, ground_truth, *, rng: np.random.Generator, num_train: int = 10_000,
        bins: int = BINS) -> dict:
    """MIG on ``num_train`` uniformly drawn observations (see the module docstring)."""
    factors, codes = sample_codes(representation, ground_truth, num_train, rng)
    return mig_from_codes(codes, factors, bins=bins)
