"""Disentanglement metrics on constructed codes whose right answer is known.

The ground truth is a tiny synthetic factor model whose "observation" is the factor vector itself, so
a representation is any function of the factors: the identity (a perfect axis-aligned code), a
rotation of it (every dimension mixes factors), or noise (a code that knows nothing).
"""
from __future__ import annotations

import numpy as np
import pytest

from vaekit.disentanglement import SCORES, SimulatedFactors, measure_disentanglement
from vaekit.disentanglement.dci import dci_from_codes, dci_from_importance
from vaekit.disentanglement.information import discretize, entropy, mig_from_codes, mutual_information
from vaekit.disentanglement.intervention import factor_vae_score
from vaekit.disentanglement.sap import sap_from_codes, squared_correlation
from vaekit.errors import ConfigError

SIZES = (4, 5, 6)
POINTS = 400


def scaled(factors: np.ndarray) -> np.ndarray:
    """Factor indices mapped to [0, 1], float32 'observations'."""
    return (factors / (np.asarray(SIZES) - 1)).astype(np.float32)


GROUND_TRUTH = SimulatedFactors(SIZES, scaled)
ROTATION = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]


def perfect(x):
    return x


def rotated(x):
    return x @ ROTATION.T


def noise(x):
    # Independent of the factors, but a deterministic function of the batch (a fresh draw per call).
    return np.random.default_rng(int(x.sum() * 1e3) % 2**32).normal(size=(len(x), 3))


def _measure(representation):
    return measure_disentanglement(representation, GROUND_TRUTH, seed=0, points=POINTS)


# One module-scoped fixture per code, so no single test pays for all three.
@pytest.fixture(scope="module")
def perfect_scores():
    return _measure(perfect)


@pytest.fixture(scope="module")
def rotated_scores():
    return _measure(rotated)


@pytest.fixture(scope="module")
def noise_scores():
    return _measure(noise)


def test_a_perfect_code_scores_one_everywhere(perfect_scores):
    for name in SCORES:
        assert 0.95 <= perfect_scores[name] <= 1.0 + 1e-12, (name, perfect_scores[name])


def test_a_rotated_code_loses_disentanglement_but_keeps_information(perfect_scores, rotated_scores):
    for name in ("mig", "sap", "dci_disentanglement", "dci_completeness"):
        assert rotated_scores[name] < perfect_scores[name] - 0.25, (name, rotated_scores[name])
    assert rotated_scores["dci_informativeness"] > 0.9     # the information is all there, only mixed


def test_a_code_that_ignores_the_factors_scores_chance(noise_scores):
    s = noise_scores
    chance = 1 / len(SIZES)
    assert abs(s["beta_vae"] - chance) < 0.1
    assert abs(s["factor_vae"] - chance) < 0.12
    assert s["mig"] < 0.05 and s["sap"] < 0.05
    assert s["dci_disentanglement"] < 0.15 and s["dci_completeness"] < 0.15
    assert abs(s["dci_informativeness"] - np.mean([1 / k for k in SIZES])) < 0.1


def test_scores_are_seeded():
    # Two binary factors keep the gradient-boosted trees cheap (one tree per stage).
    truth = SimulatedFactors((2, 2), lambda f: f.astype(np.float32))
    first, second, other = (measure_disentanglement(noise, truth, seed=seed, points=60) for seed in (0, 0, 1))
    assert all(first[name] == second[name] for name in SCORES)
    assert any(first[name] != other[name] for name in SCORES)


def test_mutual_information_matches_an_independent_computation():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, 3000)
    b = (a + rng.integers(0, 3, 3000)) % 7
    assert mutual_information(a, b) == pytest.approx(mutual_info_score(a, b), rel=1e-12)
    assert entropy(a) == pytest.approx(mutual_info_score(a, a), rel=1e-12)
    assert mutual_information(a, a) == pytest.approx(np.log(5), abs=0.01)   # ~uniform over 5 values


def test_discretize_uses_equal_width_bins_over_each_columns_range():
    codes = np.array([[0.0, 10.0], [0.5, 20.0], [0.99, 30.0], [1.0, 40.0]])
    assert discretize(codes, bins=4).tolist() == [[0, 0], [2, 1], [3, 2], [3, 3]]


def test_mig_of_a_45_degree_rotation_is_zero_for_the_mixed_factors():
    # z1 = v1 + v2 and z2 = v1 - v2 carry the same information about each of v1, v2: no gap.
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, size=(20000, 2))
    codes = np.stack([factors[:, 0] + factors[:, 1], factors[:, 0] - factors[:, 1]], axis=1).astype(float)
    result = mig_from_codes(codes, factors, bins=7)
    assert result["score"] == pytest.approx(0.0, abs=0.01)
    # The same factors with an axis-aligned code: each factor fully known from one dimension.
    assert mig_from_codes(factors.astype(float), factors, bins=4)["score"] == pytest.approx(1.0, abs=0.01)


def test_dci_from_known_importance_matrices():
    d, c, _, _ = dci_from_importance(np.eye(3))
    assert d == pytest.approx(1.0) and c == pytest.approx(1.0)
    d, c, _, _ = dci_from_importance(np.ones((3, 3)))
    assert d == pytest.approx(0.0, abs=1e-12) and c == pytest.approx(0.0, abs=1e-12)
    # Two codes, two factors: code 0 explains factor 0 alone, code 1 both equally.
    r = np.array([[0.6, 0.0], [0.2, 0.2]])
    rho = np.array([0.6, 0.4]) / 1.0
    expected_d = rho @ np.array([1.0, 0.0])                     # entropy base 2 of (1/2, 1/2) is 1
    p0 = np.array([0.75, 0.25])
    expected_c = 0.8 * (1 + (p0 * np.log2(p0)).sum()) + 0.2 * 1.0   # factor 1: code 1 alone
    d, c, _, _ = dci_from_importance(r)
    assert d == pytest.approx(expected_d) and c == pytest.approx(expected_c)
    d, c, _, _ = dci_from_importance(np.zeros((2, 2)))          # no importance at all
    assert d == pytest.approx(0.0) and c == pytest.approx(0.0)


def test_dci_fits_factors_in_threads_with_the_one_thread_result():
    """The factors' boosted trees run in parallel; each is seeded alone, so the numbers are the same."""
    rng = np.random.default_rng(3)
    factors = rng.integers(0, [2, 5, 3], size=(300, 3))
    codes = np.column_stack([factors[:, 1] + rng.normal(0, 0.3, 300), factors[:, 0] + factors[:, 2], rng.normal(size=300)])
    train, held = slice(0, 200), slice(200, 300)
    one = dci_from_codes(codes[train], factors[train], codes[held], factors[held], seed=1, workers=1)
    three = dci_from_codes(codes[train], factors[train], codes[held], factors[held], seed=1, workers=3)
    assert one == three
    importance = np.array(one["importance_matrix"])
    assert importance[0, 1] > 0.8                                  # factor 1 is read from code 0
    assert (importance[2] < importance[:2].max(axis=0)).all()     # code 2, noise, never leads


def test_sap_for_a_categorical_factor_is_one_minus_chance():
    rng = np.random.default_rng(0)
    train_v, eval_v = rng.integers(0, 2, size=(2000, 1)), rng.integers(0, 2, size=(1000, 1))
    train_z = np.c_[train_v[:, 0] + 0.0, rng.normal(size=2000)]
    eval_z = np.c_[eval_v[:, 0] + 0.0, rng.normal(size=1000)]
    result = sap_from_codes(train_z, train_v, eval_z, eval_v, ("categorical",))
    assert result["score_matrix"][0][0] == pytest.approx(1.0)
    assert result["score"] == pytest.approx(0.5, abs=0.05)     # the noise dimension gets chance, 1/2


def test_squared_correlation_is_the_r2_of_least_squares():
    rng = np.random.default_rng(0)
    z = rng.normal(size=500)
    v = 2 * z + rng.normal(size=500)
    slope, intercept = np.polyfit(z, v, 1)
    residual = v - (slope * z + intercept)
    r2 = 1 - residual.var() / v.var()
    assert squared_correlation(z, v) == pytest.approx(r2, rel=1e-10)
    assert squared_correlation(np.ones(10), np.arange(10.0)) == 0.0


def test_factor_vae_ignores_collapsed_dimensions():
    """A constant unit is pruned; a unit of tiny noise is kept (it has a variance) but never wins the vote."""
    def with_dead_unit(x):
        return np.c_[x, np.full(len(x), 3.0), 1e-6 * np.random.default_rng(len(x)).normal(size=len(x))]

    result = factor_vae_score(with_dead_unit, GROUND_TRUTH, rng=np.random.default_rng(0), num_train=200,
                              num_eval=100, num_variance_estimate=500)
    assert result["active_dims"] == 4 and result["score"] == pytest.approx(1.0)


def test_factor_vae_score_of_a_perfect_code_does_not_depend_on_the_scales_of_its_dimensions():
    """Each dimension is one factor at its own scale (1e-3, 1 and 1e3, as factors measured in different
    units): still a perfect code. A pruning threshold relative to the largest variance used to drop the
    small-scale dimension and score it 2/3."""
    scales = np.array([1e-3, 1.0, 1e3])
    result = factor_vae_score(lambda x: x * scales, GROUND_TRUTH, rng=np.random.default_rng(0), num_train=300,
                              num_eval=150, num_variance_estimate=500)
    assert result["active_dims"] == 3
    assert result["score"] == 1.0 and result["train_accuracy"] == 1.0
    # Exactly the unscaled code's result from the same random stream: the score is scale-free.
    unscaled = factor_vae_score(perfect, GROUND_TRUTH, rng=np.random.default_rng(0), num_train=300,
                                num_eval=150, num_variance_estimate=500)
    assert unscaled == result


def test_bad_representations_and_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="one code row per observation"):
        measure_disentanglement(lambda x: x[:1], GROUND_TRUTH, points=20)
    with pytest.raises(ConfigError, match="NaN"):
        measure_disentanglement(lambda x: np.full_like(x, np.nan), GROUND_TRUTH, points=20)
    with pytest.raises(ConfigError, match="at least 10"):
        measure_disentanglement(perfect, GROUND_TRUTH, points=5)
    with pytest.raises(ConfigError, match="factor type"):
        SimulatedFactors((2, 2), scaled, factor_types=("ordinal", "circular"))


def _factor_dataset():
    """Flat 7-value observations, one-hot of a 3-valued and a 4-valued factor, as a vaekit Dataset."""
    from vaekit.data import Dataset, Split

    def render(factors):
        return np.concatenate([np.eye(3)[factors[:, 0]], np.eye(4)[factors[:, 1]]], axis=1).astype(np.float32)

    truth = SimulatedFactors((3, 4), render, factor_names=("a", "b"), factor_types=("categorical", "ordinal"))
    rng = np.random.default_rng(0)
    parts = []
    for n in (240, 30, 30):
        factors = rng.integers(0, (3, 4), size=(n, 2))
        parts.append(Split(render(factors), factors[:, 0], factors=factors))
    return Dataset(name="one-hot", train=parts[0], val=parts[1], test=parts[2], sample_shape=(7,),
                   class_names=["0", "1", "2"], source="memory", quantized_8bit=True, ground_truth=truth)


def test_evaluate_model_adds_the_scores_for_data_with_factors():
    import vaekit
    from vaekit.evaluation.evaluate import evaluate_model

    dataset = _factor_dataset()
    trained = vaekit.train(dataset, model="vae", hidden=[16], latent_dim=2, epochs=1, batch_size=32, device="cpu")
    result = evaluate_model(trained.model, dataset, iw_samples=2, regularity=False, disentanglement=True,
                            disentanglement_points=40)
    scores = result["disentanglement"]
    assert scores["factor_names"] == ["a", "b"] and scores["settings"]["points"] == 40
    for name in SCORES:
        assert 0.0 <= scores[name] <= 1.0 + 1e-9
    assert evaluate_model(trained.model, dataset, iw_samples=2, regularity=False)["disentanglement"] is None


def test_cli_refuses_disentanglement_on_data_without_factors(tmp_path):
    from conftest import run_cli

    import vaekit

    run = tmp_path / "run"
    vaekit.train("digits", run, model="vae", hidden=[16], latent_dim=2, epochs=1, device="cpu")
    proc = run_cli("evaluate", str(run), "--disentanglement", "--no-regularity", "--iw-samples", "2")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "vaekit: error: --disentanglement needs a data set generated from known factors (dsprites, dsprites-small); "
        "digits has none"]
    assert not (run / "eval.json").exists()


def test_each_metric_can_be_recomputed_alone_with_its_own_points():
    from vaekit.disentanglement import metric_rng, mig

    truth = SimulatedFactors((2, 2), lambda f: f.astype(np.float32))
    full = measure_disentanglement(noise, truth, seed=3, points=60, points_per_metric={"mig": 200})
    alone = mig(noise, truth, rng=metric_rng(3, "mig"), num_train=200)
    assert full["mig"] == alone["score"]
    assert full["settings"]["points_per_metric"] == {"beta_vae": 60, "factor_vae": 60, "mig": 200, "dci": 60, "sap": 60}
    with pytest.raises(ConfigError, match="unknown metric"):
        measure_disentanglement(noise, truth, points=60, points_per_metric={"modularity": 100})
