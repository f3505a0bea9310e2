"""An image folder as a data set: decoded in memory, from the memmap cache, or streamed from disk.

``open_image_folder`` is what :func:`vaekit.data.load_dataset` calls for a folder. It reads only the
image headers, then decides:

* the decoded float32 data fits in ``max_memory`` (and streaming is not forced): load it into memory
  (:func:`vaekit.data.folder.load_image_folder`), or from the memory-mapped cache when
  ``cache="memmap"`` (no PNG decoding at all on later runs, :mod:`vaekit.data.memmap`);
* otherwise the training split becomes a :class:`vaekit.data.stream.LazyImages`, which decodes the
  images a batch asks for. Validation and test splits are loaded into memory when they fit in the
  budget (evaluation needs them whole), else stay lazy.

Splits are the same as the in-memory loader's (a seeded permutation of the readable images, in the
same file order), so a run trained streaming is evaluated on the same test images.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vaekit.errors import ConfigError, DataError
from vaekit.data.dataset import Dataset, Split
from vaekit.data.folder import GRAYSCALE_MODES, _target_size, list_images, load_image_folder, read_headers
from vaekit.data.memmap import cached_images
from vaekit.data.splits import split_indices
from vaekit.data.stream import CACHE_MODES, GIB, STREAM_MODES, ImageFiles, LazyImages, memory_budget

logger = logging.getLogger(__name__)


def open_image_folder(root: Path, *, name: str, seed: int, val_fraction: float, test_fraction: float,
                      image_size: int | None, stream: str = "auto", cache: str = "none",
                      max_memory: float | None = None, val_size: int | None = None) -> Dataset:
    """An image folder in memory, from the memmap cache, or streamed; see the module docstring."""
    if stream not in STREAM_MODES:
        raise ConfigError(f"unknown stream mode {stream!r}: choose one of {', '.join(STREAM_MODES)}")
    if cache not in CACHE_MODES:
        raise ConfigError(f"unknown cache {cache!r}: choose one of {', '.join(CACHE_MODES)}")
    budget = memory_budget(max_memory)
    files, labels, class_names = list_images(root)
    headers, skipped = read_headers(files)
    if not headers:
        raise DataError(f"no readable image in {root}: all {len(files)} PNG/JPEG files failed to open "
                        f"(first: {files[0].relative_to(root)}): check the files or pass another folder")
    channels = 1 if all(mode in GRAYSCALE_MODES for _, mode, _ in headers) else 3
    height, width = _target_size({size for _, _, size in headers}, image_size)
    decoded_bytes = len(headers) * channels * height * width * 4
    in_memory = stream == "off" or (stream == "auto" and decoded_bytes <= budget)
    if in_memory and cache == "none":
        return load_image_folder(root, name=name, seed=seed, val_fraction=val_fraction,
                                 test_fraction=test_fraction, image_size=image_size, val_size=val_size)
    if stream == "off" and decoded_bytes > budget:
        logger.warning("%s decodes to %.1f GiB, more than the %.1f GiB budget, but streaming is off: loading it whole",
                       root, decoded_bytes / GIB, budget / GIB)
    kept = [files[index] for index, _, _ in headers]
    y = None if labels is None else np.asarray([labels[index] for index, _, _ in headers], dtype=np.int64)
    source = ImageFiles(tuple(str(path) for path in kept), channels, height, width)
    rows = np.arange(len(kept))         # the source rows of the images kept, in file order
    if cache == "memmap":
        source, unreadable = cached_images(root, source)
        if len(unreadable):             # header fine, pixels not: skipped, as the in-memory loader does
            skipped = skipped + [kept[row] for row in unreadable]
            rows = np.setdiff1d(rows, unreadable)
            kept = [kept[row] for row in rows]
            y = None if y is None else y[rows]
            if not kept:
                raise DataError(f"no readable image in {root}: all {len(files)} PNG/JPEG files failed to decode "
                                f"(first: {files[0].relative_to(root)}): check the files or pass another folder")
    skipped_names = tuple(sorted(path.relative_to(root).as_posix() for path in skipped))
    if skipped_names:
        logger.warning("Skipped %d unreadable image file(s) in %s: %s", len(skipped_names), root,
                       ", ".join(skipped_names[:5]) + (" ..." if len(skipped_names) > 5 else ""))
    parts = split_indices(len(kept), seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                          val_size=val_size)
    splits = []
    held_out_bytes = sum(len(p) for p in parts[1:]) * channels * height * width * 4
    for role, positions in zip(("train", "val", "test"), parts):
        x = LazyImages(source, rows[positions], budget, role)
        if in_memory or (role != "train" and held_out_bytes <= budget):
            x = x[:]
        splits.append(Split(x=x, y=None if y is None else y[positions]))
    if not in_memory:
        logger.info("streaming %s: %d images, %.1f GiB decoded (budget %.1f GiB), from %s", root, len(kept),
                    decoded_bytes / GIB, budget / GIB, "the memmap cache" if cache == "memmap" else "the image files")
    return Dataset(name=name, train=splits[0], val=splits[1], test=splits[2], sample_shape=(channels, height, width),
                   class_names=class_names, source=str(root), quantized_8bit=True, skipped=skipped_names)
