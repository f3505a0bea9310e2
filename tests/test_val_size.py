"""--val-size: a validation split of an absolute size (the VampPrior protocol: 10,000 of Fashion-MNIST's
60,000 training images), an alternative to --val-fraction, stored in the run and reproduced on reload.

The expected indices are computed here independently, from the documented rule: the seeded
permutation ``np.random.default_rng(seed).permutation(n)``, test first, then validation.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from test_data import write_idx_set
from vaekit.cli.app import main
from vaekit.data import load_dataset
from vaekit.data.splits import split_indices, split_sizes
from vaekit.errors import ConfigError, DataError
from vaekit.training.config import TrainConfig, build_config


def test_split_of_a_given_size_is_seeded_disjoint_and_complete():
    train, val, test = split_indices(100, seed=7, val_fraction=0.5, test_fraction=0.2, val_size=13)
    assert (len(train), len(val), len(test)) == (67, 13, 20)           # val_fraction is unused
    order = np.random.default_rng(7).permutation(100)
    np.testing.assert_array_equal(test, np.sort(order[:20]))
    np.testing.assert_array_equal(val, np.sort(order[20:33]))
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(100))
    again = split_indices(100, seed=7, val_fraction=0.5, test_fraction=0.2, val_size=13)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    # the protocol's sizes, on a training set with an official test set (test_fraction 0)
    assert split_sizes(60_000, 0.1, 0, val_size=10_000) == (50_000, 10_000, 0)


def test_out_of_range_sizes_are_one_line_errors():
    assert split_sizes(10, 0.1, 0.2, val_size=7) == (1, 7, 2)
    with pytest.raises(DataError, match="at most 7") as caught:
        split_sizes(10, 0.1, 0.2, val_size=8)
    assert "\n" not in str(caught.value)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError):
            split_sizes(10, 0.1, 0.2, val_size=bad)
    with pytest.raises(ConfigError, match="not both"):
        load_dataset("digits", val_fraction=0.2, val_size=100)
    with pytest.raises(DataError, match="at most"):
        load_dataset("digits", val_size=1797)


def test_idx_dataset_takes_the_validation_split_from_the_training_files(tmp_path):
    arrays = write_idx_set(tmp_path / "data" / "mnist")
    dataset = load_dataset("mnist", data_dir=tmp_path / "data", download=False, val_size=6)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (14, 6, 6)
    ids = {name: (dataset.split(name).x[:, 0, 0, 0] * 255).round().astype(int) for name in ("train", "val", "test")}
    expected_val = np.sort(np.random.default_rng(0).permutation(20)[:6])
    np.testing.assert_array_equal(np.sort(ids["val"]), arrays["train_images"][expected_val, 0, 0])
    assert not set(ids["train"]) & set(ids["val"])
    assert set(ids["train"]) | set(ids["val"]) == set(range(20))
    assert set(ids["test"]) == set(range(100, 106))


def test_config_takes_one_or_the_other():
    assert TrainConfig().resolved().val_fraction == 0.1
    cfg = TrainConfig.from_dict({"val-size": 10000}).resolved()
    assert (cfg.val_fraction, cfg.val_size) == (None, 10000)
    with pytest.raises(ConfigError, match="--val-fraction or --val-size, not both"):
        TrainConfig.from_dict({"val-size": 10000, "val-fraction": 0.2}).resolved()
    with pytest.raises(ConfigError, match="--val-size must be at least 1"):
        TrainConfig.from_dict({"val-size": 0}).resolved()
    with pytest.raises(ConfigError, match="must be int"):
        TrainConfig.from_dict({"val-size": 2.5})
    # an old run.json, written before val_size existed, still loads with its fraction
    old = TrainConfig.from_dict({"dataset": "digits", "val_fraction": 0.2}).resolved()
    assert (old.val_fraction, old.val_size) == (0.2, None)


def test_the_command_line_replaces_the_files_validation_split(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text("val-size = 500\n")
    assert build_config(file).val_size == 500
    cfg = build_config(file, {"val_fraction": 0.3})
    assert (cfg.val_fraction, cfg.val_size) == (0.3, None)


def test_cli_refuses_both_in_one_line(capsys, tmp_path):
    code = main(["train", "--dataset", "digits", "--val-fraction", "0.2", "--val-size", "100", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "vaekit: error: give --val-fraction or --val-size, not both"


def test_run_stores_the_size_and_reloads_the_same_split(tmp_path, capsys):
    from vaekit.training.run import config_dataset, open_run

    out = tmp_path / "run"
    code = main(["train", "--dataset", "digits", "--val-size", "300", "--hidden", "16", "--latent-dim", "2",
                 "--epochs", "1", "--batch-size", "256", "--device", "cpu", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["val_size"] == 300 and info["config"]["val_fraction"] is None
    assert info["data"]["n_val"] == 300
    assert json.loads((out / "config.json").read_text())["val_size"] == 300
    reloaded = config_dataset(open_run(out).config)
    direct = load_dataset("digits", val_size=300)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(reloaded.split(name).x, direct.split(name).x)
    assert len(reloaded.val) == 300 and len(reloaded.test) == 180   # digits' own test fraction, 0.1 of 1,797



def test_python_train_takes_a_size_and_it_replaces_a_configs_fraction(tmp_path):
    import vaekit

    x = np.random.default_rng(0).random((200, 4, 4)).astype(np.float32)
    base = TrainConfig(model="vae", arch="mlp", hidden=[8], latent_dim=2, epochs=1, device="cpu").resolved()
    assert base.val_fraction == 0.1
    vaekit.train(x, tmp_path / "run", config=base, val_size=30, batch_size=64)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["config"]["val_size"], info["config"]["val_fraction"]) == (30, None)
    assert info["data"]["n_val"] == 30 and info["data"]["n_test"] == 20
