"""HTML reports: one page per run (``vaekit report``) and one page comparing runs (``vaekit compare``).

Pages are self-contained (figures embedded as PNG data URLs, inline CSS, no scripts) so they open
offline and can be mailed around. Building a page evaluates a run that has no eval.json yet.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from vaekit.figures import curves
from vaekit.figures import images as figures
from vaekit.figures import html as h
from vaekit.training.run import Run, open_run

log = logging.getLogger(__name__)

EVAL_ROWS = [  # (eval.json key, label, unit)
    ("recon", "reconstruction −E[log p(x|z)]", "nats"),
    ("kl", "KL(q(z|x) ‖ p(z))", "nats"),
    ("nelbo", "−ELBO", "nats"),
    ("nll", "NLL (importance-weighted)", "nats"),
    ("bits_per_dim", "bits/dim", "bits"),
    ("mse", "MSE per pixel", ""),
    ("pca_mse", "PCA MSE per pixel (same latent size)", ""),
    ("active_units", "active units", ""),
]


def ensure_evaluation(run: Run, *, iw_samples: int, data_dir: str | None = None, device: str = "cpu") -> dict[str, Any]:
    """The run's eval.json, computing (and writing) it first if it is missing."""
    result = run.evaluation()
    if result is None:
        from vaekit.evaluation.evaluate import evaluate

        log.info("no eval.json in %s: evaluating with K = %d", run.path, iw_samples)
        result = evaluate(run.path, iw_samples=iw_samples, data_dir=data_dir, device=device)
    return result


def _describe(run: Run) -> str:
    cfg = run.config
    beta = "" if cfg.beta is None else f", β = {cfg.beta:g}"
    return (f"{cfg.model} · {cfg.arch} · latent {cfg.latent_dim} · {cfg.likelihood}{beta} · "
            f"{run.info['data']['name']} · {len(run.history())} epochs")


def _regularity_rows(result: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = []
    continuity = result.get("continuity") or {}
    for key, value in continuity.items():
        if isinstance(value, (int, float)):
            rows.append((f"continuity: {key.replace('_', ' ')}", value))
    for key in ("coverage", "completeness", "fd"):
        if key in result:
            rows.append((key, result[key]))
    details = result.get("regularity") or {}
    for key, value in details.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("seed", "seconds", "samples"):
            rows.append((key.replace("_", " "), value))
    return rows


def evaluation_section(result: dict[str, Any]) -> str:
    rows = [(label + (f" ({unit})" if unit else ""), result.get(key)) for key, label, unit in EVAL_ROWS]
    body = h.table(rows, header=["quantity", "value"], digits=4)
    notes = "".join(f'<p class="note">{note}</p>' for note in result.get("notes", []))
    k = result.get("iw_samples")
    intro = (f"{result['split']} split, {result['n']} images, likelihood {result['likelihood']}"
             + (f", K = {k} importance samples" if k else "") + ".")
    return h.section("Evaluation", body + notes, intro)


def build_report(run_dir: str | Path, *, iw_samples: int = 1000, data_dir: str | None = None,
                 device: str = "cpu", seed: int = 0) -> str:
    """The HTML report of one run."""
    run = open_run(run_dir)
    result = ensure_evaluation(run, iw_samples=iw_samples, data_dir=data_dir, device=device)
    from vaekit.latent import load_model_and_data

    model, dataset = load_model_and_data(run.path, data_dir=data_dir, device=device)
    history = run.history()
    cfg = run.config
    sections = [
        h.section("Configuration", h.table(sorted(cfg.to_dict().items()), header=["option", "value"]),
                  f"Trained with vaekit {run.info['versions']['vaekit']}, torch {run.info['versions']['torch']}; "
                  f"{run.info['model']['parameters']:,} parameters; data from {run.info['data']['source']}."),
        h.section("Training curves", h.image(curves.training_curves(history), "training curves")),
        evaluation_section(result),
    ]
    regularity = _regularity_rows(result)
    if regularity:
        sections.append(h.section("Regularity of the latent space", h.table(regularity, header=["measure", "value"], digits=4),
                                  "continuity: per-pixel RMS change of the decoded image per step of one standard "
                                  "deviation of the encoded data (lower, with a light tail, is smoother); coverage "
                                  "(the headline): the share of real images whose classifier-feature neighbourhood holds "
                                  "a decoded prior sample (higher is better, near 0 for a collapsed model); completeness: "
                                  "the share of decoded prior samples whose classifier features lie on the real-data "
                                  "manifold (higher is better; 'completeness real' is real images' score); fd: Fréchet "
                                  "distance between classifier features of real test images and of prior samples "
                                  "(lower is better; 'fd real' is the floor). See the README."))
    shown = [
        ("Reconstructions", figures.reconstruction(model, dataset)),
        ("Samples from the prior", figures.samples(model, dataset, sampler="prior", seed=seed)),
    ]
    if not model.variational:
        shown.append(("Samples from a mixture fitted to the codes", figures.samples(model, dataset, sampler="gmm", seed=seed)))
    start, end = figures.contrasting_pair(dataset)
    shown += [
        ("Interpolation", figures.interpolation(model, dataset, start=start, end=end)),
        ("Traversals", figures.traversal(model, dataset)),
        ("Latent map", figures.latent_map(model, dataset, seed=seed)),
    ]
    for title, made in shown:
        sections.append(h.section(title, h.image(made.figure, title), made.summary))
    if result.get("kl_per_dim"):
        sections.append(h.section("KL per latent dimension", h.image(curves.kl_per_dimension(result["kl_per_dim"]), "KL per dimension"),
                                  f"{result['active_units']} of {len(result['kl_per_dim'])} dimensions are active."))
    return h.page(f"vaekit report: {run.path.name}", _describe(run), sections)


COMPARE_COLUMNS = [("recon", "recon"), ("kl", "KL"), ("nelbo", "−ELBO"), ("nll", "NLL"), ("mse", "MSE"),
                   ("pca_mse", "PCA MSE"), ("active_units", "active"), ("coverage", "coverage"),
                   ("completeness", "completeness"), ("fd", "fd")]


def comparison_rows(runs: Sequence[Run], results: Sequence[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for run, result in zip(runs, results):
        cfg = run.config
        continuity = (result.get("continuity") or {}).get("random_p95")
        rows.append([run.path.name, cfg.model, cfg.arch, cfg.latent_dim, cfg.beta, cfg.likelihood]
                    + [result.get(key) for key, _ in COMPARE_COLUMNS] + [continuity])
    return rows


def build_comparison(run_dirs: Sequence[str | Path], *, iw_samples: int = 1000, data_dir: str | None = None,
                     device: str = "cpu", seed: int = 0) -> str:
    """One page with runs side by side and the rate-distortion plane."""
    from vaekit.latent import load_model_and_data

    runs = [open_run(path) for path in run_dirs]
    results = [ensure_evaluation(run, iw_samples=iw_samples, data_dir=data_dir, device=device) for run in runs]
    header = ["run", "model", "arch", "latent", "β", "likelihood"] + [label for _, label in COMPARE_COLUMNS] + ["continuity p95"]
    sections = [h.section("Runs", h.table(comparison_rows(runs, results), header=header, digits=3),
                          "nats per image; MSE per pixel; blank (n/a) where a quantity does not apply.")]
    points = [{"name": run.path.name, "kl": r["kl"], "recon": r["recon"]}
              for run, r in zip(runs, results) if r.get("kl") is not None and r.get("proper_likelihood")]
    if points:
        sections.append(h.section("Rate and distortion", h.image(curves.rate_distortion(points), "rate-distortion plane"),
                                  "Each VAE run as a point; β > 1 buys a smaller KL (rate) with worse reconstruction (distortion)."))
    cells = []
    for run in runs:
        model, dataset = load_model_and_data(run.path, data_dir=data_dir, device=device)
        recon = figures.reconstruction(model, dataset, n=8)
        sample = figures.samples(model, dataset, n=32, sampler="prior", seed=seed)
        cells.append(f"<div><h3>{run.path.name}</h3><p class=\"note\">{_describe(run)}</p>"
                     f"{h.image(recon.figure, 'reconstructions')}{h.image(sample.figure, 'prior samples')}</div>")
    sections.append(h.section("Reconstructions and prior samples", f'<div class="grid">{"".join(cells)}</div>'))
    return h.page("vaekit comparison", f"{len(runs)} runs", sections)
