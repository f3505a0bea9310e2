"""Maps of the latent space: 2-D projections of codes and grids of codes to decode (the "manifold")."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vaekit.errors import ConfigError

PROJECTIONS = ("pca", "tsne")


@dataclass(frozen=True, eq=False)
class Projection:
    """Codes placed in the plane: ``points`` (N, 2) and the axis names (``z0``, ``PC1 (43% of variance)``).
    Latent dimensions are numbered from 0 everywhere in vaekit (CLI, figures, report, explorer)."""

    points: np.ndarray
    axis_labels: tuple[str, str]
    method: str
    explained_variance: tuple[float, float] | None = None   # shares of the total, for PCA
    # For a linear projection (identity, PCA): points = (codes - mean) @ axes.T, axes of shape (2, L).
    # None for t-SNE, which has no map back to codes.
    mean: np.ndarray | None = None
    axes: np.ndarray | None = None


def project_2d(codes: np.ndarray, *, method: str = "pca", seed: int = 0) -> Projection:
    """Two coordinates per code: the code itself when L = 2, else PCA or t-SNE of the codes.

    L = 1 gives (z0, 0); the plot spreads the points out by class instead.
    """
    if method not in PROJECTIONS:
        raise ConfigError(f"unknown projection {method!r}: use {' or '.join(PROJECTIONS)}")
    codes = np.asarray(codes, np.float64)
    dims = codes.shape[1]
    if dims <= 2:
        axes = np.eye(2, dims)
        labels = ("z0", "z1") if dims == 2 else ("z0", "")
        return Projection(codes @ axes.T, labels, "identity", mean=np.zeros(dims), axes=axes)
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30, max(2, (len(codes) - 1) // 3)))
        points = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(codes)
        return Projection(points, ("t-SNE 1", "t-SNE 2"), "tsne")
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(codes)
    shares = tuple(float(s) for s in pca.explained_variance_ratio_)
    labels = tuple(f"PC{i + 1} ({share:.0%} of variance)" for i, share in enumerate(shares))
    return Projection(pca.transform(codes), labels, "pca", shares, mean=pca.mean_.copy(), axes=pca.components_.copy())


def quantile_grid(size: int, *, low: float = 0.05, high: float = 0.95) -> np.ndarray:
    """``size`` values of N(0, 1) at evenly spaced probabilities from ``low`` to ``high`` (norm.ppf).

    Equal steps in probability put equal prior mass between neighbouring columns of the manifold.
    """
    from scipy.stats import norm

    return norm.ppf(np.linspace(low, high, size))


def range_grid(values: np.ndarray, size: int, *, low: float = 1.0, high: float = 99.0) -> np.ndarray:
    """``size`` evenly spaced values spanning the ``low``..``high`` percentiles of ``values``.

    For an AE, which has no prior: percentiles rather than min/max keep a few far-out codes from
    stretching the grid over empty space.
    """
    lo, hi = np.percentile(np.asarray(values, np.float64), [low, high])
    return np.linspace(lo, hi, size)


def manifold_codes(axis_1: np.ndarray, axis_2: np.ndarray) -> np.ndarray:
    """The grid of 2-D codes, shape (len(axis_2), len(axis_1), 2): z0 grows to the right, z1 upwards
    (row 0 is the largest z1, as on the scatter plot's y axis)."""
    upwards = np.asarray(axis_2)[::-1]
    grid = np.empty((len(upwards), len(axis_1), 2))
    grid[..., 0] = np.asarray(axis_1)[None, :]
    grid[..., 1] = upwards[:, None]
    return grid
