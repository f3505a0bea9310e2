"""Report commands: report (one run), compare (runs side by side), sweep (train over beta, then compare)."""
from __future__ import annotations

from pathlib import Path


def register(commands) -> None:
    from vaekit.cli.app import TRAIN_OPTIONS

    p = commands.add_parser("report", help="one self-contained HTML page about a run",
                            description="Write an offline HTML report of a run (evaluating it first if needed).")
    p.add_argument("run", metavar="RUN")
    p.add_argument("--out", metavar="FILE", help="HTML file to write (default RUN/report.html)")
    p.add_argument("--dataset", metavar="PATH", help="the run's data, if they moved (or it was trained from arrays)")
    _common(p)
    p.set_defaults(handler=_report)

    p = commands.add_parser("compare", help="runs side by side, with the rate-distortion plane",
                            description="Write one HTML page comparing runs (each evaluated first if needed).")
    p.add_argument("runs", metavar="RUN", nargs="+")
    p.add_argument("--out", metavar="FILE", default="compare.html", help="HTML file to write (default compare.html)")
    _common(p)
    p.set_defaults(handler=_compare)

    p = commands.add_parser("sweep", help="train one run per beta value, evaluate them, compare them",
                            description="Train a beta-VAE (or the --model given, if it has a --beta) per value of "
                                        "--beta into OUT/beta-<value>, evaluate each, and write OUT/compare.html. "
                                        "Other options are those of vaekit train.")
    p.add_argument("--beta", required=True, dest="betas", metavar="B[,B...]", help="comma-separated beta values, e.g. 0.5,1,2,4")
    p.add_argument("--config", help="TOML or YAML file of training options")
    for flag, kind, text in TRAIN_OPTIONS:   # the models' own flags join them when the command is sweep (cli.app)
        if flag not in ("--device", "--seed", "--data-dir"):
            p.add_argument(flag, type=kind, help=text)
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the runs and compare.html")
    p.add_argument("--overwrite", action="store_true", help="replace runs already in DIR")
    _common(p)
    p.set_defaults(handler=_sweep)


def _common(p) -> None:
    p.add_argument("--iw-samples", type=int, default=1000, help="K for runs that still need evaluating (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--device", default="auto")


def _write_page(text: str, path: Path) -> int:
    from vaekit.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    print(f"wrote {path}  ({len(text) / 1e6:.1f} MB, self-contained: open it in any browser, offline)")
    return 0


def _device(name: str) -> str:
    from vaekit.training.device import resolve_device

    return str(resolve_device(name))


def _report(args) -> int:
    from contextlib import nullcontext

    from vaekit.cli import render
    from vaekit.figures.report import build_report
    from vaekit.training.run import open_for_writing

    out = Path(args.out) if args.out else Path(args.run) / "report.html"
    inside = out.resolve().is_relative_to(Path(args.run).resolve())
    with open_for_writing(args.run) if inside else nullcontext():   # a page beside the run's files: lock the run
        with render.CountBar("evaluating", unit="img") as bar:   # only when the run has no eval.json yet
            page = build_report(args.run, iw_samples=args.iw_samples, data_dir=args.data_dir, device=_device(args.device),
                                seed=args.seed, dataset=args.dataset, progress=bar)
        return _write_page(page, out)


def _compare(args) -> int:
    from vaekit.cli import render
    from vaekit.figures.report import build_comparison

    with render.CountBar("evaluating", unit="img") as bar:   # the runs without eval.json, one after another
        page = build_comparison(args.runs, iw_samples=args.iw_samples, data_dir=args.data_dir,
                                device=_device(args.device), seed=args.seed, progress=bar)
    _print_comparison(args.runs)
    return _write_page(page, Path(args.out))


def _print_comparison(runs) -> None:
    """The page's table on the terminal too, with its warnings on stderr."""
    import sys

    from vaekit.cli import render
    from vaekit.figures.report import comparison_for

    comparison = comparison_for(runs)
    for text in comparison.warnings:
        print(f"vaekit: warning: {text}", file=sys.stderr)
    print(render.comparison_table(comparison))


def _sweep(args) -> int:
    from vaekit.cli import render
    from vaekit.cli.app import config_values
    from vaekit.models import option_users
    from vaekit.training.config import build_config
    from vaekit.errors import ConfigError
    from vaekit.evaluation.evaluate import evaluate
    from vaekit.figures.report import build_comparison
    from vaekit.training.run import check_run_dir, config_dataset
    from vaekit.training.trainer import train

    try:
        betas = [float(b) for b in args.betas.split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"--beta takes comma-separated numbers, e.g. 0.5,1,2,4 (not {args.betas!r})") from None
    if not betas:
        raise ConfigError("--beta needs at least one value")
    given = config_values(args)
    given.update(device=args.device, seed=args.seed, data_dir=args.data_dir, model=args.model or "beta-vae")
    weighted = option_users().get("beta", [])
    if given["model"] not in weighted:
        raise ConfigError(f"a beta sweep needs a VAE with a KL weight --beta, which --model {given['model']} does not "
                          f"have (models with one: {', '.join(weighted)})")
    configs = [build_config(args.config, {**given, "beta": beta}) for beta in betas]
    out = Path(args.out)
    folders = [out / f"beta-{beta:g}" for beta in betas]
    for folder in folders:  # refuse before training anything
        check_run_dir(folder, overwrite=args.overwrite)
    dataset = config_dataset(configs[0], progress=render.DownloadBar())
    for config, folder in zip(configs, folders):
        print(render.train_header(config, dataset, folder))
        with render.TrainBar() as bar:
            train(config, dataset, folder, overwrite=args.overwrite, callbacks=[bar])
        result = evaluate(folder, iw_samples=args.iw_samples, seed=args.seed, data_dir=args.data_dir, device=args.device)
        print(f"beta {config.beta:g}: recon {result['recon']:.2f}  KL {result['kl']:.2f}  -ELBO {result['nelbo']:.2f}  "
              f"NLL {result['nll']:.2f} nats")
    page = build_comparison(folders, iw_samples=args.iw_samples, data_dir=args.data_dir, device=_device(args.device), seed=args.seed)
    _print_comparison(folders)
    return _write_page(page, out / "compare.html")
