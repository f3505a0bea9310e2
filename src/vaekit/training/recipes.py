"""Recipes: config files that reproduce a published result, with that result beside them.

A recipe is a TOML config file in ``vaekit/recipes/`` (package data; the repository's ``recipes/``
folder links to it), so ``vaekit train --config recipes/NAME.toml`` trains it. Its ``[recipe]`` table,
which training ignores (:func:`vaekit.training.config.training_keys`), says what it reproduces::

    [recipe]
    title = "VAE, N(0, I) prior"
    paper = "Norouzi, Fleet & Norouzi 2020, ..."          # paper, table and row
    protocol = "Tomczak & Welling 2018 (VampPrior), ..."
    metric = "test NLL, nats per image (importance sampling)"
    score = "nll"                                         # how it is scored: nll (the default) or mig
    published = 228.70                                    # the paper's number, in the metric's units
    iw-samples = 5000                                     # score nll: importance samples S of the evaluation
    changes = ["epochs: ...", ...]                        # what the recipe changes from the protocol

    [recipe.without-bf16]                                 # only for a recipe that trains in bf16
    precision = "fp32"
    epochs = 180                                          # what fits the same hour in fp32

A recipe that trains in bf16 (``precision = "bf16"``) pays only on hardware with bfloat16 dot
products; elsewhere bf16 is several times slower than fp32. Its ``[recipe.without-bf16]`` table gives
the training keys that replace the file's there (precision fp32, and the epochs that fit the same
time): :meth:`Recipe.config` takes them with ``without_bf16=True``, and ``vaekit reproduce`` does so by
itself on such hardware (:meth:`Recipe.needs_fallback`).

A recipe scored by ``mig`` (the mutual information gap, on data with known factors such as dsprites)
gives ``disentanglement-points`` (the points of ``vaekit evaluate --disentanglement``) instead of
``iw-samples``. ``published`` may be left out: a baseline trained only to compare with the other
recipes has no published number of its own. :data:`SCORES` says, for each score, which way is better.

:func:`vaekit.evaluation.reproduce.reproduce` trains one and evaluates it as the paper did.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vaekit.errors import ConfigError
from vaekit.training.config import (DESCRIPTION_TABLE, TrainConfig, build_config, normalise_keys, read_config_file,
                                    training_keys)

REQUIRED = ("title", "paper", "protocol", "metric", "changes")
FALLBACK_TABLE = "without-bf16"      # [recipe.without-bf16]: the keys for hardware without bfloat16 dot products


@dataclass(frozen=True)
class Score:
    """How a recipe is scored: the number's short name, its unit, which way is better, and the
    ``[recipe]`` key that sizes its evaluation."""

    name: str                  # as printed: "NLL", "MIG"
    meaning: str               # what the number is, in a phrase
    heading: str               # a column heading: what is measured, and its unit
    unit: str                  # "nats", or "" for a number without a unit
    lower_is_better: bool
    budget_key: str            # the [recipe] key this score requires


SCORES = {
    "nll": Score("NLL", "test NLL in nats per image", "test NLL (nats)", "nats", lower_is_better=True,
                 budget_key="iw-samples"),
    "mig": Score("MIG", "mutual information gap (Chen et al. 2018), from 0 to 1", "MIG (0 to 1)", "",
                 lower_is_better=False, budget_key="disentanglement-points"),
}


def recipes_dir() -> Path:
    """The folder of the recipe files shipped with vaekit."""
    return Path(str(resources.files("vaekit") / "recipes"))


@dataclass(frozen=True)
class Recipe:
    name: str
    path: Path
    title: str
    paper: str
    protocol: str
    metric: str
    score: str                      # a key of SCORES: "nll" or "mig"
    published: float | None         # None: a baseline with no published number of its own
    iw_samples: int | None          # score nll: importance samples S of the test NLL
    disentanglement_points: int | None  # score mig: training points of each disentanglement score
    changes: tuple[str, ...]
    values: dict[str, Any]          # the training keys, as written in the file
    without_bf16: dict[str, Any] | None = None  # [recipe.without-bf16], normalised: the keys that replace them
                                                # on hardware without bfloat16 dot products (None: no such table)

    @property
    def scoring(self) -> Score:
        """The score's name, unit and direction (:data:`SCORES`)."""
        return SCORES[self.score]

    @property
    def model(self) -> str:
        """The model and, where it is not the model's own, the prior: ``vae``, ``vae + vamp prior``."""
        model, prior = self.values.get("model", "vae"), self.values.get("prior")
        return model if prior is None else f"{model} + {prior} prior"

    @property
    def dataset(self) -> str:
        return str(self.values.get("dataset", TrainConfig.dataset))

    @property
    def precision(self) -> str:
        return str(self.values.get("precision", TrainConfig.precision))

    def config(self, overrides: dict[str, Any] | None = None, *, without_bf16: bool = False) -> TrainConfig:
        """The resolved training config, with ``overrides`` (None values: not given) on top; with
        ``without_bf16``, the ``[recipe.without-bf16]`` keys come between the file and the overrides
        (a recipe without that table then trains the file's settings in fp32)."""
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        if without_bf16:
            given = {**(self.without_bf16 or {"precision": "fp32"}),
                     **normalise_keys(given, source="the command line")}
        return build_config(self.path, given)

    def needs_fallback(self, device) -> bool:
        """Whether the recipe trains in bf16 and ``device`` (a torch device) is not known to have
        bfloat16 dot products, where bf16 would be several times slower than fp32: training should
        then take its ``[recipe.without-bf16]`` keys (:meth:`config` with ``without_bf16=True``)."""
        from vaekit.training.acceleration import bf16_dot_products

        return self.precision == "bf16" and not bf16_dot_products(device)


def read_recipe(path: str | Path) -> Recipe:
    """The recipe in the TOML file at ``path``; a file without a complete ``[recipe]`` table is refused."""
    path = Path(path)
    raw = read_config_file(path)
    about = raw.get(DESCRIPTION_TABLE)
    if not isinstance(about, dict):
        raise ConfigError(f"{path} is not a recipe: it has no [{DESCRIPTION_TABLE}] table")
    score = about.get("score", "nll")
    if not isinstance(score, str) or score not in SCORES:
        raise ConfigError(f"{path}: unknown score {score!r} in [{DESCRIPTION_TABLE}]: use {' or '.join(SCORES)}")
    budget_key = SCORES[score].budget_key
    other = [s.budget_key for s in SCORES.values() if s.budget_key != budget_key and s.budget_key in about]
    if other:
        raise ConfigError(f"{path}: {', '.join(other)} does not apply to score {score} (it needs {budget_key})")
    missing = [key for key in (*REQUIRED, budget_key) if key not in about]
    if missing:
        raise ConfigError(f"{path}: its [{DESCRIPTION_TABLE}] table lacks {', '.join(missing)}"
                          + (f" (score {score} needs {budget_key})" if budget_key in missing else ""))
    published = about.get("published")
    if published is not None and (isinstance(published, bool) or not isinstance(published, (int, float))):
        raise ConfigError(f"{path}: published must be a number, not {published!r} (leave it out for a baseline)")
    budget = about[budget_key]
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"{path}: {budget_key} must be a positive integer, not {budget!r}")
    changes = about["changes"]
    if not isinstance(changes, list):
        raise ConfigError(f"{path}: changes must be a list of strings, not {changes!r}")
    fallback = _fallback(path, about.get(FALLBACK_TABLE), training_keys(raw))
    return Recipe(name=path.stem, path=path, title=str(about["title"]), paper=str(about["paper"]),
                  protocol=str(about["protocol"]), metric=str(about["metric"]), score=score,
                  published=None if published is None else float(published),
                  iw_samples=budget if score == "nll" else None,
                  disentanglement_points=budget if score == "mig" else None,
                  changes=tuple(str(c) for c in changes), values=training_keys(raw), without_bf16=fallback)


def _fallback(path: Path, table: Any, values: dict[str, Any]) -> dict[str, Any] | None:
    """The ``[recipe.without-bf16]`` keys, normalised, with precision fp32 unless they say otherwise;
    a table that is not one, or in a recipe that does not train in bf16, or that keeps bf16, is refused."""
    if table is None:
        return None
    where = f"{path} [{DESCRIPTION_TABLE}.{FALLBACK_TABLE}]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of training keys, not {table!r}")
    if values.get("precision") != "bf16":
        raise ConfigError(f"{where} applies only to a recipe that trains in bf16 (precision = \"bf16\")")
    keys = {"precision": "fp32", **normalise_keys(table, source=where)}
    if keys["precision"] == "bf16":
        raise ConfigError(f"{where} must not train in bf16: it is the recipe for hardware without it")
    return keys


def list_recipes() -> list[Recipe]:
    """Every recipe shipped with vaekit, by name."""
    return [read_recipe(path) for path in sorted(recipes_dir().glob("*.toml"), key=lambda path: path.stem)]


def load_recipe(name: str) -> Recipe:
    """The shipped recipe called ``name`` (its file name without .toml), or the recipe file at a path."""
    if name.endswith(".toml") and Path(name).is_file():
        return read_recipe(name)
    path = recipes_dir() / f"{name}.toml"
    if not path.is_file():
        names = ", ".join(sorted(path.stem for path in recipes_dir().glob("*.toml")))
        raise ConfigError(f"unknown recipe {name!r}: choose one of {names} (`vaekit recipes` lists them)")
    return read_recipe(path)
