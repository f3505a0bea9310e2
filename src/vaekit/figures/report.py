"""HTML reports: one page per run (``vaekit report``) and one page comparing runs (``vaekit compare``).

Pages are self-contained (figures embedded as data URLs, inline CSS, no scripts) so they open
offline and can be mailed around. Building a page evaluates a run that has no eval.json yet.

A run's page leads with what matters: the headline numbers, each with what it means, then the
pictures, then the training curves and every number of the evaluation; the configuration comes
last, only the options that apply to this model, the rest folded away. The comparison puts runs in
columns and marks the best value of each row among the runs it may be compared with (same data,
same likelihood, same number K of importance samples).
"""
from __future__ import annotations

import dataclasses
import html
import logging
from pathlib import Path
from typing import Any, Sequence

from vaekit.figures import curves
from vaekit.figures import images as figures
from vaekit.figures import html as h
from vaekit.training.card import METRICS, metric_unit, metric_value
from vaekit.training.run import Run, open_run

log = logging.getLogger(__name__)

# Models trained to disentangle their latent dimensions: their report also shows the animated traversal.
DISENTANGLEMENT_MODELS = ("beta-vae", "beta-tcvae", "factor-vae", "dip-vae", "capacity-vae")

EVAL_ROWS = ["recon", "kl", "nelbo", "nll", "bits_per_dim", "mse", "pca_mse", "active_units"]


def ensure_evaluation(run: Run, *, iw_samples: int, data_dir: str | None = None, device: str = "cpu",
                      progress=None, dataset: str | None = None) -> dict[str, Any]:
    """The run's eval.json, computing (and writing) it first if it is missing (``progress(done, total)``
    hears how far the evaluation is; ``dataset``: where its data are, if they moved since training)."""
    result = run.evaluation()
    if result is None:
        from vaekit.evaluation.evaluate import evaluate

        log.info("no eval.json in %s: evaluating with K = %d", run.path, iw_samples)
        result = evaluate(run.path, iw_samples=iw_samples, data_dir=data_dir, device=device, progress=progress,
                          dataset=dataset)
    return result


def _describe(run: Run) -> str:
    cfg = run.config
    beta = "" if cfg.beta is None else f", β = {cfg.beta:g}"
    return (f"{cfg.model} · {cfg.arch} · latent {cfg.latent_dim} · {cfg.likelihood}{beta} · "
            f"{run.info['data']['name']} · {len(run.history())} epochs")


def _label(key: str, result: dict[str, Any]) -> str:
    label = METRICS[key][0]
    if key == "nll" and result.get("iw_samples"):
        label += f" (K = {result['iw_samples']})"
    return label


# -- the headline --------------------------------------------------------------------------------
def headline(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The headline tiles, (label, value, unit, meaning): −ELBO, NLL, bits/dim, MSE against PCA and
    the regularity of the latent space, each where the model has it."""
    tiles = []
    for key in ("nelbo", "nll", "bits_per_dim"):
        if result.get(key) is not None:
            tiles.append((_label(key, result), h.fmt(result[key], 4 if key == "bits_per_dim" else 2),
                          metric_unit(key, result), METRICS[key][1]))
    if result.get("nelbo") is None and result.get("recon") is not None:
        tiles.append((METRICS["recon"][0], h.fmt(result["recon"], 2), metric_unit("recon", result), METRICS["recon"][1]))
    mse, pca = result.get("mse"), result.get("pca_mse")
    if mse is not None and pca is not None:
        change = "lower" if mse <= pca else "higher"
        share = f"{abs(1 - mse / pca):.0%} {change} than" if pca > 0 else "against"
        tiles.append(("MSE against PCA", f"{mse:.4f}", f"PCA {pca:.4f}",
                      f"per-value error of decode(E[z|x]), {share} PCA with {result.get('latent_dim')} components, "
                      "the linear baseline"))
    p95 = metric_value("continuity", result)
    if p95 is not None:
        tiles.append((METRICS["continuity"][0], h.fmt(p95, 3), "", METRICS["continuity"][1]))
    details = result.get("regularity") or {}
    if result.get("coverage") is not None:
        real = details.get("coverage_real")
        tiles.append((METRICS["coverage"][0], h.fmt(result["coverage"], 3), "",
                      METRICS["coverage"][1] + ("" if real is None else f" (real images: {h.fmt(real, 3)})")))
    if result.get("completeness") is not None:
        real = details.get("completeness_real")
        tiles.append((METRICS["completeness"][0], h.fmt(result["completeness"], 3), "",
                      METRICS["completeness"][1] + ("" if real is None else f" (real images: {h.fmt(real, 3)})")))
    if result.get("fd") is not None:
        real = details.get("fd_real")
        tiles.append((METRICS["fd"][0], h.fmt(result["fd"], 2), "",
                      METRICS["fd"][1] + ("" if real is None else f" (the floor, real train vs test images: {h.fmt(real, 2)})")))
    return tiles


def headline_section(result: dict[str, Any]) -> str:
    k = result.get("iw_samples")
    units = "nats per image" if result.get("proper_likelihood", True) else "losses per image (not nats: see the notes)"
    intro = (f"{result['split']} split, {result['n']} images, likelihood {result['likelihood']}"
             + (f", K = {k} importance samples" if k else "") + f"; {units}.")
    notes = "".join(f'<p class="note">{html.escape(note)}</p>' for note in result.get("notes", []))
    return h.section("Headline numbers", h.tiles(headline(result)) + notes, intro)


def evaluation_section(result: dict[str, Any]) -> str:
    """Every number of the evaluation, with its unit and meaning."""
    rows = []
    for key in EVAL_ROWS:
        unit, label = metric_unit(key, result), _label(key, result)
        rows.append((label + (f" ({unit})" if unit and unit not in label else ""), result.get(key), METRICS[key][1]))
    body = h.table(rows, header=["quantity", "value", "meaning"], digits=4)
    regularity = _regularity_rows(result)
    if regularity:
        body += h.details(f"Regularity of the latent space: {len(regularity)} measures",
                          h.table(regularity, header=["measure", "value"], digits=4)
                          + '<p class="note">continuity: per-pixel RMS change of the decoded image per step of one standard '
                            "deviation of the encoded data (lower, with a light tail, is smoother); completeness: the "
                            "share of decoded prior samples whose classifier features lie on the real-data manifold "
                            "(higher is better; 'completeness real' is real images' score); fd: Fréchet distance between "
                            "classifier features of real test images and of prior samples (lower is better; 'fd real' is "
                            "the floor). See the README.</p>")
    return h.section("Evaluation", body, "All numbers of eval.json, with what each means.")


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


# -- the configuration ---------------------------------------------------------------------------
NONE_WORDS = {"max_memory": "half the RAM", "workers": "1 to 4", "image_size": "as stored", "data_dir": "default"}


def configuration(run: Run) -> tuple[list[tuple[str, Any]], list[tuple[str, Any]]]:
    """The run's options split into (those that apply to this model and data, those that do not).

    Options of other architectures, likelihoods and priors, the image-folder settings of a named
    dataset and an unset data folder do not apply; the model's own options always do."""
    cfg = run.config
    from vaekit.data import dataset_names

    folder = cfg.dataset not in dataset_names() and Path(cfg.dataset).suffix == ""
    applies = {
        "data_dir": cfg.data_dir is not None, "image_size": folder, "stream": folder, "cache": folder,
        "max_memory": folder, "workers": folder,
        "val_fraction": cfg.val_fraction is not None, "val_size": cfg.val_size is not None,
        "hidden": cfg.arch in ("mlp", "gated"), "channels": cfg.arch == "conv",
        "binarize": cfg.likelihood == "bernoulli", "sigma": cfg.likelihood == "gaussian",
        "pseudo_inputs": cfg.prior == "vamp", "kl_warmup": cfg.beta is not None,
    }
    own = {f.name for f in dataclasses.fields(cfg.options)}
    shown, folded = [], []
    for key, value in cfg.to_dict().items():
        text = NONE_WORDS.get(key, "off") if value is None else _option_text(value)
        name = key.replace("_", "-") + (" (model option)" if key in own else "")
        (shown if key in own or applies.get(key, True) else folded).append((name, text))
    return shown, folded


def _option_text(value: Any) -> str:
    """An option's value as the command line would take it: 0.001, 64, 512,256, dynamic."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_option_text(v) for v in value)
    return str(value)


def configuration_section(run: Run) -> str:
    shown, folded = configuration(run)
    body = h.table(shown, header=["option", "value"])
    if folded:
        body += h.details(f"{len(folded)} more options that do not apply to this model and data",
                          h.table(folded, header=["option", "value"]))
    return h.section("Configuration", body,
                     f"Trained with vaekit {run.info['versions']['vaekit']}, torch {run.info['versions']['torch']}; "
                     f"{run.info['model']['parameters']:,} parameters; data from {run.info['data']['source']}. "
                     "The whole configuration is in config.json.")


# -- one run -------------------------------------------------------------------------------------
def build_report(run_dir: str | Path, *, iw_samples: int = 1000, data_dir: str | None = None,
                 device: str = "cpu", seed: int = 0, progress=None, dataset: str | None = None) -> str:
    """The HTML report of one run (``progress``: see :func:`ensure_evaluation`; ``dataset``: where its data
    are, if they moved since training)."""
    run = open_run(run_dir)
    result = ensure_evaluation(run, iw_samples=iw_samples, data_dir=data_dir, device=device, progress=progress,
                               dataset=dataset)
    from vaekit.latent import load_model_and_data

    model, dataset = load_model_and_data(run.path, data_dir=data_dir, device=device, dataset=dataset)
    history = run.history()
    sections = [headline_section(result)]
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
    ]
    for title, made in shown:
        sections.append(h.section(title, h.image(made.figure, title), made.summary))
    if figures.is_table(dataset):   # a table run: its features' values, beside the figures above
        from vaekit.figures.tables import feature_section

        sections.append(feature_section(model, dataset, seed=seed))
    if run.config.model in DISENTANGLEMENT_MODELS:
        made = figures.traversal_animation(model, dataset, max_dims=16)
        sections.append(h.section("Traversal, animated", h.embedded(made.figure, "image/gif", "animated traversal"),
                                  "Every latent dimension (the 16 with the largest KL at most) sweeping from −3 to +3 prior "
                                  "standard deviations around a test image's code, all at once: a disentangled dimension "
                                  "changes one thing."))
    made = figures.latent_map(model, dataset, seed=seed)
    sections.append(h.section("Latent map", h.image(made.figure, "Latent map"), made.summary))
    if result.get("kl_per_dim"):
        sections.append(h.section("KL per latent dimension", h.image(curves.kl_per_dimension(result["kl_per_dim"]), "KL per dimension"),
                                  f"{result['active_units']} of {len(result['kl_per_dim'])} dimensions are active."))
    sections += [h.section("Training curves", h.image(curves.training_curves(history, nats=bool(result.get("proper_likelihood", True))), "training curves")),
                 evaluation_section(result), configuration_section(run)]
    return h.page(f"vaekit report: {run.path.name}", _describe(run), sections)


# -- runs side by side ---------------------------------------------------------------------------
# (row name, eval.json key or a function of (run, result), lower is better / higher is better / not ranked,
#  what must be equal for two values to be compared)
COMPARE_ROWS: list[tuple[str, Any, str | None, tuple[str, ...]]] = [
    ("model", lambda run, r: run.config.model, None, ()),
    ("arch", lambda run, r: run.config.arch, None, ()),
    ("latent dimensions", lambda run, r: run.config.latent_dim, None, ()),
    ("β", lambda run, r: run.config.beta, None, ()),
    ("likelihood", lambda run, r: r.get("likelihood"), None, ()),
    ("epochs", lambda run, r: len(run.history()), None, ()),
    ("evaluated on", lambda run, r: f"{r.get('split')} ({r.get('n')})", None, ()),
    ("K (importance samples)", lambda run, r: r.get("iw_samples"), None, ()),
    ("reconstruction (nats)", "recon", "low", ("likelihood",)),
    ("KL (nats)", "kl", None, ()),
    ("−ELBO (nats)", "nelbo", "low", ("likelihood",)),
    ("NLL (nats)", "nll", "low", ("likelihood", "iw_samples")),
    ("bits/dim", "bits_per_dim", "low", ("likelihood", "iw_samples")),
    ("MSE", "mse", "low", ()),
    ("PCA MSE", "pca_mse", None, ()),
    ("active units", "active_units", None, ()),
    ("continuity p95", lambda run, r: metric_value("continuity", r), "low", ()),
    ("coverage", "coverage", "high", ()),
    ("completeness", "completeness", "high", ()),
    ("fd", "fd", "low", ()),
]


@dataclasses.dataclass
class Comparison:
    """Runs side by side: one column per run, one row per quantity, and the best cell of each row.

    ``groups`` holds the column indices of runs trained on the same data (name and sample shape);
    runs on different data are never ranked against each other. ``warnings`` say what is not comparable."""

    columns: list[str]
    rows: list[tuple[str, list[Any]]]
    marked: set[tuple[int, int]]
    groups: list[list[int]]
    data: list[str]
    warnings: list[str]


def data_key(run: Run) -> str:
    data = run.info["data"]
    return f"{data['name']} ({'×'.join(str(s) for s in data['sample_shape'])})"


def compare_runs(runs: Sequence[Run], results: Sequence[dict[str, Any]]) -> Comparison:
    """The table of ``compare``, its best cells and its warnings."""
    names = [run.path.name for run in runs]
    columns = [name if names.count(name) == 1 else str(run.path) for name, run in zip(names, runs)]
    data = [data_key(run) for run in runs]
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(data):
        groups.setdefault(key, []).append(i)
    warnings = []
    if len(groups) > 1:
        warnings.append("these runs were trained on different data (" + "; ".join(
            f"{key}: {', '.join(columns[i] for i in members)}" for key, members in groups.items())
            + "): their numbers are not comparable, and each is ranked only among runs on the same data")
    ks = sorted({r.get("iw_samples") for r in results if r.get("nll") is not None})
    if len(ks) > 1:
        warnings.append(f"the NLLs were estimated with different K ({', '.join(str(k) for k in ks)} importance samples): "
                        "a larger K gives a tighter, lower estimate, so NLLs are ranked only among runs with the same K; "
                        "re-evaluate with one --iw-samples to compare them")
    rows, marked = [], set()
    for r_index, (name, source, better, same) in enumerate(COMPARE_ROWS):
        values = [source(run, result) if callable(source) else result.get(source) for run, result in zip(runs, results)]
        if source == "nll" and len(ks) == 1:
            name = f"NLL (nats, K = {ks[0]})"
        rows.append((name, values))
        if better is None:
            continue
        for members in groups.values():
            candidates = [i for i in members if isinstance(values[i], (int, float)) and not isinstance(values[i], bool)]
            classes: dict[tuple, list[int]] = {}
            for i in candidates:
                classes.setdefault(tuple(results[i].get(key) for key in same), []).append(i)
            for chosen in classes.values():
                if len(chosen) < 2:
                    continue
                pick = min if better == "low" else max
                best = pick(values[i] for i in chosen)
                marked.update((r_index, i) for i in chosen if values[i] == best)
    improper = [columns[i] for i, r in enumerate(results) if not r.get("proper_likelihood", True)]
    if improper:
        warnings.append(f"{', '.join(improper)}: the likelihood is not a normalised probability, so reconstruction, "
                        "−ELBO and NLL are losses, not nats")
    return Comparison(columns, rows, marked, list(groups.values()), data, warnings)


def comparison_for(run_dirs: Sequence[str | Path]) -> Comparison:
    """:func:`compare_runs` of run folders that have been evaluated (after :func:`build_comparison`)."""
    runs = [open_run(path) for path in run_dirs]
    results = [run.evaluation() or {} for run in runs]
    return compare_runs(runs, results)


def build_comparison(run_dirs: Sequence[str | Path], *, iw_samples: int = 1000, data_dir: str | None = None,
                     device: str = "cpu", seed: int = 0, progress=None) -> str:
    """One page with runs side by side (one column each) and the rate-distortion plane of each dataset."""
    from vaekit.latent import load_model_and_data

    runs = [open_run(path) for path in run_dirs]
    results = [ensure_evaluation(run, iw_samples=iw_samples, data_dir=data_dir, device=device, progress=progress)
               for run in runs]
    table = compare_runs(runs, results)
    body = "".join(h.warning(text) for text in table.warnings)
    body += h.row_table(["", *table.columns], table.rows, marked=table.marked)
    sections = [h.section("Runs", body, "One column per run; ★ marks the best value of a row among the runs it can be "
                                        "compared with (same data, same likelihood, and the same K for NLLs). "
                                        "Nats per image, MSE per value; n/a where a quantity does not apply.")]
    for members in table.groups:
        points = [{"name": table.columns[i], "kl": results[i]["kl"], "recon": results[i]["recon"]}
                  for i in members if results[i].get("kl") is not None and results[i].get("proper_likelihood")]
        if points:
            where = f" on {table.data[members[0]]}" if len(table.groups) > 1 else ""
            sections.append(h.section(f"Rate and distortion{where}", h.image(curves.rate_distortion(points), "rate-distortion plane"),
                                      "Each VAE run as a point; β > 1 buys a smaller KL (rate) with worse reconstruction (distortion)."))
    cells = []
    for run, column in zip(runs, table.columns):
        model, dataset = load_model_and_data(run.path, data_dir=data_dir, device=device)
        recon = figures.reconstruction(model, dataset, n=8)
        sample = figures.samples(model, dataset, n=32, sampler="prior", seed=seed)
        cells.append(f"<div><h3>{html.escape(column)}</h3><p class=\"note\">{html.escape(_describe(run))}</p>"
                     f"{h.image(recon.figure, 'reconstructions')}{h.image(sample.figure, 'prior samples')}</div>")
    sections.append(h.section("Reconstructions and prior samples", f'<div class="grid">{"".join(cells)}</div>'))
    return h.page("vaekit comparison", f"{len(runs)} runs", sections)
