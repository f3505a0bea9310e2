"""Recipes: config files that reproduce a published result, with that result beside them.

A recipe is a TOML config file in ``vaekit/recipes/`` (package data; the repository's ``recipes/``
folder links to it), so ``vaekit train --config recipes/NAME.toml`` trains it. Its ``[recipe]`` table,
which training ignores (:func:`vaekit.training.config.training_keys`), says what it reproduces::

    [recipe]
    title = "VAE, N(0, I) prior"
    paper = "Norouzi, Fleet & Norouzi 2020, ..."          # paper, table and row
    protocol = "Tomczak & Welling 2018 (VampPrior), ..."
    metric = "test NLL, nats per image (importance sampling)"
    published = 228.70                                    # the paper's number, in the metric's units
    iw-samples = 5000                                     # importance samples S of the paper's evaluation
    changes = ["epochs: ...", ...]                        # what the recipe changes from the protocol

:func:`vaekit.evaluation.reproduce.reproduce` trains one and evaluates it as the paper did.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vaekit.errors import ConfigError
from vaekit.training.config import DESCRIPTION_TABLE, TrainConfig, build_config, read_config_file, training_keys

REQUIRED = ("title", "paper", "protocol", "metric", "published", "iw-samples", "changes")


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
    published: float
    iw_samples: int
    changes: tuple[str, ...]
    values: dict[str, Any]          # the training keys, as written in the file

    @property
    def model(self) -> str:
        """The model and, where it is not the model's own, the prior: ``vae``, ``vae + vamp prior``."""
        model, prior = self.values.get("model", "vae"), self.values.get("prior")
        return model if prior is None else f"{model} + {prior} prior"

    @property
    def dataset(self) -> str:
        return str(self.values.get("dataset", TrainConfig.dataset))

    def config(self, overrides: dict[str, Any] | None = None) -> TrainConfig:
        """The resolved training config, with ``overrides`` (None values: not given) on top."""
        return build_config(self.path, overrides)


def read_recipe(path: str | Path) -> Recipe:
    """The recipe in the TOML file at ``path``; a file without a complete ``[recipe]`` table is refused."""
    path = Path(path)
    raw = read_config_file(path)
    about = raw.get(DESCRIPTION_TABLE)
    if not isinstance(about, dict):
        raise ConfigError(f"{path} is not a recipe: it has no [{DESCRIPTION_TABLE}] table")
    missing = [key for key in REQUIRED if key not in about]
    if missing:
        raise ConfigError(f"{path}: its [{DESCRIPTION_TABLE}] table lacks {', '.join(missing)}")
    try:
        published, iw_samples = float(about["published"]), int(about["iw-samples"])
    except (TypeError, ValueError):
        raise ConfigError(f"{path}: published must be a number and iw-samples an integer") from None
    return Recipe(name=path.stem, path=path, title=str(about["title"]), paper=str(about["paper"]),
                  protocol=str(about["protocol"]), metric=str(about["metric"]), published=published,
                  iw_samples=iw_samples, changes=tuple(str(c) for c in about["changes"]), values=training_keys(raw))


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
