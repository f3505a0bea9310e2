"""The reproduction recipes (vaekit/recipes/*.toml), `vaekit recipes` and `vaekit reproduce`.

The protocols and the published numbers below are copied from the issues, independently of the recipe
files, which must agree with them: issue 12 for Fashion-MNIST's test NLL (Norouzi et al. 2020, following
Tomczak & Welling 2018), and the dSprites issue for MIG (beta-TCVAE about 0.45, as compiled in Table 1 of
InfoGAN-CR, Lin et al. 2020; FactorVAE and the plain VAE have no published number). The full runs are
benchmarks, not tests: here each Fashion-MNIST recipe trains one epoch on a small slice of `digits`, and
each dSprites recipe on a few real dSprites images rendered from a small grid of factors, without the
dSprites cache.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from vaekit.cli.app import main
from vaekit.data import Dataset, Split
from vaekit.errors import ConfigError
from vaekit.evaluation.reproduce import reproduce
from vaekit.training.config import build_config
from vaekit.training.recipes import SCORES, list_recipes, load_recipe, recipes_dir
from vaekit.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]
FASHION = {"fashion-mnist-vae": 228.70, "fashion-mnist-vamp": 227.35, "fashion-mnist-hvae": 227.37,
           "fashion-mnist-hvae-vamp": 226.72, "fashion-mnist-hvae-vamp-iw": 226.72}
DSPRITES = {"dsprites-beta-tcvae": 0.45, "dsprites-factor-vae": None, "dsprites-vae": None}   # MIG
PUBLISHED = {**FASHION, **DSPRITES}
PRIORS = {"fashion-mnist-vae": "standard", "fashion-mnist-vamp": "vamp", "fashion-mnist-hvae": "standard",
          "fashion-mnist-hvae-vamp": "vamp", "fashion-mnist-hvae-vamp-iw": "vamp"}
# The dSprites issue's models and their options (beta-TCVAE: alpha = gamma = 1).
DSPRITES_MODELS = {"dsprites-beta-tcvae": ("beta-tcvae", {"alpha": 1.0, "beta": 6.0, "gamma": 1.0}),
                   "dsprites-factor-vae": ("factor-vae", {"gamma": 40.0, "disc_lr": 1e-4}),
                   "dsprites-vae": ("vae", {"beta": 1.0})}
# A quick check on data every machine has: digits (1,797 8x8 images), a small validation split.
QUICK = {"dataset": "digits", "val_size": 50, "epochs": 1}


def test_the_shipped_recipes_are_the_issues_with_their_published_numbers():
    recipes = {recipe.name: recipe for recipe in list_recipes()}
    assert {name: r.published for name, r in recipes.items()} == PUBLISHED
    for name in FASHION:
        recipe = recipes[name]
        assert (recipe.score, recipe.iw_samples, recipe.disentanglement_points) == ("nll", 5000, None)
        assert recipe.changes and "Norouzi" in recipe.paper
        assert any(change.startswith(("epochs:", "schedule")) for change in recipe.changes)
    for name in DSPRITES:
        recipe = recipes[name]
        assert (recipe.score, recipe.iw_samples, recipe.disentanglement_points) == ("mig", None, 10_000)
        assert recipe.changes and "Chen et al. 2018" in recipe.protocol
    assert "Chen, Li, Grosse & Duvenaud" in recipes["dsprites-beta-tcvae"].paper
    assert "InfoGAN-CR" in recipes["dsprites-beta-tcvae"].paper and "Table 1" in recipes["dsprites-beta-tcvae"].paper
    assert "Kim & Mnih" in recipes["dsprites-factor-vae"].paper


def test_the_direction_follows_the_score():
    assert SCORES["nll"].lower_is_better and not SCORES["mig"].lower_is_better
    assert {name: s.budget_key for name, s in SCORES.items()} == {"nll": "iw-samples", "mig": "disentanglement-points"}


def test_the_repository_folder_is_the_package_data_one_copy():
    root = ROOT / "recipes"
    assert root.resolve() == recipes_dir().resolve()
    assert sorted(p.name for p in root.glob("*.toml")) == sorted(f"{name}.toml" for name in PUBLISHED)


@pytest.mark.parametrize("name", sorted(FASHION))
def test_each_fashion_mnist_recipe_follows_the_protocol(name):
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


def test_the_iw_recipe_is_the_hour_recipe_but_for_its_objective_and_epochs():
    """fashion-mnist-hvae-vamp-iw says it is fashion-mnist-hvae-vamp trained on the 4-sample bound for
    400 epochs: nothing else may drift between the two files."""
    hour, iw = (dataclasses.asdict(build_config(ROOT / "recipes" / f"{name}.toml"))
                for name in ("fashion-mnist-hvae-vamp", "fashion-mnist-hvae-vamp-iw"))
    assert (hour["options"].pop("iw_k"), iw["options"].pop("iw_k")) == (1, 4)
    assert (hour.pop("epochs"), iw.pop("epochs")) == (250, 400)
    assert hour == iw
    assert load_recipe("fashion-mnist-hvae-vamp-iw").without_bf16 is None   # fp32 elsewhere, the same epochs


@pytest.mark.parametrize("name", sorted(DSPRITES))
def test_each_dsprites_recipe_follows_vaekits_protocol(name):
    config = build_config(ROOT / "recipes" / f"{name}.toml")
    assert (config.dataset, config.val_size, config.val_fraction) == ("dsprites-small", 5000, None)
    assert (config.likelihood, config.binarize, config.arch, config.latent_dim) == ("bernoulli", "none", "mlp", 10)
    assert (config.batch_size, config.lr, config.lr_schedule, config.seed) == (64, 1e-3, "constant", 0)
    model, options = DSPRITES_MODELS[name]
    assert config.model == model
    assert {key: getattr(config.options, key) for key in options} == options
    # The sizes the CPU budget sets live in the keys and in the changes list, which must agree.
    changes = " ".join(load_recipe(name).changes)
    assert f"{config.epochs} epochs" in changes
    widths = (f"{len(config.hidden)} hidden layers of {config.hidden[0]}" if len(set(config.hidden)) == 1
              else "-".join(map(str, config.hidden)))
    assert widths in changes
    text = (ROOT / "recipes" / f"{name}.toml").read_text()
    assert "[recipe]" in text and "vaekit's own CPU-budget dSprites protocol" in text
    assert ("published =" in text) == (PUBLISHED[name] is not None)


def test_the_dsprites_recipes_train_alike_but_for_the_model():
    """The baselines compare with beta-TCVAE only if data, networks and schedule are the same."""
    configs = {name: dataclasses.asdict(build_config(ROOT / "recipes" / f"{name}.toml")) for name in DSPRITES}
    for config in configs.values():
        config.pop("model"), config.pop("options")
    first = configs.pop("dsprites-beta-tcvae")
    assert all(config == first for config in configs.values())
    text = (ROOT / "recipes" / "dsprites-beta-tcvae.toml").read_text()
    assert "about 0.45" in text and "Lin, Thekumparampil, Fanti & Oh" in text and "Locatello" in text


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


@pytest.fixture(scope="module")
def dsprites_slice():
    """Real dSprites images, rendered for a small grid of factor values (3 shapes x 2 scales x 2 orientations
    x 4 x 4 positions, 192 images), as a data set with known factors named like the recipes' one. Its
    ground truth looks images up in that grid, so the disentanglement scores need no dSprites cache."""
    from vaekit.data import dsprites
    from vaekit.disentanglement import SimulatedFactors

    chosen = (np.arange(3), np.array([0, 5]), np.array([0, 10]), np.array([0, 10, 21, 31]), np.array([0, 10, 21, 31]))
    sizes = tuple(len(values) for values in chosen)
    grid = np.stack(np.meshgrid(*[np.arange(size) for size in sizes], indexing="ij"), axis=-1).reshape(-1, len(sizes))
    images = dsprites.render(np.stack([values[grid[:, k]] for k, values in enumerate(chosen)], axis=1))
    table = images[:, None].astype(np.float32)

    def observations(factors):
        return table[np.ravel_multi_index(tuple(np.asarray(factors).T), sizes)]

    truth = SimulatedFactors(sizes, observations, factor_names=dsprites.FACTOR_NAMES,
                             factor_types=dsprites.FACTOR_TYPES)
    rng = np.random.default_rng(0)
    parts = []
    for n in (128, 32, 32):
        factors = rng.integers(0, sizes, size=(n, len(sizes)))
        parts.append(Split(observations(factors), factors[:, 0], factors=factors))
    return Dataset(name="dsprites-small", train=parts[0], val=parts[1], test=parts[2], sample_shape=(1, 64, 64),
                   class_names=list(dsprites.SHAPE_NAMES), source="memory", quantized_8bit=True, ground_truth=truth)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_each_recipe_trains_on_a_small_slice(name, small_slice, dsprites_slice, tmp_path):
    recipe = load_recipe(name)
    if recipe.dataset == "dsprites-small":
        config, data = recipe.config({"epochs": 1, "device": "cpu"}), dsprites_slice
    else:
        config, data = recipe.config(QUICK), small_slice
    result = train(config, data, tmp_path / "run")
    assert result.history and np.isfinite(result.history[-1]["val_loss"])
    saved = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (saved["arch"], saved["model"]) == (recipe.values["arch"], recipe.values["model"])


@pytest.fixture
def tiny_dsprites(dsprites_slice, monkeypatch):
    """`reproduce` and `evaluate` load dsprites-small as the small slice above, and skip the PCA baseline:
    on 4,096-value images it is an eigendecomposition of a 4,096 x 4,096 matrix (half a minute on 2 cores),
    which these tests do not look at."""
    from vaekit.evaluation import evaluate as evaluation
    from vaekit.training import run

    def slice_for(config, **kwargs):
        assert config.dataset == "dsprites-small"
        return dsprites_slice

    monkeypatch.setattr(run, "config_dataset", slice_for)
    monkeypatch.setattr(evaluation, "pca_baseline_mse", lambda train_x, eval_x, components: float("nan"))
    return dsprites_slice


def test_train_config_takes_a_recipe_file(tmp_path, capsys):
    code = main(["train", "--config", str(ROOT / "recipes" / "fashion-mnist-vae.toml"), "--dataset", "digits",
                 "--val-size", "50", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["arch"], saved["hidden"], saved["latent_dim"], saved["lr"]) == ("gated", [300, 300], 40, 1e-3)


def test_vaekit_recipes_lists_name_model_score_number_and_paper(capsys):
    assert main(["recipes"]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].split()[:5] == ["name", "model", "score", "published", "paper"]
    for name, number in PUBLISHED.items():
        row = next(line for line in lines if line.split()[0] == name)
        assert f"  {'NLL' if name in FASHION else 'MIG'}  " in row
        assert f"  {number:.2f}  " in row if number is not None else "  —  " in row
        if name in FASHION:
            assert "Norouzi" in row and ("hvae" if "hvae" in name else "vae") == row.split()[1]
            assert ("vamp prior" in row) == ("vamp" in name)
        else:
            assert row.split()[1] == DSPRITES_MODELS[name][0]
    # The footer says what each score is and which way is better; it no longer calls every number an NLL.
    assert "lower is better" in printed and "higher is better" in printed and "mutual information gap" in printed
    assert "Published numbers are test NLL" not in printed
    assert main(["recipes", "fashion-mnist-vamp"]) == 0
    shown = capsys.readouterr().out
    assert "227.35" in shown and "changes from the protocol" in shown and "schedule, to fit an hour" in shown and "S = 5000" in shown
    assert main(["recipes", "dsprites-factor-vae"]) == 0
    shown = capsys.readouterr().out
    assert "MIG, higher is better" in shown and "10000 disentanglement points" in shown
    assert next(line for line in shown.splitlines() if line.startswith("published:")).split()[1] == "—"


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
    hardware = json.loads((out / "run.json").read_text())["hardware"]       # where the times were measured
    timed = next(line for line in printed.splitlines() if line.startswith("time: training"))
    assert timed.endswith(f" on {hardware['name']} (cpu, {hardware['threads']} threads, fp32)")
    assert "not comparable with the paper" in printed                 # the quick check changed the recipe


def test_reproduce_evaluates_with_the_recipes_samples_by_default(tmp_path, monkeypatch):
    from vaekit.evaluation import evaluate as evaluation

    seen = {}

    def fake_evaluate(run, **kwargs):
        seen.update(kwargs)
        return {"nll": 230.0}

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    result = reproduce("fashion-mnist-vae", tmp_path / "run", overrides={**QUICK, "batch_size": 500})
    assert seen["iw_samples"] == 5000 and seen["split"] == "test" and not seen.get("disentanglement")
    assert (result.score, result.value, result.lower_is_better) == ("nll", 230.0, True)
    assert result.published == 228.70 and result.gap == pytest.approx(230.0 - 228.70) and result.worse
    assert result.train_seconds > 0 and not result.faithful


def test_reproduce_scores_a_mig_recipe_by_its_disentanglement_evaluation(tiny_dsprites, tmp_path):
    out = tmp_path / "run"
    result = reproduce("dsprites-beta-tcvae", out, disentanglement_points=10, overrides={"epochs": 1, "device": "cpu"})
    evaluation = json.loads((out / "eval.json").read_text())
    assert (result.score, result.lower_is_better, result.published) == ("mig", False, 0.45)
    assert 0.0 <= result.value <= 1.0 and result.value == evaluation["disentanglement"]["mig"]
    assert result.gap == pytest.approx(result.value - 0.45) and result.worse == (result.value < 0.45)
    assert (result.disentanglement_points, result.iw_samples) == (10, None) and not result.faithful
    # The disentanglement evaluation, with the NLL cheap (one sample) and no regularity scores.
    assert evaluation["disentanglement"]["settings"]["points"] == 10 and evaluation["iw_samples"] == 1
    assert evaluation["continuity"] is None and evaluation["split"] == "test"
    assert result.train_seconds > 0 and result.eval_seconds > 0


def _reproduction(score, value, published, **budget):
    from vaekit.evaluation.reproduce import Reproduction

    recipe = load_recipe("fashion-mnist-vae" if score == "nll" else "dsprites-beta-tcvae")
    budget = budget or {"iw_samples": recipe.iw_samples, "disentanglement_points": recipe.disentanglement_points}
    return Reproduction(recipe=recipe, run="runs/x", score=score, value=value, published=published,
                        lower_is_better=SCORES[score].lower_is_better, train_seconds=1.0, eval_seconds=1.0,
                        overrides={}, **{"iw_samples": None, "disentanglement_points": None, **budget})


@pytest.mark.parametrize("score, value, published, worse", [
    ("nll", 230.0, 228.70, True), ("nll", 227.0, 228.70, False),       # NLL: lower is better
    ("mig", 0.30, 0.45, True), ("mig", 0.50, 0.45, False),             # MIG: higher is better
])
def test_worse_follows_the_scores_direction_in_the_result_and_the_printout(score, value, published, worse):
    from vaekit.cli import render

    result = _reproduction(score, value, published)
    assert result.worse == worse and result.faithful
    ours = next(line for line in render.reproduction(result).splitlines() if line.startswith("vaekit"))
    assert f"{value - published:+.2f}" in ours and ("(worse)" in ours) == worse
    assert ("nats" in ours) == (score == "nll")


def test_a_baseline_without_a_published_number_has_no_gap():
    from vaekit.cli import render

    result = _reproduction("mig", 0.12, None)
    assert result.gap is None and not result.worse
    printed = render.reproduction(result).splitlines()
    assert next(line for line in printed if line.startswith("published")).split()[1] == "—"
    assert next(line for line in printed if line.startswith("vaekit")).split()[1:] == ["0.12", "10000", "points"]


def test_reproduce_prints_the_mig_beside_the_published_one(tiny_dsprites, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "dsprites-beta-tcvae", "--epochs", "1", "--device", "cpu",
                 "--disentanglement-points", "10", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    mig = json.loads((out / "eval.json").read_text())["disentanglement"]["mig"]
    lines = printed.splitlines()
    assert "MIG" in next(line for line in lines if line.strip().startswith("MIG"))
    published = next(line for line in lines if line.startswith("published"))
    ours = next(line for line in lines if line.startswith("vaekit"))
    assert published.split()[1] == "0.45" and "Chen" in published
    assert ours.split()[1] == f"{mig:.2f}" and "10 points" in ours and f"{mig - 0.45:+.2f}" in ours
    assert ("(worse)" in ours) == (mig < 0.45) and "nats" not in ours
    assert "not comparable with the paper" in printed and "10 points instead of 10000 points" in printed


def test_reproduce_prints_a_baselines_number_without_a_gap(tiny_dsprites, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["reproduce", "dsprites-vae", "--epochs", "1", "--device", "cpu", "--disentanglement-points", "10",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    mig = json.loads((out / "eval.json").read_text())["disentanglement"]["mig"]
    assert "no published number" in printed.splitlines()[1]
    published = next(line for line in printed.splitlines() if line.startswith("published"))
    ours = next(line for line in printed.splitlines() if line.startswith("vaekit"))
    assert published.split()[1] == "—"
    assert ours.split()[1:] == [f"{mig:.2f}", "10", "points"] and "worse" not in ours


@pytest.mark.parametrize("option", [["--iw-samples", "10"], ["--disentanglement-points", "10"]])
def test_the_other_scores_budget_is_a_one_line_error(option, tmp_path, capsys):
    name = "dsprites-vae" if option[0] == "--iw-samples" else "fashion-mnist-vae"
    assert main(["reproduce", name, *option, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"vaekit: error: {option[0]} applies to recipes scored by") and "\n" not in err
    assert not (tmp_path / "r").exists()


RECIPE_TABLE = """title = "t"\npaper = "p"\nprotocol = "q"\nmetric = "m"\nchanges = ["c"]\n"""


@pytest.mark.parametrize("table, message", [
    ('score = "elbo"\npublished = 1.0\niw-samples = 10\n', "unknown score 'elbo'"),
    ('score = "mig"\npublished = 0.3\n', "lacks disentanglement-points (score mig needs disentanglement-points)"),
    ('published = 200.0\n', "lacks iw-samples (score nll needs iw-samples)"),
    ('score = "mig"\npublished = "0.45"\ndisentanglement-points = 100\n', "published must be a number"),
    ('score = "mig"\npublished = true\ndisentanglement-points = 100\n', "published must be a number"),
    ('score = "mig"\ndisentanglement-points = 1.5\n', "disentanglement-points must be a positive integer"),
    ('iw-samples = 10\ndisentanglement-points = 100\n', "disentanglement-points does not apply to score nll"),
    ('score = "mig"\ndisentanglement-points = 100\nchanges = "one"\n', "changes must be a list"),
])
def test_a_bad_recipe_table_is_a_one_line_error(table, message, tmp_path, capsys):
    file = tmp_path / "bad.toml"
    about = RECIPE_TABLE if "changes =" not in table else RECIPE_TABLE.replace('changes = ["c"]\n', "")
    file.write_text('model = "vae"\n\n[recipe]\n' + about + table)
    assert main(["recipes", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vaekit: error: ") and message in err and "\n" not in err


def test_published_may_be_left_out_and_score_defaults_to_nll(tmp_path):
    file = tmp_path / "baseline.toml"
    file.write_text('model = "vae"\n\n[recipe]\n' + RECIPE_TABLE + "iw-samples = 10\n")
    recipe = load_recipe(str(file))
    assert (recipe.score, recipe.published, recipe.iw_samples, recipe.disentanglement_points) == ("nll", None, 10, None)


# -- the staged MIG curve (python -m vaekit.bench.disentanglement_curve) -----------------------------------
def _short_tcvae(tmp_path: Path, epochs: int) -> Path:
    """dsprites-beta-tcvae with fewer epochs, as a recipe file."""
    text = (ROOT / "recipes" / "dsprites-beta-tcvae.toml").read_text()
    assert "\nepochs = 30\n" in text
    path = tmp_path / f"tcvae-{epochs}.toml"
    path.write_text(text.replace("\nepochs = 30\n", f"\nepochs = {epochs}\n"))
    return path


def _stages(path: Path) -> list[dict]:
    return json.loads(path.read_text())["stages"]


def test_a_mig_curve_cut_short_resumes_to_the_uninterrupted_one(tiny_dsprites, tmp_path, monkeypatch):
    from vaekit.bench import disentanglement_curve as staged

    recipe = _short_tcvae(tmp_path, epochs=3)
    whole = staged.curve(str(recipe), tmp_path / "whole", every=1, points=40, json_path=tmp_path / "whole.json")
    assert [row["epoch"] for row in whole] == [1, 2, 3] and _stages(tmp_path / "whole.json") == whole
    batch = load_recipe("dsprites-beta-tcvae").values["batch-size"]
    assert json.loads((tmp_path / "whole.json").read_text())["batch_size"] == batch
    assert len({row["val_loss"] for row in whole}) == 3

    # Killed while scoring the second stage: the run holds two epochs, the curve one stage.
    score, calls = staged.score_stage, []

    def killed_on_the_second(model, ground_truth, **kwargs):
        calls.append(model)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return score(model, ground_truth, **kwargs)

    monkeypatch.setattr(staged, "score_stage", killed_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        staged.curve(str(recipe), tmp_path / "cut", every=1, points=40, json_path=tmp_path / "cut.json")
    assert [row["epoch"] for row in _stages(tmp_path / "cut.json")] == [1]
    assert staged.trained_epochs(tmp_path / "cut") == 2

    monkeypatch.setattr(staged, "score_stage", score)
    resumed = staged.curve(str(recipe), tmp_path / "cut", every=1, points=40, json_path=tmp_path / "cut.json",
                           resume_run=True)
    same = ("epoch", "step", "val_loss", "mig", "mig_per_factor")
    assert [[row[key] for key in same] for row in resumed] == [[row[key] for key in same] for row in whole]
    assert _stages(tmp_path / "cut.json") == resumed
    # Nothing left to train: resuming a finished curve returns it as it is.
    assert staged.curve(str(recipe), tmp_path / "cut", every=1, points=40, json_path=tmp_path / "cut.json",
                        resume_run=True) == resumed


def test_a_curve_resumes_only_its_own_json(tiny_dsprites, tmp_path, monkeypatch, capsys):
    from vaekit.bench import disentanglement_curve as staged

    recipe = _short_tcvae(tmp_path, epochs=2)
    staged.curve(str(recipe), tmp_path / "run", every=1, points=40, json_path=tmp_path / "curve.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"recipe": "dsprites-vae", "points": 40, "stages": []}))
    monkeypatch.setattr("sys.argv", ["disentanglement_curve", str(recipe), "--every", "1", "--points", "40",
                                     "--out", str(tmp_path / "run"), "--json", str(other), "--resume"])
    with pytest.raises(SystemExit) as stopped:
        staged.main()
    message = str(stopped.value)
    assert message.startswith("disentanglement_curve: error: ") and "\n" not in message
    assert "'dsprites-vae'" in message and "'tcvae-2'" in message
    assert json.loads(other.read_text())["stages"] == []        # nothing written over
