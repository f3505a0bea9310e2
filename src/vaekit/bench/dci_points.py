"""What DCI's sample size costs and buys: its scores and time at several numbers of points.

    python -m vaekit.bench.dci_points [RUN] [--points 10000 3000] [--seeds 1 3] [--workers N ...] [--json FILE]

DCI (Eastwood & Williams 2018, gradient-boosted trees as Locatello et al. 2019) is the slow part of
``vaekit evaluate --disentanglement``. This measures, for each number of training points (half as many
held out) and several seeds, the three DCI scores and the wall time, on two representations of the
dSprites factors: a synthetic, well disentangled one (each factor's index, standardised, plus
Gaussian noise of 0.3 standard deviations in its own dimension, and three pure-noise dimensions), whose
scores are high, and, when RUN is given, that run's encoder mean. The spread over seeds at each size
is the estimate's sampling error, and the change of the mean with the size its bias. ``--workers``
times each measurement with each number of threads for the factors' fits (the numbers must agree).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from vaekit.bench.results import RESULTS


def synthetic_representation(factor_sizes, noise: float = 0.3, noise_dims: int = 3, seed: int = 0):
    """Observations are factor rows; codes are the standardised factors plus noise, and noise dimensions."""
    sizes = np.asarray(factor_sizes, dtype=np.float64)
    rng = np.random.default_rng(seed)

    def represent(observations: np.ndarray) -> np.ndarray:
        factors = np.asarray(observations, dtype=np.float64)
        scaled = (factors - (sizes - 1) / 2) / np.sqrt((sizes ** 2 - 1) / 12 + 1e-12)
        codes = scaled + noise * rng.standard_normal(scaled.shape)
        return np.hstack([codes, rng.standard_normal((len(factors), noise_dims))])

    return represent


def measure(representation, ground_truth, points: int, seed: int, workers: int | None = None) -> dict:
    from vaekit.disentanglement import dci

    started = time.perf_counter()
    result = dci(representation, ground_truth, rng=np.random.default_rng(seed), num_train=points,
                 num_eval=max(points // 2, 5), workers=workers)
    return {"points": points, "seed": seed, "workers": workers, "seconds": time.perf_counter() - started,
            "disentanglement": result["disentanglement"], "completeness": result["completeness"],
            "informativeness": result["informativeness"]}


def main() -> None:
    from vaekit.data import load_dataset
    from vaekit.disentanglement import SimulatedFactors, model_representation

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", type=Path)
    parser.add_argument("--points", type=int, nargs="+", default=[10_000, 3_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 3], help="seeds per size, in --points' order")
    parser.add_argument("--workers", type=int, nargs="+", default=[None], help="threads for the factors' fits (default: one per CPU)")
    parser.add_argument("--json", type=Path, default=RESULTS / "dci-points.json")
    args = parser.parse_args()
    truth = load_dataset("dsprites-small").ground_truth
    # factories: each measurement starts the synthetic code's noise afresh, so its numbers repeat
    subjects = {"synthetic": (lambda: synthetic_representation(truth.factor_sizes),
                              SimulatedFactors(tuple(truth.factor_sizes), lambda f: f.astype(np.float32),
                                               tuple(truth.factor_names), tuple(truth.factor_types)))}
    if args.run is not None:
        import vaekit

        model = vaekit.load(args.run)
        model.eval()
        subjects[str(args.run)] = (lambda: model_representation(model), truth)
    rows = []
    for name, (factory, ground_truth) in subjects.items():
        for points, seeds in zip(args.points, args.seeds):
            for seed in range(seeds):
                for workers in args.workers:
                    row = {"representation": name, **measure(factory(), ground_truth, points, seed, workers)}
                    rows.append(row)
                    print(json.dumps(row), file=sys.stderr)
                    args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
