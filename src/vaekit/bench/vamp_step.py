"""What the best recipe's training step costs, and what could make it cheaper: the bf16 step of
``fashion-mnist-hvae-vamp``'s model with fewer pseudo-inputs, and with ``--compile default``; and what
training on the K-sample importance-weighted bound (``--iw-k``) adds to it.

Each variant takes whole training steps (as ``vaekit.bench.precision`` times them: one batch of 100
binarised images, fused Adam) in bf16, the variants alternated in one process for ``--repeats``
rounds of ``--steps`` steps; the figure is each variant's median. Fewer pseudo-inputs is a different
model (Tomczak & Welling use 500), and the importance-weighted bound a different objective, so this
says only what each costs or buys in speed.

    python -m vaekit.bench.vamp_step [--repeats 5] [--steps 20] [--json benchmarks/results/vamp-step.json]
"""
from __future__ import annotations

import json
import statistics

from vaekit.bench.measure import machine
from vaekit.bench.precision import machine_line, step_arguments, step_timer

RECIPE = "fashion-mnist-hvae-vamp"
VARIANTS = {
    "500 pseudo-inputs (the recipe)": {},
    "300 pseudo-inputs": {"pseudo_inputs": 300},
    "250 pseudo-inputs": {"pseudo_inputs": 250},
    "200 pseudo-inputs": {"pseudo_inputs": 200},
    "500 pseudo-inputs, --compile default": {"compile_mode": "default"},
    "500 pseudo-inputs, --iw-k 2": {"model_options": {"iw_k": 2}},
    "500 pseudo-inputs, --iw-k 4": {"model_options": {"iw_k": 4}},
    "500 pseudo-inputs, --iw-k 8": {"model_options": {"iw_k": 8}},
}


def measure(repeats: int = 5, steps: int = 20, precision: str = "bf16") -> list[dict]:
    timers = {name: step_timer(RECIPE, **overrides)[1] for name, overrides in VARIANTS.items()}
    times = {name: [] for name in VARIANTS}
    for _ in range(repeats):
        for name, timed in timers.items():
            times[name].append(1000 * timed(precision, steps))
    recipe = statistics.median(times[next(iter(VARIANTS))])
    return [{"variant": name, "ms_per_step": statistics.median(values), "relative_to_recipe": statistics.median(values) / recipe,
             "samples_ms": values} for name, values in times.items()]


def main() -> None:
    args = step_arguments(__doc__)
    cpu = machine()
    rows = measure(args.repeats, args.steps)
    print(machine_line(cpu))
    print(f"| {RECIPE}, bf16 step | ms/step | against the recipe |")
    print("|---|---:|---:|")
    for row in rows:
        print(f"| {row['variant']} | {row['ms_per_step']:.1f} | {row['relative_to_recipe']:.2f}x |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"machine": cpu, "recipe": RECIPE, "precision": "bf16", "repeats": args.repeats,
                       "steps": args.steps, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
