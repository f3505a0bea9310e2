"""The foundation's figures for BENCHMARKS.md, measured in one run on one machine.

    python -m vaekit.bench.foundation [--only throughput,pca,quality,memory] [--json out.json]

* throughput: training images/s of vaekit's MLP VAE 784-512-16-512-784 (batch 128) against the
  plain loop of vaekit.bench.plain (as `vaekit bench` measures it), interleaved repeats, medians;
* pca: a linear AE (MSE) and a deep AE at latent 16 against the PCA baseline;
* quality: dynamically binarised VAEs (mlp and conv, latent 16): test -ELBO and NLL (K = 1000);
* memory: peak resident memory of a `vaekit train` process on Fashion-MNIST.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vaekit  # noqa: E402
from vaekit.bench.measure import machine  # noqa: E402
from vaekit.training.config import TrainConfig  # noqa: E402
from vaekit.data import load_dataset  # noqa: E402
from vaekit.evaluation.evaluate import evaluate_model  # noqa: E402


def throughput(dataset, repeats: int) -> dict:
    """Images/s of training, vaekit vs the plain loop, same network and batch size: ``vaekit bench``'s
    measurement (vaekit.bench), here for the MLP VAE only, one epoch of the training split per repeat."""
    from vaekit.bench import run_bench

    steps = len(dataset.train) // 128
    entry = run_bench(archs=["mlp"], parts=["train"], steps=steps, repeats=repeats, dataset=dataset)["models"]["mlp"]
    train = entry["train"]
    return {"vaekit_images_per_s": train["vaekit"], "plain_images_per_s": train["plain"], "ratio": train["ratio"],
            "median_pair_ratio": train["median_pair_ratio"], "vaekit_runs": train["vaekit_runs"],
            "plain_runs": train["plain_runs"], "batch_size": 128, "network": "784-512-16-512-784"}


def _train_and_evaluate(dataset, iw_samples: int, eval_subset: int | None, **options) -> dict:
    config = TrainConfig(device="cpu", **options).resolved()
    started = time.perf_counter()
    result = vaekit.train(dataset, config=config)
    seconds = time.perf_counter() - started
    data = dataset
    if eval_subset is not None:
        from vaekit.data import Dataset, Split

        test = Split(dataset.test.x[:eval_subset], dataset.test.y[:eval_subset])
        data = Dataset(dataset.name, dataset.train, dataset.val, test, dataset.sample_shape,
                       dataset.class_names, dataset.source, dataset.quantized_8bit)
    evaluation = evaluate_model(result.model, data, split="test", iw_samples=iw_samples)
    keep = ("n", "recon", "kl", "nelbo", "nll", "iw_samples", "bits_per_dim", "mse", "pca_mse", "active_units", "seconds")
    return {"config": {k: v for k, v in options.items()}, "train_seconds": seconds,
            "best_epoch": result.best_epoch, "eval": {k: evaluation[k] for k in keep}}


def pca(dataset) -> dict:
    linear = _train_and_evaluate(dataset, 1, None, model="ae", arch="linear", latent_dim=16, epochs=30,
                                 lr=1e-3, batch_size=128, lr_schedule="cosine")
    deep = _train_and_evaluate(dataset, 1, None, model="ae", arch="mlp", hidden=[512, 256], latent_dim=16,
                               epochs=20, lr=1e-3, batch_size=128, lr_schedule="cosine")
    pca_mse = linear["eval"]["pca_mse"]
    return {"pca_mse": pca_mse, "linear_ae": linear, "deep_ae": deep,
            "linear_over_pca": linear["eval"]["mse"] / pca_mse, "deep_over_pca": deep["eval"]["mse"] / pca_mse}


def quality(dataset, conv_eval_subset: int) -> dict:
    mlp = _train_and_evaluate(dataset, 1000, None, model="vae", arch="mlp", hidden=[512], latent_dim=16,
                              likelihood="bernoulli", binarize="dynamic", epochs=10, lr=1e-3, batch_size=128)
    conv = _train_and_evaluate(dataset, 1000, conv_eval_subset, model="vae", arch="conv", channels=[32, 64],
                               latent_dim=16, likelihood="bernoulli", binarize="dynamic", epochs=3, lr=1e-3,
                               batch_size=128)
    return {"mlp": mlp, "conv": conv}


def memory() -> dict:
    """Peak RSS of a whole `vaekit train` process (1 epoch of the default VAE on Fashion-MNIST)."""
    with tempfile.TemporaryDirectory() as tmp:
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started by this
        # (large) process would report the parent's peak.
        code = ("import sys; from vaekit.cli.app import main; rc = main(sys.argv[1:]); "
                "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]; "
                "print('PEAK_KB', hwm, file=sys.stderr); sys.exit(rc)")
        proc = subprocess.run([sys.executable, "-c", code, "train", "--epochs", "1", "--out", f"{tmp}/run"],
                              capture_output=True, text=True, check=True)
    peak_kb = int(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")))
    return {"peak_rss_mib": peak_kb / 1024, "command": "vaekit train --epochs 1 (default VAE, Fashion-MNIST)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="throughput,pca,quality,memory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--conv-eval-subset", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = args.only.split(",")
    dataset = load_dataset("fashion-mnist")
    results: dict = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    for part in parts:
        started = time.perf_counter()
        if part == "throughput":
            results[part] = throughput(dataset, args.repeats)
        elif part == "pca":
            results[part] = pca(dataset)
        elif part == "quality":
            results[part] = quality(dataset, args.conv_eval_subset)
        elif part == "memory":
            results[part] = memory()
        else:
            raise SystemExit(f"unknown part {part!r}")
        print(f"{part} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        print(json.dumps({part: results[part]}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
