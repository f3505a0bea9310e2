"""MIG against training steps: train a dSprites recipe a few epochs at a time and score each stage.

    python -m vaekit.bench.disentanglement_curve RECIPE [--every 2] [--points 10000] [--out RUN] [--json FILE]

Trains recipe RECIPE (a name from ``vaekit recipes`` or a recipe file) into RUN in stages of
``--every`` epochs: the first stage is ``vaekit train``, each later one ``vaekit train --resume RUN
--epochs N``, so with the recipes' constant learning rate the stages add up to one uninterrupted run
(resuming is bit-exact). After each stage it measures the MIG (Chen et al. 2018) of the encoder mean on
``--points`` factor samples, with the same random stream at every stage, and writes the curve so far
(epoch, step, training wall time, validation loss, MIG and its per-factor gaps) to the JSON file, so
a run cut short still leaves its curve. The scoring time is not counted as training time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vaekit.bench.results import RESULTS
from vaekit.errors import ConfigError


def score_stage(model, ground_truth, *, points: int, seed: int = 0) -> dict:
    """The MIG of ``model``'s encoder mean, and its per-factor gaps, with the model left as it was."""
    from vaekit.disentanglement import metric_rng, mig, model_representation

    was_training = model.training
    model.eval()
    try:
        started = time.perf_counter()
        result = mig(model_representation(model), ground_truth, rng=metric_rng(seed, "mig"), num_train=points)
        return {"mig": result["score"], "mig_per_factor": result["per_factor"], "score_seconds": time.perf_counter() - started}
    finally:
        model.train(was_training)


def curve(recipe_name: str, out: Path, *, every: int, points: int, json_path: Path | None = None,
          overwrite: bool = False) -> list[dict]:
    """Train the recipe in stages of ``every`` epochs into ``out``; return (and write) one row per stage."""
    from vaekit.training.recipes import load_recipe
    from vaekit.training.run import config_dataset
    from vaekit.training.trainer import resume, train

    recipe = load_recipe(recipe_name)
    config = recipe.config()
    if config.lr_schedule != "constant":
        raise ConfigError(f"{recipe.name} uses a {config.lr_schedule} learning rate, which depends on the total "
                          "number of epochs: staged training would change it")
    dataset = config_dataset(config)
    if dataset.ground_truth is None:
        raise ConfigError(f"{recipe.name} trains on {config.dataset}, which has no known factors to score against")
    total, rows = config.epochs, []
    for stop in range(every, total + every, every):
        stop = min(stop, total)
        if not rows:
            config.epochs = stop
            result = train(config, dataset, out, overwrite=overwrite)
        else:
            result = resume(out, lambda _config: dataset, epochs=stop)
        last = result.history[-1]
        row = {"epoch": last["epoch"], "step": last["step"], "elapsed_s": last["elapsed_s"], "val_loss": last["val_loss"],
               **score_stage(result.model, dataset.ground_truth, points=points)}
        rows.append(row)
        print(f"epoch {row['epoch']}: MIG {row['mig']:.3f} after {row['elapsed_s'] / 60:.1f} min of training",
              file=sys.stderr)
        if json_path is not None:
            json_path.write_text(json.dumps({"recipe": recipe.name, "points": points, "stages": rows}, indent=2) + "\n")
        if stop == total:
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe")
    parser.add_argument("--every", type=int, default=2, help="epochs per stage (default 2)")
    parser.add_argument("--points", type=int, default=10_000, help="factor samples for each MIG (default 10000)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/RECIPE)")
    parser.add_argument("--json", type=Path, help="where the curve goes (default benchmarks/results/dsprites-curve-RECIPE.json)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    name = Path(args.recipe).stem
    curve(args.recipe, args.out or Path("runs") / name, every=args.every, points=args.points,
          json_path=args.json or RESULTS / f"dsprites-curve-{name}.json", overwrite=args.overwrite)


if __name__ == "__main__":
    main()
