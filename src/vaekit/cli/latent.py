"""Latent-space commands: reconstruct, sample, decode, interpolate, traverse, latent-map, arithmetic, denoise.

Each parses its options, calls :mod:`vaekit.latent` for arrays and :mod:`vaekit.figures.plots` for a figure,
writes a PNG (default ``RUN/figures/<command>.png``) and prints its path and any measured numbers.
``sample``, ``decode`` and ``reconstruct`` also write the decoded values themselves, in the data's original units,
when ``--out`` ends in .csv (a table's rows under its column names) or .npy.
A command writing into the run folder holds its lock (:mod:`vaekit.training.lock`) while it runs.
torch, NumPy and matplotlib are imported inside the handlers only.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(commands) -> None:
    add = _adder(commands)

    p = add("reconstruct", "test images above their reconstructions (tables: rows beside them)", values=True)
    p.add_argument("-n", type=int, default=10, help="images to show (default 10)")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.set_defaults(handler=_locked(_reconstruct))

    p = add("sample", "decode new codes from the prior or a mixture fitted to the encoded data", values=True)
    p.add_argument("-n", type=int, default=64, help="samples (default 64)")
    p.add_argument("--sampler", default="prior", choices=["prior", "gmm"],
                   help="prior: z ~ N(0, T^2 I); gmm: a Gaussian mixture fitted to the encoded training set "
                        "(the way to sample a plain autoencoder)")
    p.add_argument("--temperature", type=float, default=1.0, help="scale T of the sampling noise (default 1)")
    p.add_argument("--components", type=int, default=10, help="mixture components for --sampler gmm (default 10)")
    p.add_argument("--cols", type=int, default=8, help="images per row (default 8)")
    p.add_argument("--label", type=int, metavar="I", help="conditional models (cvae): sample class I")
    p.add_argument("--class", dest="class_name", metavar="NAME", help="conditional models (cvae): sample the class called NAME")
    p.set_defaults(handler=_locked(_sample))

    p = add("decode", "decode the codes given: a table's rows in its own units (listed), or images", values=True)
    p.add_argument("--z", action="append", required=True, metavar="Z1,Z2,...",
                   help="a code: latent_dim comma-separated numbers (repeat --z for more codes; one that starts "
                        "with a minus is written --z=-1,0.5)")
    p.set_defaults(handler=_decode)

    p = add("interpolate", "decode the path between two test images' codes (or a grid between four)")
    p.add_argument("--from", dest="start", type=int, default=0, metavar="I", help="test image index (default 0)")
    p.add_argument("--to", dest="end", type=int, default=1, metavar="J", help="test image index (default 1)")
    p.add_argument("--grid", type=int, nargs=4, metavar=("I", "J", "K", "L"),
                   help="four test images (top-left, top-right, bottom-left, bottom-right): decode the bilinear "
                        "grid between their codes (--method does not apply)")
    p.add_argument("--steps", type=int, help="codes along the path, ends included (default 10; with --grid, per side, default 8)")
    p.add_argument("--method", default="linear", choices=["linear", "slerp"])
    p.set_defaults(handler=_locked(_interpolate))

    p = add("traverse", "vary one latent dimension at a time around one image's code")
    p.add_argument("--index", type=int, default=0, help="test image index (default 0; a run trained from arrays, "
                                                        "without --dataset, is traversed around z = 0)")
    p.add_argument("--range", dest="span", type=float, default=3.0, help="largest offset, in prior standard deviations (default 3)")
    p.add_argument("--steps", type=int, default=9, help="values per dimension (default 9)")
    p.add_argument("--max-dims", type=int, default=32, help="show at most this many dimensions, largest KL first (default 32)")
    p.add_argument("--gif", action="store_true", help="write an animated GIF instead (default RUN/figures/traverse.gif): "
                   "every dimension sweeping its range at once, one tile each")
    p.add_argument("--frame-ms", type=int, default=120, help="with --gif: milliseconds per frame (default 120)")
    p.set_defaults(handler=_locked(_traverse))

    p = add("latent-map", "the test set's codes in the plane, coloured by class")
    p.add_argument("--method", default="pca", choices=["pca", "tsne"], help="projection when the latent has more than 2 dimensions")
    p.add_argument("--max-points", type=int, default=5000, help="test images plotted (a seeded random subset; default 5000)")
    p.add_argument("--grid-size", type=int, default=15, help="side of the decoded grid for a 2-D latent (default 15)")
    p.set_defaults(handler=_locked(_latent_map))

    p = add("arithmetic", "add an attribute vector (class A minus class B) to other images' codes")
    p.add_argument("--plus", required=True, metavar="A", help="class name or index (or attribute, with --attributes)")
    p.add_argument("--minus", metavar="B", help="class name or index (with --attributes: default, images without A)")
    p.add_argument("--alpha", default="-2,-1,0,1,2", help="comma-separated multiples of the vector (default -2,-1,0,1,2)")
    p.add_argument("--rows", type=int, default=5, help="images to edit (default 5)")
    p.add_argument("--attributes", metavar="FILE", help="CSV (header row, first column the file name) or CelebA "
                   "list_attr_celeba.txt of 0/1 or -1/1 attributes, for an image-folder run")
    p.add_argument("--max-per-group", type=int, default=2000, help="with --attributes: images read per group (default 2000)")
    p.set_defaults(handler=_locked(_arithmetic))

    p = add("denoise", "corrupt test images, reconstruct them, report PSNR")
    p.add_argument("--noise", type=float, default=0.3, help="noise std (gaussian) or masked fraction (mask); default 0.3")
    p.add_argument("--kind", default="gaussian", choices=["gaussian", "mask"])
    p.add_argument("-n", type=int, default=8, help="images shown (default 8)")
    p.add_argument("--measure", type=int, default=500, help="test images the PSNR is averaged over (default 500)")
    p.set_defaults(handler=_locked(_denoise))


def _adder(commands):
    def add(name: str, text: str, *, values: bool = False) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        parser.add_argument("run", metavar="RUN", help="run folder (from vaekit train --out)")
        also = (": or .csv (a table run's decoded rows, original units, the column names as header) or .npy (the "
                "decoded values, original units)") if values else ""
        parser.add_argument("--out", metavar="FILE", help=f"PNG to write (default RUN/figures/{name}.png){also}")
        parser.set_defaults(writes_values=values)
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--data-dir", help="folder holding the dataset files (also searched for data that moved)")
        parser.add_argument("--dataset", metavar="PATH", help="the run's data, if they moved (or it was trained from arrays)")
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
        return parser
    return add


# -- shared ----------------------------------------------------------------------------------------
FIGURE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _locked(handler):
    """``handler``, holding the run folder's lock when its figure goes into the run folder."""
    def run(args) -> int:
        from vaekit.training.run import open_for_writing

        if args.out is not None and not _inside(Path(args.out), Path(args.run)):
            return handler(args)
        with open_for_writing(args.run):
            return handler(args)
    return run


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _open(args):
    """The run's model and data, once the options every command shares are checked (before the slow part)."""
    from vaekit import latent
    from vaekit.limits import check_seed

    check_seed(args.seed)
    _check_out(args)
    return latent.load_model_and_data(args.run, data_dir=args.data_dir, device=args.device, dataset=args.dataset)


def _model(args):
    """The run's best model alone, for commands that need no data (a run trained from arrays has none on disk)."""
    from vaekit.limits import check_seed
    from vaekit.training.device import resolve_device
    from vaekit.training.run import open_run

    check_seed(args.seed)
    _check_out(args)
    return open_run(args.run).load_model("best", device=resolve_device(args.device))


def _check_out(args) -> None:
    """Refuse an --out this command cannot write before any work is done: an image format, or .csv /
    .npy for the commands that write decoded values."""
    from vaekit.errors import ConfigError
    from vaekit.figures.plots import figure_format

    if args.out is None:
        return
    values = (".csv", ".npy") if args.writes_values else ()
    if Path(args.out).suffix.lower() in values:
        return
    try:
        figure_format(args.out)
    except ConfigError:
        also = ", or .csv / .npy for the decoded values" if values else ""
        suffix = Path(args.out).suffix.lower()
        raise ConfigError(f"--out {args.out}: {suffix} is not an image format: write a figure as .png (or .pdf, .svg){also}") from None


def _show(made, args, name: str, feature_names=None) -> int:
    """Write the figure (or, for --out x.csv / x.npy, the decoded values), then print its path, its
    warnings and its numbers."""
    from vaekit.data.rows import save_rows, writes_rows
    from vaekit.figures.plots import save_figure
    from vaekit.training.run import figure_path

    for warning in made.warnings:
        print(f"vaekit: warning: {warning}", file=sys.stderr)
    if args.out and writes_rows(args.out):
        path = save_rows(args.out, made.values, feature_names)
        print(f"wrote {path}  ({len(made.values)} rows, original units)")
        print(made.summary)
        return 0
    path = save_figure(made.figure, args.out or figure_path(args.run, name))
    print(f"wrote {path}")
    print(made.summary)
    return 0


def _show_bytes(made, args, name: str) -> int:
    """Write a figure that is ready-made bytes (an animated GIF), then print its path and its numbers."""
    path = Path(args.out or Path(args.run) / "figures" / name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(made.figure)
    print(f"wrote {path}")
    print(made.summary)
    return 0


# -- commands: each is options -> one vaekit.figures.images function -> a PNG ------------------------------
def _reconstruct(args) -> int:
    from vaekit.figures import images as figures

    model, dataset = _open(args)
    return _show(figures.reconstruction(model, dataset, n=args.n, split=args.split), args, "reconstruct",
                 dataset.feature_names)


def _sample(args) -> int:
    from vaekit.figures import images as figures

    # Sampling the prior needs no data; the mixture is fitted to the encoded training set.
    # A table's samples are shown beside its test rows, so table runs load their data too.
    model, dataset = _open(args) if args.sampler == "gmm" else (_model(args), None)
    if dataset is None and model.feature_names is not None:
        model, dataset = _open(args)
    label = _label_of(model, args.label, args.class_name)
    made = figures.samples(model, dataset, n=args.n, sampler=args.sampler, temperature=args.temperature,
                           seed=args.seed, components=args.components, cols=args.cols, condition=label)
    return _show(made, args, "sample", model.feature_names)


def _label_of(model, label: int | None, class_name: str | None) -> int | None:
    """The class index asked for by --label / --class (conditional models only), or None."""
    from vaekit.errors import ConfigError

    if label is None and class_name is None:
        return None
    if not model.conditional:
        raise ConfigError(f"--label and --class need a conditional model (--model cvae), not {model.config.model}")
    if label is not None and class_name is not None:
        raise ConfigError("give --label or --class, not both")
    if class_name is not None:
        names = list(model.class_names or [])
        if class_name not in names:
            raise ConfigError(f"unknown class {class_name!r}: this run's classes are {', '.join(names)}")
        return names.index(class_name)
    if not 0 <= label < model.num_classes:
        raise ConfigError(f"--label {label} is out of range: this model knows classes 0 to {model.num_classes - 1}")
    return label


def _decode(args) -> int:
    from vaekit.errors import ConfigError
    from vaekit.figures import images as figures

    try:
        codes = [[float(v) for v in text.split(",") if v.strip()] for text in args.z]
    except ValueError:
        raise ConfigError(f"--z takes comma-separated numbers such as 0.5,-1 (got {' '.join(args.z)!r})") from None
    model, dataset = _open(args)
    return _show(figures.decoded(model, dataset, codes), args, "decode", dataset.feature_names)


def _interpolate(args) -> int:
    from vaekit.figures import images as figures

    model, dataset = _open(args)
    if args.grid:
        side = 8 if args.steps is None else args.steps
        return _show(figures.interpolation_grid(model, dataset, corners=args.grid, steps=side), args, "interpolate-grid")
    steps = 10 if args.steps is None else args.steps
    made = figures.interpolation(model, dataset, start=args.start, end=args.end, steps=steps, method=args.method)
    return _show(made, args, "interpolate")


def _traverse(args) -> int:
    from vaekit.figures import images as figures

    if args.dataset is None and _trained_from_arrays(args.run):   # no data on disk: around the prior's mean
        made = figures.prior_traversal(_model(args), span=args.span, steps=args.steps, max_dims=args.max_dims)
        return _show(made, args, "traverse")
    model, dataset = _open(args)
    if args.gif:
        made = figures.traversal_animation(model, dataset, index=args.index, span=args.span, steps=args.steps,
                                           max_dims=args.max_dims, frame_ms=args.frame_ms)
        return _show_bytes(made, args, "traverse.gif")
    made = figures.traversal(model, dataset, index=args.index, span=args.span, steps=args.steps, max_dims=args.max_dims)
    return _show(made, args, "traverse")


def _trained_from_arrays(run) -> bool:
    from vaekit.training.data_location import ARRAY_DATASET
    from vaekit.training.run import open_run

    return open_run(run).config.dataset == ARRAY_DATASET


def _latent_map(args) -> int:
    from vaekit.figures import images as figures

    model, dataset = _open(args)
    made = figures.latent_map(model, dataset, method=args.method, max_points=args.max_points,
                              grid_size=args.grid_size, seed=args.seed)
    return _show(made, args, "latent-map")


def _arithmetic(args) -> int:
    from vaekit import latent
    from vaekit.figures import images as figures

    alphas = latent.parse_alphas(args.alpha)
    model, dataset = _open(args)
    made = figures.arithmetic(model, dataset, plus=args.plus, minus=args.minus, alphas=alphas, rows=args.rows,
                              attributes=args.attributes, max_per_group=args.max_per_group, seed=args.seed)
    return _show(made, args, "arithmetic")


def _denoise(args) -> int:
    from vaekit.figures import images as figures

    model, dataset = _open(args)
    made = figures.denoising(model, dataset, noise=args.noise, kind=args.kind, n=args.n, measure=args.measure, seed=args.seed)
    return _show(made, args, "denoise")
