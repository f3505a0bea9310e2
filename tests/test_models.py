"""The model registry: a contract every model meets, and each model's formulas against independent computations."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.distributions as td
from safetensors.torch import load_file
from scipy import stats

import vaekit
from conftest import StopAfter, quick_config, run_cli
from vaekit import latent
from vaekit.training.config import TrainConfig, build_config
from vaekit.errors import ConfigError
from vaekit.evaluation.evaluate import evaluate_model, importance_weighted_bound
from vaekit.models import MODELS, build_model, model_options
from vaekit.nn.networks import GatedDense
from vaekit.training.trainer import resume, train

# Small enough that each model trains, resumes and evaluates in well under a second.
TINY = dict(hidden=[16], latent_dim=4, epochs=2, batch_size=64, pseudo_inputs=6)


def _tiny_options(name: str) -> dict:
    options = {k: v for k, v in TINY.items() if k != "pseudo_inputs" or name == "vamp"}
    if name == "vq-vae":
        options.update(code_dim=2, codebook_size=8)
    return options


@pytest.fixture(scope="module")
def tiny_digits(digits_dataset):
    """192 / 64 / 64 labelled 8x8 digits: a few optimiser steps per epoch."""
    from vaekit.data import Dataset, Split

    d = digits_dataset
    part = lambda split, n: Split(split.x[:n], split.y[:n])  # noqa: E731
    return Dataset(name="digits", train=part(d.train, 192), val=part(d.val, 64), test=part(d.test, 64),
                   sample_shape=d.sample_shape, class_names=d.class_names, source=d.source,
                   quantized_8bit=d.quantized_8bit)


def _same_weights(a, b):
    wa, wb = load_file(str(a)), load_file(str(b))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# -- the contract ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_model_contract(name, tiny_digits, tmp_path):
    """Builds, trains with a finite loss, is seeded-deterministic, resumes exactly, loads to identical
    outputs, evaluates honestly and works with the latent-space toolkit."""
    config = quick_config(model=name, **_tiny_options(name))
    full = train(config, tiny_digits, tmp_path / "full")
    assert all(math.isfinite(r["train_loss"]) and math.isfinite(r["val_loss"]) for r in full.history)
    train(config, tiny_digits, tmp_path / "again")
    _same_weights(tmp_path / "full/checkpoints/last.safetensors", tmp_path / "again/checkpoints/last.safetensors")
    with pytest.raises(KeyboardInterrupt):
        train(config, tiny_digits, tmp_path / "cut", callbacks=[StopAfter(1)])
    resume(tmp_path / "cut", lambda cfg: tiny_digits)
    _same_weights(tmp_path / "full/checkpoints/last.safetensors", tmp_path / "cut/checkpoints/last.safetensors")

    # run.json alone rebuilds the model (model-specific options included); outputs are identical.
    reloaded = vaekit.load(tmp_path / "full", which="last")
    trained = full.model.eval()
    x = torch.as_tensor(tiny_digits.test.x[:8])
    with torch.no_grad():
        a, b = trained.encode(x), reloaded.encode(x)
        assert torch.equal(a.mean, b.mean)
        z = torch.randn(5, trained.latent_dim, generator=torch.Generator().manual_seed(1))
        assert torch.equal(trained.decode(z), reloaded.decode(z))
        y = {"y": torch.as_tensor(tiny_digits.test.y[:8])} if trained.conditional else {}
        outs = [m(x.bernoulli(generator=torch.Generator().manual_seed(2)) if trained.likelihood.name == "bernoulli" else x,
                  generator=torch.Generator().manual_seed(3), **y) for m in (trained, reloaded)]
        assert torch.equal(outs[0].loss, outs[1].loss)
        assert torch.equal(trained.sample_prior(4, generator=torch.Generator().manual_seed(4)),
                           reloaded.sample_prior(4, generator=torch.Generator().manual_seed(4)))
    saved = json.loads((tmp_path / "full/run.json").read_text())["config"]
    own = dataclasses.asdict(config.options)
    assert {k: saved[k] for k in own} == own and type(reloaded.options) is type(config.options)
    lines = [json.loads(line) for line in (tmp_path / "full/metrics.jsonl").read_text().splitlines()]
    assert all(f"train_{k}" in lines[0] and f"val_{k}" in lines[0] for k in outs[0].extras)

    result = evaluate_model(reloaded, tiny_digits, iw_samples=4, regularity=False)
    if reloaded.variational:
        for key in ("recon", "kl", "nelbo", "nll"):
            assert math.isfinite(result[key]), key
        # The IW bound (K = 4) is tighter than the ELBO on average; on 64 images a little noise is allowed.
        assert result["nll"] <= result["nelbo"] + 0.5
    else:
        assert result["kl"] is None and result["nelbo"] is None and result["nll"] is None
        assert result["notes"]
    assert math.isfinite(result["mse"])

    # The toolkit: reconstructions, prior samples, interpolation and a traversal all decode images.
    images = tiny_digits.test.x[:4]
    assert latent.reconstruct(reloaded, images).shape == images.shape
    codes = latent.sample_codes(reloaded, 6, sampler="prior" if reloaded.generative else "gmm", seed=0,
                                train_means=latent.encode_means(reloaded, tiny_digits.train.x))
    assert codes.shape == (6, reloaded.latent_dim) and np.isfinite(codes).all()
    assert latent.decode_images(reloaded, codes).shape == (6, *reloaded.sample_shape)
    means = latent.encode_means(reloaded, images[:2])
    assert latent.decode_images(reloaded, latent.interpolate(means[0], means[1], 4, "linear")).shape[0] == 4
    assert latent.traverse(reloaded, images[:1], images, steps=3, max_dims=2).images.shape[:2] == (2, 3)
    mapped = latent.latent_map(reloaded, tiny_digits.test.x[:20], tiny_digits.test.y[:20])
    assert np.isfinite(mapped.projection.points).all()


def test_every_model_declares_its_options():
    """Each option has help, a default once resolved (or off: declared None and not computed, as free bits and
    hvae's --min-logvar), one type wherever it is declared,
    and a name no shared key has; the resolved config is flat and round-trips through JSON."""
    from vaekit.training.config import FIELDS

    kinds = {}
    for name, entry in MODELS.items():
        assert entry.description and entry.paper
        cfg = TrainConfig(model=name).resolved()
        for info in model_options(name):
            assert info.help and info.kind in (int, float, str) and info.name not in FIELDS, (name, info)
            assert kinds.setdefault(info.name, info.kind) is info.kind, (name, info.name)
            if info.default is not None or info.computed is not None:
                assert getattr(cfg.options, info.name) is not None, (name, info.name)
            elif info.name not in ("free_bits", "min_logvar"):
                raise AssertionError(f"{name}: {info.name} is off by default; add it to the list above if meant")
        assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))).resolved() == cfg


@pytest.mark.parametrize("overrides, message", [
    (dict(model="vae", iw_k=5), "--iw-k does not apply to --model vae"),
    (dict(model="iwae", beta=2.0), r"--beta does not apply to --model iwae \(it is an option of vae, beta-vae,"),
    (dict(model="ae", beta=2.0), "--beta does not apply to --model ae"),
    (dict(model="vae", beta=-1.0), "--beta must be a non-negative number"),
    (dict(model="factor-vae", disc_lr=0.0), "--disc-lr must be a positive number"),
    (dict(model="iwae", iw_k=0), "--iw-k must be at least 1"),
    (dict(model="dip-vae", dip_type="iii"), "unknown --dip-type"),
    (dict(model="vq-vae", latent_dim=5, code_dim=2), "not a multiple of --code-dim"),
    (dict(model="hvae", latent_dim=4, top_latent_dim=4), "--top-latent-dim must be between 1 and"),
    (dict(model="cvae", label_dropout=1.0), "--label-dropout must be in"),
    (dict(model="capacity-vae", kl_warmup=2.0), "--kl-warmup ramps the KL weight"),
    (dict(model="wae-mmd", mmd_kernel="laplace"), "unknown --mmd-kernel"),
])
def test_model_options_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(None, overrides)


def test_dip_lambda_d_default_follows_type():
    assert build_config(None, dict(model="dip-vae", lambda_od=3.0)).options.lambda_d == 30.0
    assert build_config(None, dict(model="dip-vae", dip_type="ii", lambda_od=3.0)).options.lambda_d == 3.0
    assert build_config(None, dict(model="dip-vae", lambda_od=3.0, lambda_d=1.0)).options.lambda_d == 1.0
    assert build_config(None, dict(model="capacity-vae", epochs=7)).options.capacity_epochs == 7.0
    assert build_config(None, dict(model="hvae", latent_dim=5)).options.top_latent_dim == 2


def test_models_command_lists_each_models_declared_options(capsys):
    # The options are declared beside the models, so `vaekit models` imports them (and torch); `vaekit
    # --help` stays torch-free (tests/test_cli.py).
    from vaekit.cli.app import main

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "Burda et al. 2016; options: --iw-k" in listing and "options: --codebook-size --code-dim" in listing
    assert main(["models", "dip-vae"]) == 0
    shown = capsys.readouterr().out
    assert "--lambda-d         default 10 x lambda-od for type i" in shown and "--free-bits        default off" in shown
    assert main(["models", "beta-tcvae"]) == 0
    assert "--beta             default 6: weight of the total correlation" in capsys.readouterr().out


def test_conditional_model_needs_labels(digits_dataset):
    with pytest.raises(ConfigError, match="needs class labels"):
        build_model(quick_config(model="cvae"), (1, 8, 8))


# -- formulas ------------------------------------------------------------------------------------------
def _model(name, **options):
    torch.manual_seed(0)
    values = dict(hidden=[16], latent_dim=3)
    values.update(options)
    return build_model(quick_config(model=name, **values), (1, 8, 8), class_names=[str(i) for i in range(10)]).eval()


def _binary(n=12, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)).bernoulli()


def test_iwae_bound_with_one_sample_is_the_elbo_with_the_same_noise():
    model, x = _model("iwae", iw_k=1), _binary()
    with torch.no_grad():
        loss = model(x, generator=torch.Generator().manual_seed(9)).loss
        q = model.encode(x)
        z = q.mean + q.std * torch.randn(q.mean.shape, generator=torch.Generator().manual_seed(9))
        logits = model.decoder(z)[:, 0].flatten(1).double()
        log_px_z = td.Bernoulli(logits=logits).log_prob(x.flatten(1).double()).sum(1)
        log_pz = td.Normal(0.0, 1.0).log_prob(z.double()).sum(1)
        log_qz = td.Normal(q.mean.double(), q.std.double()).log_prob(z.double()).sum(1)
    torch.testing.assert_close(loss.double(), -(log_px_z + log_pz - log_qz).mean(), rtol=0, atol=1e-4)


def test_iwae_bound_is_tighter_with_more_samples():
    x = _binary(32).repeat(8, 1, 1, 1)
    bounds = {}
    for k in (1, 20):
        model = _model("iwae", iw_k=k)
        with torch.no_grad():
            bounds[k] = -float(model(x, generator=torch.Generator().manual_seed(1)).loss)
    assert bounds[20] > bounds[1]


def test_beta_tcvae_terms_sum_to_the_kl_estimate_and_mws_matches_a_direct_sum():
    from vaekit.models.tcvae import kl_decomposition

    model, x = _model("beta-tcvae"), _binary(10)
    with torch.no_grad():
        q = model.encode(x)
        z = q.sample(generator=torch.Generator().manual_seed(0))
        n_data = 500
        terms = kl_decomposition(z, q, model.log_prior(z), n_data, estimator="mws")
    torch.testing.assert_close(terms["mi"] + terms["tc"] + terms["dim_kl"], terms["kl"], rtol=0, atol=1e-5)
    mean, std, codes = q.mean.double().numpy(), q.std.double().numpy(), z.double().numpy()
    m = len(codes)
    # log q(z_i) ~= log (1/(N M)) sum_j q(z_i|x_j), and per dimension, summed with scipy densities.
    density = np.array([[stats.norm(mean[j], std[j]).pdf(codes[i]) for j in range(m)] for i in range(m)])  # (i, j, L)
    log_qz = np.log(density.prod(2).sum(1) / (n_data * m))
    log_prod = np.log(density.sum(1) / (n_data * m)).sum(1)
    log_qz_x = np.array([stats.norm(mean[i], std[i]).logpdf(codes[i]).sum() for i in range(m)])
    log_pz = stats.norm.logpdf(codes).sum(1)
    assert float(terms["mi"]) == pytest.approx(np.mean(log_qz_x - log_qz), abs=1e-4)
    assert float(terms["tc"]) == pytest.approx(np.mean(log_qz - log_prod), abs=1e-4)
    assert float(terms["dim_kl"]) == pytest.approx(np.mean(log_prod - log_pz), abs=1e-4)


def test_beta_tcvae_stratified_weights_follow_chen_et_al_appendix_c2():
    """q(z_i) ~= (1/N) q(z_i|x_i) + (N - M)/(N M) q(z_i|x_partner) + (1/M) sum_others, M = B - 1,
    written out pair by pair with scipy densities; every row of weights sums to 1."""
    from vaekit.models.tcvae import kl_decomposition, log_batch_weights

    n_data, batch = 500, 6
    weights = log_batch_weights(batch, n_data, "mss", dtype=torch.float64).exp().numpy()
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=0, atol=1e-12)
    m = batch - 1
    for i in range(batch):
        for j in range(batch):
            expected = 1 / n_data if j == i else (n_data - m) / (n_data * m) if j == (i + 1) % batch else 1 / m
            assert weights[i, j] == pytest.approx(expected, rel=1e-12)
    assert log_batch_weights(1, n_data, "mss").exp().item() == 1.0       # a batch of one: the image itself
    model = _model("beta-tcvae")
    x = _binary(batch)
    with torch.no_grad():
        q = model.encode(x)
        z = q.sample(generator=torch.Generator().manual_seed(0))
        terms = kl_decomposition(z, q, model.log_prior(z), n_data, estimator="mss")
    mean, std, codes = q.mean.double().numpy(), q.std.double().numpy(), z.double().numpy()
    density = np.array([[stats.norm(mean[j], std[j]).pdf(codes[i]) for j in range(batch)] for i in range(batch)])
    log_qz = np.log((weights * density.prod(2)).sum(1))
    log_prod = np.log((weights[:, :, None] * density).sum(1)).sum(1)
    log_qz_x = np.array([stats.norm(mean[i], std[i]).logpdf(codes[i]).sum() for i in range(batch)])
    log_pz = stats.norm.logpdf(codes).sum(1)
    assert float(terms["mi"]) == pytest.approx(np.mean(log_qz_x - log_qz), abs=1e-4)
    assert float(terms["tc"]) == pytest.approx(np.mean(log_qz - log_prod), abs=1e-4)
    assert float(terms["dim_kl"]) == pytest.approx(np.mean(log_prod - log_pz), abs=1e-4)
    torch.testing.assert_close(terms["mi"] + terms["tc"] + terms["dim_kl"], terms["kl"], rtol=0, atol=1e-5)


def _mixture_decomposition_errors(batch: int, trials: int, seed: int = 0) -> tuple[dict, dict, dict]:
    """(exact terms, mean stratified error, mean minibatch-weighted error) for 500 correlated Gaussian
    posteriors in 3 dimensions, whose mixture q(z) is known exactly.

    Each trial draws a batch of ``batch`` of the 500 posteriors and one code from each. The exact
    integrands of MI, TC and dim-KL at those codes use scipy densities of all 500 components; the
    estimates use the batch alone. Same codes for both, so the errors carry no Monte-Carlo noise of
    the codes themselves."""
    from scipy.special import logsumexp
    from vaekit.models.tcvae import kl_decomposition
    from vaekit.nn.distributions import DiagonalGaussian

    g = torch.Generator().manual_seed(seed)
    n_data, dim = 500, 3
    mixing = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.5, 0.9]], dtype=torch.float64)
    means = 1.3 * torch.randn(n_data, dim, generator=g, dtype=torch.float64) @ mixing.T
    logvars = torch.empty(n_data, dim, dtype=torch.float64).uniform_(math.log(0.15), math.log(0.8), generator=g)
    stds = (0.5 * logvars).exp().numpy()
    keys = ("mi", "tc", "dim_kl")
    exact = {k: [] for k in keys}
    errors = {"mss": {k: [] for k in keys}, "mws": {k: [] for k in keys}}
    for _ in range(trials):
        rows = torch.randperm(n_data, generator=g)[:batch]
        posterior = DiagonalGaussian(means[rows], logvars[rows])
        z = posterior.sample(generator=g)
        codes = z.numpy()
        per_dim = stats.norm.logpdf(codes[:, None, :], means.numpy()[None], stds[None])   # (B, N, L), every n
        log_qz = logsumexp(per_dim.sum(2), axis=1) - math.log(n_data)
        log_qzl = logsumexp(per_dim, axis=1) - math.log(n_data)                        # (B, L)
        log_qz_x = per_dim[np.arange(batch), rows.numpy()].sum(1)
        log_pz = stats.norm.logpdf(codes)
        truth = {"mi": float((log_qz_x - log_qz).mean()), "tc": float((log_qz - log_qzl.sum(1)).mean()),
                 "dim_kl": float((log_qzl - log_pz).sum(1).mean())}
        for key in keys:
            exact[key].append(truth[key])
        for estimator in errors:
            terms = kl_decomposition(z, posterior, torch.as_tensor(log_pz.sum(1)), n_data, estimator=estimator)
            for key in keys:
                errors[estimator][key].append(float(terms[key]) - truth[key])
    mean = lambda values: {k: float(np.mean(v)) for k, v in values.items()}  # noqa: E731
    return mean(exact), mean(errors["mss"]), mean(errors["mws"])


@pytest.fixture
def one_thread():
    """Small tensor work in a loop: on a loaded 2-core machine torch's thread hand-offs made it 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_beta_tcvae_stratified_terms_match_the_exact_decomposition_of_a_mixture(one_thread):
    """Minibatch-stratified sampling estimates log q(z) by the log of an unbiased estimate of q(z), so
    it overstates MI and understates TC and dim-KL by a Jensen gap that shrinks as the batch grows:
    measured 0.021 / -0.011 / -0.010 nats with batches of 256 of the 500 posteriors and 0.13 / -0.06 /
    -0.07 with batches of 64 (two seeds agreed within 0.01). Minibatch-weighted sampling is off by
    log N multiples."""
    truth, stratified, weighted = _mixture_decomposition_errors(batch=256, trials=20)
    assert truth["mi"] > 1 and truth["tc"] > 0.2 and truth["dim_kl"] > 0.2      # all three terms matter here
    for key, error in stratified.items():
        assert abs(error) < 0.03, (key, error, truth[key])
    assert stratified["mi"] > 0 and stratified["tc"] < 0 and stratified["dim_kl"] < 0     # the Jensen gap's signs
    log_n = math.log(500)
    assert weighted["mi"] > 0.5 * log_n and weighted["dim_kl"] < -0.5 * 3 * log_n
    _, small_batches, _ = _mixture_decomposition_errors(batch=64, trials=20)
    for key, error in small_batches.items():
        assert abs(stratified[key]) < abs(error) < 0.2, (key, error, stratified[key])


def test_beta_tcvae_logs_zero_terms_when_every_posterior_is_the_prior():
    """The issue's case: L = 10, N = 60,000, q(z|x) = p(z) for every x. MI, TC and dim-KL are all 0;
    minibatch-weighted sampling used to log 11.0, 99.0 and -110.0. Training with it still works and
    its loss carries the constant (beta - 1)(L - 1) log N over the stratified one."""
    from vaekit.nn.distributions import DiagonalGaussian

    dim, n_data = 10, 60_000
    x = _binary(64)
    outputs = {}
    for estimator in ("mws", "mss"):
        model = _model("beta-tcvae", latent_dim=dim, tc_estimator=estimator)
        model.dataset_size.fill_(n_data)
        model.encode = lambda images: DiagonalGaussian(torch.zeros(len(images), dim), torch.zeros(len(images), dim))
        with torch.no_grad():
            outputs[estimator] = model(x, generator=torch.Generator().manual_seed(4))
        for key in ("mi", "tc", "dim_kl"):
            assert abs(float(outputs[estimator].extras[key])) < 1e-4, (estimator, key, outputs[estimator].extras[key])
    beta = model.options.beta
    offset = float(outputs["mws"].loss - outputs["mss"].loss)
    assert offset == pytest.approx((beta - 1) * (dim - 1) * math.log(n_data), rel=1e-5)


def test_beta_tcvae_estimator_option():
    assert _model("beta-tcvae").options.tc_estimator == "mws"
    assert quick_config(model="beta-tcvae", tc_estimator="mss").options.tc_estimator == "mss"
    with pytest.raises(ConfigError, match="unknown --tc-estimator 'exact': choose one of mws, mss"):
        quick_config(model="beta-tcvae", tc_estimator="exact")
    with pytest.raises(ConfigError, match="--tc-estimator does not apply to --model vae"):
        quick_config(model="vae", tc_estimator="mss")


@pytest.mark.parametrize("kind", ["rbf", "imq"])
def test_mmd_estimator_is_unbiased_on_prior_samples(kind):
    from vaekit.models.mmd import kernel_matrix, mmd_unbiased

    g = torch.Generator().manual_seed(0)
    values = torch.stack([mmd_unbiased(torch.randn(16, 3, generator=g, dtype=torch.float64),
                                       torch.randn(16, 3, generator=g, dtype=torch.float64), kind)
                          for _ in range(600)])
    standard_error = float(values.std()) / math.sqrt(len(values))
    assert abs(float(values.mean())) < 4 * standard_error
    shifted = torch.stack([mmd_unbiased(torch.randn(16, 3, generator=g, dtype=torch.float64) + 1.0,
                                        torch.randn(16, 3, generator=g, dtype=torch.float64), kind)
                           for _ in range(100)])
    assert float(shifted.mean()) > 10 * standard_error
    # The U-statistic against a double loop, with the kernel written out.
    a, b = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    c = 6.0
    k = (lambda u, v: math.exp(-float((u - v).pow(2).sum()) / c)) if kind == "rbf" else \
        (lambda u, v: c / (c + float((u - v).pow(2).sum())))
    direct = (sum(k(a[i], a[j]) for i in range(5) for j in range(5) if i != j) / 20
              + sum(k(b[i], b[j]) for i in range(4) for j in range(4) if i != j) / 12
              - 2 * sum(k(a[i], b[j]) for i in range(5) for j in range(4)) / 20)
    assert float(mmd_unbiased(a, b, kind)) == pytest.approx(direct, abs=1e-12)
    assert kernel_matrix(a, b, kind, c).shape == (5, 4)


@pytest.mark.parametrize("dip_type", ["i", "ii"])
def test_dip_covariance_and_penalties_match_numpy(dip_type):
    from vaekit.models.dipvae import dip_covariance, dip_penalties

    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(50, 4, generator=g, dtype=torch.float64), torch.randn(50, 4, generator=g, dtype=torch.float64)
    expected = np.cov(mean.numpy(), rowvar=False, bias=True)
    if dip_type == "ii":
        expected = expected + np.diag(np.exp(logvar.numpy()).mean(0))
    cov = dip_covariance(mean, logvar, dip_type)
    np.testing.assert_allclose(cov.numpy(), expected, atol=1e-12)
    off, diag = dip_penalties(cov)
    off_expected = sum(expected[i, j] ** 2 for i in range(4) for j in range(4) if i != j)
    assert float(off) == pytest.approx(off_expected) and float(diag) == pytest.approx(((np.diag(expected) - 1) ** 2).sum())


def test_vamp_log_prior_is_the_mixture_of_pseudo_input_posteriors():
    model = _model("vamp", pseudo_inputs=5)
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        components = model.encode(torch.sigmoid(model.prior.pseudo_logits))
        log_prior = model.log_prior(z)
    mean, var = components.mean.double().numpy(), components.std.double().numpy() ** 2
    direct = np.log(np.mean([stats.multivariate_normal(mean[k], np.diag(var[k])).pdf(z.double().numpy())
                             for k in range(5)], axis=0))
    np.testing.assert_allclose(log_prior.double().numpy(), direct, atol=1e-4)
    # Samples come from the mixture: their mean is the mixture's mean.
    with torch.no_grad():
        samples = model.sample_prior(20000, generator=torch.Generator().manual_seed(2))
    np.testing.assert_allclose(samples.mean(0).numpy(), mean.mean(0), atol=0.05)


def test_capacity_schedule_and_loss():
    from vaekit.models.capacity import capacity_at

    model = _model("capacity-vae", capacity_max=25.0, capacity_epochs=2.0, gamma=100.0)
    model.prepare_training(n_train=640, steps_per_epoch=10)
    assert [model.capacity(s) for s in (0, 5, 10, 20, 100, None)] == [0.0, 6.25, 12.5, 25.0, 25.0, 25.0]
    assert capacity_at(3, 10.0, 0) == 10.0
    x = _binary()
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0), step=4)
    assert float(out.loss) == pytest.approx(float(out.recon) + 100.0 * abs(float(out.kl) - 5.0), rel=1e-6)


def test_free_bits_clamp_each_dimension_from_below():
    model = _model("vae", free_bits=0.5)
    from vaekit.models.vae import ELBOTerms

    kl = torch.tensor([0.1, 0.4, 2.0], requires_grad=True)
    penalty = model.kl_penalty(ELBOTerms(posterior=None, z=None, recon=None, kl=kl.sum(), kl_per_dim=kl))
    penalty.backward()
    assert float(penalty.detach()) == pytest.approx(0.5 + 0.5 + 2.0)
    assert kl.grad.tolist() == [0.0, 0.0, 1.0]          # below lambda: no pressure on that dimension
    x = _binary()
    with torch.no_grad():
        out = model(x, generator=torch.Generator().manual_seed(0))
    assert float(out.loss) == pytest.approx(float(out.recon) + float(out.kl_per_dim.clamp(min=0.5).sum()), rel=1e-6)
    assert float(out.kl) == pytest.approx(float(out.kl_per_dim.sum()))  # the logged KL is the true one


def test_vq_ema_update_matches_a_hand_computation():
    from vaekit.models.vqvae import ema_codebook_update, nearest_codes

    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=torch.float64)
    vectors = torch.tensor([[0.1, -0.1], [0.9, 1.2], [1.1, 0.8], [0.2, 0.0]], dtype=torch.float64)
    codes = nearest_codes(vectors, codebook)
    assert codes.tolist() == [0, 1, 1, 0]
    size, sums = torch.tensor([2.0, 1.0, 1.0], dtype=torch.float64), codebook.clone() * torch.tensor([[2.0], [1.0], [1.0]], dtype=torch.float64)
    new = ema_codebook_update(size, sums, vectors, codes, decay=0.9, eps=0.0)
    # By hand: N = 0.9 N + 0.1 n with n = (2, 2, 0); m = 0.9 m + 0.1 (sum of assigned vectors).
    n_expected = [0.9 * 2 + 0.1 * 2, 0.9 * 1 + 0.1 * 2, 0.9 * 1]
    m_expected = [[0.9 * 0 + 0.1 * 0.3, 0.9 * 0 + 0.1 * -0.1], [0.9 * 1 + 0.1 * 2.0, 0.9 * 1 + 0.1 * 2.0],
                  [0.9 * 5, 0.9 * 5]]
    np.testing.assert_allclose(size.numpy(), n_expected)
    np.testing.assert_allclose(sums.numpy(), m_expected)
    np.testing.assert_allclose(new.numpy(), np.array(m_expected) / np.array(n_expected)[:, None])


def test_vq_prior_is_fitted_to_the_training_codes():
    model = _model("vq-vae", latent_dim=4, code_dim=2, codebook_size=4)
    x = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    model.after_epoch([x[:100], x[100:]])
    with torch.no_grad():
        indices = model.code_indices(model.encoder(x))
    counts = torch.bincount(indices[:, 0], minlength=4).double()
    expected = (counts + 0.5) / (counts.sum() + 4 * 0.5)
    torch.testing.assert_close(model.prior.first.exp().double(), expected, rtol=1e-5, atol=1e-6)
    samples = model.sample_prior(500, generator=torch.Generator().manual_seed(1))
    assert set(map(tuple, samples.view(-1, 2).tolist())) <= set(map(tuple, model.codebook.tolist()))


def test_hvae_min_logvar_floors_the_heads_and_keeps_the_loss_finite():
    """A top-down p(z1|z2) whose log-variance runs to -100 (the NaN a Fashion-MNIST HVAE + VampPrior run hit
    at epoch 28) overflows exp(-logvar) in float32; --min-logvar floors every head's log-variance there."""
    x = _binary(6)
    losses = {}
    for floor in (None, -6.0):
        model = _model("hvae", latent_dim=4, top_latent_dim=2, min_logvar=floor)
        with torch.no_grad():
            model.top_down[-1].bias[2:] = -100.0            # the log-variance half of p(z1|z2)'s output
            model.top_head[-1].bias[2:] = -100.0            # and of q(z2|x)
        q2, estimate = model.bottom_up(x)
        p1 = model.conditional_prior(q2.mean)
        if floor is not None:
            assert p1.logvar.min().item() == floor and q2.logvar.min().item() == floor
            assert estimate.logvar.min().item() >= floor
        losses[floor] = model(x, generator=torch.Generator().manual_seed(0)).loss
    assert not torch.isfinite(losses[None])
    assert torch.isfinite(losses[-6.0])
    losses[-6.0].backward()


def _conditional_q1_by_hand(model, d, z2, arch):
    """q(z1|x, z2)'s mean and variance from conditional inference's weights, one Linear over [d, z2]."""
    head = model.z1_head
    merged = torch.nn.Linear(d.shape[-1] + z2.shape[-1], head.from_features.out_features)
    merged.weight.copy_(torch.cat([head.from_features.weight, head.from_top.weight], 1))
    merged.bias.copy_(head.from_features.bias)
    h = merged(torch.cat([d, z2], -1))
    if arch == "gated":
        value, gate = h.chunk(2, -1)
        h = value * torch.sigmoid(gate)
    else:
        h = torch.relu(h)
    m1, lv1 = head.out(h).chunk(2, -1)
    return m1, lv1.exp()


@pytest.mark.parametrize("reads, inference, arch", [("z1", "ladder", "mlp"), ("both", "ladder", "mlp"),
                                                    ("both", "conditional", "gated"), ("z1", "conditional", "mlp")])
def test_hvae_one_sample_iw_weight_is_the_elbo_and_its_mean_the_analytic_elbo(reads, inference, arch):
    model = _model("hvae", latent_dim=4, top_latent_dim=2, decoder_reads=reads, inference=inference, arch=arch)
    x = _binary(6)
    first = model.decoder[0].linear if arch == "gated" else model.decoder[0]
    assert first.in_features == (2 if reads == "z1" else 4)                  # p(x|z1) or p(x|z1, z2)
    eps = torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    with torch.no_grad():
        bound, _ = importance_weighted_bound(model, x, 1, generator=torch.Generator().manual_seed(3))
        log_px_z, log_w = model.log_importance_weights(x, eps)
        # The single-sample ELBO written out with torch.distributions.
        d = model.encoder(x)
        m2, lv2 = model.top_head(d).chunk(2, -1)
        z2 = m2 + (0.5 * lv2).exp() * eps[0, :, 2:]
        mp, lvp = model.top_down(z2).chunk(2, -1)
        if inference == "ladder":
            mh, lvh = model.bottom_head(d).chunk(2, -1)
            var1 = 1 / ((-lvh).exp() + (-lvp).exp())
            m1 = (mh * (-lvh).exp() + mp * (-lvp).exp()) * var1
        else:
            assert not hasattr(model, "bottom_head")
            m1, var1 = _conditional_q1_by_hand(model, d, z2, arch)
        z1 = m1 + var1.sqrt() * eps[0, :, :2]
        logits = model.decoder(z1 if reads == "z1" else torch.cat([z1, z2], 1))[:, 0].flatten(1)
        elbo = (td.Bernoulli(logits=logits).log_prob(x.flatten(1)).sum(1)
                + td.Normal(mp, (0.5 * lvp).exp()).log_prob(z1).sum(1) + td.Normal(0.0, 1.0).log_prob(z2).sum(1)
                - td.Normal(m1, var1.sqrt()).log_prob(z1).sum(1) - td.Normal(m2, (0.5 * lv2).exp()).log_prob(z2).sum(1))
    torch.testing.assert_close(log_w[0], elbo, rtol=0, atol=1e-4)
    torch.testing.assert_close(bound.float(), log_w[0], rtol=0, atol=1e-4)  # K = 1: the bound is that weight
    # The training loss (closed-form KLs given z2) and the one-sample weight estimate the same ELBO.
    with torch.no_grad():
        mc = importance_weighted_bound(model, x.repeat(400, 1, 1, 1), 1,
                                       generator=torch.Generator().manual_seed(4))[0].view(400, 6).mean(1)
        g = torch.Generator().manual_seed(5)
        training = torch.stack([-model(x, generator=g).loss for _ in range(400)]).double()
    standard_error = math.sqrt(float(mc.var()) / 400 + float(training.var()) / 400)
    assert abs(float(mc.mean() - training.mean())) < 4 * standard_error
    q, p = td.Normal(torch.tensor([0.3, -1.0]), torch.tensor([0.5, 2.0])), td.Normal(torch.tensor([1.0, 0.0]), torch.tensor([1.5, 0.7]))
    from vaekit.nn.distributions import DiagonalGaussian

    ours = DiagonalGaussian(q.mean, 2 * q.stddev.log()).kl_per_dim(DiagonalGaussian(p.mean, 2 * p.stddev.log()))
    torch.testing.assert_close(ours, td.kl_divergence(q, p))


def test_hvae_conditional_head_scores_many_samples_of_z2_as_one_at_a_time():
    """The importance-weighted bound feeds (n, B, L2) samples of z2 beside one d per input: the
    broadcast must give what each sample alone gives, and q(z1|x, z2) must depend on z2."""
    model = _model("hvae", latent_dim=6, top_latent_dim=2, inference="conditional", arch="gated", min_logvar=-6.0)
    x = _binary(5)
    with torch.no_grad():
        q2, d = model.bottom_up(x)
        z2 = torch.randn(3, 5, 2, generator=torch.Generator().manual_seed(0))
        together = model.bottom_posterior(d, z2, model.conditional_prior(z2))
        for i in range(3):
            alone = model.bottom_posterior(d, z2[i], model.conditional_prior(z2[i]))
            torch.testing.assert_close(together.mean[i], alone.mean)
            torch.testing.assert_close(together.logvar[i], alone.logvar)
        assert (together.mean[0] - together.mean[1]).abs().max() > 1e-3
        model.z1_head.out.bias[4:] = -100.0                  # the log-variance half: floored at -6
        assert model.bottom_posterior(d, z2, None).logvar.min().item() == -6.0
    gated = sum(isinstance(m, GatedDense) for m in model.top_down)
    assert gated == 2                                          # p(z1|z2): two hidden layers of gated units


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_hvae_iw_k_trains_on_the_k_sample_bound_of_the_evaluations_weights(prior):
    """--iw-k K: the loss is -mean log (1/K) sum_k w_k over the same two-level weights the evaluation
    scores (checked against torch.distributions above), the KL weight on each log p(z) - log q(z|x)."""
    k, x = 5, _binary(6)
    vamp = {"pseudo_inputs": 3} if prior == "vamp" else {}
    model = _model("hvae", latent_dim=4, top_latent_dim=2, inference="conditional", arch="gated", prior=prior,
                   iw_k=k, **vamp)
    noise = torch.randn(k, 6, 4, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        log_px_z, log_w = model.log_importance_weights(x, noise)
        for weight in (1.0, 0.3):
            out = model(x, beta=weight, generator=torch.Generator().manual_seed(7))
            tempered = (log_px_z + weight * (log_w - log_px_z)).double()
            expected = (torch.logsumexp(tempered, 0) - math.log(k)).mean()
            torch.testing.assert_close(out.loss.double(), -expected, rtol=0, atol=1e-4)
            torch.testing.assert_close(out.extras["iw_bound"], -out.loss)
        # At weight 1 it is the evaluation's K-sample estimate itself, and recon is the weights' E[log p(x|z)].
        out = model(x, generator=torch.Generator().manual_seed(7))
        bound, mean_log_px = importance_weighted_bound(model, x, k, noise=noise)
        torch.testing.assert_close(-out.loss.double(), bound.mean(), rtol=0, atol=1e-4)
        torch.testing.assert_close(out.recon.double(), -mean_log_px.mean(), rtol=0, atol=1e-4)
        # kl: the closed-form bottom level given each z2 plus the top level's Monte-Carlo estimate; in
        # expectation it is E[log q - log p], so over many samples it meets the weights' mean.
        torch.testing.assert_close(out.kl, out.extras["kl_bottom"] + out.extras["kl_top"])
        many = _model("hvae", latent_dim=4, top_latent_dim=2, inference="conditional", arch="gated", prior=prior,
                      iw_k=4000, **vamp)
        terms = many(x, generator=torch.Generator().manual_seed(8))
        wide = torch.randn(4000, 6, 4, generator=torch.Generator().manual_seed(9))
        log_px_z, log_w = many.log_importance_weights(x, wide)
        torch.testing.assert_close(float(terms.kl), float((log_px_z - log_w).mean()), rtol=0.03, atol=0.05)


def test_hvae_iw_bound_is_tighter_with_more_samples_and_trains_every_part():
    x = _binary(32).repeat(8, 1, 1, 1)
    bounds = {}
    for k in (1, 20):
        model = _model("hvae", latent_dim=4, top_latent_dim=2, inference="conditional", arch="gated", prior="vamp",
                       pseudo_inputs=3, iw_k=k)
        with torch.no_grad():
            bounds[k] = -float(model(x, generator=torch.Generator().manual_seed(1)).loss)
    assert bounds[20] > bounds[1] + 0.1
    model.train()
    model(x[:8], beta=0.5, generator=torch.Generator().manual_seed(2)).loss.backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []                        # encoder, both heads, p(z1|z2), decoder and the pseudo-inputs


def test_hvae_iw_k_is_checked_before_training():
    with pytest.raises(ConfigError, match="--iw-k must be at least 1, not 0"):
        _model("hvae", iw_k=0)
    with pytest.raises(ConfigError, match="--free-bits applies to the ELBO's KL per dimension: use it with --iw-k 1"):
        _model("hvae", iw_k=3, free_bits=0.1)
    assert _model("hvae").options.iw_k == 1                     # the ELBO, as before
    notes = (" ".join(_model("hvae").evaluation_notes), " ".join(_model("hvae", iw_k=3).evaluation_notes))
    assert "importance-weighted bound with K" not in notes[0] and "bound with K = 3 samples; nelbo is the ELBO" in notes[1]


def test_hvae_rejects_an_unknown_inference():
    with pytest.raises(ConfigError, match="unknown --inference 'mean-field': choose one of ladder, conditional"):
        _model("hvae", inference="mean-field")


def test_factor_vae_discriminator_learns_and_the_vae_loss_does_not_train_it():
    from vaekit.models.factorvae import permute_dims

    model = _model("factor-vae").train()
    z = torch.randn(64, 3)
    z[:, 1] = z[:, 0] + 0.1 * torch.randn(64)                 # strongly correlated codes: a large TC
    permuted = permute_dims(z, torch.Generator().manual_seed(0))
    assert sorted(permuted[:, 0].tolist()) == sorted(z[:, 0].tolist())
    optimizer = model.auxiliary_optimizer()
    optimizer.param_groups[0]["lr"] = 1e-3
    first = float(model.auxiliary_loss(z, generator=torch.Generator().manual_seed(0)).detach())
    for step in range(150):
        optimizer.zero_grad()
        model.auxiliary_loss(z, generator=torch.Generator().manual_seed(step)).backward()
        optimizer.step()
    assert float(model.auxiliary_loss(z, generator=torch.Generator().manual_seed(999)).detach()) < first - 0.1
    assert float(model.total_correlation(z).detach()) > 0.5            # D now sees the dependence
    optimizer.zero_grad(set_to_none=True)
    out = model(_binary(), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None for p in model.discriminator.parameters())


def test_cvae_conditions_decoder_and_refuses_bad_labels():
    model = _model("cvae")
    z = torch.zeros(2, 3)
    with torch.no_grad():
        three, seven = model.decode(z, torch.tensor([3, 3])), model.decode(z, torch.tensor([7, 7]))
        with model.conditioned(3):
            assert torch.equal(model.decode(z), three)
        assert not torch.equal(model.decode(z), three)       # outside the block: the "unknown" label
    assert not torch.equal(three, seven)
    with pytest.raises(ConfigError, match="out of range"):
        model.conditioned(10).__enter__()


# -- the command line ----------------------------------------------------------------------------------
def test_cli_lists_trains_evaluates_and_samples_a_new_model(tmp_path, capsys):
    """A conditional VAE trained and evaluated from the command line (as a user runs it), then
    `vaekit models`, `vaekit sample --class` and a refused option through the same entry point
    in-process (the other models go through the same commands; the contract above trains each)."""
    from vaekit.cli.app import main

    common = ["--dataset", "digits", "--hidden", "32", "--epochs", "1", "--device", "cpu"]
    cvae = tmp_path / "cvae"
    trained = run_cli("train", "--model", "cvae", "--latent-dim", "4", "--out", str(cvae), *common)
    assert trained.returncode == 0, trained.stderr
    evaluated = run_cli("evaluate", str(cvae), "--iw-samples", "5", "--no-regularity", "--device", "cpu")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads((cvae / "eval.json").read_text())
    assert result["nll"] is not None and result["nll"] <= result["nelbo"] + 0.5
    assert any("p(x|y)" in note for note in result["notes"])

    assert main(["models"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in MODELS)
    assert main(["sample", str(cvae), "--class", "3", "-n", "4", "--out", str(tmp_path / "threes.png")]) == 0
    assert "conditioned on class 3" in capsys.readouterr().out and (tmp_path / "threes.png").stat().st_size > 0
    assert main(["sample", str(cvae), "--label", "10"]) == 2
    assert "out of range" in capsys.readouterr().err
    vq = tmp_path / "vq"
    assert main(["train", "--model", "vq-vae", "--latent-dim", "4", "--code-dim", "3", "--out", str(vq), *common]) == 2
    assert "not a multiple of --code-dim" in capsys.readouterr().err and not vq.exists()


# -- adding a model ------------------------------------------------------------------------------------
TOY_MODULE = '''
"""A user's own model: an autoencoder with one option of its own."""
from dataclasses import dataclass

from vaekit.models.base import AutoEncoder
from vaekit.models.options import ModelOptions, at_least, option


@dataclass
class ToyOptions(ModelOptions):
    toy_option: int = option(1, "how many toys the toy model counts", check=at_least(1))


class Toy(AutoEncoder):
    def forward(self, x, **kwargs):
        out = super().forward(x, **kwargs)
        out.extras["toy_option"] = out.recon.new_tensor(float(self.options.toy_option))   # logged: it got here
        return out
'''


@pytest.fixture
def toy_model(tmp_path, monkeypatch):
    """A model added as a user adds one: a module of their own and one registry line."""
    from vaekit.models import ModelEntry, register

    (tmp_path / "vaekit_toy_model.py").write_text(TOY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    register(ModelEntry("toy", "vaekit_toy_model:Toy", "a toy autoencoder", "-", options="vaekit_toy_model:ToyOptions",
                        deterministic=True))
    yield
    MODELS.pop("toy")


def test_a_model_added_from_outside_trains_through_the_cli(toy_model, tmp_path, capsys):
    from vaekit.cli.app import main

    common = ["--dataset", "digits", "--hidden", "16", "--latent-dim", "2", "--epochs", "1", "--device", "cpu"]
    run = tmp_path / "toy-run"
    assert main(["train", "--model", "toy", "--toy-option", "3", "--out", str(run), *common]) == 0
    saved = json.loads((run / "run.json").read_text())["config"]
    assert saved["model"] == "toy" and saved["toy_option"] == 3 and saved["likelihood"] == "mse"
    assert "iw_k" not in saved and "beta" not in saved                  # only the model's own options
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert metrics["train_toy_option"] == 3.0                            # the model read it while training
    assert vaekit.load(run).options.toy_option == 3

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--toy-option TOY_OPTION toy: how many toys the toy model counts (default 1)" in help_text
    assert main(["models", "toy"]) == 0
    assert "--toy-option       default 1: how many toys the toy model counts" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "options: --toy-option" in capsys.readouterr().out
    assert main(["train", "--model", "toy", "--toy-option", "0", *common]) == 2
    assert "--toy-option must be at least 1, not 0" in capsys.readouterr().err
    assert main(["train", "--model", "vae", "--toy-option", "3", *common]) == 2
    assert "--toy-option does not apply to --model vae (it is an option of toy)" in capsys.readouterr().err
    config = tmp_path / "toy.toml"
    config.write_text('model = "toy"\ntoy-opton = 2\n')
    assert main(["train", "--config", str(config), *common]) == 2
    assert "did you mean 'toy-option'?" in capsys.readouterr().err


def test_run_json_of_older_versions_loads(tiny_digits, tmp_path):
    """Before options belonged to the models, run.json held every model's options, null where unused."""
    old_keys = ["beta", "iw_k", "alpha", "gamma", "disc_lr", "dip_type", "lambda_od", "lambda_d", "capacity_max",
                "capacity_epochs", "mmd_weight", "mmd_kernel", "pseudo_inputs", "label_dropout", "codebook_size",
                "code_dim", "commitment", "ema_decay", "top_latent_dim", "free_bits"]
    for name, own in [("iwae", {"iw_k": 3}), ("ae", {}), ("dip-vae", {"beta": 1.0, "dip_type": "ii", "lambda_od": 2.0,
                                                                       "lambda_d": 2.0})]:
        result = train(quick_config(model=name, epochs=1, **{k: v for k, v in own.items() if k != "beta"}),
                       tiny_digits, tmp_path / name)
        info = json.loads((tmp_path / name / "run.json").read_text())
        info["config"] = {**{k: v for k, v in info["config"].items() if k not in old_keys},
                          **{k: own.get(k) for k in old_keys}}
        (tmp_path / name / "run.json").write_text(json.dumps(info))
        loaded = vaekit.load(tmp_path / name, which="last")
        assert loaded.options == result.model.options and loaded.config == result.model.config
