"""One function per latent-space command: a model and images in, arrays out (plots.py draws them)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import ConfigError
from vaekit.latent.arithmetic import attribute_vector, class_vector, shift_codes
from vaekit.latent.attributes import AttributeTable, match_folder, read_folder_images
from vaekit.latent.codes import decode_images, encode_means, mean_kl_per_dim, reconstruct
from vaekit.latent.noise import corrupt, psnr
from vaekit.latent.paths import dimension_order, traversal
from vaekit.latent.projection import Projection, manifold_codes, project_2d, quantile_grid, range_grid


@dataclass(frozen=True, eq=False)
class Traversal:
    """``images[r, s]`` decodes the reference code with dimension ``dims[r]`` moved by ``offsets[s]``
    standard deviations; ``scores[r]`` is that dimension's mean KL in nats (VAE, ``score_name`` "KL")
    or the variance of its encoded means (AE, "variance"). Rows are sorted by score, largest first."""

    images: np.ndarray
    codes: np.ndarray
    dims: np.ndarray
    scores: np.ndarray
    score_name: str
    offsets: np.ndarray


def traverse(model, x_ref: np.ndarray, x_stats: np.ndarray, *, span: float = 3.0, steps: int = 9,
             max_dims: int | None = None) -> Traversal:
    """Latent traversal around the code of one image ``x_ref`` (shape ``(1, *sample_shape)``).

    ``x_stats`` (e.g. the test split) ranks the dimensions. For a VAE the step is the prior's
    standard deviation (1); an AE has no prior, so each dimension moves by the standard deviation
    of its encoded means.
    """
    if steps < 2 or not (span > 0 and np.isfinite(span)):
        raise ConfigError(f"a traversal needs --steps >= 2 and a finite --range > 0 (got {steps} and {span})")
    stats_codes = encode_means(model, x_stats)
    kl = mean_kl_per_dim(model, x_stats)
    spread = stats_codes.var(0)
    scores, name = (kl, "KL") if kl is not None else (spread, "variance")
    order = dimension_order(scores)[:max_dims]
    scale = np.ones(model.latent_dim) if model.variational else np.sqrt(spread)
    offsets = np.linspace(-span, span, steps)
    codes = traversal(encode_means(model, x_ref)[0], order, offsets, scale)
    return Traversal(decode_images(model, codes), codes, order, np.asarray(scores)[order], name, offsets)


@dataclass(frozen=True, eq=False)
class LatentMap:
    """The codes of ``labels``-ed images in the plane; for L = 2 also the decoded grid (``manifold``,
    rows from top = largest z1) at the values ``axis_1`` (z0) and ``axis_2`` (z1)."""

    projection: Projection
    labels: np.ndarray | None
    manifold: np.ndarray | None = None
    axis_1: np.ndarray | None = None
    axis_2: np.ndarray | None = None
    grid_kind: str = ""


def latent_map(model, x: np.ndarray, y: np.ndarray | None, *, method: str = "pca", grid_size: int = 15,
               seed: int = 0) -> LatentMap:
    """Project the posterior means of ``x``; for a 2-D latent also decode a ``grid_size``^2 grid.

    The grid sits at prior quantiles for a VAE and spans the 1st-99th percentiles of the encoded
    means for an AE.
    """
    codes = encode_means(model, x)
    projection = project_2d(codes, method=method, seed=seed)
    if model.latent_dim != 2:
        return LatentMap(projection, y)
    if model.variational:
        axis_1 = axis_2 = quantile_grid(grid_size)
        kind = "z at prior quantiles 5%-95%"
    else:
        axis_1, axis_2 = range_grid(codes[:, 0], grid_size), range_grid(codes[:, 1], grid_size)
        kind = "z over the 1st-99th percentiles of the codes"
    manifold = decode_images(model, manifold_codes(axis_1, axis_2))
    return LatentMap(projection, y, manifold, axis_1, axis_2, kind)


@dataclass(frozen=True, eq=False)
class Arithmetic:
    """``images[i, j]`` decodes ``codes of originals[i] + alphas[j] * vector``; the vector came from
    ``n_plus`` images of the added group and ``n_minus`` of the subtracted one. ``names`` are the
    edited images' file names when they came from an attribute table."""

    originals: np.ndarray
    images: np.ndarray
    alphas: np.ndarray
    vector: np.ndarray
    n_plus: int
    n_minus: int
    names: tuple[str, ...] = ()


def _edit(model, vector, originals, alphas, n_plus, n_minus, names=()) -> Arithmetic:
    shifted = shift_codes(encode_means(model, originals), vector, alphas)
    return Arithmetic(originals, decode_images(model, shifted), np.asarray(alphas, float), vector, n_plus, n_minus,
                      tuple(names))


def class_arithmetic(model, train_x, train_y, targets: np.ndarray, plus: int, minus: int, alphas) -> Arithmetic:
    """Vector = mean code of training class ``plus`` minus that of class ``minus``, added to ``targets``."""
    codes = encode_means(model, train_x)
    vector = class_vector(codes, train_y, plus, minus)
    return _edit(model, vector, targets, alphas, int(np.sum(train_y == plus)), int(np.sum(train_y == minus)))


def table_arithmetic(model, table: AttributeTable, folder: str | Path, plus: str, minus: str | None, alphas, *,
                     rows: int = 5, max_per_group: int = 2000, seed: int = 0) -> Arithmetic:
    """Vector from an attribute table: images with ``plus`` minus images with ``minus`` (default: those
    without ``plus``). ``rows`` images without ``plus``, not used for the vector, are edited.
    At most ``max_per_group`` images per group are read (a seeded choice), which bounds the time
    on CelebA-sized tables.
    """
    has_plus = table.column(plus)
    has_minus = table.column(minus) if minus else ~has_plus
    folder = Path(folder)
    paths, matched = match_folder(table, folder)
    plus_rows = np.flatnonzero(has_plus[matched])
    minus_rows = np.flatnonzero(has_minus[matched])
    minus_text = f"with {minus!r}" if minus else f"without {plus!r}"
    for found, text in ((plus_rows, f"with {plus!r}"), (minus_rows, minus_text)):
        if len(found) == 0:
            raise ConfigError(f"none of the {len(matched)} matched images is {text}: an attribute vector needs both groups")
    rng = np.random.default_rng(seed)
    targets = rng.permutation(np.flatnonzero(~has_plus[matched]))[:rows]
    plus_rows = rng.permutation(plus_rows)[:max_per_group]
    minus_rows = rng.permutation(np.setdiff1d(minus_rows, targets))[:max_per_group]
    if len(targets) == 0 or len(minus_rows) == 0:
        raise ConfigError(f"too few images without {plus!r} to both edit some and build the vector from the rest")
    chosen = np.concatenate([plus_rows, minus_rows, targets])
    images, kept = read_folder_images([paths[i] for i in chosen], tuple(model.sample_shape))
    group = np.repeat([0, 1, 2], [len(plus_rows), len(minus_rows), len(targets)])[kept]
    codes = encode_means(model, images[group < 2])
    vector = attribute_vector(codes, group[group < 2] == 0, group[group < 2] == 1)
    names = [paths[i].relative_to(folder).as_posix() for i in chosen[kept][group == 2]]
    return _edit(model, vector, images[group == 2], alphas, int(np.sum(group == 0)), int(np.sum(group == 1)), names)


@dataclass(frozen=True, eq=False)
class Denoising:
    """Clean, corrupted and reconstructed images and the per-image PSNR (dB) against the clean ones
    of the corrupted images, of their reconstructions, and (the ceiling for the latter) of the
    reconstructions of the clean images."""

    clean: np.ndarray
    corrupted: np.ndarray
    reconstructed: np.ndarray
    psnr_corrupted: np.ndarray
    psnr_reconstructed: np.ndarray
    psnr_clean_reconstructed: np.ndarray


def denoise(model, x: np.ndarray, noise: float, *, kind: str = "gaussian", seed: int = 0) -> Denoising:
    """Corrupt ``x``, reconstruct the corrupted images, and score both against the clean ones."""
    corrupted = corrupt(x, noise, kind=kind, seed=seed)
    reconstructed = reconstruct(model, corrupted)
    return Denoising(x, corrupted, reconstructed, psnr(corrupted, x), psnr(reconstructed, x),
                     psnr(reconstruct(model, x), x))
