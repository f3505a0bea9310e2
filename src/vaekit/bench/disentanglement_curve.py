"""MIG against training steps: train a dSprites recipe a few epochs at a time and score each stage.

    python -m vaekit.bench.disentanglement_curve RECIPE [--every 2] [--points 10000] [--out RUN] [--json FILE]
                                                 [--resume | --overwrite]

Trains recipe RECIPE (a name from ``vaekit recipes`` or a recipe file) into RUN in stages of
``--every`` epochs: the first stage is ``vaekit train``, each later one ``vaekit train --resume RUN
--epochs N``, so with the recipes' constant learning rate the stages add up to one uninterrupted run
(resuming is bit-exact). After each stage it measures the MIG (Chen et al. 2018) of the encoder mean on
``--points`` factor samples, with the same random stream at every stage, and writes the curve so far
(epoch, step, training wall time, validation loss, MIG and its per-factor gaps; the batch size) to the JSON file, so
a run cut short still leaves its curve. The scoring time is not counted as training time.

``--resume`` continues a run cut short, and its curve: it keeps the JSON's stages up to the run's last
checkpoint, scores that checkpoint if it ends a stage that was not scored yet (a kill during the
scoring), trains on from there to the next multiple of ``--every``, and goes on as before. Its stages
are those an uninterrupted curve would have had.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from vaekit.bench.results import RESULTS
from vaekit.errors import ConfigError, VaekitError


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


def trained_epochs(run_dir: Path) -> int:
    """The epochs in ``run_dir``'s last checkpoint, read from its metadata (0 when it has none)."""
    from vaekit.training.commit import checkpoint_epoch
    from vaekit.training.run import open_run

    return checkpoint_epoch(open_run(run_dir).checkpoint_path("last")) or 0


def earlier_stages(json_path: Path | None, recipe_name: str, points: int, upto: int) -> list[dict]:
    """The stages of a curve already written to ``json_path`` that the run still holds (epoch <= ``upto``)."""
    if json_path is None or not json_path.exists():
        return []
    try:
        written = json.loads(json_path.read_text())
        stages = written["stages"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot continue the curve in {json_path}: {exc}") from None
    if written.get("recipe") != recipe_name or written.get("points") != points:
        raise ConfigError(f"{json_path} holds the curve of {written.get('recipe')!r} at {written.get('points')} "
                          f"points, not of {recipe_name!r} at {points}: give another --json")
    return [row for row in stages if row["epoch"] <= upto]


def stage_row(model, record: dict, ground_truth, *, points: int) -> dict:
    """One row of the curve: the epoch's training record and the model's MIG."""
    return {"epoch": record["epoch"], "step": record["step"], "elapsed_s": record["elapsed_s"],
            "val_loss": record["val_loss"], **score_stage(model, ground_truth, points=points)}


def curve(recipe_name: str, out: Path, *, every: int, points: int, json_path: Path | None = None,
          overwrite: bool = False, resume_run: bool = False) -> list[dict]:
    """Train the recipe in stages of ``every`` epochs into ``out``; return (and write) one row per stage.
    With ``resume_run``, continue ``out`` and the curve in ``json_path`` from the run's last checkpoint."""
    from vaekit.training.commit import read_metrics
    from vaekit.training.recipes import load_recipe
    from vaekit.training.run import config_dataset, open_for_writing, open_run
    from vaekit.training.trainer import resume, train

    recipe = load_recipe(recipe_name)
    config = recipe.config()
    if config.lr_schedule != "constant":
        raise ConfigError(f"{recipe.name} uses a {config.lr_schedule} learning rate, which depends on the total "
                          "number of epochs: staged training would change it")
    dataset = config_dataset(config)
    if dataset.ground_truth is None:
        raise ConfigError(f"{recipe.name} trains on {config.dataset}, which has no known factors to score against")
    total, rows, done = config.epochs, [], 0

    def record(row: dict) -> None:
        rows.append(row)
        print(f"epoch {row['epoch']}: MIG {row['mig']:.3f} after {row['elapsed_s'] / 60:.1f} min of training",
              file=sys.stderr)
        if json_path is not None:
            written = {"recipe": recipe.name, "points": points, "batch_size": config.batch_size, "stages": rows}
            json_path.write_text(json.dumps(written, indent=2) + "\n")

    if resume_run:
        with open_for_writing(out):          # first finishes an epoch's commit that a kill left half done
            done = trained_epochs(out)
            epochs = {r["epoch"]: r for r in read_metrics(out / "metrics.jsonl").records}
        rows.extend(earlier_stages(json_path, recipe.name, points, done))
        ends_stage = done > 0 and (done % every == 0 or done == total)
        if ends_stage and done in epochs and all(row["epoch"] != done for row in rows):
            record(stage_row(open_run(out).load_model("last"), epochs[done], dataset.ground_truth, points=points))
    for stop in range(every, total + every, every):
        stop = min(stop, total)
        if stop <= done:
            continue
        if resume_run or rows:
            result = resume(out, lambda _config: dataset, epochs=stop)
        else:
            config.epochs = stop
            result = train(config, dataset, out, overwrite=overwrite)
        record(stage_row(result.model, result.history[-1], dataset.ground_truth, points=points))
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
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--overwrite", action="store_true", help="start RUN again from nothing")
    again.add_argument("--resume", action="store_true",
                       help="continue RUN from its last checkpoint, and the curve in the JSON file with it")
    args = parser.parse_args()
    name = Path(args.recipe).stem
    try:
        curve(args.recipe, args.out or Path("runs") / name, every=args.every, points=args.points,
              json_path=args.json or RESULTS / f"dsprites-curve-{name}.json", overwrite=args.overwrite,
              resume_run=args.resume)
    except VaekitError as exc:
        raise SystemExit(f"disentanglement_curve: error: {exc}") from None


if __name__ == "__main__":
    main()
