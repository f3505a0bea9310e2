"""Reproduce a published result: train a recipe (vaekit.training.recipes), evaluate it as the paper did.

The training and evaluation are the same calls as ``vaekit train --config RECIPE`` followed by
``vaekit evaluate RUN --iw-samples S``, with the recipe's S; only the NLL is computed (no regularity or
disentanglement scores). Each part is timed with a wall clock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaekit.training.recipes import Recipe, load_recipe


@dataclass(frozen=True)
class Reproduction:
    """vaekit's number beside the paper's: ``nll`` and ``published`` in nats per image."""

    recipe: Recipe
    run: str
    nll: float
    published: float
    iw_samples: int
    train_seconds: float
    eval_seconds: float
    overrides: dict[str, Any]       # what was changed from the recipe (empty for a faithful reproduction)

    @property
    def gap(self) -> float:
        """vaekit's NLL minus the published one: positive where vaekit is worse."""
        return self.nll - self.published

    @property
    def faithful(self) -> bool:
        """Whether the run is the recipe as written, evaluated with its S (else the numbers do not compare)."""
        return not self.overrides and self.iw_samples == self.recipe.iw_samples


def reproduce(name: str, out: str | Path | None = None, *, iw_samples: int | None = None,
              overrides: dict[str, Any] | None = None, overwrite: bool = False, callbacks=(), progress=None,
              load_progress=None) -> Reproduction:
    """Train recipe ``name`` into ``out`` (default ``runs/NAME``), then evaluate its test NLL with
    ``iw_samples`` importance samples (default: the recipe's). ``overrides`` change config keys (for a
    quick check: ``{"epochs": 1}``); ``callbacks`` go to the trainer, ``progress`` to the evaluation."""
    from vaekit.evaluation.evaluate import evaluate
    from vaekit.training.run import check_run_dir, config_dataset
    from vaekit.training.trainer import train

    recipe = load_recipe(name)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    config = recipe.config(given)
    out = Path(out) if out is not None else Path("runs") / recipe.name
    check_run_dir(out, overwrite=overwrite)          # before loading data: fail fast, touch nothing
    k = recipe.iw_samples if iw_samples is None else iw_samples
    dataset = config_dataset(config, progress=load_progress)
    start = time.perf_counter()
    train(config, dataset, out, overwrite=overwrite, callbacks=callbacks)
    trained = time.perf_counter()
    result = evaluate(out, split="test", iw_samples=k, device=config.device, progress=progress, regularity=False)
    return Reproduction(recipe=recipe, run=str(out), nll=float(result["nll"]), published=recipe.published,
                        iw_samples=k, train_seconds=trained - start, eval_seconds=time.perf_counter() - trained,
                        overrides=given)
