"""Reproduce a published result: train a recipe (vaekit.training.recipes), evaluate it as the paper did.

The training and evaluation are the same calls as ``vaekit train --config RECIPE`` followed by

* a recipe scored by ``nll``: ``vaekit evaluate RUN --iw-samples S --no-regularity``, with the recipe's S;
* a recipe scored by ``mig``: ``vaekit evaluate RUN --disentanglement --disentanglement-points N
  --iw-samples 1 --no-regularity``, with the recipe's N. The NLL is then not the point, so it costs a
  single sample per image; eval.json holds all five disentanglement scores, the MIG is the recipe's.

A recipe that trains in bf16 trains its ``[recipe.without-bf16]`` settings instead where the device is
not known to have bfloat16 dot products (``precision="auto"``, the default): there bf16 would take
several times as long as the fp32 settings the recipe gives for the same hour.

Each part is timed with a wall clock.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaekit.errors import ConfigError
from vaekit.training.config import TrainConfig
from vaekit.training.recipes import Recipe, load_recipe

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class Reproduction:
    """vaekit's number beside the paper's, in the units of the recipe's score (``nll``: nats per
    image; ``mig``: a number in [0, 1]). ``published`` is None for a baseline with no published number."""

    recipe: Recipe
    run: str
    score: str                      # the recipe's score: "nll" or "mig"
    value: float                    # vaekit's number
    published: float | None
    lower_is_better: bool           # NLL: lower is better; MIG: higher
    iw_samples: int | None          # score nll: importance samples of the NLL
    disentanglement_points: int | None  # score mig: training points of each disentanglement score
    train_seconds: float
    eval_seconds: float
    overrides: dict[str, Any]       # what was changed from the recipe (empty for a faithful reproduction)
    without_bf16: bool = False      # whether it trained the recipe's [recipe.without-bf16] settings
    hardware: dict[str, Any] | None = None   # where it trained (run.json's "hardware"): the times depend on it

    @property
    def gap(self) -> float | None:
        """vaekit's number minus the published one (None without a published number)."""
        return None if self.published is None else self.value - self.published

    @property
    def worse(self) -> bool:
        """Whether vaekit's number is worse than the published one, in the score's direction."""
        if self.gap is None:
            return False
        return self.gap > 0 if self.lower_is_better else self.gap < 0

    @property
    def faithful(self) -> bool:
        """Whether the run is the recipe as written, evaluated with its budget (else the numbers do not compare)."""
        return (not self.overrides and self.iw_samples == self.recipe.iw_samples
                and self.disentanglement_points == self.recipe.disentanglement_points)


def training_plan(recipe: Recipe, overrides: dict[str, Any] | None = None,
                  precision: str = "auto") -> tuple[TrainConfig, bool]:
    """The config a reproduction trains, and whether it is the recipe's ``[recipe.without-bf16]`` settings.

    ``precision``: ``auto`` takes those settings for a bf16 recipe where the device is not known to
    have bfloat16 dot products; ``fp32`` takes them for a bf16 recipe anywhere; ``bf16`` keeps the
    file's settings (and trains an fp32 recipe in bf16, a change from the recipe). ``overrides``
    (None values: not given) go on top."""
    from vaekit.training.device import resolve_device

    if precision not in PRECISIONS:
        raise ConfigError(f"unknown --precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    given = _changes(recipe, overrides, precision)
    if precision == "fp32":
        fallback = recipe.precision == "bf16"
    elif precision == "auto":
        fallback = recipe.needs_fallback(resolve_device(recipe.config(given).device))
    else:
        fallback = False
    return recipe.config(given, without_bf16=fallback), fallback


def _changes(recipe: Recipe, overrides: dict[str, Any] | None, precision: str) -> dict[str, Any]:
    """What a reproduction changes from the recipe: the given ``overrides``, and bf16 asked of a recipe
    that trains in fp32 (the run then does not compare with the published number as the recipe's would)."""
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if precision == "bf16" and recipe.precision != "bf16":
        given["precision"] = "bf16"
    return given


def fallback_settings(recipe: Recipe) -> str:
    """The ``[recipe.without-bf16]`` settings as options: ``--precision fp32 --epochs 180 --kl-warmup 60``."""
    keys = recipe.without_bf16 or {"precision": "fp32"}
    return " ".join(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f"--{k.replace('_', '-')} {v}"
                    for k, v in keys.items())


def reproduce(name: str, out: str | Path | None = None, *, iw_samples: int | None = None,
              disentanglement_points: int | None = None, overrides: dict[str, Any] | None = None,
              precision: str = "auto", overwrite: bool = False, callbacks=(), progress=None,
              load_progress=None) -> Reproduction:
    """Train recipe ``name`` into ``out`` (default ``runs/NAME``), then evaluate it by the recipe's score:
    its test NLL with ``iw_samples`` importance samples, or its MIG with ``disentanglement_points``
    points (each by default the recipe's; the one that does not apply to the recipe's score is refused).
    ``overrides`` change config keys (for a quick check: ``{"epochs": 1}``); ``precision`` picks the
    recipe's settings for the hardware (:func:`training_plan`); ``callbacks`` go to the trainer,
    ``progress`` to the evaluation."""
    from vaekit.evaluation.evaluate import evaluate
    from vaekit.training.run import check_run_dir, config_dataset
    from vaekit.training.trainer import train

    recipe = load_recipe(name)
    if recipe.score != "nll" and iw_samples is not None:
        raise ConfigError(f"--iw-samples applies to recipes scored by NLL; {recipe.name} is scored by "
                          f"{recipe.scoring.name}: use --disentanglement-points")
    if recipe.score != "mig" and disentanglement_points is not None:
        raise ConfigError(f"--disentanglement-points applies to recipes scored by MIG; {recipe.name} is scored "
                          f"by {recipe.scoring.name}: use --iw-samples")
    config, fallback = training_plan(recipe, overrides, precision)
    given = _changes(recipe, overrides, precision)
    out = Path(out) if out is not None else Path("runs") / recipe.name
    check_run_dir(out, overwrite=overwrite)          # before loading data: fail fast, touch nothing
    k = recipe.iw_samples if iw_samples is None else iw_samples
    points = recipe.disentanglement_points if disentanglement_points is None else disentanglement_points
    dataset = config_dataset(config, progress=load_progress)
    start = time.perf_counter()
    train(config, dataset, out, overwrite=overwrite, callbacks=callbacks)
    trained = time.perf_counter()
    hardware = json.loads((out / "run.json").read_text(encoding="utf-8")).get("hardware")
    if recipe.score == "nll":
        result = evaluate(out, split="test", iw_samples=k, device=config.device, progress=progress, regularity=False)
        value = float(result["nll"])
    else:
        result = evaluate(out, split="test", iw_samples=1, device=config.device, progress=progress, regularity=False,
                          disentanglement=True, disentanglement_points=points)
        value = float(result["disentanglement"]["mig"])
    return Reproduction(recipe=recipe, run=str(out), score=recipe.score, value=value, published=recipe.published,
                        lower_is_better=recipe.scoring.lower_is_better, iw_samples=k, disentanglement_points=points,
                        train_seconds=trained - start, eval_seconds=time.perf_counter() - trained, overrides=given,
                        without_bf16=fallback, hardware=hardware)
