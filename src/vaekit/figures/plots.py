"""Figures of images and latent spaces: functions that take arrays and return matplotlib Figures.

Figures are built on matplotlib's Agg canvas directly (``Figure`` + ``FigureCanvasAgg``), never
through pyplot, so importing or using this module changes no global backend; the caller saves them
(:func:`save_figure`). Images are ``(C, H, W)`` with C = 1 or 3, or flat ``(D,)`` vectors, with values
in [0, 1]; they are drawn pixel for pixel (nearest neighbour, square pixels, grey for one channel).

Every image grid goes through :func:`image_grid`: the cells are tiled into one picture with thin
white gaps, which keeps rows and columns aligned and draws a 16 x 9 grid as fast as one image.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.patches import Rectangle

from vaekit.errors import ConfigError

DPI = 100
CELL_PIXELS = 84          # target on-screen size of one image cell
MAX_WIDTH_INCHES = 15.0   # 1500 px at DPI 100
MAX_HEIGHT_INCHES = 24.0  # long grids shrink rather than grow past 2400 px
FONT_SIZE = 9
MANIFOLD_GAP = 1          # image pixels of white between the tiles of a decoded 2-D grid


def new_figure(width: float, height: float):
    """A Figure on an Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def figure_format(path: str | Path) -> str:
    """The image format a figure written to ``path`` gets, from its suffix (none: PNG), or
    :class:`ConfigError` for a suffix matplotlib cannot write (``fig.txt``)."""
    from matplotlib.backend_bases import FigureCanvasBase

    suffix = Path(path).suffix.lower().lstrip(".")
    supported = FigureCanvasBase.get_supported_filetypes()
    if suffix and suffix not in supported:
        raise ConfigError(f"cannot write a figure to {path}: .{suffix} is not an image format; use .png (or "
                          f"{', '.join('.' + name for name in sorted(supported) if name != 'png')})")
    return suffix or "png"


def save_figure(figure, path: str | Path, *, dpi: int = DPI) -> Path:
    """Write ``figure`` to ``path`` (creating its folder) with tight margins, as PNG unless the suffix
    names another format (:func:`figure_format`); return the path."""
    path = Path(path)
    kind = figure_format(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format=kind, dpi=dpi, bbox_inches="tight", pad_inches=0.1, facecolor="white")
    except OSError as exc:
        raise ConfigError(f"cannot write the figure to {path} ({exc.strerror or exc}): choose another --out") from None
    return path


def as_picture(sample: np.ndarray) -> np.ndarray:
    """One sample as (H, W) grey or (H, W, 3) colour; a flat (D,) vector becomes the squarest H x W with H W = D."""
    sample = np.asarray(sample, np.float32)
    if sample.ndim == 1:
        height = max(h for h in range(1, int(math.isqrt(sample.size)) + 1) if sample.size % h == 0)
        return sample.reshape(height, -1)
    if sample.ndim == 3 and sample.shape[0] == 1:
        return sample[0]
    if sample.ndim == 3:
        return sample[:3].transpose(1, 2, 0)
    return sample


def tile(cells: Sequence[Sequence[np.ndarray | None]], *, gap: int = 1) -> tuple[np.ndarray, int, int]:
    """Tile rows of samples into one picture with ``gap`` white pixels between cells; ``None`` is a
    blank cell. Returns the picture (grey (H, W) or RGB (H, W, 3)) and the cell's height and width."""
    pictures = [[None if cell is None else as_picture(cell) for cell in row] for row in cells]
    first = next(p for row in pictures for p in row if p is not None)
    height, width = first.shape[:2]
    colour = any(p is not None and p.ndim == 3 for row in pictures for p in row)
    n_rows, n_cols = len(pictures), max(len(row) for row in pictures)
    shape = (n_rows * (height + gap) - gap, n_cols * (width + gap) - gap) + ((3,) if colour else ())
    canvas = np.ones(shape, np.float32)
    for r, row in enumerate(pictures):
        for c, picture in enumerate(row):
            if picture is None:
                continue
            if colour and picture.ndim == 2:
                picture = np.repeat(picture[..., None], 3, axis=2)
            top, left = r * (height + gap), c * (width + gap)
            canvas[top:top + height, left:left + width] = np.clip(picture, 0.0, 1.0)
    return canvas, height, width


def draw_tiles(ax, cells, *, row_labels=None, col_titles=None, gap: int = 1) -> tuple[int, int]:
    """Draw :func:`tile` of ``cells`` on ``ax`` with labels left of the rows and titles above the columns."""
    canvas, height, width = tile(cells, gap=gap)
    ax.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    n_rows, n_cols = len(cells), max(len(row) for row in cells)
    ax.set_yticks([r * (height + gap) + (height - 1) / 2 for r in range(n_rows)])
    ax.set_yticklabels(row_labels if row_labels is not None else [], fontsize=FONT_SIZE)
    ax.set_xticks([c * (width + gap) + (width - 1) / 2 for c in range(n_cols)])
    ax.set_xticklabels(col_titles if col_titles is not None else [], fontsize=FONT_SIZE)
    ax.xaxis.tick_top()
    ax.tick_params(length=0, pad=3)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return height, width


def _zoom(picture_height: int, canvas_shape: tuple[int, ...]) -> float:
    """Screen pixels per image pixel: an integer near CELL_PIXELS per cell, less if the grid would be
    too wide or too tall."""
    zoom = max(1, round(CELL_PIXELS / picture_height))
    return min(zoom, MAX_WIDTH_INCHES * DPI / canvas_shape[1], MAX_HEIGHT_INCHES * DPI / canvas_shape[0])


def image_grid(cells: Sequence[Sequence[np.ndarray | None]], *, row_labels: Sequence[str] | None = None,
               col_titles: Sequence[str] | None = None, title: str | None = None, footer: str | None = None):
    """A figure of rows of images, optionally with a label per row, a title per column, a title and a
    footnote below. The workhorse behind every image figure here.

    The axes fill the figure exactly, at an integer zoom of the images where the width allows, so
    pixels stay square and sharp; labels sit outside it and :func:`save_figure` keeps them in view.
    """
    canvas, height, _ = tile(cells)
    zoom = _zoom(height, canvas.shape)
    figure = new_figure(canvas.shape[1] * zoom / DPI, canvas.shape[0] * zoom / DPI)
    ax = figure.add_axes((0, 0, 1, 1))
    draw_tiles(ax, cells, row_labels=row_labels, col_titles=col_titles)
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 2, pad=6)   # placed above the column titles by matplotlib
    if footer:
        ax.set_xlabel(footer, fontsize=FONT_SIZE)
    return figure


def rows_of(images: np.ndarray, cols: int) -> list[list[np.ndarray]]:
    """A flat stack of images as rows of ``cols``."""
    return [list(images[start:start + cols]) for start in range(0, len(images), cols)]


# -- one figure per command ----------------------------------------------------------------------
def reconstruction_figure(originals: np.ndarray, reconstructions: np.ndarray, *, col_titles=None, title=None,
                          first_index: int = 0):
    """Originals above their reconstructions, in blocks of at most 10 pairs. ``col_titles`` (one per
    image) are shown when everything fits in one block; longer figures label each block's rows with
    its image numbers instead, counted from ``first_index``."""
    n, width = len(originals), 10
    cells, labels = [], []
    for start in range(0, n, width):
        stop = min(start + width, n)
        cells += [list(originals[start:stop]), list(reconstructions[start:stop])]
        which = "" if n <= width else f" #{first_index + start}-{first_index + stop - 1}"
        labels += [f"input{which}", "reconstruction"]
    return image_grid(cells, row_labels=labels, col_titles=list(col_titles) if col_titles is not None and n <= width else None,
                      title=title or "Images and their reconstructions decode(E[z|x])")


def samples_figure(images: np.ndarray, *, title: str, cols: int = 10):
    """Decoded samples in rows of ``cols``."""
    return image_grid(rows_of(images, cols), title=title)


def interpolation_figure(start: np.ndarray, path: np.ndarray, end: np.ndarray, *, start_label: str, end_label: str,
                         title: str):
    """One row: the real start image, the decoded path (t = 0 ... 1), the real end image."""
    steps = len(path)
    titles = [start_label] + [f"t={t:.2f}" for t in np.linspace(0, 1, steps)] + [end_label]
    return image_grid([[start, *path, end]], col_titles=titles, title=title)


def grid_interpolation_figure(grid: np.ndarray, corners: np.ndarray, *, corner_labels: Sequence[str], title: str):
    """The decoded bilinear grid, with the four real corner images beside their corners."""
    rows, cols = grid.shape[:2]
    cells = [[None] + list(grid[r]) + [None] for r in range(rows)]
    cells[0][0], cells[0][-1], cells[-1][0], cells[-1][-1] = corners
    labels = [""] * rows
    labels[0], labels[-1] = f"{corner_labels[0]} | {corner_labels[1]}", f"{corner_labels[2]} | {corner_labels[3]}"
    titles = ["real"] + [""] * cols + ["real"]
    return image_grid(cells, col_titles=titles, title=title,
                      footer=f"real images: top-left {corner_labels[0]}, top-right {corner_labels[1]}, "
                             f"bottom-left {corner_labels[2]}, bottom-right {corner_labels[3]}")


def traversal_figure(traversal, *, reference: np.ndarray | None = None, title: str):
    """One row per latent dimension (as sorted in ``traversal``), labelled with its index and score."""
    if traversal.score_name == "KL":
        labels = [f"z{d}  KL {s:.2f} nats" for d, s in zip(traversal.dims, traversal.scores)]
    elif traversal.score_name == "index":   # around the prior's mean, unranked (no data)
        labels = [f"z{d}" for d in traversal.dims]
    else:
        labels = [f"z{d}  code var {s:.3g}" for d, s in zip(traversal.dims, traversal.scores)]
    titles = [f"{o:+.1f}" if o else "0" for o in traversal.offsets]
    cells = [list(row) for row in traversal.images]
    if reference is not None:
        cells = [[reference if r == 0 else None] + row for r, row in enumerate(cells)]
        titles = ["input"] + titles
    unit = "sd of the encoded means" if traversal.score_name == "variance" else "prior sd"
    footer = f"columns: offset of the row's dimension from the input's code, in {unit}"
    return image_grid(cells, row_labels=labels, col_titles=titles, title=title, footer=footer)


def arithmetic_figure(arithmetic, *, row_labels: Sequence[str], title: str):
    """A row per edited image: the input, then decode(code + alpha * vector) for each alpha."""
    titles = ["input"] + [f"α = {a:g}" + (" (recon.)" if a == 0 else "") for a in arithmetic.alphas]
    cells = [[original, *row] for original, row in zip(arithmetic.originals, arithmetic.images)]
    return image_grid(cells, row_labels=row_labels, col_titles=titles, title=title)


def denoise_figure(denoising, *, n: int, title: str):
    """Rows: clean, corrupted, reconstructed (from the corrupted image), for the first ``n`` images;
    each column titled with the PSNR of its corrupted and reconstructed image."""
    noisy, recon = denoising.psnr_corrupted[:n], denoising.psnr_reconstructed[:n]
    cells = [list(denoising.clean[:n]), list(denoising.corrupted[:n]), list(denoising.reconstructed[:n])]
    titles = [f"{a:.1f} → {b:.1f}" for a, b in zip(noisy, recon)]
    return image_grid(cells, row_labels=["clean", "corrupted", "reconstructed"], col_titles=titles, title=title,
                      footer="column titles: PSNR (dB) of the corrupted → the reconstructed image against the clean one")


def _class_colours(n: int):
    from matplotlib import colormaps

    name = "tab10" if n <= 10 else "tab20"
    cmap = colormaps[name]
    return [cmap(i % cmap.N) for i in range(n)]


def latent_map_figure(latent_map, *, class_names: Sequence[str] | None, title: str, code_name: str = "posterior means"):
    """Scatter of the codes coloured by class (legend of class names); beside it, for a 2-D latent,
    the decoded grid on the same orientation (z0 right, z1 up)."""
    two_panels = latent_map.manifold is not None
    # Two panels: the decoded grid gets ~8 in, about twice the pixel size of 28 x 28 images at 15 x 15.
    figure = new_figure(15.5 if two_panels else 9.0, 8.2 if two_panels else 7.0)
    if two_panels:
        ax, grid_ax = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.3, 1]})
    else:
        ax = figure.add_subplot(1, 1, 1)
    if two_panels:   # where the decoded grid lies, drawn on the scatter (listed in the legend)
        a1, a2 = latent_map.axis_1, latent_map.axis_2
        ax.add_patch(Rectangle((a1[0], a2[0]), a1[-1] - a1[0], a2[-1] - a2[0], fill=False, linestyle="--",
                               edgecolor="0.2", linewidth=1.2, label="decoded grid", zorder=3))
    _scatter(ax, latent_map, class_names, code_name)
    if two_panels:
        _manifold(grid_ax, latent_map)
    figure.suptitle(title, fontsize=FONT_SIZE + 3)
    figure.set_layout_engine("constrained")
    return figure


PROJECTION_NAMES = {"identity": "", "pca": ", PCA projection", "tsne": ", t-SNE embedding"}


def _scatter(ax, latent_map, class_names, code_name, what: str = "images"):
    points, labels = latent_map.projection.points, latent_map.labels
    one_d = latent_map.projection.axis_labels[1] == ""
    rng = np.random.default_rng(0)
    size = 4 if len(points) > 2000 else 12
    if labels is None:
        y = rng.uniform(-0.3, 0.3, len(points)) if one_d else points[:, 1]
        ax.scatter(points[:, 0], y, s=size, alpha=0.6, color="tab:blue", linewidths=0)
    else:
        classes = np.unique(labels)
        n_classes = max(len(class_names or []), int(labels.max()) + 1)
        colours = _class_colours(n_classes)
        for rank, k in enumerate(classes):
            chosen = labels == k
            name = class_names[k] if class_names and k < len(class_names) else str(k)
            y = rank + rng.uniform(-0.3, 0.3, chosen.sum()) if one_d else points[chosen, 1]
            ax.scatter(points[chosen, 0], y, s=size, alpha=0.6, color=colours[k], label=name, linewidths=0)
        if one_d:
            ax.set_yticks(range(len(classes)))
            ax.set_yticklabels([class_names[k] if class_names else str(k) for k in classes], fontsize=FONT_SIZE)
        else:
            legend = ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=FONT_SIZE, frameon=False,
                               title="class")
            for handle in legend.legend_handles:   # legend markers readable whatever the point size
                if hasattr(handle, "set_sizes"):
                    handle.set_alpha(1)
                    handle.set_sizes([36])
    ax.set_xlabel(latent_map.projection.axis_labels[0], fontsize=FONT_SIZE + 1)
    ax.set_ylabel("class (points jittered vertically)" if one_d else latent_map.projection.axis_labels[1],
                  fontsize=FONT_SIZE + 1)
    ax.grid(alpha=0.25)
    how = PROJECTION_NAMES.get(latent_map.projection.method, "")
    ax.set_title(f"{len(points)} test {what}: {code_name}{how}" if not one_d else
                 f"{len(points)} test {what}: {code_name} (z0) per class", fontsize=FONT_SIZE + 1)


def _manifold(ax, latent_map):
    grid = latent_map.manifold
    rows, cols = grid.shape[:2]
    # White gaps between the tiles: without them a grid of small images (8 x 8 digits) reads as stripes.
    height, width = draw_tiles(ax, [list(row) for row in grid], gap=MANIFOLD_GAP)
    xs = np.unique(np.linspace(0, cols - 1, min(cols, 5)).round().astype(int))   # ends and middle
    ax.set_xticks([c * (width + MANIFOLD_GAP) + (width - 1) / 2 for c in xs])
    ax.set_xticklabels([_number(latent_map.axis_1[c]) for c in xs], fontsize=FONT_SIZE)
    ys = np.unique(np.linspace(0, rows - 1, min(rows, 5)).round().astype(int))
    ax.set_yticks([r * (height + MANIFOLD_GAP) + (height - 1) / 2 for r in ys])
    ax.set_yticklabels([_number(latent_map.axis_2[::-1][r]) for r in ys], fontsize=FONT_SIZE)
    ax.xaxis.tick_bottom()
    ax.set_xlabel("z0", fontsize=FONT_SIZE + 1)
    ax.set_ylabel("z1", fontsize=FONT_SIZE + 1)
    ax.set_title(f"decoded grid: {latent_map.grid_kind}", fontsize=FONT_SIZE + 1)


def _number(value: float) -> str:
    return f"{round(float(value), 2) + 0.0:.2f}"   # + 0.0 turns -0.0 into 0.0
