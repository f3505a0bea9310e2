"""Paths through latent space: linear and spherical interpolation, bilinear grids and traversals.

All functions are pure NumPy on codes; decode the result with :func:`vaekit.latent.decode_images`.
"""
from __future__ import annotations

import numpy as np

from vaekit.errors import ConfigError

# Below this |sin(angle)| the two codes are (anti)parallel and slerp's formula divides by ~0.
SLERP_PARALLEL_EPS = 1e-6
INTERPOLATION_METHODS = ("linear", "slerp")


def _fractions(steps: int) -> np.ndarray:
    if steps < 2:
        raise ConfigError(f"--steps must be at least 2 (the two end points), not {steps}")
    return np.linspace(0.0, 1.0, steps)


def lerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` codes on the straight line from ``a`` to ``b`` (both included), shape (steps, L)."""
    t = _fractions(steps)[:, None]
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (1 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Spherical linear interpolation from ``a`` to ``b`` (Shoemake 1985; for latent spaces, White 2016).

        slerp(a, b; t) = sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b,   cos(w) = a.b / (|a| |b|)

    Under a Gaussian prior most mass lies near a sphere, and the straight line between two codes
    cuts through the low-norm interior; slerp follows the arc instead. Between unit vectors the path
    stays on the unit sphere. Nearly parallel (or opposite) codes, and zero codes, fall back to
    :func:`lerp`, where the formula is 0/0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        return lerp(a, b, steps)
    omega = np.arccos(np.clip(a @ b / norms, -1.0, 1.0))
    sin_omega = np.sin(omega)
    if abs(sin_omega) < SLERP_PARALLEL_EPS:
        return lerp(a, b, steps)
    t = _fractions(steps)[:, None]
    return (np.sin((1 - t) * omega) / sin_omega) * a + (np.sin(t * omega) / sin_omega) * b


def interpolate(a: np.ndarray, b: np.ndarray, steps: int, method: str = "linear") -> np.ndarray:
    """Codes from ``a`` to ``b`` by ``method`` ("linear" or "slerp"), shape (steps, L)."""
    if method not in INTERPOLATION_METHODS:
        raise ConfigError(f"unknown interpolation method {method!r}: use {' or '.join(INTERPOLATION_METHODS)}")
    return lerp(a, b, steps) if method == "linear" else slerp(a, b, steps)


def bilinear_grid(corners: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Bilinear interpolation between four codes, shape (rows, cols, L).

    ``corners`` is (4, L): top-left, top-right, bottom-left, bottom-right; they land exactly on the
    grid's four corners.
    """
    corners = np.asarray(corners, np.float64)
    if corners.shape[0] != 4:
        raise ConfigError(f"a grid needs 4 corner codes, not {corners.shape[0]}")
    u = _fractions(rows)[:, None, None]   # down
    v = _fractions(cols)[None, :, None]   # across
    top_left, top_right, bottom_left, bottom_right = corners
    return ((1 - u) * (1 - v) * top_left + (1 - u) * v * top_right
            + u * (1 - v) * bottom_left + u * v * bottom_right)


def traversal(z: np.ndarray, dims, offsets: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Vary one dimension at a time around ``z``: shape (len(dims), len(offsets), L).

    Row ``r`` holds ``z`` with dimension ``dims[r]`` replaced by ``z[d] + offsets * scale[d]`` and
    every other dimension untouched. ``scale`` is the spread of each dimension (1 for a VAE, whose
    prior is N(0, I)); offsets are then in standard deviations.
    """
    z = np.asarray(z, np.float64)
    offsets = np.asarray(offsets, np.float64)
    scale = np.ones_like(z) if scale is None else np.asarray(scale, np.float64)
    out = np.repeat(np.repeat(z[None, None], len(dims), 0), len(offsets), 1)
    for row, dim in enumerate(dims):
        out[row, :, dim] = z[dim] + offsets * scale[dim]
    return out


def dimension_order(scores: np.ndarray) -> np.ndarray:
    """Dimension indices, largest score first (ties keep index order)."""
    return np.argsort(-np.asarray(scores), kind="stable")
