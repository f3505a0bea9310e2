"""Animated latent traversals: every shown dimension sweeping its range at once, as an animated GIF.

The disentanglement papers (Higgins et al. 2017; Chen et al. 2018; Burgess et al. 2018) show their
traversals this way: one tile per latent dimension, all moving together from -range to +range and
back, so a dimension that controls one factor (position, scale, rotation ...) reads at a glance.
Frames are drawn with Pillow, pixel for pixel (nearest-neighbour zoom); the caller saves the bytes.
"""
from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vaekit.figures.plots import CELL_PIXELS, as_picture

GAP = 6            # pixels between tiles
LABEL_HEIGHT = 16  # pixels above each tile for its name
FOOTER_HEIGHT = 20


def sweep(steps: int) -> list[int]:
    """Frame order over ``steps`` offsets: there and back again (0, 1, ..., n-1, n-2, ..., 1), so the loop is seamless."""
    return list(range(steps)) + list(range(steps - 2, 0, -1))


def traversal_gif(traversal, *, frame_ms: int = 120, columns: int | None = None) -> bytes:
    """An animated GIF (looping) of ``traversal`` (:class:`vaekit.latent.operations.Traversal`): one
    tile per dimension labelled ``z<d>`` (0-based, as everywhere in vaekit), one frame per offset."""
    dims = [int(d) for d in traversal.dims]
    steps = len(traversal.offsets)
    first = as_picture(traversal.images[0, 0])
    height, width = first.shape[:2]
    colour = first.ndim == 3
    zoom = max(1, round(CELL_PIXELS / height))
    columns = columns or min(len(dims), max(4, math.ceil(math.sqrt(len(dims)))))
    rows = math.ceil(len(dims) / columns)
    tile_w, tile_h = width * zoom, height * zoom
    canvas_w = columns * tile_w + (columns + 1) * GAP
    canvas_h = rows * (tile_h + LABEL_HEIGHT) + (rows + 1) * GAP + FOOTER_HEIGHT
    try:
        font = ImageFont.load_default(size=12)   # Pillow >= 10.1: its built-in scalable font
    except TypeError:
        font = ImageFont.load_default()
    unit = "prior sd" if traversal.score_name == "KL" else "sd of the codes"
    frames = []
    for s in sweep(steps):
        frame = Image.new("RGB" if colour else "L", (canvas_w, canvas_h), "white")
        draw = ImageDraw.Draw(frame)
        for i, d in enumerate(dims):
            r, c = divmod(i, columns)
            left = GAP + c * (tile_w + GAP)
            top = GAP + r * (tile_h + LABEL_HEIGHT + GAP)
            draw.text((left, top), f"z{d}", fill="black", font=font)
            picture = np.clip(as_picture(traversal.images[i, s]), 0.0, 1.0)
            tile = Image.fromarray((picture * 255).round().astype(np.uint8), "RGB" if colour else "L")
            frame.paste(tile.resize((tile_w, tile_h), Image.NEAREST), (left, top + LABEL_HEIGHT))
        offset = float(traversal.offsets[s])
        footer_top = canvas_h - FOOTER_HEIGHT
        draw.text((GAP, footer_top + 3), f"offset {offset:+.1f} {unit}", fill="black", font=font)
        # a bar that shows where in the sweep this frame is
        bar_left, bar_right = canvas_w // 2, canvas_w - GAP
        draw.line((bar_left, footer_top + 10, bar_right, footer_top + 10), fill="#b0b0b0" if colour else 176, width=1)
        x = bar_left + (bar_right - bar_left) * s / max(steps - 1, 1)
        draw.rectangle((x - 2, footer_top + 5, x + 2, footer_top + 15), fill="black")
        frames.append(frame if not colour else frame.quantize(colors=256))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=frame_ms, loop=0)
    return buffer.getvalue()
