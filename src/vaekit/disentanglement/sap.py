"""The Separated Attribute Predictability (SAP) score (Kumar et al., ICLR 2018, section 3).

A score matrix S[j, k] says how well code dimension j alone predicts factor k: for an ordered factor
the R^2 of a one-dimensional linear regression (the squared correlation of z_j and v_k), for a
categorical factor the balanced accuracy of a threshold classifier on z_j (a one-feature decision tree
with one leaf per class) on held-out points. SAP is the mean over factors of the gap between the best
and the second-best dimension. These are the paper's choices; Locatello et al. (ICML 2019) instead
classify every factor with a linear SVM, which makes the scores of ordered factors with many values
small. For an ordered factor the gap is at most 1; for a categorical one with c classes a perfect code
scores 1 - 1/c, since another dimension still gets the chance-level balanced accuracy 1/c.
"""
from __future__ import annotations

import numpy as np

from vaekit.disentanglement.factors import Representation, sample_codes


def squared_correlation(z: np.ndarray, v: np.ndarray) -> float:
    """R^2 of the least-squares line through (z, v); 0 when either is constant."""
    z, v = z - z.mean(), v - v.mean()
    denominator = (z @ z) * (v @ v)
    return float((z @ v) ** 2 / denominator) if denominator > 1e-12 else 0.0


def threshold_accuracy(z_train: np.ndarray, v_train: np.ndarray, z_eval: np.ndarray, v_eval: np.ndarray) -> float:
    """Balanced accuracy on held-out points of a threshold classifier on one dimension."""
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    classes = len(np.unique(v_train))
    if classes < 2:
        return 1.0
    tree = DecisionTreeClassifier(max_leaf_nodes=classes, class_weight="balanced", random_state=0)
    tree.fit(z_train[:, None], v_train)
    return float(balanced_accuracy_score(v_eval, tree.predict(z_eval[:, None])))


def sap_from_codes(train_codes, train_factors, eval_codes, eval_factors, factor_types) -> dict:
    n_dims, n_factors = train_codes.shape[1], train_factors.shape[1]
    scores = np.zeros((n_dims, n_factors))
    for k in range(n_factors):
        for j in range(n_dims):
            if factor_types[k] == "categorical":
                scores[j, k] = threshold_accuracy(train_codes[:, j], train_factors[:, k],
                                                  eval_codes[:, j], eval_factors[:, k])
            else:
                scores[j, k] = squared_correlation(train_codes[:, j], train_factors[:, k].astype(np.float64))
    ordered = np.sort(scores, axis=0)[::-1]
    gaps = ordered[0] - (ordered[1] if n_dims > 1 else 0.0)
    return {"score": float(gaps.mean()), "per_factor": gaps.tolist(), "score_matrix": scores.tolist()}


def sap(representation: Representation, ground_truth, *, rng: np.random.Generator, num_train: int = 10_000,
        num_eval: int = 5_000) -> dict:
    """SAP on ``num_train`` observations (``num_eval`` more for the categorical factors' accuracies)."""
    train_factors, train_codes = sample_codes(representation, ground_truth, num_train, rng)
    eval_factors, eval_codes = sample_codes(representation, ground_truth, num_eval, rng)
    return sap_from_codes(train_codes, train_factors, eval_codes, eval_factors, tuple(ground_truth.factor_types))
