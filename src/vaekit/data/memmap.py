"""A one-time cache of a decoded image folder: one uint8 ``(N, C, H, W)`` .npy file, memory-mapped.

The first run with ``--cache memmap`` decodes every image once (in parallel worker processes) into
``$VAEKIT_CACHE_DIR/images`` (default ``~/.cache/vaekit/images``); later runs map that file and read
batches straight from it, with no PNG/JPEG decoding. The file is NumPy's NPY format, so
``np.load(path, mmap_mode="r")`` opens it anywhere.

The file name carries a fingerprint of what it was decoded from: every file's relative path, size
and modification time, plus the channels and target size. Adding, removing, replacing or touching an
image, or asking for another ``--image-size``, gives a new fingerprint and a fresh cache; the stale
one for the same folder is deleted. Writes go to a temporary file renamed into place, under a lock,
so a crash leaves no half-written cache and processes started together (torchrun) decode it once.

An image whose header reads but whose pixels do not (a truncated PNG) is skipped, as the in-memory
loader skips it: its row stays zero, and a small JSON file beside the cache (same name, ``.json``)
lists such rows, so later runs skip the same images without decoding anything.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from pathlib import Path

import numpy as np

from vaekit.cache import CACHE_ENV, cache_root
from vaekit.errors import DataError
from vaekit.files import atomic_write_text, replacing
from vaekit.data.stream import ImageFiles, MemmapImages

logger = logging.getLogger(__name__)

FORMAT = "vaekit-image-memmap/1"
DECODE_CHUNK = 256


def cache_dir() -> Path:
    """``$VAEKIT_CACHE_DIR/images``, else ``$XDG_CACHE_HOME/vaekit/images`` (``~/.cache/vaekit/images``)."""
    return cache_root() / "images"


def fingerprint(root: Path, source: ImageFiles) -> str:
    """A hex digest of the file list with sizes and mtimes, and the decoded shape."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([FORMAT, source.channels, source.height, source.width]).encode())
    for name in source.files:
        try:
            stat = os.stat(name)
        except OSError as exc:
            raise DataError(f"cannot read {name} ({exc.strerror or exc}) while fingerprinting {root}") from None
        digest.update(f"{Path(name).relative_to(root).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_path(root: Path, source: ImageFiles) -> Path:
    return cache_dir() / f"{_folder_key(root)}-{fingerprint(root, source)[:24]}.npy"


def cached_images(root: Path, source: ImageFiles, *, workers: int | None = None) -> tuple[MemmapImages, np.ndarray]:
    """The memory-mapped cache for ``source`` (the decoded images of ``root``), built if missing or stale,
    and the sorted indices of the images in it that could not be decoded (their rows are zeros)."""
    root = Path(root)
    path = cache_path(root, source)
    with _locked(path):
        if path.is_file():
            try:
                cached = MemmapImages(path)
                if cached.shape == source.shape:
                    logger.info("reading %s from the memmap cache %s", root, path)
                    return cached, _read_unreadable(path, len(source))
            except (ValueError, OSError, TypeError, KeyError):
                pass
            logger.warning("the image cache %s is damaged or of another shape: building it again", path)
        _build(path, source, workers)
        for stale in [*path.parent.glob(f"{_folder_key(root)}-*.npy"), *path.parent.glob(f"{_folder_key(root)}-*.json")]:
            if stale.stem != path.stem:
                stale.unlink(missing_ok=True)
    return MemmapImages(path), _read_unreadable(path, len(source))


def _unreadable_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _read_unreadable(path: Path, count: int) -> np.ndarray:
    """The rows the cache at ``path`` lists as undecodable (none when it lists nothing: older caches)."""
    listing = _unreadable_path(path)
    if not listing.is_file():
        return np.zeros(0, dtype=np.int64)
    record = json.loads(listing.read_text())
    rows = np.asarray(record["unreadable"], dtype=np.int64)
    if record.get("format") != FORMAT or rows.ndim != 1 or (rows.size and not 0 <= rows.min() <= rows.max() < count):
        raise ValueError(f"{listing} is not this cache's list of unreadable images")
    return np.unique(rows)


def _build(path: Path, source: ImageFiles, workers: int | None) -> None:
    import torch
    from torch.utils.data import DataLoader

    path.parent.mkdir(parents=True, exist_ok=True)
    need = int(np.prod(source.shape)) + 4096
    free = _free_bytes(path.parent)
    if free is not None and free < need:
        raise DataError(f"the image cache needs {need / 1e9:.1f} GB but {path.parent} has {free / 1e9:.1f} GB free: "
                        f"set {CACHE_ENV} to a roomier disk, or drop --cache memmap")
    workers = default_workers() if workers is None else workers
    logger.info("decoding %d images once into the memmap cache %s (%d workers)", len(source), path, workers)
    chunks = [np.arange(start, min(start + DECODE_CHUNK, len(source))) for start in range(0, len(source), DECODE_CHUNK)]
    loader = DataLoader(_Chunks(source), batch_size=None, sampler=chunks, num_workers=workers)
    unreadable: list[int] = []
    with replacing(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=source.shape)
        for chunk, (pixels, failed) in zip(chunks, loader):
            array[chunk[0]:chunk[-1] + 1] = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
            unreadable += [int(index) for index in chunk[np.asarray(failed, dtype=bool)]]
        array.flush()
        del array
        # Before the cache itself is renamed into place: a cache on disk always has its list.
        atomic_write_text(_unreadable_path(path), json.dumps({"format": FORMAT, "unreadable": unreadable}) + "\n")
    if unreadable:
        logger.info("%d of %d images could not be decoded into %s; they are skipped", len(unreadable), len(source), path)


class _Chunks:
    """A map-style dataset whose items are whole chunks of decoded images (for DataLoader workers), with
    a mask of the images that failed to decode: a worker never raises for a damaged file."""

    def __init__(self, source: ImageFiles):
        self.source = source

    def __getitem__(self, indices):
        return self.source.read_readable(indices)

    def __len__(self) -> int:
        return len(self.source)


def default_workers() -> int:
    """Decoding processes when none are asked for: the CPU count less one for training, 1 to 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _folder_key(root: Path) -> str:
    resolved = str(Path(root).resolve())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(resolved).name).strip("-") or "folder"
    return f"{slug}-{hashlib.blake2b(resolved.encode(), digest_size=4).hexdigest()}"


def _free_bytes(folder: Path) -> int | None:
    try:
        stat = os.statvfs(folder)
    except (OSError, AttributeError):
        return None
    return stat.f_bavail * stat.f_frsize


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive lock beside ``path`` (POSIX flock), so concurrent processes build the cache once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the atomic rename still keeps the cache whole
        yield
        return
    with open(path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
