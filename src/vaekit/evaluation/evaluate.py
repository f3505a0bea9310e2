"""Evaluation: reconstruction, KL, the ELBO, an importance-weighted log-likelihood, bits/dim and PCA.

All quantities are nats per image unless the name says otherwise (``mse`` is per pixel,
``bits_per_dim`` per data value).

The importance-weighted estimate (Burda et al. 2016, eq. 8) is

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x),

a stochastic lower bound on log p(x) that tightens as K grows; ``nll`` is minus it. The same K
samples also give the Monte-Carlo reconstruction term, so ``nelbo`` costs nothing extra.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from vaekit.files import atomic_write_text
from vaekit.errors import ConfigError
from vaekit.limits import check_memory
from vaekit.evaluation.iw import importance_weighted_bound, iw_estimates  # noqa: F401  (importance_weighted_bound: public here too)
from vaekit.data.arrays import QUANTIZATION_TOLERANCE
from vaekit.nn.likelihoods import Bernoulli, DiscretizedLogistic, observed
from vaekit.training.card import write_card

log = logging.getLogger(__name__)

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2016: a unit is active if Cov_x(E_q[z_u]) > 0.01
EVAL_SEED_OFFSET = 104729
PCA_SEED = 0                  # the randomised SVD's start (pca_baseline_mse, more than 4096 values per sample)


@dataclass
class Evaluation(Mapping):
    """Every number of one evaluation; the fields are eval.json's keys, in its order.

    Nats per input unless the name says otherwise (``mse`` is per value, ``bits_per_dim`` per data
    value). A field that does not apply to the model is None, and ``notes`` says why. ``continuity``,
    ``completeness``, ``coverage`` (the headline regularity number: a collapsed model cannot win it),
    ``fd`` and ``regularity`` come from :func:`vaekit.evaluation.regularity.measure_regularity`,
    ``disentanglement`` from :func:`vaekit.disentanglement.measure_disentanglement`. ``run`` and
    ``dataset`` are set when a run folder is evaluated. ``result["nll"]`` reads a field by its key,
    as in eval.json (it is a read-only mapping of those keys).

    Real-valued data (``dataset.scaling`` set) are modelled standardised; ``recon``, ``nelbo``,
    ``nll``, ``ppca_nll`` and ``fa_nll`` are then in the data's original units, having had
    ``log_jacobian`` (sum of the log scales) added, while ``mse`` and ``pca_mse`` are per
    standardised value. ``ppca_nll`` and ``fa_nll`` are the exact test NLLs of probabilistic PCA
    and factor analysis with ``latent_dim`` factors (:mod:`vaekit.evaluation.linear_gaussian`), for
    Gaussian-likelihood models; None otherwise.
    """

    split: str
    n: int
    likelihood: str
    proper_likelihood: bool
    recon: float
    kl: float | None
    nelbo: float | None
    nll: float | None
    iw_samples: int | None
    bits_per_dim: float | None
    mse: float
    kl_per_dim: list[float] | None
    active_units: int | None
    pca_mse: float
    latent_dim: int
    seed: int
    continuity: dict[str, Any] | None = None
    completeness: float | None = None
    coverage: float | None = None
    fd: float | None = None
    regularity: dict[str, Any] | None = None
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    disentanglement: dict[str, Any] | None = None
    run: str | None = None
    dataset: str | None = None
    ppca_nll: float | None = None
    fa_nll: float | None = None
    log_jacobian: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The eval.json object (``run`` and ``dataset`` only when set)."""
        values = asdict(self)
        for key in ("run", "dataset"):
            if values[key] is None:
                del values[key]
        return values

    # Read-only mapping access, so code written for eval.json's dict reads a result the same way.
    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__ or (key in ("run", "dataset") and getattr(self, key) is None):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def pca_baseline_mse(train_x: np.ndarray, eval_x: np.ndarray, components: int) -> float:
    """Per-pixel MSE of PCA with ``components`` components fitted on ``train_x``.

    A linear autoencoder trained to its optimum spans the same subspace (Baldi & Hornik 1989), so
    this is the number a linear AE should match and a deep one should beat. Above 4096 values per
    sample the subspace comes from a randomised SVD, whose random start is fixed (PCA_SEED) and drawn
    without touching the global random stream: the same data give the same number every time.
    """
    train = torch.as_tensor(train_x.reshape(len(train_x), -1), dtype=torch.float64)
    evals = torch.as_tensor(eval_x.reshape(len(eval_x), -1), dtype=torch.float64)
    mean = train.mean(0)
    centred = train - mean
    dim = centred.shape[1]
    components = min(components, dim, len(train))
    if dim <= 4096:
        _, vectors = torch.linalg.eigh(centred.T @ centred)
        basis = vectors[:, -components:] if components else vectors[:, :0]
    else:
        # svd_lowrank draws its random start from the global generator: seed it in a forked stream.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(PCA_SEED)
            _, _, v = torch.svd_lowrank(centred, q=min(components + 10, dim), niter=6)
        basis = v[:, :components]
    e = evals - mean
    residual = e - (e @ basis) @ basis.T
    return float(residual.pow(2).mean())


def data_values(x: np.ndarray, block: int = 1 << 20) -> str:
    """What the values of ``x`` (in [0, 1]) are: ``"binary"`` (0 and 1 only), ``"8-bit"`` (multiples of
    1/255, as loaded from uint8; binary data are 8-bit too) or ``"continuous"``."""
    flat = np.asarray(x).reshape(-1)
    binary = True
    for start in range(0, flat.size, block):
        part = flat[start:start + block].astype(np.float64)
        if binary and not np.all((part == 0) | (part == 1)):
            binary = False
        if not binary and np.abs(part * 255 - np.rint(part * 255)).max() > 255 * QUANTIZATION_TOLERANCE:
            return "continuous"
    return "binary" if binary else "8-bit"


def likelihood_on_data(likelihood, x: np.ndarray, *, real_valued: bool = False) -> tuple[bool, bool, list[str]]:
    """``(proper, discrete, notes)``: whether ``likelihood`` is a normalised likelihood of the data
    values ``x`` and a probability mass function over them (so that -log p / (D log 2) is an honest
    bits/dim), and notes saying why not.

    The likelihood's own flags assume the data it was made for. The data can say more: a Bernoulli
    without binarisation is only a loss on grey levels, but on data that are already binary (dSprites)
    it is their exact likelihood; the discretized logistic is a probability of 8-bit values, and on
    values between the 1/255 steps it scores a rounded copy of the data instead.
    """
    proper, discrete = bool(likelihood.proper), bool(likelihood.discrete)
    if isinstance(likelihood, Bernoulli) and not proper and data_values(x) == "binary":
        return True, True, []
    if isinstance(likelihood, DiscretizedLogistic) and data_values(x) == "continuous":
        return proper, False, [f"{likelihood.describe()} is a probability of 8-bit values and these data are not "
                               "8-bit (they lie between the 1/255 steps and are rounded to them before scoring): "
                               "recon, nelbo and nll are of the rounded data, and bits_per_dim is not reported"]
    if not proper:
        return False, False, [f"{likelihood.describe()} is not a normalised likelihood: recon, nelbo and nll are "
                              "losses, not nats of a probability"]
    if not discrete and real_valued:
        return True, False, [f"{likelihood.describe()} is a density of real values: bits_per_dim does not apply"]
    if not discrete:
        return True, False, [f"{likelihood.describe()} is a density on [0, 1], not a probability of 8-bit images: "
                             "bits_per_dim is not reported"]
    return True, True, []


@torch.inference_mode()
def evaluate_model(model, dataset, *, split: str = "test", iw_samples: int = 1000, seed: int = 0,
                   batch_size: int = 100, memory_cap_bytes: int = 512 * 2**20,
                   progress=None, regularity: bool = True, regularity_samples: int = 2000,
                   disentanglement: bool = False, disentanglement_points: int = 10_000) -> Evaluation:
    """Every number in eval.json, computed on one split of ``dataset``.

    With ``regularity`` (the default) the result also holds ``continuity``, ``completeness``,
    ``coverage``, ``fd`` and their details under ``regularity`` (see
    :func:`vaekit.evaluation.regularity.measure_regularity`); otherwise those keys are null.
    ``regularity_samples`` prior samples judge completeness, coverage and fd.
    With ``disentanglement`` (data sets with known factors only, such as dsprites) ``disentanglement``
    holds the five scores of :func:`vaekit.disentanglement.measure_disentanglement` on the encoder
    mean, with ``disentanglement_points`` training points each; otherwise it is null.
    """
    iw_samples = check_iw_samples(iw_samples, model, batch_size)
    if disentanglement and dataset.ground_truth is None:
        raise ConfigError(f"--disentanglement needs a data set generated from known factors (dsprites, "
                          f"dsprites-small); {dataset.name} has none")
    started = time.perf_counter()
    model.eval()
    device = next(model.parameters()).device
    # np.asarray loads a streamed split only within --max-memory (else a DataError), and both splits
    # are loaded before the long part, so a split too big for memory fails at once.
    eval_x = np.asarray(dataset.split(split).x)
    pca_mse = pca_baseline_mse(dataset.train.x, eval_x, model.latent_dim)
    grey = torch.as_tensor(eval_x, device=device)
    target = observed(grey, model.likelihood, seed + EVAL_SEED_OFFSET)
    generator = torch.Generator(device=device).manual_seed(seed)
    n, dims = len(grey), math.prod(model.sample_shape)
    totals = {"recon": 0.0, "kl": 0.0, "nll": 0.0, "sq_err": 0.0}
    kl_per_dim = torch.zeros(model.latent_dim, dtype=torch.float64, device=device)
    # A model whose prior is not N(0, I) (VampPrior, two levels) has no closed-form KL: it is then the
    # Monte-Carlo estimate E_q[log q - log p] over the same K samples as the IW bound.
    closed_form_kl = model.prior.closed_form
    labels = _condition_labels(model, dataset, split, device)
    if model.variational:
        # The long part: K decodes per image, on every core (iw.py); the rest below is one pass.
        log_px, log_px_z, elbo = iw_estimates(model, target, iw_samples, generator=generator, batch_size=batch_size,
                                              y=labels, memory_cap_bytes=memory_cap_bytes, with_elbo=True,
                                              progress=progress)
        totals["nll"] = -float(log_px.sum())
        totals["recon"] = -float(log_px_z.sum())
        if not closed_form_kl:
            totals["kl"] = float((log_px_z - elbo).sum())
    means = []
    for start in range(0, n, batch_size):
        x, xt = grey[start:start + batch_size], target[start:start + batch_size]
        condition = {} if labels is None else {"y": labels[start:start + batch_size]}
        posterior = model.encode(xt, **condition)
        totals["sq_err"] += float((model.decode(posterior.mode(), **condition) - x).double().pow(2).sum())
        means.append(posterior.mode().double())
        if model.variational and closed_form_kl:
            per_dim = model.prior.kl_per_dim(posterior).double()
            kl_per_dim += per_dim.sum(0)
            totals["kl"] += float(per_dim.sum())
        elif not model.variational:
            totals["recon"] -= float(model.log_likelihood(xt, posterior.mode()).double().sum())
            if progress is not None:
                progress(min(start + batch_size, n), n)

    lik = model.likelihood
    variational = model.variational
    recon = totals["recon"] / n
    kl = totals["kl"] / n if variational else None
    nll = totals["nll"] / n if variational else None
    scaling = dataset.scaling   # real-valued data: standardised for the model (vaekit.data.scaling)
    proper, discrete, notes = likelihood_on_data(lik, eval_x, real_valued=scaling is not None)
    honest_bits = variational and proper and discrete
    latent_means = torch.cat(means)
    active = int((latent_means.var(0) > ACTIVE_UNIT_THRESHOLD).sum()) if variational else None
    notes.extend(model.evaluation_notes)
    if variational and model.prior.evaluation_note:
        notes.append(model.prior.evaluation_note)
    log_jacobian = scaling.log_jacobian if scaling is not None else None
    if log_jacobian is not None:
        # -log p_x(x) = -log p_u(u) + sum log s (vaekit.data.scaling): the model saw u = (x - m) / s.
        recon += log_jacobian
        nll = None if nll is None else nll + log_jacobian
        notes.append(f"the data were standardised on the training split: recon, nelbo, nll, ppca_nll and fa_nll are in "
                     f"the original units (log_jacobian = {log_jacobian:.4f} nats added); mse and pca_mse are per "
                     "standardised value")
    baselines = _linear_gaussian_baselines(lik, dataset.train.x, eval_x, model.latent_dim, seed, notes)
    if log_jacobian is not None:
        baselines = {k: None if v is None else v + log_jacobian for k, v in baselines.items()}
    result = Evaluation(
        split=split, n=n, likelihood=lik.describe(), proper_likelihood=proper,
        recon=recon, kl=kl, nelbo=recon + kl if variational else None, nll=nll,
        iw_samples=iw_samples if variational else None,
        bits_per_dim=nll / (dims * math.log(2)) if honest_bits else None,
        mse=totals["sq_err"] / (n * dims),
        kl_per_dim=(kl_per_dim / n).tolist() if variational and closed_form_kl else None,
        active_units=active, pca_mse=pca_mse, latent_dim=model.latent_dim, seed=seed, notes=notes,
        ppca_nll=baselines["ppca_nll"], fa_nll=baselines["fa_nll"], log_jacobian=log_jacobian)
    if regularity:
        from vaekit.evaluation.regularity import measure_regularity

        if regularity_samples < 2:
            raise ConfigError(f"--regularity-samples must be at least 2, not {regularity_samples}")
        measured = measure_regularity(model, dataset, split=split, samples=regularity_samples, seed=seed)
        result.continuity, result.completeness = measured["continuity"], measured["completeness"]
        result.coverage = measured["coverage"]
        result.fd, result.regularity = measured["fd"], measured["regularity"]
    if disentanglement:
        from vaekit.disentanglement import measure_disentanglement, model_representation

        result.disentanglement = measure_disentanglement(model_representation(model), dataset.ground_truth,
                                                         seed=seed, points=disentanglement_points)
    result.seconds = time.perf_counter() - started
    return result


def _linear_gaussian_baselines(likelihood, train_x, eval_x, latent_dim: int, seed: int, notes: list[str]) -> dict[str, float | None]:
    """pPCA's and factor analysis's test NLL beside a Gaussian likelihood's (None for other likelihoods,
    or where the data are too wide for them to be cheap; ``notes`` then says so)."""
    from vaekit.evaluation.linear_gaussian import FA_MAX_DIMS, PPCA_MAX_DIMS, fa_nll, ppca_nll

    out: dict[str, float | None] = {"ppca_nll": None, "fa_nll": None}
    if likelihood.name != "gaussian":
        return out
    train = np.asarray(train_x)
    dims = math.prod(train.shape[1:])
    if dims <= PPCA_MAX_DIMS:
        out["ppca_nll"] = ppca_nll(train, eval_x, latent_dim)
    else:
        notes.append(f"ppca_nll is not computed for more than {PPCA_MAX_DIMS} values per sample")
    if dims <= FA_MAX_DIMS:
        out["fa_nll"] = fa_nll(train, eval_x, latent_dim, seed=seed)
    else:
        notes.append(f"fa_nll is not computed for more than {FA_MAX_DIMS} values per sample (EM would take minutes)")
    return out


def check_iw_samples(iw_samples, model, batch_size: int) -> int:
    """``iw_samples`` as an int, or :class:`ConfigError`: a whole number from 1 whose working memory fits.

    Each batch of images holds K draws of noise and codes (float32) and K log-weights (float64) at
    once (see :mod:`vaekit.evaluation.iw`), so K = 10^8 needs terabytes: it is refused here, naming
    that size, rather than failing inside torch."""
    if isinstance(iw_samples, float) and iw_samples.is_integer():
        iw_samples = int(iw_samples)
    if isinstance(iw_samples, bool) or not isinstance(iw_samples, numbers.Integral):
        raise ConfigError(f"--iw-samples must be a whole number of importance samples, not {iw_samples!r}")
    if iw_samples < 1:
        raise ConfigError(f"--iw-samples must be at least 1, not {iw_samples}")
    if model.variational:
        per_sample = batch_size * (4 * (model.iw_noise_dim + model.latent_dim) + 2 * 8)
        check_memory(int(iw_samples) * per_sample,
                     f"--iw-samples {iw_samples} (noise, codes and log-weights for each batch of {batch_size} images)",
                     "use fewer importance samples (1000 to 5000 are usual)")
    return int(iw_samples)


def _condition_labels(model, dataset, split: str, device) -> torch.Tensor | None:
    """The split's true labels for a conditional model (evaluated on p(x|y)), else None."""
    if not model.conditional:
        return None
    y = dataset.split(split).y
    if y is None:
        raise ConfigError(f"--model {model.config.model} is conditional, and the {split} split has no labels to condition on")
    return torch.as_tensor(y, device=device).long()


def evaluate(run: str | Path, *, split: str = "test", iw_samples: int = 1000, seed: int = 0,
             data_dir: str | None = None, device: str = "cpu", progress=None, write: bool = True,
             regularity: bool = True, regularity_samples: int = 2000, disentanglement: bool = False,
             disentanglement_points: int = 10_000, dataset: str | None = None) -> dict[str, Any]:
    """Evaluate a run folder's best weights and write ``RUN/eval.json``; returns what it wrote.

    ``dataset`` names the data when they moved since training (or the run was trained from arrays).
    Writing locks the run folder (:mod:`vaekit.training.lock`) for the whole evaluation."""
    from contextlib import nullcontext

    from vaekit.training.run import load_model_and_data, open_for_writing

    with open_for_writing(run) if write else nullcontext():
        model, data = load_model_and_data(run, data_dir=data_dir, device=device, dataset=dataset)
        result = evaluate_model(model, data, split=split, iw_samples=iw_samples, seed=seed, progress=progress,
                                regularity=regularity, regularity_samples=regularity_samples,
                                disentanglement=disentanglement, disentanglement_points=disentanglement_points)
        result.run, result.dataset = str(Path(run)), data.name
        values = result.to_dict()
        if write:
            from vaekit.training.tracking import log_evaluation

            atomic_write_text(Path(run) / "eval.json", json.dumps(values, indent=2) + "\n")
            write_card(run)  # README.md's evaluation section
            log_evaluation(run, values)      # to TensorBoard / MLflow, if the run was trained with --log
    return values
