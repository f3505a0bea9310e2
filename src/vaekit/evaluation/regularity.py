"""Latent-space regularity, measured: continuity, completeness, coverage and a dataset-specific Fréchet distance.

A latent space is *regular* when (continuity) nearby codes decode to similar images and
(completeness) codes drawn from the prior decode to meaningful images, (coverage) all of the data's
variety among them. A plain autoencoder is trained on its codes alone, so none holds by construction;
the KL term of a VAE asks for them.

**Continuity** is the per-pixel RMS change of the decoded image (clipped to [0, 1]) per unit step in
latent space, ``||decode(z + d) - decode(z)|| / (sqrt(D) |d|)``. Step lengths are measured in
standard deviations of the *aggregate posterior* q(z) = mean over x of q(z|x), per dimension
(law of total variance: Var[z_j] = Var_x[mean_j] + E_x[var_j]; for the AE just the spread of the
codes). An AE's latent scale is arbitrary -- its codes may span +-50 or +-0.05 -- so a raw "per unit
of z" is not comparable between models; in standardised units a step of 0.1 moves a tenth of the
data cloud's width in every model, and a VAE whose q(z) matches N(0, I) gets nearly the raw value.
Two probes, both over codes of real images (posterior means):

* ``random``: ``pairs`` (image, random direction) pairs, a step of ``eps`` = 0.1 standard deviations;
* ``path``: straight paths between ``paths`` random pairs of codes, cut into ``steps`` equal steps.

Each reports the mean and 95th percentile; ``path_cliff`` is the mean over paths of the largest step
change over the path's mean step change (1 for an even path, up to ``steps`` when the whole change
happens in one step). A space with cliffs shows a heavy tail (p95 and cliff well above the mean).
The ``*_raw`` values divide by the raw Euclidean latent step instead. Decoders are continuous
functions, so continuity measures how *rough* the decoder is, not whether the images make sense:
with small MLPs on Fashion-MNIST a plain AE is barely rougher than a VAE (random_mean 0.076 vs 0.060
at latent 16) and has no heavier tail; its irregularity shows in completeness and fd instead.

**Completeness** is the share of decoded prior samples z ~ N(0, I) that land on the real data's
manifold as seen by the dataset's classifier (see ``vaekit.evaluation.classifier``): a sample counts when its
penultimate-layer feature lies within the k-nearest-neighbour radius (k = 3) of at least one of
``samples`` real images' features -- the "improved precision" of Kynkäänniemi et al. (2019). Prior
samples are drawn from N(0, I) for every model, the AE included: that is exactly what exposes its
holes. The ceiling, ``regularity.completeness_real``, is the same share for real training images.
The classifier's mean confidence (largest softmax probability) is reported too, as
``regularity.confidence``, but it is not the headline: a ReLU classifier is confidently wrong on
high-contrast garbage (on Fashion-MNIST the AE's garbage samples got *higher* confidence than the
VAE's blurry but recognisable ones), while garbage falls off the feature manifold.

Completeness is a precision, and a collapsed model wins it: a decoder that turns every code into the
same plausible image has all its samples on the manifold (a beta-VAE with no active unit scored
1.000). **Coverage**, the headline, is the other half (Naeem et al. 2020, "Reliable fidelity and
diversity metrics for generative models"): the share of real images whose feature neighbourhood (the
ball out to its 5th nearest real neighbour) holds at least one decoded prior sample. Samples piled on
one image, or on one class, reach only the neighbourhoods there, so a collapsed model scores near 0,
and garbage samples reach none; prior samples that look like the data, as varied, score about
``regularity.coverage_real`` (0.97 in expectation, 1 - 1/2^5, when samples and real images are as
many and alike). ``regularity.recall`` (Kynkäänniemi et al.'s, the share of real images within the
samples' own k-NN manifold) and ``regularity.density`` (Naeem et al.'s precision counterpart: samples
per real neighbourhood, over k; about 1 for samples like the data) are reported beside it.

**fd** is the Fréchet distance between the classifier's penultimate-layer features of real images
and of decoded prior samples, ``|mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (Dowson & Landau
1982; the FID formula of Heusel et al. 2017, with a small in-house classifier instead of Inception:
comparable between models on one dataset, not across datasets or with published FIDs). Its floor,
``regularity.fd_real``, is the distance between the same number of real training images and the
evaluated split.

``regularity.gmm`` repeats these numbers for codes drawn from a Gaussian mixture
fitted to the training codes instead of the prior: it shows what the decoder can do where the data
are, so the gap to the prior's numbers is the cost of the holes.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch

from vaekit.evaluation.classifier import (COVERAGE_NEIGHBOURS, K_NEIGHBOURS, FeatureReference,  # noqa: F401 (re-exported)
                         frechet_distance, frechet_distance_from_moments, load_or_train_classifier)

log = logging.getLogger(__name__)

SAMPLES = 2000          # prior samples for completeness and fd
PAIRS = 1000            # (image, direction) pairs for random-direction continuity
PATHS = 100             # interpolation paths
STEPS = 16              # steps per path
EPS = 0.1               # random-direction step, in aggregate-posterior standard deviations
GMM_COMPONENTS = 10
GMM_FIT_IMAGES = 10000

DEFINITIONS = {  # written into eval.json so the numbers explain themselves
    "continuity": "per-pixel RMS change of the decoded image (clipped to [0, 1]) per latent step, steps measured in "
                  "standard deviations of the aggregate posterior per dimension (*_raw: per raw latent unit); random: "
                  "steps of eps in random directions from codes of real images; path: equal steps along straight lines "
                  "between two codes; path_cliff: mean over paths of the largest step change / the path's mean",
    "completeness": "share of decoded N(0, I) samples whose classifier features lie within the k-nearest-neighbour "
                    "radius of some real image's features (improved precision, Kynkaanniemi et al. 2019); a "
                    "collapsed model can score 1: read it with coverage",
    "coverage": "headline: share of real images whose features' 5-nearest-neighbour ball (among real features) "
                "holds the features of at least one decoded N(0, I) sample (Naeem et al. 2020); near 0 for "
                "samples collapsed onto one image or one mode",
    "recall": "share of real images' features within the k-nearest-neighbour radius of some decoded sample's "
              "features, radii among the samples (improved recall, Kynkaanniemi et al. 2019)",
    "density": "decoded samples per real image's 5-nearest-neighbour ball, divided by 5 (Naeem et al. 2020); "
               "about 1 for samples like the data",
    "fd": "Frechet distance between Gaussians fitted to the classifier's penultimate-layer features of real images "
          "and of decoded N(0, I) samples (the FID formula, with vaekit's own classifier)",
}


# -- decoding and latent scale -------------------------------------------------------------------
def _device(model) -> torch.device:
    parameter = next(iter(model.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.inference_mode()
def decode_images(model, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Decoded images clipped to [0, 1] and flattened, (N, D) float32 on the CPU. Real-valued data
    (``model.scaling`` set) stay standardised and unclipped: continuity is then the RMS change per
    standardised value, and the classifier judges samples in the units it was trained in."""
    device = _device(model)
    clip = model.scaling is None
    parts = [_clipped(model.decode(z[i:i + batch_size].to(device)), clip).flatten(1).float().cpu()
             for i in range(0, len(z), batch_size)]
    return torch.cat(parts)


def _clipped(images: torch.Tensor, clip: bool) -> torch.Tensor:
    return images.clamp(0, 1) if clip else images


def rms_change(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per row, ``||a - b|| / sqrt(D)``: the per-pixel root-mean-square difference, float64."""
    return (a.double() - b.double()).pow(2).mean(1).sqrt().numpy()


@torch.inference_mode()
def encode_means(model, x: np.ndarray, batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """(posterior means (N, L), per-dimension std of the aggregate posterior (L,)), float32 on the CPU."""
    device = _device(model)
    means, variances = [], []
    for i in range(0, len(x), batch_size):
        posterior = model.encode(torch.as_tensor(x[i:i + batch_size], device=device))
        means.append(posterior.mean.double().cpu())
        if posterior.logvar is not None:
            variances.append(posterior.logvar.double().exp().cpu())
    mean = torch.cat(means)
    total = mean.var(0, unbiased=False) + (torch.cat(variances).mean(0) if variances else 0.0)
    scale = total.sqrt()
    scale = torch.clamp(scale, min=max(1e-6 * float(scale.max()), 1e-12))  # a dead AE unit: no division by 0
    return mean.float(), scale.float()


def random_unit_directions(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` directions uniform on the unit sphere in R^dim (normalised Gaussian vectors)."""
    u = torch.randn(n, dim, generator=generator)
    return u / u.norm(dim=1, keepdim=True)


# -- continuity ----------------------------------------------------------------------------------
def random_direction_changes(model, z: torch.Tensor, scale: torch.Tensor, directions: torch.Tensor,
                             eps: float = EPS) -> tuple[np.ndarray, np.ndarray]:
    """Image change per unit step from each code ``z[i]`` along ``directions[i]`` (unit, standardised).

    The raw step is ``eps * scale * direction``. Returns (per standardised unit, per raw unit).
    """
    step = eps * scale * directions
    change = rms_change(decode_images(model, z + step), decode_images(model, z))
    return change / eps, change / step.double().norm(dim=1).numpy()


def path_changes(model, start: torch.Tensor, end: torch.Tensor, scale: torch.Tensor,
                 steps: int = STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Image change per unit step along straight paths start[i] -> end[i] cut into ``steps`` steps.

    Returns two (paths, steps) arrays: per standardised unit and per raw unit of latent distance.
    """
    t = torch.linspace(0, 1, steps + 1).view(1, -1, 1)
    points = start.unsqueeze(1) + t * (end - start).unsqueeze(1)           # (P, S+1, L)
    images = decode_images(model, points.reshape(-1, start.shape[1])).view(len(start), steps + 1, -1)
    change = rms_change(images[:, 1:].reshape(-1, images.shape[2]),
                        images[:, :-1].reshape(-1, images.shape[2])).reshape(len(start), steps)
    delta = (end - start).double()
    standard = (delta / scale.double()).norm(dim=1).numpy()[:, None] / steps
    raw = delta.norm(dim=1).numpy()[:, None] / steps
    return change / standard, change / raw


def continuity(model, x: np.ndarray, *, pairs: int = PAIRS, paths: int = PATHS, steps: int = STEPS,
               eps: float = EPS, seed: int = 0) -> dict[str, Any]:
    """The continuity summary for codes of the images ``x`` (see the module docstring)."""
    means, scale = encode_means(model, x)
    n = len(means)
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    index = torch.as_tensor(rng.choice(n, pairs, replace=n < pairs))
    random_std, random_raw = random_direction_changes(
        model, means[index], scale, random_unit_directions(pairs, means.shape[1], generator), eps)
    first = rng.integers(0, n, paths)
    second = (first + rng.integers(1, n, paths)) % n                        # a different image
    start, end = means[torch.as_tensor(first)], means[torch.as_tensor(second)]
    keep = (end - start).norm(dim=1) > 0                                   # identical codes: no path
    summary = {"random_mean": float(random_std.mean()), "random_p95": float(np.percentile(random_std, 95)),
               "path_mean": None, "path_p95": None, "path_cliff": None,
               "random_mean_raw": float(random_raw.mean()), "random_p95_raw": float(np.percentile(random_raw, 95)),
               "path_mean_raw": None, "path_p95_raw": None, "latent_scale": scale.tolist()}
    if keep.any():
        path_std, path_raw = path_changes(model, start[keep], end[keep], scale, steps)
        per_path_mean = path_std.mean(1)
        cliff = path_std.max(1) / np.where(per_path_mean > 0, per_path_mean, 1) + (per_path_mean == 0)
        summary.update({"path_mean": float(path_std.mean()), "path_p95": float(np.percentile(path_std, 95)),
                        "path_cliff": float(cliff.mean()), "path_mean_raw": float(path_raw.mean()),
                        "path_p95_raw": float(np.percentile(path_raw, 95))})
    return summary


# -- completeness and fd -------------------------------------------------------------------------
def _gmm_samples(model, dataset, n: int, seed: int) -> tuple[torch.Tensor, int]:
    """Codes drawn from a Gaussian mixture fitted to training-set posterior means (ex-post density
    estimation, Ghosh et al. 2020): how good the decoder is where the data actually are."""
    from sklearn.mixture import GaussianMixture

    rng = np.random.default_rng(seed + 1)
    train = dataset.train.x
    pick = np.sort(rng.choice(len(train), min(len(train), GMM_FIT_IMAGES), replace=False))
    means, _ = encode_means(model, train[pick])
    components = max(1, min(GMM_COMPONENTS, len(pick) // 20))
    mixture = GaussianMixture(components, covariance_type="full", reg_covar=1e-5, random_state=seed)
    mixture.fit(means.double().numpy())
    codes, _ = mixture.sample(n)
    return torch.as_tensor(codes, dtype=torch.float32), components


def measure_regularity(model, dataset, *, split: str = "test", samples: int = SAMPLES, seed: int = 0,
                       classifier=None, gmm: bool = True, pairs: int = PAIRS, paths: int = PATHS,
                       steps: int = STEPS, eps: float = EPS) -> dict[str, Any]:
    """Continuity, completeness, coverage and fd of ``model`` on ``dataset``, as a plain dict for eval.json.

    Returns ``{"continuity": {...}, "completeness": float|None, "coverage": float|None, "fd": float|None,
    "regularity": {...}}``; ``regularity`` holds the references (real-image ceiling and floor,
    classifier accuracy), recall and density, the classifier confidence, the GMM variant, the
    settings and notes. ``classifier`` defaults to the dataset's cached one (trained on first use).
    Deterministic for a given seed.
    """
    started = time.perf_counter()
    model.eval()
    real = dataset.split(split)
    notes: list[str] = []
    prior_name = "N(0, I)" if model.prior.standard else "the model's own prior (model.sample_prior)"
    details: dict[str, Any] = {"split": split, "seed": seed, "samples": samples, "prior": prior_name,
                               "definitions": DEFINITIONS,
                               "continuity": {"eps": eps, "pairs": pairs, "paths": paths, "steps": steps}}
    result: dict[str, Any] = {"continuity": None, "completeness": None, "coverage": None, "fd": None,
                              "regularity": details}
    if len(real) < 2:
        notes.append(f"the {split} split has fewer than 2 images: nothing is measured")
    else:
        summary = continuity(model, real.x, pairs=pairs, paths=paths, steps=steps, eps=eps, seed=seed)
        details["continuity"]["latent_scale"] = summary.pop("latent_scale")
        result["continuity"] = summary
    if dataset.train.y is None or len(np.unique(dataset.train.y)) < 2:
        notes.append("the dataset has no class labels, so there is no classifier to judge samples: "
                     "completeness, coverage and fd are null")
    elif len(real) >= 2:
        if classifier is None:
            classifier = load_or_train_classifier(dataset, seed=0)
        reference = FeatureReference(classifier, real.x, samples, np.random.default_rng(seed + 3))
        prior = reference.judge(decode_images(model, model.sample_prior(
            samples, generator=torch.Generator(device=_device(model)).manual_seed(seed + 7919)).cpu()))
        result["completeness"], result["coverage"], result["fd"] = prior["completeness"], prior["coverage"], prior["fd"]
        train_x = dataset.train.x
        pick = np.random.default_rng(seed + 2).choice(len(train_x), min(samples, len(train_x)), replace=False)
        floor = reference.judge(train_x[np.sort(pick)])
        meta = classifier.meta
        details.update({
            "completeness_real": floor["completeness"], "coverage_real": floor["coverage"], "fd_real": floor["fd"],
            "recall": prior["recall"], "recall_real": floor["recall"],
            "density": prior["density"], "density_real": floor["density"],
            "confidence": prior["confidence"], "confidence_real": reference.confidence,
            "manifold": {"k": K_NEIGHBOURS, "coverage_k": COVERAGE_NEIGHBOURS, "real_images": len(reference.manifold)},
            "classifier": {"test_accuracy": meta.get("test_accuracy"),
                           "split_accuracy": None if real.y is None else float((reference.predicted == real.y).mean()),
                           "architecture": meta.get("architecture"), "fingerprint": meta.get("fingerprint"),
                           "cached": meta.get("cached")},
        })
        if gmm:
            codes, components = _gmm_samples(model, dataset, samples, seed)
            details["gmm"] = {"components": components, **reference.judge(decode_images(model, codes))}
        accuracy = meta.get("test_accuracy")
        if accuracy is not None and accuracy < 0.7:
            notes.append(f"the judging classifier reaches only {accuracy:.0%} test accuracy: "
                         "completeness, coverage and fd are rough")
    if model.scaling is not None:
        notes.append("real-valued data: decoded values are compared standardised and unclipped, so continuity is the "
                     "RMS change per standardised value (not per pixel) and the classifier judges standardised rows")
    if not model.generative:
        notes.append("prior samples are z ~ N(0, I) for the AE too: "
                     "nothing in its training makes that region meaningful")
    details["notes"] = notes
    details["seconds"] = time.perf_counter() - started
    return result
