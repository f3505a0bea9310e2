"""The ``vaekit`` command: a thin skin over the library.

Each command parses its options, calls one library function and renders the result. Nothing here
imports torch at module level, so ``vaekit --help`` answers at once. The models' own flags
(``--iw-k``, ``--lambda-od``, ...) come from their options classes, which live beside the models and
so import torch: they are added only when the command is one that takes them (``train``, ``sweep``).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections import Counter

from vaekit import __version__
from vaekit.errors import VaekitError
from vaekit.models.options import flag

log = logging.getLogger("vaekit.cli")

# Further command groups: each module has register(subparsers) and, like this one, imports torch
# only inside its handlers.
COMMAND_MODULES: list[str] = ["vaekit.cli.latent", "vaekit.cli.report", "vaekit.cli.serve", "vaekit.cli.models",
                                 "vaekit.cli.bench", "vaekit.cli.recipes", "vaekit.cli.export"]

# Options of `vaekit train` that map one-to-one onto the TrainConfig fields every model shares: (flag, type, help).
TRAIN_OPTIONS = [
    ("--dataset", str, "dataset name (fashion-mnist, mnist, digits, dsprites, dsprites-small, breast-cancer, wine) or a path to "
                       ".npy/.npz, a .csv/.tsv/.parquet table or an image folder"),
    ("--data-dir", str, "folder holding the dataset files (searched first)"),
    ("--image-size", int, "side length image folders are resized to"),
    ("--val-fraction", float, "share of the training split held out for validation (default 0.1)"),
    ("--val-size", int, "instead of --val-fraction: this many training samples held out for validation (e.g. 10000 of Fashion-MNIST's 60,000)"),
    ("--model", str, "a registered model, listed by `vaekit models` (default vae)"),
    ("--arch", str, "linear | mlp | gated | conv (default mlp; gated: MLP of gated dense units, Tomczak & Welling 2018)"),
    ("--hidden", str, "MLP (and gated) widths, comma-separated (default 512)"),
    ("--channels", str, "conv channels per stage, comma-separated (default 32,64,128,256)"),
    ("--latent-dim", int, "latent dimensions (default 16)"),
    ("--likelihood", str, "bernoulli | continuous-bernoulli | gaussian | discretized-logistic | mse "
                          "(default bernoulli, mse for models with a deterministic encoder)"),
    ("--prior", str, "standard | vamp: p(z), for the models whose maths allows it (`vaekit models NAME` says which) "
                     "(default: the model's own, N(0, I) but for --model vamp)"),
    ("--pseudo-inputs", int, "--prior vamp: learned pseudo-inputs, the VampPrior's mixture components (default 500)"),
    ("--binarize", str, "for bernoulli: none | static | dynamic (default dynamic)"),
    ("--sigma", str, "for gaussian: learned (one scalar) | learned-per-feature | a positive number (default learned; "
                     "a learned sigma starts at the data's PCA residual)"),
    ("--epochs", int, "training epochs (default 10)"),
    ("--batch-size", int, "batch size (default 128)"),
    ("--lr", float, "Adam learning rate (default 1e-3)"),
    ("--lr-schedule", str, "constant | cosine (default constant)"),
    ("--kl-warmup", float, "epochs over which the KL weight rises from 0 to beta (default 0)"),
    ("--grad-clip", float, "clip the global gradient norm to this value"),
    ("--patience", int, "stop early after this many epochs without a better validation loss"),
    ("--seed", int, "random seed (default 0)"),
    ("--device", str, "auto | cpu | cuda | mps (default auto: CUDA, then MPS, then CPU)"),
    ("--stream", str, "image folders: auto | on | off (default auto: stream from disk when the decoded folder exceeds --max-memory)"),
    ("--cache", str, "image folders: none | memmap (decode once into a memory-mapped uint8 cache; default none)"),
    ("--max-memory", float, "GiB the decoded data may take in memory (default: half the RAM)"),
    ("--workers", int, "DataLoader processes reading streamed batches (default: CPUs less one, 1 to 4)"),
    ("--columns", str, "tables: the feature columns, comma-separated (default: every numeric column but the label)"),
    ("--label-column", str, "tables: the column holding the labels (may be strings: they become the class names)"),
    ("--missing", str, "tables: error | drop (rows with a missing value; default error)"),
    ("--standardize", str, "real-valued data: auto | on | off (default auto: tables, and arrays with values outside [0, 1], "
                           "are standardised on the training split and reported in their original units)"),
    ("--precision", str, "fp32 | bf16 | auto (bfloat16 autocast of the training forward pass; auto: bf16 where the "
                         "device has bfloat16 dot products, else fp32; default fp32)"),
    ("--compile", str, "off | default | reduce-overhead (torch.compile the networks; CUDA graphs on a GPU; default off)"),
    ("--log", str, "record the run in tensorboard and/or mlflow, comma-separated (default none; RUN/tensorboard, "
                   "RUN/mlruns; needs pip install 'vaekit[tracking]')"),
    ("--mlflow-uri", str, "--log mlflow: the MLflow store, a folder or file: URI (default RUN/mlruns)"),
]
# The commands that take the models' own flags, each with its own flags of the same name (sweep's
# --beta takes a list).
MODEL_OPTION_COMMANDS = {"train": (), "sweep": ("--beta",)}


def model_option_flags() -> list[tuple[str, type, str]]:
    """The registered models' own options as (flag, type, help), from their declarations (this
    imports the models, and torch). An option several models declare is one flag; its help names
    them, with their defaults."""
    from vaekit.models import MODELS, model_options

    declared: dict[str, list] = {}
    for model in MODELS:
        for info in model_options(model):
            declared.setdefault(info.name, []).append((model, info))
    return [(flag(name), uses[0][1].kind, _option_help(uses)) for name, uses in declared.items()]


def _option_help(uses) -> str:
    """E.g. 'info-vae, wae-mmd: rbf or imq (default rbf; imq for wae-mmd)'; one part per help text."""
    by_text: dict[str, list[tuple[str, str]]] = {}
    for model, info in uses:
        by_text.setdefault(info.help, []).append((model, info.default_text))
    parts = []
    for text, defaults in by_text.items():
        common = Counter(default for _, default in defaults).most_common(1)[0][0]
        others = "".join(f"; {default} for {model}" for model, default in defaults if default != common)
        parts.append(f"{', '.join(model for model, _ in defaults)}: {text} (default {common}{others})")
    return "; ".join(parts)


def add_model_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    group = parser.add_argument_group("options of the models (each for the models named; see `vaekit models NAME`)")
    for option, kind, text in model_option_flags():
        if option not in skip:
            group.add_argument(option, type=kind, help=text)


def config_values(args) -> dict:
    """What the command line gave for each config key (None: not given), the models' options included."""
    from vaekit.models import option_users

    keys = [option[2:].replace("-", "_") for option, _, _ in TRAIN_OPTIONS] + list(option_users())
    return {key: getattr(args, key, None) for key in keys}


def build_parser(*, model_options: bool = True) -> argparse.ArgumentParser:
    """The ``vaekit`` parser; with ``model_options`` False, without the models' own flags (and torch)."""
    parser = argparse.ArgumentParser(prog="vaekit", description="Train and evaluate autoencoders and VAEs.")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train an AE, VAE or beta-VAE", description="Train a model into a run folder.")
    train.add_argument("--config", help="TOML or YAML file of options (command-line options override it)")
    for option, kind, text in TRAIN_OPTIONS:
        train.add_argument(option, type=kind, help=text)
    train.add_argument("--out", help="run folder to create (default runs/<dataset>-<model>)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint (with --epochs N to extend it; "
                                                        "--dataset PATH or --data-dir if its data moved)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a run and write RUN/eval.json")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--iw-samples", type=int, default=1000, help="importance samples K for the NLL (default 1000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--data-dir", help="folder holding the dataset files (also searched for data that moved)")
    evaluate.add_argument("--dataset", metavar="PATH", help="the run's data, if they moved (or it was trained from arrays)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--no-regularity", dest="regularity", action="store_false",
                          help="skip continuity, completeness and fd (and the one-time classifier training they need)")
    evaluate.add_argument("--regularity-samples", type=int, default=2000, metavar="N",
                          help="prior samples judged for completeness and fd (default 2000)")
    evaluate.add_argument("--disentanglement", action="store_true",
                          help="also the BetaVAE, FactorVAE, MIG, DCI and SAP scores (datasets with known factors: dsprites)")
    evaluate.add_argument("--disentanglement-points", type=int, default=10_000, metavar="N",
                          help="training points per disentanglement score, half as many for evaluation (default 10000)")
    evaluate.set_defaults(handler=_evaluate)

    datasets = commands.add_parser("datasets", help="list datasets and where they are found")
    datasets.add_argument("--data-dir")
    datasets.set_defaults(handler=_datasets)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    if model_options:
        for command, own in MODEL_OPTION_COMMANDS.items():
            add_model_options(commands.choices[command], skip=own)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command named on a command line (the first word that is not an option)."""
    return next((str(word) for word in argv if not str(word).startswith("-")), None)


class _LowercaseLevel(logging.Formatter):
    """'vaekit: warning: ...', the same form as the CLI's own warnings and errors."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(model_options=_command(argv) in MODEL_OPTION_COMMANDS)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    handler = logging.StreamHandler()
    handler.setFormatter(_LowercaseLevel("vaekit: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    try:
        return args.handler(args) or 0
    except VaekitError as exc:
        print(f"vaekit: error: {exc}", file=sys.stderr)
        _tell_torchrun(f"vaekit: error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted; a run can be continued with `vaekit train --resume RUN`", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`vaekit models | head`): stop quietly, with no traceback at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _tell_torchrun(message: str) -> None:
    """Under torchrun, leave the error where its failure summary looks (the file TORCHELASTIC_ERROR_FILE
    names), so the summary's root cause is this line rather than a pointer to its documentation."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if not path:
        return
    import json
    import time

    data = {"message": {"message": message, "extraInfo": {"py_callstack": message, "timestamp": str(int(time.time()))}}}
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f)
    except OSError:
        pass


# -- train ---------------------------------------------------------------------------------------
def _train(args) -> int:
    from vaekit.cli import render

    given = config_values(args)
    if args.resume:
        return _resume(args, given)
    from vaekit.training.config import build_config
    from vaekit.training.run import check_run_dir, config_dataset
    from vaekit.training.tracking import require
    from vaekit.training.trainer import check_distributable, train

    launched = _launch()
    with _said_by_rank_0(launched):
        config = build_config(args.config, given)
        if launched.distributed:
            check_distributable(config)
        out = args.out or f"runs/{_slug(config.dataset)}-{config.model}"
        check_run_dir(out, overwrite=args.overwrite)  # before loading data: fail fast, touch nothing
        require(config.log)
        dataset = config_dataset(config, progress=render.DownloadBar() if launched.is_main else None)
    if launched.is_main:
        render.dataset_warnings(dataset)
        render.budget_warnings(config, dataset)
        render.precision_hint(args.config, config)
        print(render.train_header(config, dataset, out))
        if launched.distributed:
            print(render.launch_line(config, launched.world_size))
    with render.TrainBar() as bar:
        result = train(config, dataset, out, overwrite=args.overwrite, callbacks=[bar] if launched.is_main else [])
    if launched.is_main:
        print(render.train_summary(result))
        _print_tracking(out)
    return 0


def _print_tracking(run) -> None:
    """Where --log wrote, and how to look (nothing without --log)."""
    from vaekit.training.tracking import destinations

    for name, where in destinations(run).items():
        print(f"{name}: {where}" + (f"  (view: tensorboard --logdir {where})" if name == "tensorboard" else ""))


def _launch():
    """Who this process is under torchrun; ranks other than 0 train silently (errors still show)."""
    from vaekit.training.distributed import launch

    launched = launch()
    if not launched.is_main:
        logging.getLogger().setLevel(logging.ERROR)
    return launched


@contextlib.contextmanager
def _said_by_rank_0(launched):
    """Checks every rank makes alike before training (the config, the run folder, the data): under
    torchrun only rank 0 reports their error, and the other ranks exit with the same status, silently."""
    try:
        yield
    except VaekitError:
        if launched.is_main:
            raise
        raise SystemExit(2) from None


def _resume(args, given) -> int:
    from vaekit.cli import render
    from vaekit.errors import ConfigError
    from vaekit.training.config import log_backends
    from vaekit.training.data_location import find_data
    from vaekit.training.run import config_dataset, open_run
    from vaekit.training.tracking import require
    from vaekit.training.trainer import resume

    extra = [k for k, v in given.items() if v is not None and k not in RESUME_OPTIONS]
    if extra or args.config or args.out:
        names = ", ".join("--" + k.replace("_", "-") for k in extra) or "--config/--out"
        raise ConfigError("--resume continues a run with its own settings; only --epochs, --dataset (where its data "
                          f"are now), --data-dir, --device, --workers, --log and --mlflow-uri may be given (not {names})")

    def loader(config):
        if given["data_dir"]:
            config.data_dir = given["data_dir"]
        if given["device"]:
            config.device = given["device"]
        if given["workers"] is not None:
            config.workers = given["workers"]
        config.dataset = find_data(run.path, config.dataset, run.info["data"], dataset=given["dataset"],
                                   data_dir=given["data_dir"])
        if given["log"] is not None:           # start (or stop) tracking a run from here on
            config.log = ",".join(log_backends(given["log"])) or "none"
        if given["mlflow_uri"] is not None:
            config.mlflow_uri = given["mlflow_uri"]
        config.validate()
        require(config.log)
        return config_dataset(config, progress=render.DownloadBar() if launched.is_main else None)

    launched = _launch()
    with _said_by_rank_0(launched):
        run = open_run(args.resume)
    if launched.is_main and launched.distributed:
        print(render.launch_line(run.config, launched.world_size))
    with render.TrainBar() as bar:
        result = resume(args.resume, loader, epochs=given["epochs"], callbacks=[bar] if launched.is_main else [])
    if launched.is_main:
        print(render.train_summary(result))
        _print_tracking(args.resume)
    return 0


# What `vaekit train --resume RUN` may change: where the data are and how the run is observed.
RESUME_OPTIONS = ("epochs", "data_dir", "dataset", "device", "workers", "log", "mlflow_uri")


def _slug(name: str) -> str:
    from pathlib import Path

    return Path(name).stem.replace(" ", "-") or "data"


# -- evaluate and datasets -----------------------------------------------------------------------
def _evaluate(args) -> int:
    from vaekit.cli import render
    from vaekit.evaluation.evaluate import evaluate

    with render.CountBar("evaluating", unit="img") as bar:
        result = evaluate(args.run, split=args.split, iw_samples=args.iw_samples, seed=args.seed,
                          data_dir=args.data_dir, dataset=args.dataset, device=args.device, progress=bar,
                          regularity=args.regularity, regularity_samples=args.regularity_samples,
                          disentanglement=args.disentanglement, disentanglement_points=args.disentanglement_points)
    print(render.eval_table(result))
    print(f"\nwritten to {result['run']}/eval.json")
    return 0


def _datasets(args) -> int:
    from vaekit.cli import render
    from vaekit.data import list_datasets

    print(render.datasets_table(list_datasets(args.data_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
