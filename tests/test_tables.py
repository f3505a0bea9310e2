"""Tables and real-valued arrays: loading, one-line errors, standardisation that round-trips, and
likelihoods reported in the original units."""
from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from vaekit.data import load_dataset
from vaekit.data.scaling import Scaling
from vaekit.errors import ConfigError, DataError

pd = pytest.importorskip("pandas")


def write_table(tmp_path, frame, name="t.csv"):
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def iris_like(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "length": rng.normal(5, 1, n), "width": rng.normal(3, 0.5, n), "depth": rng.normal(100, 20, n),
        "species": np.array(["setosa", "virginica", "versicolor"])[rng.integers(0, 3, n)],
        "note": [f"row{i}" for i in range(n)],
    })


def test_csv_default_columns_string_labels_and_standardisation(tmp_path, caplog):
    frame = iris_like()
    with caplog.at_level(logging.WARNING):
        data = load_dataset(write_table(tmp_path, frame), label_column="species")
    assert data.feature_names == ("length", "width", "depth")
    assert "left out non-numeric column 'note'" in caplog.text
    assert data.class_names == ["setosa", "versicolor", "virginica"]
    assert data.is_table and data.sample_shape == (3,)
    # standardised on the training split: mean 0 and std 1 there, and the scaling inverts exactly
    assert np.allclose(data.train.x.mean(0), 0, atol=1e-5) and np.allclose(data.train.x.std(0), 1, atol=1e-5)
    rows = np.concatenate([data.train.x, data.val.x, data.test.x])
    original = data.scaling.inverse(rows)
    assert np.allclose(np.sort(original[:, 2]), np.sort(frame["depth"].to_numpy()), atol=1e-4)
    assert data.scaling.log_jacobian == pytest.approx(float(np.log(data.scaling.scale).sum()))
    names = [data.class_names[i] for i in np.concatenate([data.train.y, data.val.y, data.test.y])]
    assert sorted(names) == sorted(frame["species"])


def test_parquet_and_explicit_columns(tmp_path):
    pytest.importorskip("pyarrow")
    path = write_table(tmp_path, iris_like(), "t.parquet")
    data = load_dataset(path, columns=["depth", "length"])
    assert data.feature_names == ("depth", "length") and data.class_names is None


@pytest.mark.parametrize("change, options, expected", [
    (lambda f: f.assign(width=f.width.where(f.index != 6)), {}, r"t\.csv: column 'width' has a missing value in row 7 "
                                                                r"\(line 8 of the file\) \(1 row in all\).*--missing drop"),
    (lambda f: f.assign(depth=f.depth.where(f.index != 3, np.inf)), {}, r"column 'depth' has an infinite value in row 4"),
    (lambda f: f, {"columns": ["length", "note"]}, r"column 'note' is not numeric \(value 'row0'\)"),
    (lambda f: f.assign(width=1.0), {"columns": ["length", "width"]}, r"column 'width' is constant \(1 in every row\)"),
    (lambda f: f, {"columns": ["length", "height"]}, r"has no column 'height' \(columns: 'length', 'width'"),
    (lambda f: f, {"label_column": "kind"}, r"no column 'kind' for --label-column"),
    (lambda f: f, {"columns": ["length", "species"], "label_column": "species"}, "both the label and a feature"),
    (lambda f: f[["note", "species"]], {}, "has no numeric column to use as a feature"),
])
def test_bad_tables_get_one_line_errors_naming_the_column(tmp_path, change, options, expected):
    path = write_table(tmp_path, change(iris_like()))
    with pytest.raises(DataError, match=expected) as caught:
        load_dataset(path, **options)
    assert "\n" not in str(caught.value)


def test_missing_drop_and_constant_columns_dropped_with_a_warning(tmp_path, caplog):
    frame = iris_like().assign(flat=7.0)
    frame.loc[[2, 5], "length"] = np.nan
    with caplog.at_level(logging.WARNING):
        data = load_dataset(write_table(tmp_path, frame), missing="drop")
    assert len(data.train) + len(data.val) + len(data.test) == len(frame) - 2
    assert "dropped 2 rows with missing values" in caplog.text and "left out constant column 'flat'" in caplog.text
    assert data.feature_names == ("length", "width", "depth")


def test_unreadable_table_is_a_data_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read .*t.parquet as a Parquet table"):
        load_dataset(str(path))


def test_real_valued_npy_is_standardised_per_feature(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)) * [1, 10, 100, 1000] + [0, -5, 50, 1e4]
    np.save(tmp_path / "x.npy", x)
    data = load_dataset(str(tmp_path / "x.npy"))
    assert data.feature_names == ("x0", "x1", "x2", "x3")
    assert np.allclose(data.train.x.std(0), 1, atol=1e-4)
    train_rows = data.scaling.inverse(data.train.x)          # back in the original units: rows of x
    assert np.allclose(data.scaling.scale, train_rows.std(0), rtol=1e-5)
    assert np.allclose(data.scaling.mean, train_rows.mean(0), rtol=1e-5, atol=1e-3)
    assert data.scaling.scale.shape == (4,) and data.scaling.scale[3] / data.scaling.scale[0] > 300
    # arrays in [0, 1] are kept as they are, and --standardize off refuses real values
    np.save(tmp_path / "u.npy", rng.uniform(size=(50, 4)))
    assert load_dataset(str(tmp_path / "u.npy")).scaling is None
    with pytest.raises(DataError, match="with --standardize off they must lie in"):
        load_dataset(str(tmp_path / "x.npy"), standardize="off")


def test_image_shaped_real_arrays_share_one_scale(tmp_path):
    x = np.random.default_rng(2).normal(size=(40, 1, 4, 4)) * 50
    np.save(tmp_path / "img.npy", x)
    data = load_dataset(str(tmp_path / "img.npy"))
    assert data.scaling.scale.shape == () and data.feature_names is None
    assert data.scaling.log_jacobian == pytest.approx(16 * math.log(float(data.scaling.scale)))


def test_scaling_round_trips_through_a_dict():
    x = np.random.default_rng(3).normal(size=(20, 3)) * [1, 2, 3]
    scaling = Scaling.fit(x, per_feature=True)
    again = Scaling.from_dict(json.loads(json.dumps(scaling.to_dict())), (3,))
    assert np.array_equal(again.mean, scaling.mean) and np.array_equal(again.scale, scaling.scale)
    assert np.allclose(again.inverse(again.transform(x)), x, atol=1e-5)
    with pytest.raises(DataError, match="damaged"):
        Scaling.from_dict({"mean": [0, 0, 0], "scale": [1, 0, 1]}, (3,))


def test_sklearn_tables_are_named_datasets():
    cancer = load_dataset("breast-cancer")
    wine = load_dataset("wine")
    assert cancer.sample_shape == (30,) and cancer.class_names == ["malignant", "benign"]
    assert len(cancer.train) + len(cancer.val) + len(cancer.test) == 569
    assert wine.sample_shape == (13,) and len(wine.feature_names) == 13 and wine.feature_names[0] == "alcohol"


def test_tables_default_to_a_gaussian_likelihood_and_refuse_bernoulli(tmp_path):
    from vaekit.training.config import TrainConfig
    from vaekit.training.trainer import train

    assert TrainConfig(dataset="wine").resolved().likelihood == "gaussian"
    assert TrainConfig(dataset="x.CSV").resolved().likelihood == "gaussian"
    assert TrainConfig(dataset="digits").resolved().likelihood == "bernoulli"
    x = np.random.default_rng(4).normal(size=(60, 3)) * 5
    from vaekit.data.arrays import dataset_from_arrays

    data = dataset_from_arrays(x)
    config = TrainConfig(dataset="<array>", epochs=1, hidden=[8], latent_dim=2, device="cpu")
    with pytest.raises(ConfigError, match="holds real values .* use --likelihood gaussian"):
        train(config, data, None)


def test_cli_refuses_a_bad_table_in_one_line_and_writes_nothing(tmp_path, capsys):
    from vaekit.cli.app import main

    frame = iris_like()
    frame.loc[4, "width"] = np.nan
    path = write_table(tmp_path, frame)
    out = tmp_path / "run"
    assert main(["train", "--dataset", path, "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vaekit: error: t.csv: column 'width' has a missing value in row 5 (line 6 of the file) (1 row in all): "
                   "fill it in, or pass --missing drop to drop such rows"]
    assert not out.exists()


def test_cli_trains_a_table_and_warns_about_a_short_budget(tmp_path, capsys):
    from vaekit.cli.app import main

    path = write_table(tmp_path, iris_like(200))
    out = tmp_path / "run"
    assert main(["train", "--dataset", path, "--label-column", "species", "--missing", "drop", "--out", str(out),
                 "--epochs", "2", "--hidden", "8", "--latent-dim", "2"]) == 0
    err = capsys.readouterr().err
    assert "has 160 training rows, so 2 epochs are only 10 optimiser steps; a table usually needs a few thousand: try --epochs 800" in err
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["likelihood"] == "gaussian" and info["config"]["batch_size"] == 32
    assert info["data"]["feature_names"] == ["length", "width", "depth"]
    assert len(info["data"]["scaling"]["mean"]) == 3 and info["data"]["class_names"] == ["setosa", "versicolor", "virginica"]
    import vaekit

    model = vaekit.load(out)
    assert model.feature_names == ["length", "width", "depth"]
    decoded = model.to_data_units(model.decode(__import__("torch").zeros(1, 2))).detach().numpy()
    assert 50 < decoded[0, 2] < 150          # 'depth' is about 100 in the table's units, not ~0


def test_values_near_the_float64_limit_standardise_to_finite_values():
    """Squares and differences of values near 1e308 overflow; the scaling is computed so that they do not."""
    from vaekit.data.arrays import dataset_from_arrays

    x = np.array([[1e308, -1e308], [-1e308, 1e308], [1e308, 1e308], [0, -1e308], [5, 3]] * 4)
    data = dataset_from_arrays(x, val_fraction=0.2, test_fraction=0.2)
    assert all(np.isfinite(data.split(part).x).all() for part in ("train", "val", "test"))
    assert np.allclose(data.scaling.inverse(data.train.x[:1]) / 1e308, np.round(data.scaling.inverse(data.train.x[:1]) / 1e308),
                       atol=1e-6)


def test_a_value_beyond_float32_after_standardising_is_a_one_line_error():
    """Found by the loader property test: a held-out value 3e38 from a training split with SD 0.43."""
    x = np.ones((3, 2, 2), np.float32)
    x[0, 0, 0], x[1, 0, 0] = 3e38, 0.0
    from vaekit.data.scaling import Scaling

    scaling = Scaling.fit(x[1:2].astype(np.float64), per_feature=False)
    with pytest.raises(DataError, match=r"lie 6.93e\+38 standard deviations from the training split.s mean"):
        scaling.transform(x[:1])
