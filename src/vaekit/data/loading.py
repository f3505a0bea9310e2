"""The two entry points: :func:`load_dataset` (by name or path) and :func:`list_datasets`."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from vaekit.errors import ConfigError, DataError
from vaekit.data.arrays import load_array_file
from vaekit.data.builtin import NAMED_DATASETS
from vaekit.data.dataset import Dataset, DatasetInfo
from vaekit.data.download import Progress
from vaekit.data.splits import check_fractions, check_val_size

logger = logging.getLogger(__name__)

ARRAY_SUFFIXES = (".npy", ".npz")


def dataset_names() -> list[str]:
    """The names :func:`load_dataset` accepts besides paths."""
    return list(NAMED_DATASETS)


def load_dataset(name_or_path: str | os.PathLike, *, data_dir: str | os.PathLike | None = None, seed: int = 0,
                 val_fraction: float | None = None, test_fraction: float = 0.1, image_size: int | None = None,
                 download: bool = True, progress: Progress | None = None, stream: str = "auto",
                 cache: str = "none", max_memory: float | None = None, val_size: int | None = None,
                 standardize: str = "auto", columns: list[str] | tuple[str, ...] | None = None,
                 label_column: str | None = None, missing: str = "error") -> Dataset:
    """Load a named data set or the data at a path, split into seeded train/val/test parts.

    ``name_or_path`` is a name from :func:`dataset_names` (case-insensitive; a name wins over a
    same-named folder, so write ``./mnist`` for the folder), a folder of PNG/JPEG images, or a
    ``.npy``/``.npz`` file, or a CSV/TSV or Parquet table. ``data_dir``, ``download`` and ``progress`` (called with
    ``(bytes_done, bytes_total_or_None)`` during downloads) apply to named data sets; ``image_size``
    to image folders. Data sets with an official test set ignore ``test_fraction``.
    ``stream`` (auto | on | off), ``cache`` (none | memmap) and ``max_memory`` (GiB) apply to image
    folders too: one whose decoded size exceeds ``max_memory`` is streamed from disk, and ``memmap``
    decodes it once into a memory-mapped cache (see :mod:`vaekit.data.stream`).
    The validation split is ``val_fraction`` of the data it is drawn from (default 0.1), or exactly
    ``val_size`` samples: give one or the other.
    Real-valued data are standardised on the training split (``Dataset.scaling``): tables always,
    arrays when ``standardize`` is "on", or "auto" and their values leave [0, 1]. ``columns``,
    ``label_column`` and ``missing`` ("error" or "drop") say how to read a table (see
    :mod:`vaekit.data.tables`).
    Raises :class:`DataError` (or :class:`ConfigError` for bad arguments) with a message that says
    what is wrong and what to do.
    """
    if val_size is not None:
        if val_fraction is not None:
            raise ConfigError("give val_fraction or val_size, not both")
        check_val_size(val_size)
    val_fraction = 0.1 if val_fraction is None else val_fraction
    check_fractions(val_fraction, test_fraction)
    if image_size is not None and (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1):
        raise ConfigError(f"image_size is {image_size!r} but must be a positive whole number of pixels, or None")
    from vaekit.data.tables import TABLE_SUFFIXES, TableOptions, load_table_file

    table = TableOptions(columns=None if columns is None else tuple(columns), label_column=label_column, missing=missing)
    named = NAMED_DATASETS.get(name_or_path.lower()) if isinstance(name_or_path, str) else None
    if named is not None:
        _warn_unused_image_size(image_size, named.name)
        return named.load(data_dir=data_dir, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                          download=download, progress=progress, val_size=val_size)
    given = os.fspath(name_or_path)
    path = Path(given).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError) as exc:        # a name too long to be a path, or one holding a NUL byte
        raise DataError(f"{_shortened(given)} cannot be a path ({getattr(exc, 'strerror', None) or exc}): pass a "
                        f"dataset name ({', '.join(NAMED_DATASETS)}) or the path of a folder or a .npy/.npz file") from None
    if not exists:
        if os.sep in given or "/" in given or path.suffix:
            raise DataError(f"{_shortened(given)} does not exist: check the path")
        raise DataError(f"unknown dataset {_shortened(given)!r}: use one of {', '.join(NAMED_DATASETS)}, or the path of a "
                        "folder of images or of a .npy or .npz file")
    if path.is_dir():
        from vaekit.data.image_folders import open_image_folder

        return open_image_folder(path, name=given, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                 image_size=image_size, stream=stream, cache=cache, max_memory=max_memory,
                                 val_size=val_size)
    if path.suffix.lower() in ARRAY_SUFFIXES:
        _warn_unused_image_size(image_size, given)
        return load_array_file(path, name=given, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                               val_size=val_size, standardize=standardize)
    if path.suffix.lower() in TABLE_SUFFIXES:
        _warn_unused_image_size(image_size, given)
        return load_table_file(path, table, name=given, seed=seed, val_fraction=val_fraction,
                               test_fraction=test_fraction, val_size=val_size)
    raise DataError(f"{given} is neither a folder, a .npy or .npz file nor a .csv, .tsv or .parquet table: pass one of "
                    "those, or one of " + ", ".join(NAMED_DATASETS))


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[DatasetInfo]:
    """Describe each named data set: whether it is on this machine and where it would load from."""
    return [dataset.info(data_dir) for dataset in NAMED_DATASETS.values()]


def _shortened(text: str, limit: int = 100) -> str:
    """``text``, cut to ``limit`` characters (an error message must stay one readable line)."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _warn_unused_image_size(image_size: int | None, name: str) -> None:
    if image_size is not None:
        logger.warning("image_size=%d applies to image folders only; %s keeps its own size", image_size, name)
