"""The latent-space figures of a table run: what :mod:`vaekit.figures.images` draws as pictures, drawn
as features.

Each function takes a model and its dataset (a table: ``dataset.is_table``) and returns a
:class:`~vaekit.figures.made.Made`, as its image counterpart does; :mod:`vaekit.figures.images`
calls these for table runs, so the commands and the HTML report need not ask. The arithmetic is
the same (codes from :mod:`vaekit.latent`, in the model's standardised units); what changes is the
picture (:mod:`vaekit.figures.table_plots`) and that every number shown to a reader is in the data's
original units, through ``model.to_data_units``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vaekit import latent
from vaekit.errors import ConfigError
from vaekit.figures import table_plots
from vaekit.figures.made import Made

MAX_FEATURE_MAPS = 6     # features mapped over the decoded grid of a 2-D latent


def refuse(what: str, dataset, instead: str) -> ConfigError:
    """The one-line refusal of an image-only figure for a table run."""
    return ConfigError(f"{what} needs a run trained on images, and this run was trained on the table {dataset.name} "
                       f"({len(dataset.feature_names)} features): {instead}")


def _made(figure, summary: str, warnings: Sequence[str] = (), values: np.ndarray | None = None) -> Made:
    return Made(figure, summary, list(warnings), values)


def _names(dataset) -> list[str]:
    return list(dataset.feature_names)


def _original(model, standardised: np.ndarray) -> np.ndarray:
    return np.asarray(model.to_data_units(np.asarray(standardised)), np.float64)


def reconstruction(model, dataset, *, n: int, split: str, labels: Sequence[str]):
    """Columns: each row of the data, then its reconstruction; rows: the features."""
    part = dataset.split(split)
    x = part.x[:n]
    recon = latent.reconstruct(model, x)
    pairs = np.stack([x, recon], axis=1).reshape(2 * n, -1)          # input 0, recon 0, input 1, ...
    columns = [text for label in labels for text in (label.replace(" (", "\n(") + "\ninput", "recon.")]
    title = f"{split.capitalize()} rows (input), each beside its reconstruction decode(E[z|x])"
    figure = table_plots.feature_heat_figure(pairs.T, feature_names=_names(dataset), col_labels=columns, title=title,
                                             original=_original(model, pairs).T,
                                             separators=[2 * i - 0.5 for i in range(1, n)])
    error = (recon.astype(np.float64) - x) ** 2
    rmse = np.sqrt(error.mean(0))
    worst = int(np.argmax(rmse))
    scale = np.broadcast_to(np.asarray(model.scaling.scale, np.float64), rmse.shape)
    summary = (f"MSE per standardised value over these {n} rows: {error.mean():.4f}; largest error in "
               f"{dataset.feature_names[worst]}: RMSE {table_plots.short_number(rmse[worst] * scale[worst])} in its "
               f"own units ({rmse[worst]:.2f} sd)")
    return _made(figure, summary, values=_original(model, recon))


def samples(model, dataset, *, codes: np.ndarray, source: str, temperature: float, caught: list[str]):
    """Box plots of the samples beside the test rows, per feature; the summary compares their means."""
    decoded = latent.decode_images(model, codes)
    test = dataset.test.x
    title = f"{len(codes)} samples decode(z), {source}, T = {temperature:g}, beside the {len(test)} test rows"
    figure = table_plots.distribution_figure(decoded, test, feature_names=_names(dataset), title=title,
                                             sample_label=f"{len(codes)} samples", data_label=f"{len(test)} test rows")
    gap = np.abs(decoded.mean(0) - test.mean(0))
    worst = int(np.argmax(gap))
    summary = (f"{len(codes)} samples; their feature means lie within {gap.max():.2f} training sd of the test "
               f"rows' (largest gap: {dataset.feature_names[worst]})")
    return _made(figure, summary, caught, values=_original(model, decoded))


def decoded(model, dataset, *, codes: np.ndarray):
    """Features (rows) by code (columns); the summary lists the values, one column per code."""
    rows = latent.decode_images(model, codes)
    original = _original(model, rows)
    columns = [f"code {i + 1}" for i in range(len(codes))]
    figure = table_plots.feature_heat_figure(rows.T, feature_names=_names(dataset), col_labels=columns,
                                             original=original.T, title=f"decode(z) of {len(codes)} given codes")
    width = max(len(name) for name in dataset.feature_names)
    lines = [f"{'':<{width}}  " + "  ".join(f"{c:>10}" for c in columns)]
    lines += [f"{name:<{width}}  " + "  ".join(f"{v:>10.4g}" for v in original[:, d])
              for d, name in enumerate(dataset.feature_names)]
    return _made(figure, "\n".join(lines), values=original)


def interpolation(model, dataset, *, start: int, end: int, steps: int, method: str,
                  start_label: str, end_label: str):
    """Columns: the real start row, the decoded path t = 0 ... 1, the real end row."""
    test = dataset.test
    means = latent.encode_means(model, test.x[[start, end]])
    codes = latent.interpolate(means[0], means[1], steps, method)
    path = latent.decode_images(model, codes)
    table = np.concatenate([test.x[start:start + 1], path, test.x[end:end + 1]])
    columns = [f"{start_label}\n(real)"] + [f"t={t:.2f}" for t in np.linspace(0, 1, steps)] + [f"{end_label}\n(real)"]
    figure = table_plots.feature_heat_figure(
        table.T, feature_names=_names(dataset), col_labels=columns, original=_original(model, table).T,
        separators=[0.5, steps + 0.5],
        title=f"{method.capitalize()} interpolation between the codes of two test rows: the decoded features along the path")
    norms = np.linalg.norm(codes, axis=1)
    moved = np.abs(path[-1] - path[0])
    top = int(np.argmax(moved))
    return _made(figure, f"|z| along the path: {norms[0]:.2f} -> min {norms.min():.2f} -> {norms[-1]:.2f}; "
                        f"{dataset.feature_names[top]} changes most ({moved[top]:.2f} sd)")


def traversal(model, dataset, *, result, index_label: str, shown: str):
    """Rows: features; columns: latent dimensions; colour: how far the feature moves as that one
    dimension goes from -span to +span (decoded at the ends, standardised units)."""
    images = result.images                                   # (dims, offsets, D), standardised
    change = (images[:, -1] - images[:, 0]).T                # (D, dims)
    original = _original(model, images[:, -1]) - _original(model, images[:, 0])
    span = result.offsets[-1]
    if result.score_name == "KL":
        columns = [f"z{d}\nKL {s:.2f}" for d, s in zip(result.dims, result.scores)]
        unit, order = "prior sd", "largest KL first"
    else:
        columns = [f"z{d}\nvar {s:.3g}" for d, s in zip(result.dims, result.scores)]
        unit, order = "sd of the encoded means", "largest code variance first"
    title = (f"Latent traversal around test row {index_label}: what each latent dimension does to each feature\n"
             f"(decoded at +{span:g} minus at −{span:g} {unit} along one dimension; columns {order}){shown}")
    limit = max(1.0, float(np.ceil(np.percentile(np.abs(change), 98))))
    figure = table_plots.feature_heat_figure(
        change, feature_names=_names(dataset), col_labels=columns, original=original.T, limit=limit, title=title,
        colour_label="change in standardised units (training sd)",
        number_note="the change in the feature's own units")
    strongest = np.argmax(np.abs(change), axis=0)
    effects = ", ".join(f"z{d} -> {dataset.feature_names[f]}" for d, f in zip(result.dims[:4], strongest[:4]))
    return _made(figure, f"feature each dimension moves most: {effects}")


def latent_map(model, dataset, *, result, class_names, title: str, code_name: str, summary: str):
    """The scatter, and for a 2-D latent the decoded features over the grid (instead of images)."""
    grid, chosen = None, []
    if result.manifold is not None:
        spread = result.manifold.reshape(-1, result.manifold.shape[-1]).std(0)   # standardised units
        chosen = list(np.argsort(-spread, kind="stable")[:MAX_FEATURE_MAPS])
        grid = _original(model, result.manifold)
    figure = table_plots.latent_map_figure(result, grid, class_names=class_names, feature_names=_names(dataset),
                                           chosen=chosen, title=title, code_name=code_name)
    if chosen:
        summary += "; mapped over the decoded grid: " + ", ".join(dataset.feature_names[f] for f in chosen)
    return _made(figure, summary)


def arithmetic(model, dataset, *, result, plus: str, minus: str, plus_k: int, minus_k: int):
    """Rows: features; columns: alpha. Colour: the decoded change decode(z + alpha v) - decode(z),
    averaged over the edited rows (standardised); a last column gives the data's own difference of
    class means, mean(plus rows) - mean(minus rows), which alpha = 1 should resemble."""
    base = result.images[:, list(result.alphas).index(0.0)] if 0.0 in result.alphas else latent.reconstruct(model, result.originals)
    delta = (result.images - base[:, None]).mean(0)                        # (alphas, D), standardised
    original = (_original(model, result.images) - _original(model, base)[:, None]).mean(0)
    train = dataset.train
    observed = train.x[train.y == plus_k].mean(0) - train.x[train.y == minus_k].mean(0)
    observed_original = (_original(model, train.x[train.y == plus_k]).mean(0)
                         - _original(model, train.x[train.y == minus_k]).mean(0))
    values = np.concatenate([delta, observed[None]]).T
    numbers = np.concatenate([original, observed_original[None]]).T
    columns = [f"α = {a:g}" for a in result.alphas] + [f"data:\nmean '{plus}'\n− mean '{minus}'"]
    limit = max(1.0, float(np.ceil(np.percentile(np.abs(values), 98))))
    title = (f"Latent arithmetic on a table: decode(code + α·v) − decode(code), mean over {len(result.originals)} rows "
             f"without '{plus}'\nv = mean code of '{plus}' − mean code of '{minus}' ({result.n_plus} and "
             f"{result.n_minus} training rows)")
    figure = table_plots.feature_heat_figure(
        values, feature_names=_names(dataset), col_labels=columns, original=numbers, limit=limit, title=title,
        separators=[len(result.alphas) - 0.5], colour_label="change in standardised units (training sd)",
        number_note="the change in the feature's own units")
    at_one = delta[list(result.alphas).index(1.0)] if 1.0 in result.alphas else None
    agreement = ""
    if at_one is not None and np.std(at_one) > 0 and np.std(observed) > 0:
        agreement = f"; correlation of the α = 1 change with the data's class difference: {np.corrcoef(at_one, observed)[0, 1]:.2f}"
    return _made(figure, f"attribute vector: |v| = {np.linalg.norm(result.vector):.3f} from {result.n_plus} '{plus}' "
                        f"and {result.n_minus} '{minus}' rows{agreement}")


def feature_section(model, dataset, *, seed: int = 0, samples: int = 2000) -> str:
    """The report's table of features (HTML): per feature, in its own units, the training mean and
    sd (the standardisation), the test rows' mean, how well they are reconstructed (RMSE, and R², the
    share of the test variance the reconstructions explain), and the mean and sd of decoded prior
    samples beside the test rows' sd."""
    from vaekit.figures import html as h

    test = dataset.test.x
    recon = latent.reconstruct(model, test)
    original, rebuilt = _original(model, test), _original(model, recon)
    codes = latent.sample_codes(model, samples, seed=seed) if model.generative else None
    drawn = None if codes is None else _original(model, latent.decode_images(model, codes))
    scaling = model.scaling
    mean, scale = (np.broadcast_to(np.asarray(v, np.float64), original.shape[1:]) for v in (scaling.mean, scaling.scale))
    rmse = np.sqrt(((rebuilt - original) ** 2).mean(0))
    variance = original.var(0)
    r2 = np.where(variance > 0, 1 - rmse ** 2 / np.where(variance > 0, variance, 1), np.nan)
    rows = []
    for d, name in enumerate(dataset.feature_names):
        row = [name, mean[d], scale[d], original[:, d].mean(), original[:, d].std(), rmse[d], r2[d]]
        if drawn is not None:
            row += [drawn[:, d].mean(), drawn[:, d].std()]
        rows.append(row)
    header = ["feature", "training mean", "training sd", "test mean", "test sd", "reconstruction RMSE", "R²"]
    if drawn is not None:
        header += ["prior samples: mean", "sd"]
    note = (f"Each feature in its own units. Reconstruction of the {len(test)} test rows by decode(E[z|x]); "
            "R² = 1 − MSE / test variance (1: rebuilt exactly; 0: no better than the test mean)."
            + (f" {samples} prior samples decode(z), z from the prior: decoder means, without the likelihood's noise, so "
               "their sd is below the data's when the noise is large." if drawn is not None else ""))
    return h.section("Features", h.table(rows, header=header, digits=4), note)
