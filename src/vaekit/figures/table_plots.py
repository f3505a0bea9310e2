"""Figures of tables: decoded rows drawn as features, where image runs draw pictures.

Arrays in, matplotlib Figures out (on the Agg canvas of :func:`vaekit.figures.plots.new_figure`).
A table's features have different units (millimetres beside counts beside ratios), so colours and
positions compare features in *standardised* units, (x − training mean) / training sd, the units
the model works in; the numbers written on the cells are in each feature's *original* units. Every
figure says which is which. Features are the rows of every heat map, so their names read across.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from vaekit.figures.plots import FONT_SIZE, new_figure

LIMIT = 3.0                  # colours saturate at +-3 training standard deviations
COLOURS = "RdBu_r"           # blue below the training mean, red above, white at it
STANDARDISED = "standardised value: (x − training mean) / training sd"
MAX_ANNOTATED_CELLS = 420    # above this, cells are too small for numbers


def short_number(value: float) -> str:
    """A value in at most about six characters: 4254, 23.4, 1.52, 0.0123."""
    value = float(value)
    size = abs(value)
    if size >= 1e5 or (0 < size < 1e-3):
        return f"{value:.2g}"
    if size >= 1000:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


def _size(n_rows: int, n_cols: int, *, label_width: float = 2.4, cell_width: float = 0.62,
          cell_height: float = 0.26) -> tuple[float, float]:
    width = min(15.0, label_width + 1.4 + n_cols * cell_width)
    height = min(20.0, 1.6 + n_rows * cell_height)
    return max(width, 6.5), max(height, 3.2)


def draw_heat_map(ax, values: np.ndarray, *, row_labels: Sequence[str], col_labels: Sequence[str],
                  annotations: np.ndarray | None = None, limit: float = LIMIT, separators: Sequence[float] = ()):
    """``values`` (rows x columns) as colours on ``ax``, centred on 0 and saturating at +-``limit``;
    ``annotations`` (same shape) are written on the cells, dark or light to stay readable."""
    values = np.asarray(values, np.float64)
    image = ax.imshow(values, cmap=COLOURS, vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(row_labels)))
    ax.set_yticklabels(row_labels, fontsize=FONT_SIZE)
    ax.set_xticks(range(len(col_labels)))
    ax.set_xticklabels(col_labels, fontsize=FONT_SIZE)
    ax.xaxis.tick_top()
    ax.tick_params(length=0, pad=3)
    for x in separators:
        ax.axvline(x, color="0.15", linewidth=1.2)
    if annotations is not None:
        small = FONT_SIZE - 2.5 if values.shape[1] > 10 else FONT_SIZE - 1.5
        for (r, c), text in np.ndenumerate(np.asarray(annotations, dtype=object)):
            light = abs(values[r, c]) > 0.6 * limit
            ax.text(c, r, text, ha="center", va="center", fontsize=small, color="white" if light else "0.1")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image


def feature_heat_figure(standardised: np.ndarray, *, feature_names: Sequence[str], col_labels: Sequence[str],
                        title: str, original: np.ndarray | None = None, footer: str | None = None,
                        colour_label: str = STANDARDISED, separators: Sequence[float] = (), limit: float = LIMIT,
                        number_note: str = "original units"):
    """Features (rows) by whatever the columns are (steps, rows of the data, latent dimensions).

    Colours: ``standardised`` (D x K). Cell text: ``original`` (D x K) in the features' own units,
    when the cells are few enough to hold it.
    """
    standardised = np.asarray(standardised, np.float64)
    n_rows, n_cols = standardised.shape
    annotate = original is not None and standardised.size <= MAX_ANNOTATED_CELLS
    figure = new_figure(*_size(n_rows, n_cols, cell_width=0.62 if annotate else 0.42))
    figure.set_layout_engine("constrained")      # before the colour bar, which it then places
    ax = figure.add_subplot(1, 1, 1)
    annotations = np.vectorize(short_number, otypes=[object])(original) if annotate else None
    image = draw_heat_map(ax, standardised, row_labels=feature_names, col_labels=col_labels,
                          annotations=annotations, separators=separators, limit=limit)
    bar = figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02, extend="both")
    bar.set_label(colour_label, fontsize=FONT_SIZE)
    bar.ax.tick_params(labelsize=FONT_SIZE - 1)
    notes = ["colour: " + colour_label.split(":")[0] + (f"; numbers on the cells: {number_note}" if annotate else "")]
    if footer:
        notes.append(footer)
    ax.set_xlabel("\n".join(notes), fontsize=FONT_SIZE)
    ax.set_title(title, fontsize=FONT_SIZE + 2, pad=8)
    figure.set_layout_engine("constrained")
    return figure


def distribution_figure(samples: np.ndarray, data: np.ndarray, *, feature_names: Sequence[str], title: str,
                        sample_label: str, data_label: str):
    """Per feature (rows), box plots of the ``data`` and of the ``samples``, both standardised: do the
    samples spread like the data? Boxes span the quartiles, whiskers the 5th to 95th percentiles."""
    samples, data = np.asarray(samples, np.float64), np.asarray(data, np.float64)
    n = len(feature_names)
    figure = new_figure(9.0, min(20.0, 1.8 + 0.34 * n))
    ax = figure.add_subplot(1, 1, 1)
    positions = np.arange(n)[::-1].astype(float)      # the first feature at the top
    style = dict(orientation="horizontal", widths=0.32, whis=(5, 95), showfliers=False, patch_artist=True,
                 medianprops=dict(color="black", linewidth=1))
    real = ax.boxplot(list(data.T), positions=positions + 0.19, **style)
    drawn = ax.boxplot(list(samples.T), positions=positions - 0.19, **style)
    for boxes, colour in ((real, "0.78"), (drawn, "#6f9bd1")):
        for patch in boxes["boxes"]:
            patch.set_facecolor(colour)
            patch.set_edgecolor("0.25")
    ax.set_yticks(positions)
    ax.set_yticklabels(feature_names, fontsize=FONT_SIZE)
    ax.set_ylim(-0.7, n - 0.3)
    ax.axvline(0, color="0.5", linewidth=0.8, linestyle=":")
    ax.set_xlabel(STANDARDISED + "\nboxes: quartiles; whiskers: 5th–95th percentiles", fontsize=FONT_SIZE)
    ax.grid(axis="x", alpha=0.25)
    ax.legend([real["boxes"][0], drawn["boxes"][0]], [data_label, sample_label], loc="upper left",
              bbox_to_anchor=(1.01, 1), fontsize=FONT_SIZE, frameon=False)
    ax.set_title(title, fontsize=FONT_SIZE + 2)
    figure.set_layout_engine("constrained")
    return figure


def latent_map_figure(latent_map, grid: np.ndarray | None, *, class_names, feature_names: Sequence[str],
                      chosen: Sequence[int], title: str, code_name: str):
    """The scatter of the codes (as for images) and, for a 2-D latent, the table counterpart of the
    decoded image grid: for each ``chosen`` feature, a small map of its decoded value (original
    units) over the same grid of codes, z1 right and z2 up. ``grid`` is (rows, cols, D) in original
    units with rows from the top (largest z2), as :func:`vaekit.latent.latent_map` decodes it."""
    from matplotlib.patches import Rectangle

    from vaekit.figures.plots import _scatter

    if grid is None:
        figure = new_figure(9.0, 7.0)
        _scatter(figure.add_subplot(1, 1, 1), latent_map, class_names, code_name, "rows")
        figure.suptitle(title, fontsize=FONT_SIZE + 3)
        figure.set_layout_engine("constrained")
        return figure
    figure = new_figure(16.0, 8.2)
    figure.set_layout_engine("constrained")
    left, right = figure.subfigures(1, 2, width_ratios=[1.25, 1], wspace=0.02)
    ax = left.add_subplot(1, 1, 1)
    a1, a2 = latent_map.axis_1, latent_map.axis_2
    ax.add_patch(Rectangle((a1[0], a2[0]), a1[-1] - a1[0], a2[-1] - a2[0], fill=False, linestyle="--",
                           edgecolor="0.2", linewidth=1.2, label="decoded grid", zorder=3))
    _scatter(ax, latent_map, class_names, code_name, "rows")
    cols = 2 if len(chosen) > 1 else 1
    rows = int(np.ceil(len(chosen) / cols))
    extent = (a1[0], a1[-1], a2[0], a2[-1])
    axes = np.atleast_1d(right.subplots(rows, cols, squeeze=False).ravel())
    for ax, feature in zip(axes, chosen):
        image = ax.imshow(grid[:, :, feature], cmap="viridis", extent=extent, aspect="auto", interpolation="nearest")
        ax.set_title(feature_names[feature], fontsize=FONT_SIZE)
        ax.tick_params(labelsize=FONT_SIZE - 2)
        ax.set_xlabel("z1", fontsize=FONT_SIZE - 1, labelpad=1)
        ax.set_ylabel("z2", fontsize=FONT_SIZE - 1, labelpad=1)
        bar = right.colorbar(image, ax=ax, fraction=0.08, pad=0.03)
        bar.ax.tick_params(labelsize=FONT_SIZE - 2)
    for ax in axes[len(chosen):]:
        ax.set_visible(False)
    right.suptitle(f"decoded features over the grid ({latent_map.grid_kind}), original units:\n"
                   "the features that vary most over it", fontsize=FONT_SIZE + 1)
    figure.suptitle(title, fontsize=FONT_SIZE + 3)
    figure.set_layout_engine("constrained")
    return figure
