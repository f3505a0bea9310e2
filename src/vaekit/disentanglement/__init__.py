"""Disentanglement metrics: how well single code dimensions capture single ground-truth factors.

Five standard scores, each a function of a representation (observations -> codes; for a vaekit model
the encoder mean) and a ground truth that produces observations for given factor values
(:mod:`.factors`; ``dataset.ground_truth`` of the dsprites data sets):

=====================  ==========================================  ======================================
score                  paper                                        how
=====================  ==========================================  ======================================
``beta_vae``           Higgins et al., ICLR 2017                    logistic regression on mean |z1 - z2|
                                                                    of pairs sharing one factor
``factor_vae``         Kim & Mnih, ICML 2018                        majority vote of the lowest-variance
                                                                    normalised dimension
``mig``                Chen et al., NeurIPS 2018                    gap in mutual information, 20 bins
``dci_*``              Eastwood & Williams, ICLR 2018               gradient-boosted trees' importances
``sap``                Kumar et al., ICLR 2018                      gap in single-dimension R^2 / accuracy
=====================  ==========================================  ======================================

Sample sizes follow Locatello et al. (ICML 2019): 10,000 training points and 5,000 evaluation
points (``points`` and ``points // 2``), batches of 64 for the two batch scores. Every score is
in [0, 1], higher is better; each module's docstring states its exact definition and choices.
"""
from __future__ import annotations

import time

import numpy as np

from vaekit.errors import ConfigError
from vaekit.disentanglement.dci import dci
from vaekit.disentanglement.factors import GroundTruth, SimulatedFactors, check_ground_truth, model_representation, sample_factors
from vaekit.disentanglement.information import mig
from vaekit.disentanglement.intervention import beta_vae_score, factor_vae_score
from vaekit.disentanglement.sap import sap

SCORES = ("beta_vae", "factor_vae", "mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap")
METRICS = ("beta_vae", "factor_vae", "mig", "dci", "sap")   # the five computations, in the order they run


def metric_rng(seed: int, metric: str) -> np.random.Generator:
    """The random stream of one metric: independent of the others, so each can be recomputed alone."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(len(METRICS))[METRICS.index(metric)])


def measure_disentanglement(representation, ground_truth, *, seed: int = 0, points: int = 10_000,
                            batch_size: int = 64, points_per_metric: dict[str, int] | None = None,
                            progress=None) -> dict:
    """All five scores in one dictionary: the headline numbers under :data:`SCORES`, the rest in ``details``.

    ``points`` training points per score (``points // 2`` evaluation points; the FactorVAE variance
    estimate uses ``points`` observations). Each score draws from its own random stream derived from
    ``seed``, so the result does not depend on which other scores ran (:func:`metric_rng`).
    ``points_per_metric`` overrides ``points`` for some of :data:`METRICS` (MIG and SAP cost little;
    the BetaVAE score encodes 128 observations per point and DCI grows trees per class).
    ``progress(done, total)`` is called after each score.
    """
    check_ground_truth(ground_truth)
    sizes = {metric: points for metric in METRICS}
    unknown = set(points_per_metric or {}) - set(METRICS)
    if unknown:
        raise ConfigError(f"unknown metric(s) {sorted(unknown)} in points_per_metric: use {', '.join(METRICS)}")
    sizes.update(points_per_metric or {})
    if min(sizes.values()) < 10:
        raise ConfigError(f"disentanglement points must be at least 10, not {min(sizes.values())}")
    if batch_size < 2:
        raise ConfigError(f"the batch size of the BetaVAE and FactorVAE scores must be at least 2, not {batch_size}")
    started = time.perf_counter()
    n, half = sizes, {metric: max(size // 2, 5) for metric, size in sizes.items()}
    jobs = [
        ("beta_vae", lambda rng: beta_vae_score(representation, ground_truth, rng=rng, batch_size=batch_size,
                                                num_train=n["beta_vae"], num_eval=half["beta_vae"])),
        ("factor_vae", lambda rng: factor_vae_score(representation, ground_truth, rng=rng, batch_size=batch_size,
                                                    num_train=n["factor_vae"], num_eval=half["factor_vae"],
                                                    num_variance_estimate=n["factor_vae"])),
        ("mig", lambda rng: mig(representation, ground_truth, rng=rng, num_train=n["mig"])),
        ("dci", lambda rng: dci(representation, ground_truth, rng=rng, num_train=n["dci"], num_eval=half["dci"])),
        ("sap", lambda rng: sap(representation, ground_truth, rng=rng, num_train=n["sap"], num_eval=half["sap"])),
    ]
    details, seconds = {}, {}
    for done, (name, job) in enumerate(jobs, start=1):
        start = time.perf_counter()
        details[name] = job(metric_rng(seed, name))
        seconds[name] = time.perf_counter() - start
        if progress is not None:
            progress(done, len(jobs))
    result = {
        "beta_vae": details["beta_vae"]["score"],
        "factor_vae": details["factor_vae"]["score"],
        "mig": details["mig"]["score"],
        "dci_disentanglement": details["dci"]["disentanglement"],
        "dci_completeness": details["dci"]["completeness"],
        "dci_informativeness": details["dci"]["informativeness"],
        "sap": details["sap"]["score"],
        "factor_names": list(ground_truth.factor_names),
        "settings": {"points": points, "eval_points": max(points // 2, 5), "points_per_metric": sizes,
                     "batch_size": batch_size, "seed": seed,
                     "mig_bins": 20, "dci_predictor": "GradientBoostingClassifier (scikit-learn defaults)",
                     "beta_vae_classifier": "LogisticRegression", "factor_vae_classifier": "majority vote"},
        "details": details,
        "seconds": seconds,
    }
    result["seconds"]["total"] = time.perf_counter() - started
    return result


__all__ = ["METRICS", "SCORES", "GroundTruth", "metric_rng", "SimulatedFactors", "beta_vae_score", "dci", "factor_vae_score",
           "measure_disentanglement", "mig", "model_representation", "sample_factors", "sap"]
