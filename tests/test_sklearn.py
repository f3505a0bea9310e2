"""vaekit.sklearn: the estimators pass scikit-learn's own estimator checks, work in Pipeline and
GridSearchCV, and their numbers agree with vaekit's evaluation and with independent computations
(probabilistic PCA's exact likelihood, the change of units, the data's own moments)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from vaekit.data import Dataset, Split
from vaekit.errors import ConfigError
from vaekit.evaluation.evaluate import evaluate_model
from vaekit.sklearn import Autoencoder, VariationalAutoencoder


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """These networks are tiny: one thread runs them faster than two threads contending for the
    shared cores of a busy machine (a 20-row fit took 18x longer with two here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_gaussian(n=400, dims=5, latent=2, noise=0.1, seed=0):
    """Rows x = W z + mu + noise, z ~ N(0, I): data a linear VAE (probabilistic PCA) models exactly,
    in units far from standardised (offsets of 100, scales from 1 to 1000)."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(latent, dims))
    x = rng.normal(size=(n, latent)) @ weights + noise * rng.normal(size=(n, dims))
    return 100 + x * np.logspace(0, 3, dims)


# Few epochs: the checks test the API on tiny data, not how well the models learn.
@parametrize_with_checks([VariationalAutoencoder(epochs=5, random_state=0), Autoencoder(epochs=5, random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_in_a_pipeline_the_codes_feed_a_classifier():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(3, 6))
    y = np.repeat(np.arange(3), 60)
    x = (centres[y] + rng.normal(size=(180, 6))) * [1, 10, 100, 1, 10, 1000]
    order = rng.permutation(180)
    train, test = order[:120], order[120:]
    pipeline = make_pipeline(VariationalAutoencoder(latent_dim=2, epochs=40, random_state=0), LogisticRegression())
    accuracy = pipeline.fit(x[train], y[train]).score(x[test], y[test])
    assert accuracy > 0.9
    assert pipeline[0].transform(x[test]).shape == (60, 2)


def test_grid_search_picks_the_latent_size_of_the_data():
    """Two independent factors, each behind three columns: a second latent dimension is worth
    about 3.5 nats a row (probabilistic PCA's cross-validated likelihood says so too)."""
    rng = np.random.default_rng(0)
    weights = np.array([[1.0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]])
    x = (rng.normal(size=(240, 2)) @ weights + 0.3 * rng.normal(size=(240, 6))) * [1, 10, 100, 1, 10, 100] + 50
    search = GridSearchCV(VariationalAutoencoder(epochs=30, lr=1e-2, random_state=0), {"latent_dim": [1, 2]},
                          cv=3).fit(x)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores))
    assert search.best_params_ == {"latent_dim": 2}
    assert scores[1] > scores[0] + 1.0
    assert search.best_estimator_.transform(x).shape == (240, 2)


def test_score_is_minus_the_nelbo_of_vaekits_evaluation():
    x = linear_gaussian(n=150)
    estimator = VariationalAutoencoder(epochs=10, iw_samples=50, random_state=0).fit(x)
    standardised = estimator.scaling_.transform(x)
    rows = Split(standardised, None)
    dataset = Dataset(name="rows", train=rows, val=rows, test=rows, sample_shape=(5,), class_names=None,
                      source="memory", quantized_8bit=False, scaling=estimator.scaling_, feature_names=tuple("abcde"))
    evaluation = evaluate_model(estimator.model_, dataset, split="test", iw_samples=50, regularity=False)
    assert estimator.score(x) == pytest.approx(-evaluation.nelbo, rel=1e-9)


def test_a_linear_vae_scores_close_below_the_exact_ppca_likelihood():
    """The ELBO bounds the log-likelihood of a linear-Gaussian model, which probabilistic PCA's
    maximum-likelihood fit maximises on the training rows: the score must lie just below it.
    scikit-learn's PCA.score is that exact likelihood; on standardised rows it is moved into the
    original units by minus the sum of the log scales."""
    x = linear_gaussian(n=400, noise=0.5)
    estimator = VariationalAutoencoder(arch="linear", epochs=60, lr=1e-2, iw_samples=200, random_state=0).fit(x)
    mean, scale = x.mean(0), x.std(0)
    ppca = PCA(2).fit((x - mean) / scale).score((x - mean) / scale) - np.log(scale).sum()
    score = estimator.score(x)
    assert ppca - 0.3 < score < ppca + 0.02


def test_rescaled_data_give_the_same_codes_and_a_score_moved_by_the_log_jacobian():
    x = linear_gaussian(n=60)
    first = VariationalAutoencoder(epochs=5, random_state=0).fit(x)
    second = VariationalAutoencoder(epochs=5, random_state=0).fit(10 * x - 3)
    np.testing.assert_allclose(second.transform(10 * x - 3), first.transform(x), atol=1e-6)
    np.testing.assert_allclose(second.inverse_transform(first.transform(x)), 10 * first.inverse_transform(first.transform(x)) - 3,
                               rtol=1e-6)
    # p(10 x - 3) = p(x) / 10^D: the score, a log density per row, drops by D log 10.
    assert second.score(10 * x - 3) == pytest.approx(first.score(x) - 5 * math.log(10), abs=1e-6)


def test_the_autoencoder_reconstructs_in_the_original_units_and_scores_minus_the_mse():
    x = linear_gaussian(n=200, latent=2, noise=0.01)
    estimator = Autoencoder(latent_dim=2, arch="linear", epochs=60, lr=3e-2, random_state=0).fit(x)
    reconstructed = estimator.inverse_transform(estimator.transform(x))
    explained = 1 - ((x - reconstructed) ** 2).mean(0) / x.var(0)
    assert np.all(explained > 0.99)                                  # every column, whatever its scale
    assert estimator.score(x) == pytest.approx(-np.mean((x - reconstructed) ** 2), rel=1e-12)


def test_samples_have_the_datas_mean_and_spread_and_follow_random_state():
    x = linear_gaussian(n=400, noise=0.5)
    estimator = VariationalAutoencoder(arch="linear", epochs=60, lr=1e-2, random_state=0).fit(x)
    samples = estimator.sample(4000, random_state=0)
    assert samples.shape == (4000, 5)
    std = x.std(0)
    assert np.all(np.abs(samples.mean(0) - x.mean(0)) < 0.1 * std)
    assert np.all(np.abs(samples.std(0) / std - 1) < 0.1)
    np.testing.assert_array_equal(estimator.sample(3, random_state=1), estimator.sample(3, random_state=1))
    assert not np.allclose(estimator.sample(3, random_state=1), estimator.sample(3, random_state=2))
    with pytest.raises(ValueError, match="n_samples"):
        estimator.sample(0)


@pytest.mark.parametrize("cls", [VariationalAutoencoder, Autoencoder])
def test_a_constant_column_is_kept_and_decoded_to_its_value(cls):
    x = linear_gaussian(n=80, dims=4)
    x[:, 2] = 7.5
    estimator = cls(epochs=100, random_state=0).fit(x)
    assert estimator.n_features_in_ == 4 and estimator.scaling_.scale[2] == 1.0
    assert estimator.transform(x).shape == (80, 2)
    decoded = estimator.inverse_transform(estimator.transform(x))
    assert decoded.shape == (80, 4)
    assert np.abs(decoded[:, 2] - 7.5).max() < 0.1
    assert np.isfinite(estimator.score(x))


@pytest.mark.parametrize("method", ["transform", "inverse_transform", "score", "sample"])
def test_an_unfitted_estimator_says_so(method):
    with pytest.raises(NotFittedError):
        getattr(VariationalAutoencoder(), method)(*([] if method == "sample" else [np.zeros((2, 2))]))


def test_an_int_random_state_makes_fit_deterministic_and_other_seeds_differ():
    x = linear_gaussian(n=60)
    codes = [VariationalAutoencoder(epochs=3, random_state=seed).fit(x).transform(x) for seed in (4, 4, 5)]
    np.testing.assert_array_equal(codes[0], codes[1])
    assert not np.allclose(codes[0], codes[2])
    VariationalAutoencoder(epochs=1, random_state=np.random.RandomState(0)).fit(x)    # a RandomState is accepted


@pytest.mark.parametrize("params, name", [
    ({"latent_dim": 0}, "latent_dim"), ({"hidden": ()}, "hidden"), ({"hidden": (8, -1)}, "hidden"),
    ({"arch": "conv"}, "arch"), ({"epochs": 1.5}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"lr": -1}, "lr"),
    ({"beta": -0.1}, "beta"), ({"beta": np.array([1.0])}, "beta"), ({"sigma": "huge"}, "sigma"), ({"sigma": 0}, "sigma"),
    ({"sigma": np.array([1.0, 4.0])}, "sigma"), ({"standardize": True}, "standardize"),
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"iw_samples": 0}, "iw_samples"), ({"device": "tpu"}, "device"),
])
def test_a_bad_hyperparameter_is_a_value_error_that_names_it(params, name):
    x = linear_gaussian(n=20)
    with pytest.raises(ValueError, match=f"^{name}=") as raised:
        VariationalAutoencoder(**params).fit(x)
    assert isinstance(raised.value, ConfigError)        # and a vaekit error, as the CLI's are


def test_validation_fraction_holds_rows_out_of_training_and_the_scaling():
    x = linear_gaussian(n=40)
    x[:, 0] = 2.0 ** np.arange(40)          # the sum of any set of rows of column 0 says which rows they are
    everything = VariationalAutoencoder(epochs=2, random_state=0).fit(x)
    held_out = VariationalAutoencoder(epochs=2, validation_fraction=0.25, random_state=0).fit(x)
    np.testing.assert_allclose(everything.scaling_.mean, x.mean(0))
    trained_on = int(round(held_out.scaling_.mean[0] * 30))     # the scaling is the mean of 30 rows...
    assert bin(trained_on).count("1") == 30 and trained_on < 2 ** 40    # ...30 distinct rows of the 40
    assert [record["epoch"] for record in held_out.history_] == [1, 2] and "val_loss" in held_out.history_[0]
    assert held_out.history_[0]["val_loss"] != everything.history_[0]["val_loss"]
    with pytest.raises(ValueError, match="validation_fraction"):
        VariationalAutoencoder(validation_fraction=0.5).fit(x[:1])


def test_dataframe_columns_name_the_features_and_pandas_output_names_the_codes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(linear_gaussian(n=50, dims=3), columns=["height", "weight", "age"])
    estimator = VariationalAutoencoder(epochs=2, random_state=0).set_output(transform="pandas").fit(frame)
    assert list(estimator.feature_names_in_) == ["height", "weight", "age"]
    assert estimator.model_.feature_names == ("height", "weight", "age")
    codes = estimator.transform(frame)
    assert list(codes.columns) == ["variationalautoencoder0", "variationalautoencoder1"]
    assert list(Autoencoder(latent_dim=3, epochs=1).fit(frame).get_feature_names_out()) == [
        "autoencoder0", "autoencoder1", "autoencoder2"]
