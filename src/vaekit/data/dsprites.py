"""dSprites, generated here: 737,280 binary 64x64 images of a shape under five known factors.

The factors and their values follow the original data set (L. Matthey, I. Higgins, D. Hassabis,
A. Lerchner, "dSprites: Disentanglement testing Sprites dataset", https://github.com/deepmind/dsprites-dataset,
2017); its constant colour factor is left out, as Locatello et al. (ICML 2019) do:

    shape        3 values   square, ellipse, heart
    scale        6 values   linspace(0.5, 1, 6)
    orientation  40 values  linspace(0, 2 pi, 40) radians, counter-clockwise (0 and 2 pi give the same image)
    pos_x        32 values  linspace(0, 1, 32), left to right
    pos_y        32 values  linspace(0, 1, 32), top to bottom

Image ``i`` has the factor indices ``np.unravel_index(i, FACTOR_SIZES)`` (the original's order: pos_y
varies fastest). The pixels are our own rasterisation, not the original files: a shape's centre moves in
steps of 1.5 pixels from 8.75 to 55.25 (so every shape stays inside the frame), at scale 1 a square has
sides of 12 pixels, an ellipse semi-axes of 8.5 and 4.25 pixels, and the heart, the curve
(x^2 + y^2 - 1)^3 <= x^2 y^3 turned about its centroid, reaches 8.5 pixels from its centre. Each pixel is
covered by 8x8 sample points and is on when at least half of them fall inside the shape.

Generating all images takes seconds; they are cached bit-packed (one row of 512 bytes per image, 377 MB)
in ``$VAEKIT_CACHE_DIR/datasets`` (default ``~/.cache/vaekit/datasets``) under a name that fingerprints
the generator, so a changed rasterisation never reuses a stale file.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.cache import cache_root
from vaekit.errors import DataError
from vaekit.files import replacing
from vaekit.data.dataset import Dataset, DatasetInfo, Split
from vaekit.data.download import Progress
from vaekit.data.splits import split_indices

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SHAPE_NAMES = ("square", "ellipse", "heart")
FACTOR_NAMES = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 40, 32, 32)
# Shape is a category; the others are ordered quantities (orientation is periodic, which no metric models).
FACTOR_TYPES = ("categorical", "ordinal", "ordinal", "ordinal", "ordinal")
FACTOR_VALUES = (np.arange(3, dtype=np.float64), np.linspace(0.5, 1.0, 6), np.linspace(0.0, 2 * math.pi, 40),
                 np.linspace(0.0, 1.0, 32), np.linspace(0.0, 1.0, 32))
N_IMAGES = math.prod(FACTOR_SIZES)
IMAGE_SIDE = 64
PACKED_BYTES = IMAGE_SIDE * IMAGE_SIDE // 8

# Geometry, in pixels (pixel (r, c) covers [c, c+1) x [r, r+1)).
FIRST_CENTRE = 8.75        # centre of a shape at position 0; position 1 is at 64 - 8.75
CENTRE_STEP = 1.5          # (64 - 2 * 8.75) / 31: two sub-pixel phases, 0.75 and 0.25
SQUARE_HALF_SIDE = 6.0
ELLIPSE_SEMI_AXES = (8.5, 4.25)
HEART_REACH = 8.5          # farthest point of the heart from its centroid
SUPERSAMPLE = 8
WINDOW = 20                # side of the patch a shape is drawn in before it is placed

# The heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0: its centroid lies at y = 0.2935 and its farthest
# point 1.2935 from there (measured on a fine grid), so one unit is HEART_REACH / 1.2935 pixels.
_HEART_CENTROID_Y = 0.2935
_HEART_UNIT = HEART_REACH / 1.2935

_PARAMETERS = {"version": GENERATOR_VERSION, "sizes": FACTOR_SIZES, "first_centre": FIRST_CENTRE,
               "step": CENTRE_STEP, "square": SQUARE_HALF_SIDE, "ellipse": ELLIPSE_SEMI_AXES,
               "heart": HEART_REACH, "supersample": SUPERSAMPLE, "side": IMAGE_SIDE}
FINGERPRINT = hashlib.sha256(json.dumps(_PARAMETERS, sort_keys=True).encode()).hexdigest()[:16]


# -- factor indexing -----------------------------------------------------------------------------
def factors_to_index(factors: np.ndarray) -> np.ndarray:
    """Image indices of rows of factor indices ``(n, 5)``."""
    factors = np.asarray(factors, dtype=np.int64)
    if factors.ndim != 2 or factors.shape[1] != len(FACTOR_SIZES):
        raise DataError(f"dSprites factors must be shaped (n, {len(FACTOR_SIZES)}), not {factors.shape}")
    if (factors < 0).any() or (factors >= np.asarray(FACTOR_SIZES)).any():
        raise DataError(f"a dSprites factor index is out of range: sizes are {FACTOR_SIZES}")
    return np.ravel_multi_index(tuple(factors.T), FACTOR_SIZES)


def index_to_factors(index: np.ndarray) -> np.ndarray:
    """Factor indices ``(n, 5)`` of image indices."""
    return np.stack(np.unravel_index(np.asarray(index, dtype=np.int64), FACTOR_SIZES), axis=1)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """The factors' values (shape as 0, 1, 2; scale; orientation in radians; positions in [0, 1])."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.stack([FACTOR_VALUES[k][factors[:, k]] for k in range(len(FACTOR_SIZES))], axis=1)


# -- rasterisation -------------------------------------------------------------------------------
def _inside(shape: int, u: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    """Whether shape-frame points (u right, v up, pixels from the shape's centre) are inside the shape."""
    if shape == 0:
        half = SQUARE_HALF_SIDE * scale
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if shape == 1:
        a, b = ELLIPSE_SEMI_AXES[0] * scale, ELLIPSE_SEMI_AXES[1] * scale
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    x = u / (_HEART_UNIT * scale)
    y = v / (_HEART_UNIT * scale) + _HEART_CENTROID_Y
    r = x * x + y * y - 1
    return r * r * r - x * x * y * y * y <= 0


def _patches(shape: int, scale: float, angle: float) -> np.ndarray:
    """Binary ``(2, 2, WINDOW, WINDOW)`` patches, indexed by (row phase, column phase) parity.

    The shape's centre sits at window coordinate ``WINDOW / 2 + phase``, phase 0.75 for even and
    0.25 for odd position indices (the fractional parts of FIRST_CENTRE + CENTRE_STEP * i).
    """
    sub = (np.arange(WINDOW * SUPERSAMPLE) + 0.5) / SUPERSAMPLE            # sample coordinates in the window
    phases = np.array([0.75, 0.25])
    offsets = sub[None, :] - (WINDOW / 2 + phases[:, None])                # (2, W*S): sample minus centre
    dx = offsets[None, :, None, :]                                         # column offsets (1, 2, 1, W*S)
    dy_up = -offsets[:, None, :, None]                                     # rows grow downwards (2, 1, W*S, 1)
    cos, sin = math.cos(angle), math.sin(angle)
    u = cos * dx + sin * dy_up                                             # rotate the point by -angle
    v = -sin * dx + cos * dy_up
    inside = _inside(shape, u, v, scale)                                   # (2, 2, W*S, W*S)
    coverage = inside.reshape(2, 2, WINDOW, SUPERSAMPLE, WINDOW, SUPERSAMPLE).mean(axis=(3, 5))
    return coverage >= 0.5


def _top_left(index: np.ndarray) -> np.ndarray:
    """Where a patch's top-left corner lands in the image for position indices ``index``."""
    return np.floor(FIRST_CENTRE + CENTRE_STEP * index).astype(np.int64) - WINDOW // 2


def render_block(shape: int, scale: int, orientation: int) -> np.ndarray:
    """All 32 x 32 positions of one (shape, scale, orientation): bool ``(32 pos_x, 32 pos_y, 64, 64)``.

    The patch is drawn once per sub-pixel phase and copied into place through a sliding-window view
    of a padded canvas, so the 1,024 images cost four patch renders and one gather each.
    """
    patches = _patches(shape, FACTOR_VALUES[1][scale], FACTOR_VALUES[2][orientation])
    side, n_x, n_y = IMAGE_SIDE, FACTOR_SIZES[3], FACTOR_SIZES[4]
    block = np.empty((n_x, n_y, side, side), dtype=bool)
    canvas = np.zeros((2 * side + WINDOW, 2 * side + WINDOW), dtype=bool)
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (side, side))
    for row_parity in (0, 1):
        ys = np.arange(row_parity, n_y, 2)
        for col_parity in (0, 1):
            xs = np.arange(col_parity, n_x, 2)
            canvas[side:side + WINDOW, side:side + WINDOW] = patches[row_parity, col_parity]
            # image[r, c] = patch[r - top, c - left] = canvas[side - top + r, side - left + c]
            rows = side - _top_left(ys)
            cols = side - _top_left(xs)
            block[xs[:, None], ys[None, :]] = windows[rows[None, :], cols[:, None]]
    return block


def render(factors: np.ndarray) -> np.ndarray:
    """Binary uint8 images ``(n, 64, 64)`` (values 0 and 1) for rows of factor indices, without the cache."""
    factors = index_to_factors(factors_to_index(factors))      # validates
    images = np.empty((len(factors), IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    keys = factors[:, 0] * 10_000 + factors[:, 1] * 100 + factors[:, 2]
    for key in np.unique(keys):
        rows = np.flatnonzero(keys == key)
        shape, scale, orientation = factors[rows[0], :3]
        block = render_block(int(shape), int(scale), int(orientation))
        images[rows] = block[factors[rows, 3], factors[rows, 4]]
    return images


def generate_packed(progress: Progress | None = None) -> np.ndarray:
    """All 737,280 images, bit-packed: uint8 ``(737280, 512)``, row ``i`` = ``np.packbits`` of image ``i``."""
    packed = np.empty((N_IMAGES, PACKED_BYTES), dtype=np.uint8)
    per_block = FACTOR_SIZES[3] * FACTOR_SIZES[4]
    for block_index in range(N_IMAGES // per_block):
        packed[block_index * per_block:(block_index + 1) * per_block] = packed_block(block_index)
        if progress is not None:
            progress((block_index + 1) * per_block, N_IMAGES)
    return packed


def packed_block(block_index: int) -> np.ndarray:
    """Rows ``1024 * block_index ..`` of the packed images: one (shape, scale, orientation), all positions."""
    shape, scale, orientation = np.unravel_index(block_index, FACTOR_SIZES[:3])
    block = render_block(int(shape), int(scale), int(orientation))
    return np.packbits(block.reshape(len(block) * block.shape[1], -1), axis=1)


def unpack(packed_rows: np.ndarray) -> np.ndarray:
    """Bit-packed rows -> float32 images ``(n, 1, 64, 64)`` with values 0 and 1."""
    bits = np.unpackbits(np.asarray(packed_rows), axis=1)
    return bits.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE).astype(np.float32)


# -- the cache -----------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$VAEKIT_CACHE_DIR/datasets``, else ``$XDG_CACHE_HOME/vaekit/datasets`` (``~/.cache/vaekit/datasets``)."""
    return cache_root() / "datasets"


def cache_path() -> Path:
    return cache_dir() / f"dsprites-v{GENERATOR_VERSION}-{FINGERPRINT}.npy"


def load_packed(progress: Progress | None = None) -> np.ndarray:
    """The bit-packed images, memory-mapped from the cache; generated and cached atomically on first use."""
    return cached_array(cache_path(), (N_IMAGES, PACKED_BYTES), lambda: generate_packed(progress), "dSprites")


def cached_array(path: Path, shape: tuple[int, ...], make, what: str) -> np.ndarray:
    """A uint8 array of ``shape`` memory-mapped from ``path``, or ``make()``'s result, saved there atomically.

    A file of the wrong shape or type, or one that cannot be read, is replaced. If the cache cannot be
    written the array is returned anyway (and made again next time).
    """
    if path.is_file():
        try:
            array = np.load(path, mmap_mode="r")
            if array.shape == tuple(shape) and array.dtype == np.uint8:
                return array
        except (OSError, ValueError):
            pass
        logger.warning("%s is damaged; generating %s again", path, what)
    started = time.perf_counter()
    array = make()
    logger.info("generated %s in %.1f s", what, time.perf_counter() - started)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _save_atomically(path, array)
    except OSError as exc:  # a read-only cache is no reason to fail: keep the array in memory
        logger.warning("could not cache %s in %s (%s); it will be generated again next time", what, path, exc)
    return array


def _save_atomically(path: Path, packed: np.ndarray) -> None:
    # Moved into place when whole: the cache is either absent or complete.
    with replacing(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, packed)
            f.flush()
            os.fsync(f.fileno())


# -- ground truth for the disentanglement metrics ------------------------------------------------
class DSpritesFactors:
    """dSprites as a ground-truth factor model: images for any factor indices, by index arithmetic.

    The interface the metrics in :mod:`vaekit.disentanglement` use: ``factor_names``,
    ``factor_sizes``, ``factor_types`` and ``observations(factors)``.
    """

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    factor_types = FACTOR_TYPES
    sample_shape = (1, IMAGE_SIDE, IMAGE_SIDE)

    def __init__(self, packed: np.ndarray | None = None):
        self._packed = packed

    @property
    def packed(self) -> np.ndarray:
        if self._packed is None:
            self._packed = load_packed()
        return self._packed

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """float32 images ``(n, 1, 64, 64)`` for rows of factor indices ``(n, 5)``."""
        index = factors_to_index(factors)
        order = np.argsort(index, kind="stable")           # sorted reads are kinder to a memory map
        rows = np.empty((len(index), PACKED_BYTES), dtype=np.uint8)
        rows[order] = self.packed[index[order]]
        return unpack(rows)


# -- the named data sets -------------------------------------------------------------------------
SUBSET_SEED = 20170101  # fixes which images a subset holds; independent of --seed, like the splits


@dataclass(frozen=True)
class DSpritesDataset:
    """dSprites, all of it (``size=None``) or a fixed seeded random subset of ``size`` images.

    Labels are the shape (``class_names`` square, ellipse, heart); each split carries its images'
    factor indices in ``factors`` and the data set its ground truth in ``ground_truth``. There is no
    official split: val and test are seeded random fractions of the chosen images.
    """

    name: str
    description: str
    size: int | None = None

    def info(self, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
        path = cache_path()
        where = str(path) if path.is_file() else f"generated on first use and cached in {path.parent}"
        return DatasetInfo(self.name, self.description, True, where)

    def indices(self) -> np.ndarray:
        """The (sorted) image indices this data set holds."""
        if self.size is None:
            return np.arange(N_IMAGES)
        return np.sort(np.random.default_rng(SUBSET_SEED).choice(N_IMAGES, size=self.size, replace=False))

    def load(self, *, data_dir: str | os.PathLike | None = None, seed: int = 0, val_fraction: float = 0.1,
             test_fraction: float = 0.1, download: bool = True, progress: Progress | None = None,
             val_size: int | None = None) -> Dataset:
        chosen = self.indices()
        _check_memory(len(chosen), self.name)
        packed = load_packed()
        train, val, test = split_indices(len(chosen), seed=seed, val_fraction=val_fraction,
                                         test_fraction=test_fraction, val_size=val_size)
        splits = [_split(packed, chosen[part]) for part in (train, val, test)]
        return Dataset(name=self.name, train=splits[0], val=splits[1], test=splits[2],
                       sample_shape=(1, IMAGE_SIDE, IMAGE_SIDE), class_names=list(SHAPE_NAMES),
                       source=str(cache_path()), quantized_8bit=True, ground_truth=DSpritesFactors(packed))


def _split(packed: np.ndarray, index: np.ndarray, chunk: int = 16384) -> Split:
    x = np.empty((len(index), 1, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    for start in range(0, len(index), chunk):
        x[start:start + chunk] = unpack(packed[index[start:start + chunk]])
    factors = index_to_factors(index)
    return Split(x=x, y=factors[:, 0].copy(), factors=factors)


def _check_memory(n: int, name: str) -> None:
    """Refuse, with advice, to unpack more float32 images than the memory this machine has free."""
    needed = n * IMAGE_SIDE * IMAGE_SIDE * 4
    available = _available_memory()
    if available is not None and needed > 0.8 * available:
        raise DataError(f"{name} holds {n:,} images, {needed / 2**30:.1f} GiB as float32, but only "
                        f"{available / 2**30:.1f} GiB of memory is free: use dsprites-small ({SMALL_SIZE:,} images)")


def _available_memory() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


SMALL_SIZE = N_IMAGES // 10

DSPRITES = DSpritesDataset(
    name="dsprites",
    description=f"dSprites (Matthey et al. 2017), generated here: {N_IMAGES:,} 64x64 binary shapes, 5 known "
                "factors; 12 GiB as float32",
)
DSPRITES_SMALL = DSpritesDataset(
    name="dsprites-small",
    description=f"a fixed random tenth of dsprites: {SMALL_SIZE:,} images with their factors (1.2 GiB as float32)",
    size=SMALL_SIZE,
)
