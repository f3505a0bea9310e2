"""Latent-space commands: reconstruct, sample, interpolate, traverse, latent-map, arithmetic, denoise.

Each parses its options, calls :mod:`vaekit.latent` for arrays and :mod:`vaekit.plots` for a figure,
writes a PNG (default ``RUN/figures/<command>.png``) and prints its path and any measured numbers.
torch, NumPy and matplotlib are imported inside the handlers only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands) -> None:
    add = _adder(commands)

    p = add("reconstruct", "test images above their reconstructions")
    p.add_argument("-n", type=int, default=10, help="images to show (default 10)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.set_defaults(handler=_reconstruct)

    p = add("sample", "decode new codes from the prior or a mixture fitted to the encoded data")
    p.add_argument("-n", type=int, default=64, help="samples (default 64)")
    p.add_argument("--sampler", default="prior", choices=["prior", "gmm"],
                   help="prior: z ~ N(0, T^2 I); gmm: a Gaussian mixture fitted to the encoded training set "
                        "(the way to sample a plain autoencoder)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale T of the sampling noise (default 1)")
    p.add_argument("--components", type=int, default=10, help="mixture components for --sampler gmm (default 10)")
    p.add_argument("--cols", type=int, default=8, help="images per row (default 8)")
    p.set_defaults(handler=_sample)

    p = add("interpolate", "decode the path between two test images' codes (or a grid between four)")
    p.add_argument("--from", dest="start", type=int, default=0, metavar="I", help="test image index (default 0)")
    p.add_argument("--to", dest="end", type=int, default=1, metavar="J", help="test image index (default 1)")
    p.add_argument("--grid", type=int, nargs=4, metavar=("I", "J", "K", "L"),
                   help="four test images (top-left, top-right, bottom-left, bottom-right): decode the bilinear "
                        "grid between their codes (--method does not apply)")
    p.add_argument("--steps", type=int, help="codes along the path, ends included (default 10; with --grid, per side, default 8)")
    p.add_argument("--method", default="linear", choices=["linear", "slerp"])
    p.set_defaults(handler=_interpolate)

    p = add("traverse", "vary one latent dimension at a time around one image's code")
    p.add_argument("--index", type=int, default=0, help="test image index (default 0)")
    p.add_argument("--range", dest="span", type=float, default=3.0, help="largest offset, in prior standard deviations (default 3)")
    p.add_argument("--steps", type=int, default=9, help="values per dimension (default 9)")
    p.add_argument("--max-dims", type=int, default=32, help="show at most this many dimensions, largest KL first (default 32)")
    p.set_defaults(handler=_traverse)

    p = add("latent-map", "the test set's codes in the plane, coloured by class")
    p.add_argument("--method", default="pca", choices=["pca", "tsne"], help="projection when the latent has more than 2 dimensions")
    p.add_argument("--max-points", type=int, default=5000, help="test images plotted (a seeded random subset; default 5000)")
    p.add_argument("--grid-size", type=int, default=15, help="side of the decoded grid for a 2-D latent (default 15)")
    p.set_defaults(handler=_latent_map)

    p = add("arithmetic", "add an attribute vector (class A minus class B) to other images' codes")
    p.add_argument("--plus", required=True, metavar="A", help="class name or index (or attribute, with --attributes)")
    p.add_argument("--minus", metavar="B", help="class name or index (with --attributes: default, images without A)")
    p.add_argument("--alpha", default="-2,-1,0,1,2", help="comma-separated multiples of the vector (default -2,-1,0,1,2)")
    p.add_argument("--rows", type=int, default=5, help="images to edit (default 5)")
    p.add_argument("--attributes", metavar="FILE", help="CSV (header row, first column the file name) or CelebA "
                   "list_attr_celeba.txt of 0/1 or -1/1 attributes, for an image-folder run")
    p.add_argument("--max-per-group", type=int, default=2000, help="with --attributes: images read per group (default 2000)")
    p.set_defaults(handler=_arithmetic)

    p = add("denoise", "corrupt test images, reconstruct them, report PSNR")
    p.add_argument("--noise", type=float, default=0.3, help="noise std (gaussian) or masked fraction (mask); default 0.3")
    p.add_argument("--kind", default="gaussian", choices=["gaussian", "mask"])
    p.add_argument("-n", type=int, default=8, help="images shown (default 8)")
    p.add_argument("--measure", type=int, default=500, help="test images the PSNR is averaged over (default 500)")
    p.set_defaults(handler=_denoise)


def _adder(commands):
    def add(name: str, text: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        parser.add_argument("run", metavar="RUN", help="run folder (from vaekit train --out)")
        parser.add_argument("--out", metavar="FILE", help=f"PNG to write (default RUN/figures/{name}.png)")
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--data-dir", help="folder holding the dataset files")
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
        return parser
    return add


# -- shared ----------------------------------------------------------------------------------------
def _open(args):
    from .. import latent

    return latent.load_model_and_data(args.run, data_dir=args.data_dir, device=args.device)


def _write(figure, args, name: str) -> None:
    from ..plots import save_figure

    path = save_figure(figure, args.out or Path(args.run) / "figures" / f"{name}.png")
    print(f"wrote {path}")


def _positive(value: int, flag: str) -> None:
    from ..errors import ConfigError

    if value < 1:
        raise ConfigError(f"{flag} must be at least 1, not {value}")


def _names(model, dataset) -> list[str] | None:
    return model.class_names or dataset.class_names


def _label(index: int, y, names, *, two_lines: bool = False) -> str:
    """"#12 (Sneaker)", or "#12" over "Sneaker" for a column title; just "#12" without labels."""
    if y is None:
        return f"#{index}"
    k = int(y[index])
    name = names[k] if names and k < len(names) else str(k)
    return f"#{index}\n{name}" if two_lines else f"#{index} ({name})"


# -- commands --------------------------------------------------------------------------------------
def _reconstruct(args) -> int:
    import numpy as np

    from .. import latent, plots

    _positive(args.n, "-n")
    model, dataset = _open(args)
    split = dataset.split(args.split)
    n = min(args.n, len(split))
    recon = latent.reconstruct(model, split.x[:n])
    titles = [_label(i, split.y, _names(model, dataset), two_lines=True) for i in range(n)]
    figure = plots.reconstruction_figure(split.x[:n], recon, col_titles=titles,
                                         title=f"{args.split.capitalize()} images (top) and reconstructions decode(E[z|x]) (below)")
    _write(figure, args, "reconstruct")
    mse = float(np.mean((recon - split.x[:n]) ** 2))
    print(f"MSE per pixel over these {n} images: {mse:.5f}  (PSNR {np.mean(latent.psnr(recon, split.x[:n])):.2f} dB)")
    return 0


def _sample(args) -> int:
    import warnings

    from .. import latent, plots

    _positive(args.n, "-n")
    _positive(args.cols, "--cols")
    model, dataset = _open(args)
    train_means = latent.encode_means(model, dataset.train.x) if args.sampler == "gmm" else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        codes = latent.sample_codes(model, args.n, sampler=args.sampler, temperature=args.temperature,
                                    seed=args.seed, train_means=train_means, components=args.components)
    for warning in caught:
        print(f"vaekit: warning: {warning.message}", file=sys.stderr)
    source = ("z ~ N(0, T²I)" if args.sampler == "prior"
              else f"a {args.components}-component Gaussian mixture fitted to {len(train_means)} encoded training images")
    title = f"{args.n} samples: decode(z), {source}, T = {args.temperature:g}"
    if args.sampler == "prior" and not model.variational:
        title += "\n(an autoencoder has no prior: these codes lie off the data; try --sampler gmm)"
    _write(plots.samples_figure(latent.decode_images(model, codes), title=title, cols=args.cols), args, "sample")
    return 0


def _interpolate(args) -> int:
    import numpy as np

    from .. import latent, plots

    model, dataset = _open(args)
    test, names = dataset.test, _names(model, dataset)
    if args.grid:
        indices = latent.check_indices(args.grid, len(test))
        side = args.steps or 8
        codes = latent.bilinear_grid(latent.encode_means(model, test.x[indices]), side, side)
        labels = [_label(i, test.y, names) for i in indices]
        figure = plots.grid_interpolation_figure(latent.decode_images(model, codes), test.x[indices],
                                                 corner_labels=labels, title="Bilinear interpolation between four test images' codes")
        _write(figure, args, "interpolate-grid")
        return 0
    start, end = latent.check_indices([args.start, args.end], len(test))
    means = latent.encode_means(model, test.x[[start, end]])
    codes = latent.interpolate(means[0], means[1], args.steps or 10, args.method)
    figure = plots.interpolation_figure(test.x[start], latent.decode_images(model, codes), test.x[end],
                                        start_label=_label(start, test.y, names, two_lines=True),
                                        end_label=_label(end, test.y, names, two_lines=True),
                                        title=f"{args.method.capitalize()} interpolation between the codes of two test images (real images at the ends)")
    _write(figure, args, "interpolate")
    norms = np.linalg.norm(codes, axis=1)
    print(f"|z| along the path: {norms[0]:.2f} -> min {norms.min():.2f} -> {norms[-1]:.2f}")
    return 0


def _traverse(args) -> int:
    from .. import latent, plots

    _positive(args.max_dims, "--max-dims")
    model, dataset = _open(args)
    test = dataset.test
    [index] = latent.check_indices([args.index], len(test))
    result = latent.traverse(model, test.x[index:index + 1], test.x, span=args.span, steps=args.steps,
                             max_dims=args.max_dims)
    shown = "" if len(result.dims) == model.latent_dim else f" ({len(result.dims)} of {model.latent_dim} shown)"
    order = ("rows sorted by mean KL on the test set, largest first" if result.score_name == "KL" else
             "rows sorted by the variance of the encoded means (an AE has no KL), largest first")
    title = f"Latent traversal around test image {_label(index, test.y, _names(model, dataset))}: {order}{shown}"
    _write(plots.traversal_figure(result, reference=test.x[index], title=title), args, "traverse")
    unit = "KL per dimension (nats)" if result.score_name == "KL" else "variance of the encoded means per dimension"
    print(f"{unit}: " + ", ".join(f"z{d} {s:.3g}" for d, s in zip(result.dims, result.scores)))
    return 0


def _latent_map(args) -> int:
    import numpy as np

    from .. import latent, plots

    _positive(args.max_points, "--max-points")
    _positive(args.grid_size, "--grid-size")
    model, dataset = _open(args)
    test = dataset.test
    chosen = np.sort(np.random.default_rng(args.seed).permutation(len(test))[:args.max_points])
    result = latent.latent_map(model, test.x[chosen], None if test.y is None else test.y[chosen],
                               method=args.method, grid_size=args.grid_size, seed=args.seed)
    kind = "VAE" if model.variational else "autoencoder"
    title = f"Latent space of the {kind} ({model.latent_dim}-D) on {dataset.name}"
    figure = plots.latent_map_figure(result, class_names=_names(model, dataset), title=title,
                                     code_name="posterior means" if model.variational else "codes")
    _write(figure, args, "latent-map")
    if result.projection.explained_variance:
        shares = result.projection.explained_variance
        print(f"PCA of {model.latent_dim}-D codes: PC1 {shares[0]:.1%}, PC2 {shares[1]:.1%} of the variance")
    return 0


def _arithmetic(args) -> int:
    import numpy as np

    from .. import latent, plots
    from ..errors import ConfigError

    _positive(args.rows, "--rows")
    alphas = latent.parse_alphas(args.alpha)
    model, dataset = _open(args)
    if args.attributes:
        from ..data import dataset_names

        if dataset.name.lower() in dataset_names() or not Path(dataset.source).is_dir():
            raise ConfigError(f"--attributes names images of an image folder, but this run was trained on {dataset.name}: "
                              "use class names or indices with --plus/--minus")
        table = latent.read_attribute_table(args.attributes)
        result = latent.table_arithmetic(model, table, dataset.source, args.plus, args.minus,
                                         alphas, rows=args.rows, max_per_group=args.max_per_group, seed=args.seed)
        minus = args.minus or f"not {args.plus}"
        row_labels = list(result.names)
        plus = args.plus
    else:
        if args.minus is None:
            raise ConfigError("--minus B is needed with class labels (the vector is class A's mean code minus class B's)")
        names = _names(model, dataset)
        plus_k = latent.resolve_class(args.plus, names, dataset.train.y)
        minus_k = latent.resolve_class(args.minus, names, dataset.train.y)
        if plus_k == minus_k:
            raise ConfigError(f"--plus and --minus are the same class ({args.plus!r}, {args.minus!r}): the vector would be 0")
        test = dataset.test
        targets = latent.images_not_of(test.y, plus_k, args.rows, seed=args.seed)
        result = latent.class_arithmetic(model, dataset.train.x, dataset.train.y, test.x[targets], plus_k, minus_k, alphas)
        plus, minus = (names[plus_k], names[minus_k]) if names else (str(plus_k), str(minus_k))
        row_labels = [_label(int(i), test.y, names) for i in targets]
    source = "images listed in " + Path(args.attributes).name if args.attributes else "training images"
    title = (f"Latent arithmetic: decode(code + α·v),  v = mean code of '{plus}' − mean code of '{minus}'\n"
             f"({result.n_plus} and {result.n_minus} {source}; rows: images without '{plus}', not used for v)")
    _write(plots.arithmetic_figure(result, row_labels=row_labels, title=title), args, "arithmetic")
    print(f"attribute vector: |v| = {np.linalg.norm(result.vector):.3f} from {result.n_plus} '{plus}' "
          f"and {result.n_minus} '{minus}' images")
    return 0


def _denoise(args) -> int:
    import numpy as np

    from .. import latent, plots

    _positive(args.n, "-n")
    _positive(args.measure, "--measure")
    model, dataset = _open(args)
    count = min(max(args.measure, args.n), len(dataset.test))
    result = latent.denoise(model, dataset.test.x[:count], args.noise, kind=args.kind, seed=args.seed)
    noisy, recon = float(np.mean(result.psnr_corrupted)), float(np.mean(result.psnr_reconstructed))
    ceiling = float(np.mean(result.psnr_clean_reconstructed))
    what = f"Gaussian noise, std {args.noise:g}" if args.kind == "gaussian" else f"{args.noise:.0%} of pixels set to 0"
    title = (f"Denoising ({what})\nmean PSNR over {count} test images: corrupted {noisy:.2f} dB, "
             f"reconstructed {recon:.2f} dB (clean images reconstructed: {ceiling:.2f} dB)")
    _write(plots.denoise_figure(result, n=min(args.n, count), title=title), args, "denoise")
    print(f"PSNR vs clean (mean over {count} test images, peak 1.0): corrupted {noisy:.2f} dB, reconstructed "
          f"{recon:.2f} dB (reconstructing the clean images: {ceiling:.2f} dB)")
    return 0
