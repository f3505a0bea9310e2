"""The prior objects against independent computations: each density integrates to one, samples follow
it, the KLs match closed forms or Monte Carlo, and HVAE + VampPrior trains and evaluates end to end."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.distributions as td

from conftest import quick_config
from vaekit.models import build_model
from vaekit.nn.distributions import DiagonalGaussian, PointMass, Posterior, gaussian_kl, log_mean_exp
from vaekit.nn.priors import MarkovCodes, StandardNormal, TopDown, VampPrior


def _grid(low: float, high: float, n: int) -> tuple[torch.Tensor, float]:
    points = torch.linspace(low, high, n, dtype=torch.float64)
    return points, float(points[1] - points[0])


def _one_dim_encoder(means, logvars):
    """A fixed 'encoder' of pseudo-inputs: row k of its input selects component k."""
    means, logvars = torch.as_tensor(means, dtype=torch.float64), torch.as_tensor(logvars, dtype=torch.float64)

    def encode(u):
        k = u.reshape(len(u), -1)[:, 0].round().long()
        return DiagonalGaussian(means[k].unsqueeze(1), logvars[k].unsqueeze(1))
    return encode


def _vamp_1d() -> VampPrior:
    prior = VampPrior(1, 3, (1,), _one_dim_encoder([-2.0, 0.5, 3.0], [0.0, -1.0, 0.5]))
    prior.pseudo_inputs = lambda: torch.arange(3, dtype=torch.float64).unsqueeze(1)   # inputs 0, 1, 2
    return prior


def test_both_posteriors_satisfy_the_protocol():
    mean = torch.zeros(2, 3)
    assert isinstance(DiagonalGaussian(mean, mean), Posterior)
    point = PointMass(mean)
    assert isinstance(point, Posterior) and point.deterministic and point.logvar is None
    assert torch.equal(point.reparameterize(torch.randn(5, 2, 3)), mean.expand(5, 2, 3))
    with pytest.raises(TypeError, match="no density"):
        point.log_prob(mean)


def test_gaussian_kl_matches_torch_distributions_and_the_standard_normal_special_case():
    q_mean, q_logvar = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([0.1, -0.7, 1.2])
    p_mean, p_logvar = torch.tensor([1.0, 0.0, -0.5]), torch.tensor([0.8, -0.2, 0.0])
    q, p = td.Normal(q_mean, (0.5 * q_logvar).exp()), td.Normal(p_mean, (0.5 * p_logvar).exp())
    torch.testing.assert_close(gaussian_kl(q_mean, q_logvar, p_mean, p_logvar), td.kl_divergence(q, p))
    torch.testing.assert_close(gaussian_kl(q_mean, q_logvar),
                               gaussian_kl(q_mean, q_logvar, torch.zeros(3), torch.zeros(3)))


def test_log_mean_exp_is_stable_and_exact():
    values = torch.tensor([[1000.0, 1000.0], [1000.0, 998.0]], dtype=torch.float64)
    expected = torch.tensor([1000.0, 1000.0 + math.log((1 + math.exp(-2.0)) / 2)], dtype=torch.float64)
    torch.testing.assert_close(log_mean_exp(values, dim=1), expected)


def test_vamp_prior_density_integrates_to_one_and_its_samples_follow_it():
    prior = _vamp_1d()
    z, dz = _grid(-12, 14, 20001)
    density = prior.log_prob(z.unsqueeze(1)).exp()
    assert float(density.sum() * dz) == pytest.approx(1.0, abs=1e-6)
    # Mixture mean by quadrature and by hand, and the samples' mean and variance.
    mean = float((z * density).sum() * dz)
    assert mean == pytest.approx((-2.0 + 0.5 + 3.0) / 3, abs=1e-6)
    samples = prior.sample(40000, generator=torch.Generator().manual_seed(0)).squeeze(1)
    variance = float(((z - mean) ** 2 * density).sum() * dz)
    assert float(samples.mean()) == pytest.approx(mean, abs=4 * math.sqrt(variance / 40000))
    assert float(samples.var()) == pytest.approx(variance, rel=0.03)


def test_vamp_prior_kl_is_the_one_sample_estimate_and_averages_to_the_true_kl():
    prior = _vamp_1d()
    posterior = DiagonalGaussian(torch.tensor([[0.2]], dtype=torch.float64), torch.tensor([[-0.5]], dtype=torch.float64))
    z = posterior.sample(20000, generator=torch.Generator().manual_seed(1))          # (n, 1, 1)
    estimates = prior.kl(posterior, z)
    torch.testing.assert_close(estimates, posterior.log_prob(z) - prior.log_prob(z))
    grid, dz = _grid(-10, 10, 40001)
    q = posterior.log_prob(grid.view(-1, 1, 1)).squeeze(1)
    true_kl = float((q.exp() * (q - prior.log_prob(grid.unsqueeze(1)))).sum() * dz)
    assert float(estimates.mean()) == pytest.approx(true_kl, abs=4 * float(estimates.std()) / math.sqrt(20000))


def test_top_down_prior_integrates_to_one_and_samples_ancestrally():
    def conditional(z2):
        return DiagonalGaussian(0.8 * z2 - 0.3, 0.2 * z2.tanh() - 0.4)

    prior = TopDown(StandardNormal(1), 1, conditional)
    z1, dz1 = _grid(-9, 9, 1201)
    z2, dz2 = _grid(-9, 9, 1201)
    codes = torch.stack(torch.meshgrid(z1, z2, indexing="ij"), -1)                    # [z1, z2]
    assert float(prior.log_prob(codes).exp().sum() * dz1 * dz2) == pytest.approx(1.0, abs=1e-6)
    # Ancestral samples: E[z1] = E[0.8 z2 - 0.3] = -0.3, Var[z2] = 1.
    samples = prior.sample(40000, generator=torch.Generator().manual_seed(2)).double()
    assert float(samples[:, 0].mean()) == pytest.approx(-0.3, abs=0.02)
    assert float(samples[:, 1].var()) == pytest.approx(1.0, rel=0.03)


def test_markov_code_prior_sums_to_one_fits_counts_and_samples_them():
    codebook = torch.arange(4, dtype=torch.float32).unsqueeze(1)
    prior = MarkovCodes(3, 4, 3, lambda indices: codebook[indices].reshape(len(indices), -1), smoothing=0.5)
    data = torch.tensor([[0, 1, 2], [0, 1, 1], [3, 3, 3], [0, 2, 1]])
    prior.fit([data[:2], data[2:]])
    every = torch.tensor(list(itertools.product(range(4), repeat=3)))
    assert float(prior.log_prob_codes(every).exp().sum()) == pytest.approx(1.0, abs=1e-6)
    # p(c_1 = 0) from the counts by hand: (3 + 0.5) / (4 + 4 * 0.5).
    assert float(prior.first[0].exp()) == pytest.approx(3.5 / 6.0)
    drawn = prior.sample_codes(30000, generator=torch.Generator().manual_seed(3))
    frequency = float((drawn == torch.tensor([0, 1, 2])).all(1).double().mean())
    assert frequency == pytest.approx(float(prior.log_prob_codes(torch.tensor([[0, 1, 2]])).exp()), abs=0.01)
    samples = prior.sample(5, generator=torch.Generator().manual_seed(4))
    assert samples.shape == (5, 3) and set(samples.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0}


def test_hvae_with_a_vamp_prior_scores_the_paper_s_top_level_mixture():
    model = build_model(quick_config(model="hvae", prior="vamp", pseudo_inputs=7, latent_dim=4, top_latent_dim=2),
                        (1, 8, 8)).eval()
    assert isinstance(model.prior, TopDown) and isinstance(model.prior.top, VampPrior)
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        q2 = model.bottom_up(torch.sigmoid(model.prior.top.pseudo_logits))[0]         # q(z2 | u_k), k = 1..7
        mixture = torch.stack([td.Normal(q2.mean[k], q2.std[k]).log_prob(z[:, 2:]).sum(1) for k in range(7)])
        p1 = model.conditional_prior(z[:, 2:])
        expected = td.Normal(p1.mean, p1.std).log_prob(z[:, :2]).sum(1) + torch.logsumexp(mixture, 0) - math.log(7)
        torch.testing.assert_close(model.prior.log_prob(z), expected, rtol=1e-5, atol=1e-5)
        out = model(torch.bernoulli(torch.full((6, 1, 8, 8), 0.3), generator=torch.Generator().manual_seed(6)),
                    generator=torch.Generator().manual_seed(7))
    assert out.kl_per_dim is None and torch.isfinite(out.loss)
    assert float(out.kl) == pytest.approx(float(out.extras["kl_top"] + out.extras["kl_bottom"]), rel=1e-5)


@pytest.mark.slow
def test_hvae_with_a_vamp_prior_trains_and_evaluates_through_the_cli(tmp_path, capsys):
    from vaekit.cli.app import main

    run = tmp_path / "hvae-vamp"
    assert main(["train", "--dataset", "digits", "--model", "hvae", "--prior", "vamp", "--pseudo-inputs", "20",
                 "--latent-dim", "4", "--hidden", "64", "--epochs", "3", "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--iw-samples", "50", "--no-regularity"]) == 0
    import json

    info, result = json.loads((run / "run.json").read_text()), json.loads((run / "eval.json").read_text())
    assert info["config"]["prior"] == "vamp" and info["config"]["pseudo_inputs"] == 20
    assert np.isfinite(result["nll"]) and np.isfinite(result["nelbo"]) and result["kl"] > 0
    assert result["nll"] <= result["nelbo"] + 0.5        # the IW bound is at least as tight as the ELBO
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_a_prior_the_model_s_maths_does_not_allow_is_refused():
    from vaekit.errors import ConfigError

    with pytest.raises(ConfigError, match="--prior vamp does not apply to --model beta-tcvae"):
        build_model(quick_config(model="beta-tcvae", prior="vamp", pseudo_inputs=5), (1, 8, 8))


def _other_priors() -> list[tuple[str, str]]:
    from vaekit.models import MODELS, model_class

    return [(name, prior) for name in MODELS for prior in model_class(name).priors
            if prior != model_class(name).default_prior]


@pytest.mark.parametrize(("name", "prior"), _other_priors())
def test_every_model_trains_and_reloads_with_every_prior_its_maths_allows(name, prior, digits_dataset, tmp_path):
    import vaekit
    from vaekit.evaluation.evaluate import evaluate_model
    from vaekit.training.trainer import train

    config = quick_config(model=name, prior=prior, pseudo_inputs=6 if prior == "vamp" else None, latent_dim=4,
                          hidden=[16], epochs=1, batch_size=128)
    result = train(config, digits_dataset, tmp_path / "run")
    assert all(math.isfinite(record["train_loss"]) for record in result.history)
    loaded = vaekit.load(tmp_path / "run")
    assert type(loaded.prior) is type(result.model.prior)
    z = loaded.sample_prior(3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, result.model.eval().sample_prior(3, generator=torch.Generator().manual_seed(0)))
    evaluation = evaluate_model(loaded, digits_dataset, iw_samples=5, regularity=False)
    assert math.isfinite(evaluation.nll) and evaluation.kl > 0 and evaluation.kl_per_dim is None
    assert any("Monte-Carlo" in note for note in evaluation.notes)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--model", "beta-tcvae", "--prior", "vamp"], "--prior vamp does not apply to --model beta-tcvae: it takes standard"),
    (["--prior", "bogus"], "unknown --prior 'bogus': choose one of standard, vamp, markov-codes"),
    (["--pseudo-inputs", "20"], "--pseudo-inputs is an option of the VampPrior: add --prior vamp"),
    (["--prior", "vamp", "--pseudo-inputs", "0"], "--pseudo-inputs must be at least 1, not 0"),
    (["--model", "vq-vae", "--prior", "standard"], "--prior standard does not apply to --model vq-vae"),
])
def test_a_bad_prior_is_one_line_and_nothing_is_written(arguments, message, tmp_path, capsys):
    from vaekit.cli.app import main

    assert main(["train", "--dataset", "digits", *arguments, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_mixture_density_and_its_gradients_are_the_direct_sum():
    """The expanded (matrix-product) form of the mixture log-density equals the direct form, and so do
    its gradients with respect to the codes and to the components, also for small variances where the
    expansion subtracts large terms."""
    import math

    from vaekit.nn.distributions import DiagonalGaussian
    from vaekit.nn.priors import mixture_log_prob

    g = torch.Generator().manual_seed(0)
    mean = torch.randn(50, 6, generator=g, dtype=torch.float64) * 2
    logvar = torch.empty(50, 6, dtype=torch.float64).uniform_(-9, 1, generator=g)
    components = DiagonalGaussian(mean, logvar)
    z = torch.cat([mean[:7] + 1e-3 * torch.randn(7, 6, generator=g, dtype=torch.float64),
                   torch.randn(3, 4, 6, generator=g, dtype=torch.float64).reshape(12, 6)]).reshape(19, 6)
    direct = torch.stack([torch.logsumexp(components.log_prob(row.unsqueeze(0)), dim=0) for row in z]) - math.log(50)
    with torch.no_grad():
        assert torch.allclose(mixture_log_prob(z, components), direct, atol=1e-8, rtol=0)
        assert torch.allclose(mixture_log_prob(z.float(), components).double(), direct, rtol=1e-5, atol=1e-3)
    grad_z = z.clone().requires_grad_()
    assert torch.allclose(mixture_log_prob(grad_z, components), direct, atol=1e-9)   # the autograd path

    def gradients(log_density):
        leaves = [z.clone().requires_grad_(), mean.clone().requires_grad_(), logvar.clone().requires_grad_()]
        weights = torch.linspace(-1, 2, z.shape[0], dtype=torch.float64)    # not all ones: rows must not mix
        (weights * log_density(leaves[0], DiagonalGaussian(leaves[1], leaves[2]))).sum().backward()
        return [leaf.grad for leaf in leaves]

    def direct_form(points, mixture):
        return torch.logsumexp(mixture.log_prob(points.unsqueeze(1)), dim=1) - math.log(50)

    for expanded, reference in zip(gradients(mixture_log_prob), gradients(direct_form)):
        assert reference.abs().max() > 1e-3
        assert torch.allclose(expanded, reference, rtol=1e-7, atol=1e-7)
