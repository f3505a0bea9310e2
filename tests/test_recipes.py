"""The reproduction recipes (vaekit/recipes/*.toml), `vaekit recipes` and `vaekit reproduce`.

The protocol and the published numbers below are copied from issue 12 (Norouzi et al. 2020, following
Tomczak & Welling 2018), independently of the recipe files, which must agree with them. The full
runs are benchmarks, not tests: here each recipe trains one epoch on a small slice of `digits`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vaekit.cli.app import main
from vaekit.data import Dataset, Split
from vaekit.errors import ConfigError
from vaekit.evaluation.reproduce import reproduce
from vaekit.training.config import build_config
from vaekit.training.recipes import list_recipes, load_recipe, recipes_dir
from vaekit.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = {"fashion-mnist-vae": 228.70, "fashion-mnist-vamp": 227.35, "fashion-mnist-hvae": 227.37,
             "fashion-mnist-hvae-vamp": 226.72}
PRIORS = {"fashion-mnist-vae": "standard", "fashion-mnist-vamp": "vamp", "fashion-mnist-hvae": "standard",
          "fashion-mnist-hvae-vamp": "vamp"}
# A quick check on data every machine has: digits (1,797 8x8 images), a small validation split.
QUICK = {"dataset": "digits", "val_size": 50, "epochs": 1}


def test_the_shipped_recipes_are_the_issues_with_their_published_numbers():
    recipes = {recipe.name: recipe for recipe in list_recipes()}
    assert {name: r.published for name, r in recipes.items() if name.startswith("fashion-mnist")} == PUBLISHED
    for recipe in recipes.values():
        assert recipe.iw_samples == 5000 and recipe.changes and "Norouzi" in recipe.paper
        assert any(change.startswith(("epochs:", "schedule")) for change in recipe.changes)


def test_the_repository_folder_is_the_package_data_one_copy():
    root = ROOT / "recipes"
    assert root.resolve() == recipes_dir().resolve()
    assert sorted(p.name for p in root.glob("*.toml")) == sorted(f"{name}.toml" for name in PUBLISHED)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_recipe_follows_the_protocol(name):
    config = build_config(ROOT / "recipes" / f"{name}.toml")       # what `vaekit train --config` reads
    assert (config.dataset, config.val_size, config.val_fraction) == ("fashion-mnist", 10_000, None)
    assert (config.binarize, config.likelihood, config.arch, config.hidden) == ("dynamic", "bernoulli", "gated", [300, 300])
    assert (config.batch_size, config.patience) == (100, 50)
    assert config.epochs <= 2000
    schedule = (config.lr, config.lr_schedule, config.kl_warmup)
    if schedule != (5e-4, "constant", 100):   # a recipe may fit the hour by its schedule, and must say so
        changes = load_recipe(name).changes
        assert any(change.startswith("schedule") and f"{config.epochs} epochs" in change for change in changes)
    assert config.prior == PRIORS[name]
    if config.prior == "vamp":
        assert config.pseudo_inputs == 500
    if "hvae" in name:   # the paper's two levels of 40 each
        assert (config.model, config.latent_dim, config.options.top_latent_dim) == ("hvae", 80, 40)
    else:
        assert (config.model, config.latent_dim) == ("vae", 40)
    # the description table is not a training option, and the comment says what is changed
    text = (ROOT / "recipes" / f"{name}.toml").read_text()
    assert "[recipe]" in text and f"{PUBLISHED[name]:.2f}" in text and "Changes from the protocol" in text


def test_only_a_table_named_recipe_is_skipped(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('recipe = "vae"\n')
    with pytest.raises(ConfigError, match="unknown key 'recipe'"):
        build_config(file)


@pytest.fixture(scope="module")
def small_slice():
    from vaekit.data import load_dataset

    digits = load_dataset("digits")
    part = lambda split, n: Split(split.x[:n], split.y[:n])   # noqa: E731
    return Dataset(name="digits", train=part(digits.train, 120), val=part(digits.val, 40), test=part(digits.test, 40),
                   sample_shape=digits.sample_shape, class_names=digits.class_names, source=digits.source,
                   quantized_8bit=digits.quantized_8bit)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_recipe_trains_on_a_small_slice(name, small_slice, tmp_path):
    config = load_recipe(name).config(QUICK)
    result = train(config, small_slice, tmp_path / "run")
    assert result.history and np.isfinite(result.history[-1]["val_loss"])
    assert json.loads((tmp_path / "run" / "run.json").read_text())["config"]["arch"] == "gated"


def test_train_config_takes_a_recipe_file(tmp_path, capsys):
    code = main(["train", "--config", str(ROOT / "recipes" / "fashion-mnist-vae.toml"), "--dataset", "digits",
                 "--val-size", "50", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["arch"], saved["hidden"], saved["latent_dim"], saved["lr"]) == ("gated", [300, 300], 40, 1e-3)


def test_vaekit_recipes_lists_name_model_paper_and_number(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    for name, number in PUBLISHED.items():
        row = next(line for line in lines if line.split()[0] == name)
        assert f"{number:.2f}" in row and "Norouzi" in row
        assert ("hvae" if "hvae" in name else "vae") == row.split()[1]
        assert ("vamp prior" in row) == ("vamp" in name)
    assert main(["recipes", "fashion-mnist-vamp"]) == 0
    shown = capsys.readouterr().out
    assert "227.35" in shown and "changes from the protocol" in shown and "epochs:" in shown


def test_unknown_recipe_is_a_one_line_error(capsys, tmp_path):
    assert main(["reproduce", "fashion-mnist-nope", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaekit: error: unknown recipe 'fashion-mnist-nope'") and "\n" not in err
    assert not (tmp_path / "r").exists()


def test_reproduce_end_to_end_prints_both_numbers_and_the_time(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "fashion-mnist-vae", "--dataset", "digits", "--val-size", "50", "--epochs", "1",
                 "--iw-samples", "10", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    evaluation = json.loads((out / "eval.json").read_text())
    assert evaluation["iw_samples"] == 10 and evaluation["split"] == "test"
    published = next(line for line in printed.splitlines() if line.startswith("published"))
    ours = next(line for line in printed.splitlines() if line.startswith("vaekit"))
    assert "228.70" in published
    assert f"{evaluation['nll']:.2f}" in ours
    assert "time: training" in printed and "evaluation" in printed
    assert "not comparable with the paper" in printed                 # the quick check changed the recipe


def test_reproduce_evaluates_with_the_recipes_samples_by_default(tmp_path, monkeypatch):
    from vaekit.evaluation import evaluate as evaluation

    seen = {}

    def fake_evaluate(run, **kwargs):
        seen.update(kwargs)
        return {"nll": 230.0}

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    result = reproduce("fashion-mnist-vae", tmp_path / "run", overrides={**QUICK, "batch_size": 500})
    assert seen["iw_samples"] == 5000 and seen["split"] == "test"
    assert result.published == 228.70 and result.gap == pytest.approx(230.0 - 228.70)
    assert result.train_seconds > 0 and not result.faithful
