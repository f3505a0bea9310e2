"""The model family on one budget: every registered model on Fashion-MNIST, the disentangling ones on dSprites.

    python -m vaekit.bench.model_table [--part fashion|dsprites|all] [--models a,b,...] [--force]
                                               [--epochs N] [--dsprites-epochs N] [--points N] [--table]

Fashion-MNIST: each model in ``vaekit.models.MODELS`` with its registry defaults, MLP 784-512-10, Adam
1e-3, batch 128, seed 0, ``--epochs`` epochs (default 3), then ``evaluate_model`` on the 10,000 test
images: NLL with K = ``--iw-samples`` importance samples (or -ELBO / nothing where the model defines
none), MSE, active units, and the regularity measures (completeness and fd from 1,000 prior samples).

dSprites: vae, beta-vae, beta-tcvae, factor-vae, dip-vae and capacity-vae with their registry
defaults, MLP 4096-512-10 on ``dsprites-small`` (58,982 training images), ``--dsprites-epochs``
epochs (default 2), seed 0; the five disentanglement scores with ``--points`` training points
(default 2,000; half as many evaluation points) for the BetaVAE and FactorVAE scores and DCI, and
10,000 (Locatello et al.'s number) for MIG and SAP, which cost seconds.

Each (part, model) result is written to ``benchmarks/results/model_table-<part>-<model>.json`` as
soon as it is done; an existing file is skipped unless ``--force``, so an interrupted run resumes, and a
finished training run with the same config in ``runs/model-table/`` is reloaded instead of retrained.
``--table`` only prints the Markdown tables from the files present.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from vaekit.bench.results import RESULTS

RUNS = Path("runs") / "model-table"
DISENTANGLING = ["vae", "beta-vae", "beta-tcvae", "factor-vae", "dip-vae", "capacity-vae"]


def result_path(part: str, model: str) -> Path:
    return RESULTS / f"model_table-{part}-{model}.json"


def machine() -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}


def write(path: Path, record: dict) -> None:
    from vaekit.files import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


# Registry defaults everywhere, except where latent 10 needs another value: VQ-VAE's latent vector is
# cut into code vectors of code_dim values, so 10 = 5 codes of 2 (its default 4 does not divide 10).
OVERRIDES = {"vq-vae": {"code_dim": 2}}


def config_for(model: str, dataset: str, epochs: int):
    from vaekit.training.config import TrainConfig

    values = dict(dataset=dataset, model=model, arch="mlp", hidden=[512], latent_dim=10, epochs=epochs,
                  batch_size=128, lr=1e-3, seed=0, device="cpu", **OVERRIDES.get(model, {}))
    return TrainConfig.from_dict(values).resolved()


def train_or_reuse(config, dataset, run_dir: Path):
    """``(model, train_seconds, history)`` with the run's best weights (what ``vaekit evaluate`` uses).

    A finished run with the same config in ``run_dir`` is loaded instead of trained again.
    """
    import vaekit
    from vaekit.training.run import open_run
    from vaekit.training.trainer import train

    if (run_dir / "run.json").exists():
        try:
            run = open_run(run_dir)
            history = run.history()
            if run.config.to_dict() == config.to_dict() and len(history) == config.epochs:
                return vaekit.load(run_dir), sum(r["seconds"] for r in history), history
        except Exception:  # anything unreadable: train again
            pass
    started = time.perf_counter()
    trained = train(config, dataset, run_dir, overwrite=True)
    return vaekit.load(run_dir), time.perf_counter() - started, trained.history   # best weights, as evaluate uses


def run_fashion(models: list[str], args) -> None:
    from vaekit.data import load_dataset
    from vaekit.evaluation.evaluate import evaluate_model

    dataset = None
    for model in models:
        path = result_path("fashion", model)
        if path.exists() and not args.force:
            print(f"fashion {model}: kept {path.name}", file=sys.stderr)
            continue
        dataset = dataset or load_dataset("fashion-mnist")
        config = config_for(model, "fashion-mnist", args.epochs)
        network, train_seconds, history = train_or_reuse(config, dataset, RUNS / f"fashion-{model}")
        started = time.perf_counter()
        result = evaluate_model(network.eval(), dataset, iw_samples=args.iw_samples, seed=0,
                                regularity_samples=1000)
        write(path, {"part": "fashion", "model": model, "config": config.to_dict(), "train_seconds": train_seconds,
                     "eval_seconds": time.perf_counter() - started,
                     "final_val_loss": history[-1].get("val_loss"),
                     "eval": result.to_dict(), "machine": machine()})
        print(f"fashion {model}: {train_seconds:.0f} s training, written", file=sys.stderr)


def run_dsprites(models: list[str], args) -> None:
    from vaekit.data import load_dataset
    from vaekit.disentanglement import measure_disentanglement, model_representation

    dataset = None
    for model in models:
        path = result_path("dsprites", model)
        if path.exists() and not args.force:
            print(f"dsprites {model}: kept {path.name}", file=sys.stderr)
            continue
        dataset = dataset or load_dataset("dsprites-small")
        config = config_for(model, "dsprites-small", args.dsprites_epochs)
        network, train_seconds, history = train_or_reuse(config, dataset, RUNS / f"dsprites-{model}")
        network.eval()
        scores = measure_disentanglement(model_representation(network), dataset.ground_truth, seed=0,
                                         points=args.points, points_per_metric=CHEAP_METRICS)
        write(path, {"part": "dsprites", "model": model, "config": config.to_dict(), "train_seconds": train_seconds,
                     "final_val_loss": history[-1].get("val_loss"), "disentanglement": scores, "machine": machine()})
        print(f"dsprites {model}: {train_seconds:.0f} s training, {scores['seconds']['total']:.0f} s scores, written",
              file=sys.stderr)


# MIG and SAP cost a few seconds at Locatello et al.'s 10,000 points, so they always get them; the plug-in
# mutual information of MIG is badly biased with fewer (about (bins - 1)(values - 1) / 2n nats: 0.37 nats
# for the 40 orientations at n = 1,000).
CHEAP_METRICS = {"mig": 10_000, "sap": 10_000}


def upgrade_cheap_metrics() -> None:
    """Recompute MIG and SAP at 10,000 points in result files measured with fewer (same seed and stream)."""
    import vaekit
    from vaekit.data.dsprites import DSpritesFactors
    from vaekit.disentanglement import metric_rng, mig, model_representation, sap

    truth = DSpritesFactors()
    for file in sorted(RESULTS.glob("model_table-dsprites-*.json")):
        record = json.loads(file.read_text())
        scores = record["disentanglement"]
        sizes = scores["settings"].setdefault("points_per_metric", {m: scores["settings"]["points"]
                                                                     for m in ("beta_vae", "factor_vae", "mig", "dci", "sap")})
        if all(sizes[m] >= n for m, n in CHEAP_METRICS.items()):
            continue
        representation = model_representation(vaekit.load(RUNS / f"dsprites-{record['model']}"))
        seed = scores["settings"]["seed"]
        started = time.perf_counter()
        scores["details"]["mig"] = mig(representation, truth, rng=metric_rng(seed, "mig"), num_train=CHEAP_METRICS["mig"])
        scores["seconds"]["mig"] = time.perf_counter() - started
        started = time.perf_counter()
        scores["details"]["sap"] = sap(representation, truth, rng=metric_rng(seed, "sap"), num_train=CHEAP_METRICS["sap"],
                                       num_eval=CHEAP_METRICS["sap"] // 2)
        scores["seconds"]["sap"] = time.perf_counter() - started
        scores["mig"], scores["sap"] = scores["details"]["mig"]["score"], scores["details"]["sap"]["score"]
        sizes.update(CHEAP_METRICS)
        write(file, record)
        print(f"dsprites {record['model']}: MIG and SAP recomputed at {CHEAP_METRICS['mig']} points", file=sys.stderr)


def _f(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fashion_table() -> str:
    lines = ["| model | NLL (nats) | −ELBO (nats) | MSE | active units | completeness | fd | epochs | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for file in sorted(RESULTS.glob("model_table-fashion-*.json"), key=_registry_order):
        r = json.loads(file.read_text())
        e = r["eval"]
        active = "–" if e["active_units"] is None else f"{e['active_units']} of {e['latent_dim']}"
        lines.append(f"| {r['model']} | {_f(e['nll'], 1)} | {_f(e['nelbo'], 1)} | {_f(e['mse'], 4)} | {active} "
                     f"| {_f(e['completeness'], 3)} | {_f(e['fd'], 1)} | {r['config']['epochs']} "
                     f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


def dsprites_table() -> str:
    lines = ["| model | BetaVAE | FactorVAE | MIG | DCI disentanglement | DCI completeness | DCI informativeness "
             "| SAP | epochs | train s | scores s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for file in sorted(RESULTS.glob("model_table-dsprites-*.json"), key=_registry_order):
        r = json.loads(file.read_text())
        d = r["disentanglement"]
        lines.append(f"| {r['model']} | {_f(d['beta_vae'])} | {_f(d['factor_vae'])} | {_f(d['mig'])} "
                     f"| {_f(d['dci_disentanglement'])} | {_f(d['dci_completeness'])} | {_f(d['dci_informativeness'])} "
                     f"| {_f(d['sap'])} | {r['config']['epochs']} | {r['train_seconds']:.0f} "
                     f"| {d['seconds']['total']:.0f} |")
    return "\n".join(lines)


def _registry_order(file: Path) -> int:
    from vaekit.models import MODELS

    name = file.stem.split("-", 2)[2]
    names = list(MODELS)
    return names.index(name) if name in names else len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["fashion", "dsprites", "all"], default="all")
    parser.add_argument("--models", help="comma-separated model names (default: all that apply)")
    parser.add_argument("--epochs", type=int, default=3, help="Fashion-MNIST epochs (default 3)")
    parser.add_argument("--dsprites-epochs", type=int, default=2, help="dsprites-small epochs (default 2)")
    parser.add_argument("--iw-samples", type=int, default=100, help="importance samples for the NLL (default 100)")
    parser.add_argument("--points", type=int, default=2000, help="training points per disentanglement score")
    parser.add_argument("--force", action="store_true", help="redo models whose result file exists")
    parser.add_argument("--table", action="store_true", help="only print the tables from the result files")
    args = parser.parse_args()
    if not args.table:
        from vaekit.models import MODELS

        chosen = args.models.split(",") if args.models else None
        unknown = [m for m in chosen or [] if m not in MODELS]
        if unknown:
            parser.error(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
        if args.part in ("fashion", "all"):
            run_fashion(chosen or list(MODELS), args)
        if args.part in ("dsprites", "all"):
            run_dsprites([m for m in (chosen or DISENTANGLING) if m in DISENTANGLING or chosen], args)
            upgrade_cheap_metrics()
    print("Fashion-MNIST\n\n" + fashion_table() + "\n\ndSprites\n\n" + dsprites_table())


if __name__ == "__main__":
    main()
