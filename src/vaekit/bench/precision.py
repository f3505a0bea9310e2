"""fp32 against bf16 autocast (``--precision bf16``): the training step of each Fashion-MNIST recipe's model.

Each recipe's model and optimizer (fused Adam, as the trainer builds it) take whole training steps
on one batch of binarised 28 x 28 images, fp32 and bf16 alternately, ``--repeats`` rounds of
``--steps`` steps each; the figure is the median step of each. Alternating in one process makes the
ratio robust to the machine's drift. Speed only: what bf16 does to a model's quality is measured by
training it (BENCHMARKS.md, "bf16 on the recipes").

    python -m vaekit.bench.precision [--repeats 5] [--steps 20] [--json benchmarks/results/precision.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch

from vaekit.bench.measure import machine
from vaekit.models import build_model
from vaekit.training import acceleration
from vaekit.training.recipes import load_recipe
from vaekit.training.trainer import make_optimizer

RECIPES = ("fashion-mnist-vae", "fashion-mnist-vamp", "fashion-mnist-hvae", "fashion-mnist-hvae-vamp")
PRECISIONS = ("fp32", "bf16")


def step_timer(recipe: str, seed: int = 0, compile_mode: str = "off", model_options: dict | None = None, **overrides):
    """A function that times ``steps`` training steps of ``recipe``'s model at a precision, in seconds per step.

    ``overrides`` replace the recipe's settings (``pseudo_inputs=250``), ``model_options`` its model's own
    options (``{"iw_k": 4}``); ``compile_mode`` is ``--compile``."""
    config = dataclasses.replace(load_recipe(recipe).config(), **overrides)
    if model_options:
        config = dataclasses.replace(config, options=dataclasses.replace(config.options, **model_options))
    torch.manual_seed(seed)
    model = build_model(config, (1, 28, 28))
    acceleration.compile_networks(model, compile_mode)
    optimizer = make_optimizer(model, config)
    x = (torch.rand(config.batch_size, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) < 0.3).float()
    device = torch.device("cpu")

    def step(precision: str) -> None:
        with acceleration.autocast(precision, device):
            out = model(x, beta=1.0)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    def timed(precision: str, steps: int) -> float:
        step(precision)                                     # warm-up: the first step allocates
        started = time.perf_counter()
        for _ in range(steps):
            step(precision)
        return (time.perf_counter() - started) / steps

    return config, timed


def measure(recipes=RECIPES, repeats: int = 5, steps: int = 20) -> list[dict]:
    rows = []
    for recipe in recipes:
        config, timed = step_timer(recipe)
        times = {precision: [] for precision in PRECISIONS}
        for _ in range(repeats):
            for precision in PRECISIONS:
                times[precision].append(timed(precision, steps))
        medians = {precision: statistics.median(values) for precision, values in times.items()}
        rows.append({"recipe": recipe, "batch_size": config.batch_size,
                     **{f"{precision}_ms_per_step": 1000 * medians[precision] for precision in PRECISIONS},
                     "speedup": medians["fp32"] / medians["bf16"],
                     "samples": {precision: [1000 * t for t in values] for precision, values in times.items()}})
    return rows


def step_arguments(doc: str) -> argparse.Namespace:
    """The options of a step benchmark (this one, ``vamp_step``): ``--repeats``, ``--steps``, ``--json``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json")
    return parser.parse_args()


def machine_line(cpu: dict) -> str:
    return f"{cpu['cpu']}, {cpu['torch_threads']} threads, torch {cpu['torch']}, bf16 dot products: {cpu['cpu_bf16']}"


def main() -> None:
    args = step_arguments(__doc__)
    cpu = machine()
    rows = measure(repeats=args.repeats, steps=args.steps)
    print(machine_line(cpu))
    print("| recipe's model | fp32 ms/step | bf16 ms/step | fp32 / bf16 |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['recipe']} | {row['fp32_ms_per_step']:.1f} | {row['bf16_ms_per_step']:.1f} | {row['speedup']:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": cpu, "repeats": args.repeats, "steps": args.steps,
                       "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
