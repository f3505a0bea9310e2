"""What tracking and ONNX export cost, on scikit-learn's digits (bundled, so this runs offline).

    python -m vaekit.bench.ecosystem [--repeats 3]

1. Tracking: the time the trackers themselves take (``--log`` tensorboard, mlflow, both), timed on
   their callbacks rather than as a difference of training times, which this shared machine makes
   too noisy to read (:func:`tracking_cost`).
2. Export: every registered model (MLP, latent 3, untrained: the weights do not change the graph) and
   the four architectures with a VAE, through both of torch's exporters; the time of
   ``export_onnx`` (both graphs and the onnxruntime check) and the largest difference from vaekit.

Results go to benchmarks/results/ecosystem.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vaekit.bench.results import RESULTS

SETTINGS = ("none", "tensorboard", "mlflow", "tensorboard,mlflow")


def tracking_cost(repeats: int, steps: int = 1000, epochs: int = 20) -> dict:
    """The trackers' own time, measured on their callbacks, away from training's noise: a Trainer on
    digits (MLP VAE, hidden 256, latent 8) with a run folder; ``on_train_start``, then ``steps``
    ``on_batch`` calls, ``epochs`` ``on_epoch_end`` calls (a real metrics record each), one set of
    image grids, and ``on_train_end`` (hyperparameters), each timed; medians over ``repeats``."""
    from vaekit.data import load_dataset
    from vaekit.training import tracking
    from vaekit.training.config import TrainConfig
    from vaekit.training.run import describe_data, prepare_run_dir, write_run_info
    from vaekit.training.trainer import Trainer

    dataset = load_dataset("digits")
    results = {}
    every, tracking.IMAGES_EVERY = tracking.IMAGES_EVERY, 10**9     # images are timed on their own
    with tempfile.TemporaryDirectory() as folder:
        for setting in SETTINGS[1:]:
            rows = []
            for repeat in range(repeats):
                run = Path(folder) / f"{setting.replace(',', '-')}-{repeat}"
                prepare_run_dir(run, overwrite=False)
                config = TrainConfig.from_dict({"dataset": "digits", "hidden": [256], "latent_dim": 8, "epochs": epochs,
                                                "batch_size": 64, "device": "cpu", "log": setting}).resolved()
                trainer = Trainer(config, dataset, run)
                write_run_info(run, config, describe_data(dataset), trainer.model, None)
                trackers = [cb for cb in trainer.callbacks if isinstance(cb, tracking.Tracker)]
                row = {}
                started = time.perf_counter()
                for cb in trackers:
                    cb.on_train_start(start_epoch=0, epochs=epochs, steps_per_epoch=steps // epochs)
                row["start_s"] = time.perf_counter() - started
                values = {"loss": 40.0, "recon": 38.0, "kl": 2.0}
                per_step, per_epoch = 0.0, 0.0
                for epoch in range(epochs):
                    started = time.perf_counter()
                    for _ in range(steps // epochs):
                        trainer.step += 1
                        for cb in trackers:
                            cb.on_batch(epoch=epoch, batch=1, steps_per_epoch=steps // epochs, values=values)
                    per_step += time.perf_counter() - started
                    record = {"epoch": epoch + 1, "step": trainer.step, "lr": 1e-3, "beta": 1.0, "train_loss": 40.0,
                              "train_recon": 38.0, "train_kl": 2.0, "seconds": 1.0, "images_per_s": 1e3,
                              "val_loss": 41.0, "val_recon": 39.0, "val_kl": 2.0, "best": True, "elapsed_s": epoch + 1.0}
                    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
                    started = time.perf_counter()
                    for cb in trackers:
                        cb.on_epoch_end(record)
                    per_epoch += time.perf_counter() - started
                trainer.epoch = epochs
                started = time.perf_counter()
                for cb in trackers:
                    cb._log_images(epochs, trainer.step)
                row["images_s"] = time.perf_counter() - started
                started = time.perf_counter()
                for cb in trackers:
                    cb.on_train_end(result=None)
                row["end_s"] = time.perf_counter() - started
                row["per_step_ms"] = 1000 * per_step / steps
                row["per_epoch_ms"] = 1000 * per_epoch / epochs
                rows.append(row)
            results[setting] = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
            results[setting]["repeats"] = rows
    tracking.IMAGES_EVERY = every
    return results


def export_cost() -> list[dict]:
    import torch

    from vaekit.data import load_dataset
    from vaekit.export.onnx import export_onnx, exporters
    from vaekit.models import MODELS, build_model
    from vaekit.training.config import TrainConfig

    dataset = load_dataset("digits")
    cases = [{"model": name} for name in MODELS] + [{"arch": arch} for arch in ("linear", "conv", "gated")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for exporter in exporters():
            for case in cases:
                extra = {"vq-vae": {"code_dim": 1}, "vamp": {"pseudo_inputs": 10}}.get(case.get("model"), {})
                values = {"dataset": "digits", "hidden": [32], "channels": [8, 16], "latent_dim": 3, **case, **extra}
                config = TrainConfig.from_dict(values).resolved()
                torch.manual_seed(0)
                model = build_model(config, dataset.sample_shape, class_names=dataset.class_names).eval()
                started = time.perf_counter()
                exported = export_onnx(model, Path(folder) / exporter, exporter=exporter)
                rows.append({"exporter": exporter, "model": config.model, "arch": config.arch,
                             "seconds": time.perf_counter() - started,
                             "max_difference": max(exported.max_difference.values())})
                print(json.dumps(rows[-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    results = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                           "threads": torch.get_num_threads(), "processor": platform.processor() or platform.machine()},
               "tracking": tracking_cost(args.repeats), "export": export_cost()}
    for setting, row in results["tracking"].items():
        print(f"--log {setting}: " + ", ".join(f"{key} {value:.3g}" for key, value in row.items() if key != "repeats"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ecosystem.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
