"""Image folders larger than memory: image sources and the splits that read them on demand.

:class:`LazyImages` is an array-like that decodes the images a batch asks for, from the PNG/JPEG files
(:class:`ImageFiles`) or from a uint8 memory map (:class:`MemmapImages`, built by
:mod:`vaekit.data.memmap`). :func:`vaekit.data.image_folders.open_image_folder` decides when to use them.

A lazy split indexes like an array (``x[i]``, ``x[a:b]``, ``x[index_array]`` give float32 in [0, 1])
and converts to one with ``np.asarray(x)`` only when that fits in ``max_memory``; a bigger split
raises :class:`DataError` instead of quietly filling the machine's memory. The trainer reads lazy
training data through DataLoader workers (:mod:`vaekit.data.batches`).

Splits are the same as the in-memory loader's (a seeded permutation of the readable images, in the
same file order), so a run trained streaming is evaluated on the same test images.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.data.folder import read_pixels

logger = logging.getLogger(__name__)

STREAM_MODES = ("auto", "on", "off")
CACHE_MODES = ("none", "memmap")
DEFAULT_MEMORY_SHARE = 0.5  # auto budget: half the machine's physical memory
GIB = 1024 ** 3


def memory_budget(max_memory_gib: float | None) -> int:
    """Bytes the decoded data may take: ``max_memory_gib`` GiB, or half the physical memory."""
    if max_memory_gib is not None:
        return int(max_memory_gib * GIB)
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * DEFAULT_MEMORY_SHARE)
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GiB
        return 8 * GIB


@dataclass(frozen=True)
class ImageFiles:
    """Image files decoded on demand to uint8 ``(channels, height, width)``; picklable for workers."""

    files: tuple[str, ...]
    channels: int
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.files)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.files), self.channels, self.height, self.width)

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), self.channels, self.height, self.width), dtype=np.uint8)
        for row, index in enumerate(indices):
            path = self.files[int(index)]
            try:
                out[row] = read_pixels(Path(path), self.channels, (self.width, self.height))
            except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged files
                raise DataError(f"cannot decode {path} ({exc}) while streaming: remove or repair the file; "
                                "its header was readable, so it was not skipped when the folder was listed") from None
        return out

    def read_readable(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`read`, but a file that fails to decode gives a zero image and a True in the
        returned mask instead of an error (the memmap cache skips such files, as the in-memory loader does)."""
        out = np.zeros((len(indices), self.channels, self.height, self.width), dtype=np.uint8)
        failed = np.zeros(len(indices), dtype=bool)
        for row, index in enumerate(indices):
            try:
                out[row] = read_pixels(Path(self.files[int(index)]), self.channels, (self.width, self.height))
            except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files
                failed[row] = True
        return out, failed


class MemmapImages:
    """A uint8 ``(N, C, H, W)`` .npy file opened read-only as a memory map (re-opened in each worker)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._array = np.load(self.path, mmap_mode="r")
        self.shape = tuple(self._array.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        order = np.argsort(indices, kind="stable")  # read the file front to back, return in the asked order
        out = np.empty((len(indices), *self.shape[1:]), dtype=np.uint8)
        out[order] = self._array[indices[order]]
        return out

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.__init__(state["path"])


class LazyImages:
    """An array-like split over an image source: float32 in [0, 1], shape ``(N, C, H, W)``.

    ``source`` is :class:`ImageFiles` or :class:`MemmapImages`; ``indices`` picks this split's images.
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, source, indices: np.ndarray, budget: int, role: str = "split"):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.budget = budget
        self.role = role

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *self.source.shape[1:])

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def uint8(self, positions) -> np.ndarray:
        """The 8-bit pixels of the images at ``positions`` (indices into this split)."""
        return self.source.read(self.indices[np.asarray(positions, dtype=np.int64)])

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self[np.asarray([key])][0]
        if isinstance(key, slice):
            positions = np.arange(len(self))[key]
        else:
            if hasattr(key, "numpy"):  # a torch tensor of indices
                key = key.detach().cpu().numpy()
            positions = np.arange(len(self))[np.asarray(key)]
        return np.divide(self.uint8(positions), np.float32(255), dtype=np.float32)

    def __array__(self, dtype=None, copy=None):
        if self.nbytes > self.budget:
            raise DataError(f"the {self.role} split is {self.nbytes / GIB:.1f} GiB decoded, more than the memory budget "
                            f"of {self.budget / GIB:.1f} GiB, so it is streamed and cannot be loaded whole here: "
                            "raise --max-memory, or use a smaller split (--val-fraction) or a tool that streams")
        logger.info("loading the %s split (%d images, %.2f GiB) into memory", self.role, len(self), self.nbytes / GIB)
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype, copy=False)

    def reshape(self, *shape):
        return np.asarray(self).reshape(*shape)

    def __repr__(self) -> str:
        return f"LazyImages({self.role}, shape={self.shape}, source={type(self.source).__name__})"
