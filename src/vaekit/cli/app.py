"""The ``vaekit`` command: a thin skin over the library.

Each command parses its options, calls one library function and renders the result. Nothing here
imports torch at module level, so ``vaekit --help`` answers at once.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vaekit import __version__
from vaekit.errors import VaekitError
from vaekit.models.options import OPTIONS as MODEL_OPTIONS

log = logging.getLogger("vaekit.cli")

# Further command groups: each module has register(subparsers) and, like this one, imports torch
# only inside its handlers.
COMMAND_MODULES: list[str] = ["vaekit.cli.latent", "vaekit.cli.report", "vaekit.cli.serve", "vaekit.cli.models",
                                 "vaekit.cli.bench"]

# Options of `vaekit train` that map one-to-one onto TrainConfig fields: (flag, type, help).
TRAIN_OPTIONS = [
    ("--dataset", str, "dataset name (fashion-mnist, mnist, digits, dsprites, dsprites-small) or a path to .npy/.npz or an image folder"),
    ("--data-dir", str, "folder holding the dataset files (searched first)"),
    ("--image-size", int, "side length image folders are resized to"),
    ("--val-fraction", float, "share of the training split held out for validation (default 0.1)"),
    ("--model", str, "a registered model, listed by `vaekit models` (default vae)"),
    ("--arch", str, "linear | mlp | conv (default mlp)"),
    ("--hidden", str, "MLP widths, comma-separated (default 512)"),
    ("--channels", str, "conv channels per stage, comma-separated (default 32,64,128,256)"),
    ("--latent-dim", int, "latent dimensions (default 16)"),
    ("--likelihood", str, "bernoulli | continuous-bernoulli | gaussian | discretized-logistic | mse "
                          "(default bernoulli for VAEs, mse for the AE)"),
    ("--prior", str, "standard | vamp (a VampPrior: --pseudo-inputs learned inputs; for the VAEs, IWAE and "
                     "the HVAE's top level) (default: the model's own, N(0, I) but for --model vamp)"),
    ("--binarize", str, "for bernoulli: none | static | dynamic (default dynamic)"),
    ("--sigma", str, "for gaussian: a positive number or 'learned' (default learned)"),
    ("--beta", float, "KL weight (default 1 for vae, 4 for beta-vae)"),
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
    ("--precision", str, "fp32 | bf16 (bfloat16 autocast of the training forward pass; default fp32)"),
    ("--compile", str, "off | default | reduce-overhead (torch.compile the networks; CUDA graphs on a GPU; default off)"),
]
# Model-specific options (iwae's --iw-k, dip-vae's --lambda-od, ...), from vaekit.models.options.
TRAIN_OPTIONS += [("--" + name.replace("_", "-"), kind, text) for name, (kind, text) in MODEL_OPTIONS.items()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaekit", description="Train and evaluate autoencoders and VAEs.")
    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train an AE, VAE or beta-VAE", description="Train a model into a run folder.")
    train.add_argument("--config", help="TOML or YAML file of options (command-line options override it)")
    for flag, kind, text in TRAIN_OPTIONS:
        train.add_argument(flag, type=kind, help=text)
    train.add_argument("--out", help="run folder to create (default runs/<dataset>-<model>)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint (with --epochs N to extend it)")
    train.set_defaults(handler=_train)

    evaluate = commands.add_parser("evaluate", help="evaluate a run and write RUN/eval.json")
    evaluate.add_argument("run", metavar="RUN")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"])
    evaluate.add_argument("--iw-samples", type=int, default=1000, help="importance samples K for the NLL (default 1000)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--data-dir")
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
    return parser


class _LowercaseLevel(logging.Formatter):
    """'vaekit: warning: ...', the same form as the CLI's own warnings and errors."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted; a run can be continued with `vaekit train --resume RUN`", file=sys.stderr)
        return 130


# -- train ---------------------------------------------------------------------------------------
def _train(args) -> int:
    from vaekit.cli import render

    given = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in TRAIN_OPTIONS}
    if args.resume:
        return _resume(args, given)
    from vaekit.training.config import build_config
    from vaekit.training.run import check_run_dir, config_dataset
    from vaekit.training.trainer import train

    launched = _launch()
    config = build_config(args.config, given)
    out = args.out or f"runs/{_slug(config.dataset)}-{config.model}"
    check_run_dir(out, overwrite=args.overwrite)  # before loading data: fail fast, touch nothing
    dataset = config_dataset(config, progress=render.DownloadBar() if launched.is_main else None)
    if launched.is_main:
        render.dataset_warnings(dataset)
        print(render.train_header(config, dataset, out))
        if launched.distributed:
            print(render.launch_line(config, launched.world_size))
    with render.TrainBar() as bar:
        result = train(config, dataset, out, overwrite=args.overwrite, callbacks=[bar] if launched.is_main else [])
    if launched.is_main:
        print(render.train_summary(result))
    return 0


def _launch():
    """Who this process is under torchrun; ranks other than 0 train silently (errors still show)."""
    from vaekit.training.distributed import launch

    launched = launch()
    if not launched.is_main:
        logging.getLogger().setLevel(logging.ERROR)
    return launched


def _resume(args, given) -> int:
    from vaekit.cli import render
    from vaekit.errors import ConfigError
    from vaekit.training.run import config_dataset
    from vaekit.training.trainer import resume

    extra = [k for k, v in given.items() if v is not None and k not in ("epochs", "data_dir", "device", "workers")]
    if extra or args.config or args.out:
        names = ", ".join("--" + k.replace("_", "-") for k in extra) or "--config/--out"
        raise ConfigError(f"--resume continues a run with its own settings; only --epochs, --data-dir, --device and --workers may be given (not {names})")

    def loader(config):
        if given["data_dir"]:
            config.data_dir = given["data_dir"]
        if given["device"]:
            config.device = given["device"]
        if given["workers"] is not None:
            config.workers = given["workers"]
        return config_dataset(config, progress=render.DownloadBar() if launched.is_main else None)

    launched = _launch()
    if launched.is_main and launched.distributed:
        from vaekit.training.run import open_run

        print(render.launch_line(open_run(args.resume).config, launched.world_size))
    with render.TrainBar() as bar:
        result = resume(args.resume, loader, epochs=given["epochs"], callbacks=[bar] if launched.is_main else [])
    if launched.is_main:
        print(render.train_summary(result))
    return 0


def _slug(name: str) -> str:
    from pathlib import Path

    return Path(name).stem.replace(" ", "-") or "data"


# -- evaluate and datasets -----------------------------------------------------------------------
def _evaluate(args) -> int:
    from vaekit.cli import render
    from vaekit.evaluation.evaluate import evaluate

    with render.CountBar("evaluating", unit="img") as bar:
        result = evaluate(args.run, split=args.split, iw_samples=args.iw_samples, seed=args.seed,
                          data_dir=args.data_dir, device=args.device, progress=bar,
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
