"""Dimensionality reduction of tables: PCA, pPCA and factor analysis against an AE and a VAE.

    python -m vaekit.bench.tables [--latents 1,2,5] [--steps 4000] [--iw-samples 1000]

On scikit-learn's bundled ``breast-cancer`` (569 x 30) and ``wine`` (178 x 13) tables and on a
generated nonlinear table (a noisy 2-D manifold lifted into 10 features, 6,000 rows; ``spiral``),
each standardised on its training split, for each latent size it trains an MLP autoencoder (squared
error) and an MLP VAE (Gaussian likelihood, one learned sigma per feature), both 64-64, Adam 1e-3,
batch 32, for about ``--steps`` steps (the epochs follow from the table's size), seed 0. It reports
the test split's per-value MSE (standardised units) of PCA, the AE and the VAE, and the test NLL
per row (nats, original units) of pPCA, factor analysis and the VAE (K importance samples), with
the training times. Writes ``benchmarks/results/tables.json`` and ``docs/images/tables-benchmark.png``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from vaekit.bench.results import RESULTS
from vaekit.data import load_dataset
from vaekit.data.arrays import dataset_from_arrays
from vaekit.evaluation.evaluate import evaluate_model
from vaekit.training.config import TrainConfig
from vaekit.training.trainer import train

FIGURE = Path("docs/images/tables-benchmark.png")


def spiral_table(n: int = 6000, seed: int = 0) -> np.ndarray:
    """A 2-D manifold (an arm of a spiral, times a height) lifted nonlinearly into 10 features, plus noise."""
    rng = np.random.default_rng(seed)
    t, h = rng.uniform(1, 4 * np.pi / 1.5, n), rng.uniform(-1, 1, n)
    u, v = t * np.cos(t), t * np.sin(t)
    features = [u, v, h * 3, np.sin(u / 2), np.cos(v / 2), u * h, v * h, np.tanh(u / 3) * 4, (u ** 2 + v ** 2) / 10, h ** 2]
    x = np.stack(features, 1)
    return x + rng.normal(size=x.shape) * 0.05 * x.std(0)


def datasets() -> dict:
    return {"breast-cancer": load_dataset("breast-cancer"), "wine": load_dataset("wine"),
            "spiral": dataset_from_arrays(spiral_table(), name="spiral")}


def fit(dataset, model: str, latent: int, steps: int, iw_samples: int) -> dict:
    per_epoch = math.ceil(len(dataset.train) / 32)
    epochs = max(1, round(steps / per_epoch))
    options = {"likelihood": "gaussian", "sigma": "learned-per-feature"} if model == "vae" else {}
    config = TrainConfig(dataset="<array>", model=model, hidden=[64, 64], latent_dim=latent, epochs=epochs,
                         batch_size=32, lr=1e-3, seed=0, device="cpu", **options).resolved()
    started = time.perf_counter()
    trained = train(config, dataset, None).model
    seconds = time.perf_counter() - started
    result = evaluate_model(trained, dataset, iw_samples=iw_samples, regularity=False)
    return {"epochs": epochs, "train_seconds": seconds, **{k: result[k] for k in
            ("mse", "pca_mse", "nll", "nelbo", "ppca_nll", "fa_nll", "active_units", "log_jacobian")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latents", default="1,2,5")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--iw-samples", type=int, default=1000)
    args = parser.parse_args()
    rows = []
    for name, dataset in datasets().items():
        for latent in (int(v) for v in args.latents.split(",")):
            ae, vae = fit(dataset, "ae", latent, args.steps, args.iw_samples), fit(dataset, "vae", latent, args.steps, args.iw_samples)
            rows.append({"dataset": name, "features": dataset.sample_shape[0], "rows": len(dataset.train) + len(dataset.val) + len(dataset.test),
                         "latent": latent, "pca_mse": vae["pca_mse"], "ae_mse": ae["mse"], "vae_mse": vae["mse"],
                         "ppca_nll": vae["ppca_nll"], "fa_nll": vae["fa_nll"], "vae_nll": vae["nll"], "vae_nelbo": vae["nelbo"],
                         "vae_active": vae["active_units"], "epochs": vae["epochs"],
                         "ae_seconds": ae["train_seconds"], "vae_seconds": vae["train_seconds"]})
            print(markdown(rows[-1:], header=not rows[:-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "tables.json").write_text(json.dumps(rows, indent=2) + "\n")
    draw(rows, FIGURE)


def markdown(rows, header: bool = True) -> str:
    lines = ["| table | latent | PCA MSE | AE MSE | VAE MSE | pPCA NLL | FA NLL | VAE NLL | active | epochs | AE / VAE train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"] if header else []
    for r in rows:
        lines.append(f"| {r['dataset']} ({r['rows']} × {r['features']}) | {r['latent']} | {r['pca_mse']:.3f} | {r['ae_mse']:.3f} | "
                     f"{r['vae_mse']:.3f} | {r['ppca_nll']:.2f} | {r['fa_nll']:.2f} | {r['vae_nll']:.2f} | {r['vae_active']} | "
                     f"{r['epochs']} | {r['ae_seconds']:.0f} / {r['vae_seconds']:.0f} |")
    return "\n".join(lines)


def draw(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(2, len(names), figsize=(4.2 * len(names), 6.4), squeeze=False)
    for col, name in enumerate(names):
        part = [r for r in rows if r["dataset"] == name]
        latents = [r["latent"] for r in part]
        top, bottom = axes[0, col], axes[1, col]
        for key, label, style in (("pca_mse", "PCA", "k--o"), ("ae_mse", "AE", "C0-o"), ("vae_mse", "VAE", "C1-o")):
            top.plot(latents, [r[key] for r in part], style, label=label)
        for key, label, style in (("ppca_nll", "pPCA", "k--o"), ("fa_nll", "factor analysis", "C2--s"), ("vae_nll", "VAE (K = 1000)", "C1-o")):
            bottom.plot(latents, [r[key] for r in part], style, label=label)
        top.set_title(f"{name} ({part[0]['rows']} × {part[0]['features']})")
        top.set_ylabel("test MSE per standardised value")
        bottom.set_ylabel("test NLL per row (nats, original units)")
        bottom.set_xlabel("latent dimensions")
        for ax in (top, bottom):
            ax.set_xticks(latents)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Tables: linear baselines against an MLP autoencoder and VAE (lower is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
