"""One function per latent-space figure: a model and its dataset in, a :class:`Made` out.

These are what both the ``vaekit`` commands and the HTML report draw, so a figure looks the same
wherever it appears. Arrays come from :mod:`vaekit.latent`, drawing from :mod:`vaekit.figures.plots`.
Table runs (``dataset.is_table``) get the same figures drawn as features (:mod:`vaekit.figures.tables`),
and the image-only ones (the bilinear grid, denoising) refuse them with one line.
"""
from __future__ import annotations

import math
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from vaekit import latent
from vaekit.figures import animation, plots, tables
from vaekit.figures.made import Made
from vaekit.errors import ConfigError
from vaekit.limits import size_text

# A figure is at most 1500 x 2400 pixels (plots.py), so 100 x 100 images already shrink each to a few
# pixels; far larger counts only fill memory (``sample -n 100000000`` would decode 100 million).
MAX_FIGURE_IMAGES = 10_000




def _positive(value: int, flag: str) -> None:
    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, not {value}")


def _fits_in_figure(count: int, model, asked: str) -> None:
    """Refuse a figure of more than :data:`MAX_FIGURE_IMAGES` images, naming the memory they would take
    (the decoded float32 images, and the canvas they are tiled into)."""
    if count > MAX_FIGURE_IMAGES:
        shape = "x".join(map(str, model.sample_shape))
        nbytes = 2 * 4 * count * math.prod(model.sample_shape)
        raise ConfigError(f"{asked} asks for {count:,} images of {shape} in one figure, which needs {size_text(nbytes)} "
                          f"for the decoded images and their canvas: a figure holds at most {MAX_FIGURE_IMAGES:,} images")


def class_names(model, dataset) -> list[str] | None:
    return model.class_names or dataset.class_names


def label(index: int, y, names, *, two_lines: bool = False) -> str:
    """"#12 (Sneaker)", or "#12" over "Sneaker" for a column title; just "#12" without labels."""
    if y is None:
        return f"#{index}"
    k = int(y[index])
    name = names[k] if names and k < len(names) else str(k)
    return f"#{index}\n{name}" if two_lines else f"#{index} ({name})"


def is_table(dataset) -> bool:
    return bool(getattr(dataset, "is_table", False))


def contrasting_pair(dataset) -> tuple[int, int]:
    """Indices of the first two test images of different classes (0 and 1 without labels)."""
    y = dataset.test.y
    if y is None or len(y) < 2:
        return 0, min(1, len(dataset.test) - 1)
    different = np.flatnonzero(y != y[0])
    return 0, int(different[0]) if len(different) else 1


def reconstruction(model, dataset, *, n: int = 10, split: str = "test") -> Made:
    _positive(n, "-n")
    part = dataset.split(split)
    n = min(n, len(part))
    _fits_in_figure(2 * n, model, f"-n {n}")
    if is_table(dataset):
        labels = [label(i, part.y, class_names(model, dataset)) for i in range(n)]
        return tables.reconstruction(model, dataset, n=n, split=split, labels=labels)
    recon = latent.reconstruct(model, part.x[:n])
    titles = [label(i, part.y, class_names(model, dataset), two_lines=True) for i in range(n)]
    figure = plots.reconstruction_figure(part.x[:n], recon, col_titles=titles,
                                         title=f"{split.capitalize()} images (top) and reconstructions decode(E[z|x]) (below)")
    mse = float(np.mean((recon - part.x[:n]) ** 2))
    psnr = float(np.mean(latent.psnr(recon, part.x[:n])))
    return Made(figure, f"MSE per pixel over these {n} images: {mse:.5f}  (PSNR {psnr:.2f} dB)",
                values=np.asarray(model.to_data_units(recon), np.float64))


def samples(model, dataset, *, n: int = 64, sampler: str = "prior", temperature: float = 1.0, seed: int = 0,
            components: int = 10, cols: int = 8, condition: int | None = None) -> Made:
    """Decoded samples; ``condition`` (conditional models) is the class index they are decoded given."""
    _positive(n, "-n")
    _positive(cols, "--cols")
    _fits_in_figure(n, model, f"-n {n}")
    with model.conditioned(condition) if condition is not None else nullcontext():
        train_means = latent.encode_means(model, dataset.train.x) if sampler == "gmm" else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            codes = latent.sample_codes(model, n, sampler=sampler, temperature=temperature, seed=seed,
                                        train_means=train_means, components=components)
        images = None if is_table(dataset) else latent.decode_images(model, codes)
    prior = "z ~ N(0, T²I)" if model.prior.standard else "z from the model's own prior"
    what = "rows" if is_table(dataset) else "images"
    source = (prior if sampler == "prior"
              else f"a {components}-component Gaussian mixture fitted to {len(train_means)} encoded training {what}")
    messages = [str(w.message) for w in caught]
    if is_table(dataset):
        with model.conditioned(condition) if condition is not None else nullcontext():
            return tables.samples(model, dataset, codes=codes, source=source, temperature=temperature, caught=messages)
    origin = "the prior" if sampler == "prior" else "the fitted mixture"
    if condition is None:
        title, summary = f"{n} samples: decode(z), {source}, T = {temperature:g}", f"{n} samples from {origin}"
    else:
        names = class_names(model, dataset) or []
        which = f"class {condition}" + (f" ({names[condition]})" if condition < len(names) else "")
        title = f"{n} samples conditioned on {which}: decode(z, y = {condition}), {source}, T = {temperature:g}"
        summary = f"{n} samples conditioned on {which}: z from {origin}, decoded given the class"
    figure = plots.samples_figure(images, title=title, cols=cols)
    return Made(figure, summary, messages, np.asarray(model.to_data_units(images), np.float64))


def decoded(model, dataset, codes) -> Made:
    """Given codes decoded: a table's rows (features by code, original units, also listed in the
    summary) or images in a row; ``values`` holds them in the data's original units."""
    codes = latent.check_codes(codes, model.latent_dim)
    if is_table(dataset):
        return tables.decoded(model, dataset, codes=codes)
    images = latent.decode_images(model, codes)
    figure = plots.samples_figure(images, title=f"decode(z) of {len(codes)} given codes", cols=min(len(codes), 10))
    return Made(figure, f"{len(codes)} codes decoded", values=np.asarray(model.to_data_units(images), np.float64))


def interpolation(model, dataset, *, start: int = 0, end: int = 1, steps: int = 10, method: str = "linear") -> Made:
    test, names = dataset.test, class_names(model, dataset)
    _fits_in_figure(steps + 2, model, f"--steps {steps}")
    start, end = latent.check_indices([start, end], len(test))
    if is_table(dataset):
        return tables.interpolation(model, dataset, start=start, end=end, steps=steps, method=method,
                                    start_label=label(start, test.y, names), end_label=label(end, test.y, names))
    means = latent.encode_means(model, test.x[[start, end]])
    codes = latent.interpolate(means[0], means[1], steps, method)
    figure = plots.interpolation_figure(test.x[start], latent.decode_images(model, codes), test.x[end],
                                        start_label=label(start, test.y, names, two_lines=True),
                                        end_label=label(end, test.y, names, two_lines=True),
                                        title=f"{method.capitalize()} interpolation between the codes of two test images "
                                              "(real images at the ends)")
    norms = np.linalg.norm(codes, axis=1)
    return Made(figure, f"|z| along the path: {norms[0]:.2f} -> min {norms.min():.2f} -> {norms[-1]:.2f}")


def interpolation_grid(model, dataset, *, corners, steps: int = 8) -> Made:
    if is_table(dataset):
        raise tables.refuse("interpolate --grid (a grid of decoded images)", dataset,
                            "interpolate between two rows with --from I --to J")
    test = dataset.test
    _fits_in_figure(steps * steps + 4, model, f"--steps {steps} (per side of the grid)")
    indices = latent.check_indices(corners, len(test))
    codes = latent.bilinear_grid(latent.encode_means(model, test.x[indices]), steps, steps)
    labels = [label(i, test.y, class_names(model, dataset)) for i in indices]
    figure = plots.grid_interpolation_figure(latent.decode_images(model, codes), test.x[indices], corner_labels=labels,
                                             title="Bilinear interpolation between four test images' codes")
    return Made(figure, f"{steps}x{steps} grid between test images {', '.join(str(i) for i in indices)}")


def _traverse(model, dataset, index: int, span: float, steps: int, max_dims: int):
    _positive(max_dims, "--max-dims")
    _fits_in_figure(steps * min(max_dims, model.latent_dim) + 1, model, f"--steps {steps}")
    test = dataset.test
    [index] = latent.check_indices([index], len(test))
    result = latent.traverse(model, test.x[index:index + 1], test.x, span=span, steps=steps, max_dims=max_dims)
    unit = "KL per dimension (nats)" if result.score_name == "KL" else "variance of the encoded means per dimension"
    return index, result, f"{unit}: " + ", ".join(f"z{d} {s:.3g}" for d, s in zip(result.dims, result.scores))


def traversal(model, dataset, *, index: int = 0, span: float = 3.0, steps: int = 9, max_dims: int = 32) -> Made:
    index, result, summary = _traverse(model, dataset, index, span, steps, max_dims)
    test = dataset.test
    shown = "" if len(result.dims) == model.latent_dim else f" ({len(result.dims)} of {model.latent_dim} shown)"
    order = ("rows sorted by mean KL on the test set, largest first" if result.score_name == "KL" else
             "rows sorted by the variance of the encoded means (an AE has no KL), largest first")
    if is_table(dataset):
        return tables.traversal(model, dataset, result=result, index_label=label(index, test.y, class_names(model, dataset)),
                                shown=shown)
    title = f"Latent traversal around test image {label(index, test.y, class_names(model, dataset))}: {order}{shown}"
    figure = plots.traversal_figure(result, reference=test.x[index], title=title)
    return Made(figure, summary)


def traversal_animation(model, dataset, *, index: int = 0, span: float = 3.0, steps: int = 9, max_dims: int = 32,
                        frame_ms: int = 120) -> Made:
    """The traversal as an animated GIF (``Made.figure`` holds its bytes): every shown dimension sweeps
    from -span to +span and back at once, one tile each, in the same order as :func:`traversal`."""
    _positive(frame_ms, "--frame-ms")
    index, result, summary = _traverse(model, dataset, index, span, steps, max_dims)
    return Made(animation.traversal_gif(result, frame_ms=frame_ms), summary)


def prior_traversal(model, *, span: float = 3.0, steps: int = 9, max_dims: int = 32) -> Made:
    """A traversal that needs no data: around z = 0, the mean of a N(0, I) prior, one row per dimension in
    index order (without data there is no KL to rank them by). For a run whose data are not on disk."""
    _positive(max_dims, "--max-dims")
    if not (model.variational and model.prior.standard):
        raise ConfigError("without data, a traversal goes around the mean of a N(0, I) prior, which this model does not "
                          "have: pass the run's data with --dataset PATH")
    if steps < 2 or not span > 0:
        raise ConfigError(f"a traversal needs --steps >= 2 and --range > 0 (got {steps} and {span})")
    dims = np.arange(min(model.latent_dim, max_dims))
    offsets = np.linspace(-span, span, steps)
    codes = latent.traversal(np.zeros(model.latent_dim), dims, offsets)
    result = latent.Traversal(latent.decode_images(model, codes), codes, dims, np.zeros(len(dims)), "index", offsets)
    shown = "" if len(dims) == model.latent_dim else f" ({len(dims)} of {model.latent_dim} shown)"
    figure = plots.traversal_figure(result, title=f"Latent traversal around z = 0, the prior's mean{shown}")
    return Made(figure, f"{len(dims)} dimension(s) around z = 0, in prior standard deviations (no data: not ranked by KL)")


def latent_map(model, dataset, *, method: str = "pca", max_points: int = 5000, grid_size: int = 15, seed: int = 0) -> Made:
    _positive(max_points, "--max-points")
    _positive(grid_size, "--grid-size")
    if model.latent_dim == 2:       # only a 2-D latent space gets the decoded grid
        _fits_in_figure(grid_size * grid_size, model, f"--grid-size {grid_size}")
    test = dataset.test
    chosen = np.sort(np.random.default_rng(seed).permutation(len(test))[:max_points])
    result = latent.latent_map(model, test.x[chosen], None if test.y is None else test.y[chosen],
                               method=method, grid_size=grid_size, seed=seed)
    kind = "VAE" if model.variational else "autoencoder"
    title = f"Latent space of the {kind} ({model.latent_dim}-D) on {dataset.name}"
    code_name = "posterior means" if model.variational else "codes"
    summary = f"{len(chosen)} test {'rows' if is_table(dataset) else 'images'}"
    if result.projection.explained_variance:
        shares = result.projection.explained_variance
        summary = f"PCA of {model.latent_dim}-D codes: PC1 {shares[0]:.1%}, PC2 {shares[1]:.1%} of the variance"
    if is_table(dataset):
        return tables.latent_map(model, dataset, result=result, class_names=class_names(model, dataset), title=title,
                                 code_name=code_name, summary=summary)
    figure = plots.latent_map_figure(result, class_names=class_names(model, dataset), title=title, code_name=code_name)
    return Made(figure, summary)


def arithmetic(model, dataset, *, plus: str, minus: str | None = None, alphas=latent.DEFAULT_ALPHAS, rows: int = 5,
               attributes: str | Path | None = None, max_per_group: int = 2000, seed: int = 0) -> Made:
    _positive(rows, "--rows")
    _fits_in_figure(min(rows, len(dataset.test)) * (len(alphas) + 1), model, f"--rows {rows} with {len(alphas)} values of --alpha")
    if attributes:
        from vaekit.data import dataset_names

        if dataset.name.lower() in dataset_names() or not Path(dataset.source).is_dir():
            raise ConfigError(f"--attributes names images of an image folder, but this run was trained on {dataset.name}: "
                              "use class names or indices with --plus/--minus")
        table = latent.read_attribute_table(attributes)
        result = latent.table_arithmetic(model, table, dataset.source, plus, minus, alphas, rows=rows,
                                         max_per_group=max_per_group, seed=seed)
        minus = minus or f"not {plus}"
        row_labels = list(result.names)
    else:
        if minus is None:
            raise ConfigError("--minus B is needed with class labels (the vector is class A's mean code minus class B's)")
        names = class_names(model, dataset)
        plus_k = latent.resolve_class(plus, names, dataset.train.y)
        minus_k = latent.resolve_class(minus, names, dataset.train.y)
        if plus_k == minus_k:
            raise ConfigError(f"--plus and --minus are the same class ({plus!r}, {minus!r}): the vector would be 0")
        test = dataset.test
        targets = latent.images_not_of(test.y, plus_k, rows, seed=seed)
        result = latent.class_arithmetic(model, dataset.train.x, dataset.train.y, test.x[targets], plus_k, minus_k, alphas)
        plus, minus = (names[plus_k], names[minus_k]) if names else (str(plus_k), str(minus_k))
        row_labels = [label(int(i), test.y, names) for i in targets]
        if is_table(dataset):
            return tables.arithmetic(model, dataset, result=result, plus=plus, minus=minus, plus_k=plus_k, minus_k=minus_k)
    source = "images listed in " + Path(attributes).name if attributes else "training images"
    title = (f"Latent arithmetic: decode(code + α·v),  v = mean code of '{plus}' − mean code of '{minus}'\n"
             f"({result.n_plus} and {result.n_minus} {source}; rows: images without '{plus}', not used for v)")
    figure = plots.arithmetic_figure(result, row_labels=row_labels, title=title)
    return Made(figure, f"attribute vector: |v| = {np.linalg.norm(result.vector):.3f} from {result.n_plus} '{plus}' "
                        f"and {result.n_minus} '{minus}' images")


def denoising(model, dataset, *, noise: float = 0.3, kind: str = "gaussian", n: int = 8, measure: int = 500,
              seed: int = 0) -> Made:
    if is_table(dataset):
        raise tables.refuse("denoise (pixel noise scored by PSNR)", dataset,
                            "see how well rows are rebuilt with vaekit reconstruct")
    _positive(n, "-n")
    _positive(measure, "--measure")
    count = min(max(measure, n), len(dataset.test))
    result = latent.denoise(model, dataset.test.x[:count], noise, kind=kind, seed=seed)
    noisy, recon = float(np.mean(result.psnr_corrupted)), float(np.mean(result.psnr_reconstructed))
    ceiling = float(np.mean(result.psnr_clean_reconstructed))
    what = f"Gaussian noise, std {noise:g}" if kind == "gaussian" else f"{noise:.0%} of pixels set to 0"
    title = (f"Denoising ({what})\nmean PSNR over {count} test images: corrupted {noisy:.2f} dB, "
             f"reconstructed {recon:.2f} dB (clean images reconstructed: {ceiling:.2f} dB)")
    figure = plots.denoise_figure(result, n=min(n, count), title=title)
    return Made(figure, f"PSNR vs clean (mean over {count} test images, peak 1.0): corrupted {noisy:.2f} dB, "
                        f"reconstructed {recon:.2f} dB (reconstructing the clean images: {ceiling:.2f} dB)")
