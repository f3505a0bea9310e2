"""Latent-space regularity: the Fréchet distance against closed forms, continuity on decoders whose
Lipschitz behaviour is known, the classifier cache, determinism, and the AE-versus-VAE contrast."""
from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from vaekit.cache import CACHE_ENV
from vaekit.evaluation import classifier as clf
from vaekit.data import Dataset, Split
from vaekit.nn.distributions import DiagonalGaussian, PointMass
from vaekit.nn.priors import StandardNormal
from vaekit.evaluation.classifier import density_and_coverage, knn_radii, manifold_precision, manifold_recall
from vaekit.evaluation.regularity import (continuity, frechet_distance, frechet_distance_from_moments, measure_regularity,
                               path_changes, random_direction_changes, random_unit_directions)


@pytest.fixture(scope="session")
def classifier_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vaekit-cache")


@pytest.fixture(autouse=True)
def isolated_cache(classifier_cache, monkeypatch):
    """Never touch the user's real cache; one session-wide folder so the digits classifier trains once."""
    monkeypatch.setenv(CACHE_ENV, str(classifier_cache))


@pytest.fixture(scope="session")
def digits_classifier(digits_dataset, classifier_cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(classifier_cache))
        return clf.load_or_train_classifier(digits_dataset)


def _dataset(x, y, name="toy", split_at=(0.6, 0.8)):
    n = len(x)
    a, b = int(split_at[0] * n), int(split_at[1] * n)
    part = lambda s: Split(x[s], None if y is None else y[s])  # noqa: E731
    return Dataset(name=name, train=part(slice(0, a)), val=part(slice(a, b)), test=part(slice(b, n)),
                   sample_shape=tuple(x.shape[1:]), class_names=None, source="memory", quantized_8bit=False)


def _toy_labelled(n=300, seed=0):
    """Three classes of 4x4 images, each a noisy copy of its own template: easy to classify."""
    rng = np.random.default_rng(seed)
    templates = rng.random((3, 1, 4, 4))
    y = rng.integers(0, 3, n)
    x = np.clip(templates[y] + 0.1 * rng.normal(size=(n, 1, 4, 4)), 0, 1).astype(np.float32)
    return _dataset(x, y.astype(np.int64))


class LinearDecoderModel(nn.Module):
    """encode(x) = code_scale * (flat(x) @ A) (a point), decode(z) = 0.5 + (z / code_scale) @ W^T:
    linear, so the image change per step is exactly ||W step|| / (code_scale sqrt(D))."""

    variational = generative = False
    scaling = None          # data in [0, 1], as the model contract's default (vaekit.models.base)

    def __init__(self, dim_in, latent, dim_out, code_scale=1.0, seed=0):
        super().__init__()
        self.prior = StandardNormal(latent)
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.randn(dim_in, latent, generator=g) / math.sqrt(dim_in), requires_grad=False)
        self.w = nn.Parameter(0.01 * torch.randn(dim_out, latent, generator=g), requires_grad=False)
        self.code_scale, self.latent_dim, self.sample_shape = code_scale, latent, (dim_out,)

    def encode(self, x):
        return PointMass(self.code_scale * (x.flatten(1) @ self.a))

    def decode(self, z):
        return 0.5 + (z / self.code_scale) @ self.w.T

    def sample_prior(self, n, *, generator=None):
        return torch.randn(n, self.latent_dim, generator=generator)


class ReplayModel(nn.Module):
    """A "decoder" that ignores z and returns the given real images in turn (one full pass = ``images``)."""

    variational = generative = True
    scaling = None          # data in [0, 1], as the model contract's default (vaekit.models.base)

    def __init__(self, images, latent_dim=2):
        super().__init__()
        self.prior = StandardNormal(latent_dim)
        self.images = torch.as_tensor(images)
        self.latent_dim, self.sample_shape, self.served = latent_dim, tuple(images.shape[1:]), 0

    def encode(self, x):
        mean = torch.stack([part.mean(1) for part in x.flatten(1).chunk(self.latent_dim, dim=1)], dim=1)
        return DiagonalGaussian(mean, torch.zeros_like(mean))

    def decode(self, z):
        index = (self.served + torch.arange(len(z))) % len(self.images)
        self.served += len(z)
        return self.images[index]

    def sample_prior(self, n, *, generator=None):
        return torch.randn(n, self.latent_dim, generator=generator)


# -- the Fréchet distance ------------------------------------------------------------------------
def test_frechet_distance_matches_the_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))                 # shared eigenvectors: S1, S2 commute
    d1, d2 = rng.uniform(0.1, 3, 6), rng.uniform(0.1, 3, 6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()
    value = frechet_distance_from_moments(mu1, (q * d1) @ q.T, mu2, (q * d2) @ q.T)
    assert value == pytest.approx(expected, rel=1e-10)
    assert frechet_distance_from_moments(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_agrees_with_scipy_sqrtm_on_full_covariances():
    rng = np.random.default_rng(1)
    for dim in (1, 3, 20):
        a, b = rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim))
        s1, s2 = a @ a.T + 0.01 * np.eye(dim), b @ b.T
        mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
        brute = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
        assert frechet_distance_from_moments(mu1, s1, mu2, s2) == pytest.approx(brute, rel=1e-8)


def test_frechet_distance_of_sample_sets():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8 * np.trace(np.cov(a.T)))
    shift = rng.normal(size=8)
    assert frechet_distance(a, a + shift) == pytest.approx((shift ** 2).sum(), rel=1e-7)
    # Fewer samples than dimensions: singular covariances still give a finite, non-negative value.
    few = rng.normal(size=(5, 30))
    assert 0 <= frechet_distance(few, few[::-1] + 1.0) < np.inf


def test_manifold_precision_counts_samples_inside_the_knn_balls():
    real = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    radii = knn_radii(real, k=1)
    np.testing.assert_allclose(radii, [1, 1, 1, 1, math.hypot(4, 4)])
    assert manifold_precision(real, radii, real) == 1.0
    samples = np.array([[0.5, 0.5], [20.0, 20.0], [5.0, 7.0], [-3.0, 0.0]])
    assert manifold_precision(real, radii, samples) == 0.5        # the first two inside, the last two out


def test_recall_density_and_coverage_match_a_direct_count():
    """Against scipy's distances and explicit counts (Kynkäänniemi et al. 2019 recall with k = 3;
    Naeem et al. 2020 density and coverage, eq. 2 and 3, with k = 5)."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.4
    radius5 = np.sort(cdist(real, real), axis=1)[:, 5]               # column 0 is the point itself
    inside = cdist(fake, real) <= radius5                             # (fake, real): Y_j in B(X_i, r_i)
    density, coverage = density_and_coverage(real, knn_radii(real, 5), fake, k=5)
    assert density == pytest.approx(inside.sum() / (5 * len(fake)), rel=1e-12)
    assert coverage == pytest.approx(inside.any(axis=0).mean(), rel=1e-12)
    fake_radius3 = np.sort(cdist(fake, fake), axis=1)[:, 3]
    recall = np.mean([any(np.linalg.norm(x - y) <= r for y, r in zip(fake, fake_radius3)) for x in real])
    assert manifold_recall(real, fake, k=3) == pytest.approx(recall, rel=1e-12)


def test_coverage_of_samples_like_the_data_is_near_its_expectation():
    """Naeem et al.: for samples from the real distribution, as many as the real points, coverage is
    about 1 - 1/2^k (0.969 for k = 5), density about 1."""
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(1000, 4)), rng.normal(size=(1000, 4))
    density, coverage = density_and_coverage(real, knn_radii(real, 5), fake)
    assert coverage == pytest.approx(1 - 1 / 2**5, abs=0.03)
    assert density == pytest.approx(1.0, abs=0.15)


def test_collapsed_samples_win_precision_but_not_coverage():
    """Real features: ten well-separated modes. Good samples come from all ten; collapsed ones from one
    mode, or all at one real point. Precision (completeness) cannot tell them apart; coverage can."""
    rng = np.random.default_rng(2)
    centres = 10 * rng.normal(size=(10, 8))

    def draw(n, modes):
        return centres[rng.choice(modes, n)] + rng.normal(size=(n, 8))

    real = draw(1000, np.arange(10))
    radii3, radii5 = knn_radii(real), knn_radii(real, 5)
    samples = {"good": draw(1000, np.arange(10)), "one mode": draw(1000, [3]), "one point": np.repeat(real[:1], 1000, 0)}
    precision = {name: manifold_precision(real, radii3, f) for name, f in samples.items()}
    coverage = {name: density_and_coverage(real, radii5, f)[1] for name, f in samples.items()}
    recall = {name: manifold_recall(real, f) for name, f in samples.items()}
    assert min(precision.values()) > 0.8 and precision["one point"] == 1.0, precision
    assert precision["one mode"] >= precision["good"] - 0.05, precision       # no worse than the good samples
    assert coverage["good"] > 0.9 and recall["good"] > 0.8, (coverage, recall)
    assert coverage["one mode"] < 0.15 and recall["one mode"] < 0.15, (coverage, recall)
    assert coverage["one point"] < 0.02 and recall["one point"] < 0.01, (coverage, recall)   # only real[0] itself


# -- continuity ----------------------------------------------------------------------------------
def test_random_direction_change_of_a_linear_decoder_is_its_gain():
    model = LinearDecoderModel(10, 3, 50)
    z = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    scale = torch.tensor([0.5, 1.0, 2.0])
    directions = random_unit_directions(40, 3, torch.Generator().manual_seed(1))
    per_std, per_raw = random_direction_changes(model, z, scale, directions, eps=0.1)
    w = model.w.double()
    expected = (w @ (scale.double() * directions.double()).T).norm(dim=0).numpy() / math.sqrt(50)
    np.testing.assert_allclose(per_std, expected, rtol=1e-4)
    raw_gain = (w @ directions_raw(scale, directions).T).norm(dim=0).numpy() / math.sqrt(50)
    np.testing.assert_allclose(per_raw, raw_gain, rtol=1e-4)


def directions_raw(scale, directions):
    d = scale.double() * directions.double()
    return d / d.norm(dim=1, keepdim=True)


def test_path_changes_of_a_linear_decoder_are_even_and_exact():
    model = LinearDecoderModel(10, 4, 30)
    g = torch.Generator().manual_seed(3)
    start, end, scale = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), torch.rand(4, generator=g) + 0.5
    per_std, per_raw = path_changes(model, start, end, scale, steps=8)
    delta = (end - start).double()
    gain = (model.w.double() @ delta.T).norm(dim=0).numpy() / math.sqrt(30)
    np.testing.assert_allclose(per_std, np.repeat((gain / (delta / scale.double()).norm(dim=1).numpy())[:, None], 8, 1), rtol=1e-4)
    np.testing.assert_allclose(per_raw, np.repeat((gain / delta.norm(dim=1).numpy())[:, None], 8, 1), rtol=1e-4)


def test_standardised_continuity_ignores_the_arbitrary_scale_of_codes():
    """The same decoder with codes 100x larger: standardised numbers equal, raw ones 100x smaller."""
    x = np.random.default_rng(4).random((200, 10)).astype(np.float32)
    small, large = LinearDecoderModel(10, 3, 20), LinearDecoderModel(10, 3, 20, code_scale=100.0)
    a = continuity(small, x, pairs=100, paths=20, steps=4, seed=0)
    b = continuity(large, x, pairs=100, paths=20, steps=4, seed=0)
    for key in ("random_mean", "random_p95", "path_mean", "path_p95", "path_cliff"):
        assert b[key] == pytest.approx(a[key], rel=1e-3), key
    assert b["random_mean_raw"] == pytest.approx(a["random_mean_raw"] / 100, rel=1e-3)
    assert a["path_cliff"] == pytest.approx(1.0, abs=1e-3)                  # a linear decoder has no cliffs


# -- the classifier and its cache ----------------------------------------------------------------
@pytest.fixture
def quick_classifier(monkeypatch):
    """The toy data need far fewer steps than the recipe's minimum."""
    monkeypatch.setattr(clf, "MIN_STEPS", 60)


def test_classifier_cache_loads_instead_of_retraining(tmp_path, monkeypatch, quick_classifier):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    dataset = _toy_labelled()
    first = clf.load_or_train_classifier(dataset)
    assert first.meta["cached"] is False and first.meta["test_accuracy"] > 0.9
    path = clf.classifier_path(dataset)
    assert path.parent == tmp_path / "classifiers" and path.is_file()
    assert not list(path.parent.glob("*.tmp"))

    def refuse(*args, **kwargs):
        raise AssertionError("retrained although a valid cache file exists")

    monkeypatch.setattr(clf, "train_classifier", refuse)
    second = clf.load_or_train_classifier(dataset)
    assert second.meta["cached"] is True and second.meta["fingerprint"] == first.meta["fingerprint"]
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key])


def test_classifier_trains_under_inference_mode(quick_classifier):
    """evaluate_model runs under torch.inference_mode; the first evaluation trains the classifier there."""
    dataset = _toy_labelled()
    with torch.inference_mode():
        trained = clf.train_classifier(dataset)
    assert trained.meta["test_accuracy"] > 0.9
    assert torch.equal(trained.state_dict()["head.weight"], clf.train_classifier(dataset).state_dict()["head.weight"])


def test_corrupt_cache_file_is_retrained(tmp_path, monkeypatch, caplog, quick_classifier):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    dataset = _toy_labelled()
    clf.load_or_train_classifier(dataset)
    path = clf.classifier_path(dataset)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError):
        clf.read_classifier(path)
    with caplog.at_level(logging.WARNING, logger="vaekit.evaluation.classifier"):
        again = clf.load_or_train_classifier(dataset)
    assert again.meta["cached"] is False and "unusable" in caplog.text
    assert clf.read_classifier(path, again.meta["fingerprint"]).meta["test_accuracy"] == again.meta["test_accuracy"]


def test_fingerprint_follows_the_training_data():
    dataset = _toy_labelled()
    base = clf.dataset_fingerprint(dataset)
    assert clf.dataset_fingerprint(_toy_labelled()) == base
    x = dataset.train.x.copy()
    x[0, 0, 0, 0] += 0.5 / 255
    changed = Dataset(name=dataset.name, train=Split(x, dataset.train.y), val=dataset.val, test=dataset.test,
                      sample_shape=dataset.sample_shape, class_names=None, source="memory", quantized_8bit=False)
    assert clf.dataset_fingerprint(changed) != base
    renamed = Dataset(name="other", train=dataset.train, val=dataset.val, test=dataset.test,
                      sample_shape=dataset.sample_shape, class_names=None, source="memory", quantized_8bit=False)
    assert clf.dataset_fingerprint(renamed) != base


def test_digits_classifier_is_accurate(digits_classifier):
    assert digits_classifier.meta["test_accuracy"] > 0.9
    assert digits_classifier.meta["architecture"]["input_shape"] == [1, 8, 8]


# -- completeness, fd and the whole block --------------------------------------------------------
def test_real_images_as_samples_reach_the_references(digits_dataset, digits_classifier):
    """A "decoder" returning real images: its completeness, confidence and fd are the real-data ones."""
    opts = dict(gmm=False, classifier=digits_classifier, pairs=20, paths=5)
    train_x, test_x = digits_dataset.train.x, digits_dataset.test.x
    as_train = measure_regularity(ReplayModel(train_x), digits_dataset, samples=len(train_x), **opts)
    details = as_train["regularity"]
    assert as_train["completeness"] == pytest.approx(details["completeness_real"], abs=1e-12)
    assert as_train["fd"] == pytest.approx(details["fd_real"], rel=1e-5)       # float32 features
    assert 0.5 < details["completeness_real"] < 1
    _, confidence, _ = digits_classifier.outputs(train_x)
    assert details["confidence"] == pytest.approx(confidence.mean(), abs=1e-12)
    as_test = measure_regularity(ReplayModel(test_x), digits_dataset, samples=len(test_x), **opts)
    assert as_test["regularity"]["confidence"] == pytest.approx(as_test["regularity"]["confidence_real"], abs=1e-12)
    assert as_test["completeness"] == 1.0 and as_test["fd"] == pytest.approx(0.0, abs=1e-6)


def test_a_collapsed_model_scores_low_on_the_headline(digits_dataset, digits_classifier):
    """A "decoder" that turns every code into the same real test image is on the manifold every time
    (completeness 1, the number that used to be the headline), and reaches almost none of the real
    images' neighbourhoods (coverage). Real images as samples cover as real images do."""
    opts = dict(gmm=False, classifier=digits_classifier, pairs=20, paths=5)
    test_x, train_x = digits_dataset.test.x, digits_dataset.train.x
    collapsed = measure_regularity(ReplayModel(test_x[:1]), digits_dataset, samples=len(test_x), **opts)
    assert collapsed["completeness"] == 1.0
    assert collapsed["coverage"] < 0.05 and collapsed["regularity"]["recall"] < 0.01
    good = measure_regularity(ReplayModel(train_x), digits_dataset, samples=len(train_x), **opts)
    details = good["regularity"]
    assert good["coverage"] == pytest.approx(details["coverage_real"], abs=1e-12) and good["coverage"] > 0.9
    assert details["recall"] == pytest.approx(details["recall_real"], abs=1e-12) and details["recall"] > 0.9
    assert 0.5 < details["density"] < 2


def test_regularity_is_deterministic_under_a_seed(digits_dataset, digits_classifier):
    model = LinearDecoderModel(64, 2, 64)
    run = lambda seed: measure_regularity(model, digits_dataset, samples=300, seed=seed,  # noqa: E731
                                          classifier=digits_classifier, pairs=50, paths=10)
    a, b, c = run(0), run(0), run(1)
    for r in (a, b, c):
        r["regularity"].pop("seconds")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert a["completeness"] != c["completeness"] and a["continuity"] != c["continuity"]


def test_unlabelled_data_gives_null_completeness_with_a_reason():
    x = np.random.default_rng(5).random((100, 12)).astype(np.float32)
    result = measure_regularity(LinearDecoderModel(12, 2, 12), _dataset(x, None), pairs=30, paths=5)
    assert result["completeness"] is None and result["fd"] is None
    assert result["continuity"]["random_mean"] > 0
    assert any("no class labels" in note for note in result["regularity"]["notes"])


def test_evaluate_model_adds_the_regularity_keys(digits_dataset, digits_classifier):
    from vaekit.cli import render
    from vaekit.api import train
    from vaekit.evaluation.evaluate import evaluate_model

    model = train(digits_dataset, model="vae", hidden=[32], latent_dim=2, epochs=1, device="cpu").model
    result = evaluate_model(model, digits_dataset, iw_samples=2, regularity_samples=200).to_dict()
    assert {"continuity", "completeness", "coverage", "fd", "regularity"} <= result.keys()
    assert 0 < result["completeness"] <= 1 and 0 <= result["coverage"] <= 1 and result["fd"] > 0
    assert result["regularity"]["classifier"]["cached"] is True          # the session's digits classifier
    json.dumps(result)
    table = render.eval_table(result)
    assert "coverage" in table and "completeness" in table and "fd" in table and "continuity" in table
    off = evaluate_model(model, digits_dataset, iw_samples=2, regularity=False).to_dict()
    assert off["continuity"] is None and off["completeness"] is None and off["regularity"] is None
    assert off["coverage"] is None
    assert "completeness" not in render.eval_table(off)


def test_evaluate_command_options():
    from vaekit.cli.app import build_parser

    args = build_parser().parse_args(["evaluate", "RUN", "--no-regularity", "--regularity-samples", "50"])
    assert args.regularity is False and args.regularity_samples == 50
    args = build_parser().parse_args(["evaluate", "RUN"])
    assert args.regularity is True and args.regularity_samples == 2000


# -- the point: an AE's latent space has holes, a VAE's does not -------------------------------
def test_vae_prior_samples_beat_the_ae_s_on_digits(digits_dataset, digits_classifier):
    """Latent 8, 40 epochs (~10 s). Seeds 0-2 gave completeness AE 0.50-0.58 vs VAE 0.85-0.87 and
    fd AE 41-67 vs VAE 19-22, so the margins below are wide. (At latent 2 the AE's codes happen to
    fill N(0, I) and the two do not separate: see the README.)"""
    from vaekit.api import train

    common = dict(hidden=[128], latent_dim=8, epochs=40, batch_size=64, lr=3e-3, seed=0, device="cpu")
    ae = train(digits_dataset, model="ae", **common).model.eval()
    vae = train(digits_dataset, model="vae", likelihood="bernoulli", binarize="none", **common).model.eval()
    opts = dict(samples=500, classifier=digits_classifier, pairs=200, paths=20, gmm=False)
    r_ae, r_vae = measure_regularity(ae, digits_dataset, **opts), measure_regularity(vae, digits_dataset, **opts)
    assert r_vae["completeness"] > r_ae["completeness"] + 0.15, (r_ae["completeness"], r_vae["completeness"])
    assert r_vae["fd"] < 0.7 * r_ae["fd"], (r_ae["fd"], r_vae["fd"])
    assert r_vae["completeness"] <= r_vae["regularity"]["completeness_real"] + 0.05


@pytest.mark.slow
def test_a_collapsed_beta_vae_wins_completeness_but_not_coverage(digits_dataset, digits_classifier):
    """The issue's sweep on digits (latent 8, 20 epochs, seed 0): beta = 4 leaves no active unit and
    decodes every prior sample to the same blob, which lies on the real manifold (completeness 1.0,
    above beta = 0.5's), while its coverage, the headline, is near 0. Measured at 40 epochs:
    completeness 1.000 vs 0.786, coverage 0.067 vs 0.956 (a plain VAE: 0.850 and 0.939)."""
    from vaekit.api import train

    common = dict(hidden=[128], latent_dim=8, epochs=20, batch_size=64, lr=3e-3, seed=0, device="cpu",
                  likelihood="bernoulli", binarize="none")
    opts = dict(samples=500, classifier=digits_classifier, pairs=50, paths=10, gmm=False)
    results = {}
    for beta in (0.5, 4.0):
        model = train(digits_dataset, model="beta-vae", beta=beta, **common).model.eval()
        with torch.no_grad():
            active = int((model.encode(torch.as_tensor(digits_dataset.test.x)).mean.var(0) > 0.01).sum())
        results[beta] = (active, measure_regularity(model, digits_dataset, **opts))
    (active_good, good), (active_collapsed, collapsed) = results[0.5], results[4.0]
    assert active_collapsed == 0 and active_good == 8
    assert collapsed["completeness"] >= good["completeness"]          # the old headline prefers collapse
    assert collapsed["coverage"] < 0.2 and good["coverage"] > 0.8, (collapsed["coverage"], good["coverage"])


@pytest.mark.slow
def test_vae_prior_samples_beat_the_ae_s_on_fashion_mnist():
    """The Fashion-MNIST version with `vaekit train`'s defaults at latent 16 and 5 epochs (~1-2 minutes
    on 2 cores, plus the classifier's one-time training). Measured: completeness AE 0.28 vs VAE 0.71,
    fd 81 vs 49, random-step continuity 0.076 vs 0.060. (With 2 epochs the VAE's fd is not yet
    below the AE's, while completeness already separates them.)"""
    from vaekit.api import train
    from vaekit.data import list_datasets, load_dataset

    if not any(info.name == "fashion-mnist" and info.available for info in list_datasets()):
        pytest.skip("Fashion-MNIST is not available without a download")
    dataset = load_dataset("fashion-mnist")
    ae, vae = (train(dataset, model=m, latent_dim=16, epochs=5, seed=0, device="cpu").model.eval() for m in ("ae", "vae"))
    r_ae, r_vae = measure_regularity(ae, dataset, gmm=False), measure_regularity(vae, dataset, gmm=False)
    assert r_ae["regularity"]["classifier"]["test_accuracy"] >= 0.85
    assert r_vae["completeness"] > r_ae["completeness"] + 0.2, (r_ae["completeness"], r_vae["completeness"])
    assert r_vae["fd"] < 0.8 * r_ae["fd"], (r_ae["fd"], r_vae["fd"])
    assert r_vae["continuity"]["random_mean"] < r_ae["continuity"]["random_mean"]
