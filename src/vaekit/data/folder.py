"""Loading a folder of PNG/JPEG images, labelled by sub-folder or unlabelled.

Layouts (the same convention as torchvision's ``ImageFolder``):

* ``root/<class>/.../*.png`` -- each immediate sub-folder is a class (names sorted), searched
  recursively;
* ``root/*.png`` -- no sub-folders with images: unlabelled.

Files are recognised by extension (.png, .jpg, .jpeg, any case); other files are ignored, and so are
hidden files and folders (names starting with "."), such as macOS ``._x.png`` resource forks.
Images become grayscale (1 channel) when all of them are, else RGB (alpha dropped); 16-bit grayscale
is reduced to 8 bits. They are resized with bilinear filtering (which averages when shrinking) to
``image_size`` x ``image_size``, or kept at their shared size when ``image_size`` is None.
Unreadable images are skipped with a warning and listed in ``Dataset.skipped``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from vaekit.errors import DataError
from vaekit.data.dataset import Dataset
from vaekit.data.splits import seeded_splits

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
DEFAULT_IMAGE_SIZE = 64
NAMES_IN_WARNING = 5


def load_image_folder(root: Path, *, name: str, seed: int, val_fraction: float, test_fraction: float,
                      image_size: int | None, val_size: int | None = None) -> Dataset:
    """Load every readable image under ``root`` and split them with the seeded fractions."""
    files, labels, class_names = list_images(root)
    headers, skipped = read_headers(files)
    channels = 1 if headers and all(mode in GRAYSCALE_MODES for _, mode, _ in headers) else 3
    height, width = _target_size({size for _, _, size in headers}, image_size)
    pixels = np.empty((len(headers), channels, height, width), dtype=np.uint8)
    kept: list[int] = []
    for index, _, _ in headers:
        try:
            pixels[len(kept)] = read_pixels(files[index], channels, (width, height))
            kept.append(index)
        except Exception:  # noqa: BLE001 - the pixel data may be damaged even when the header is fine
            skipped.append(files[index])
    if not kept:
        raise DataError(f"no readable image in {root}: all {len(files)} PNG/JPEG files failed to open "
                        f"(first: {files[0].relative_to(root)}): check the files or pass another folder")
    skipped_names = tuple(sorted(path.relative_to(root).as_posix() for path in skipped))
    if skipped_names:
        shown = ", ".join(skipped_names[:NAMES_IN_WARNING])
        more = f" and {len(skipped_names) - NAMES_IN_WARNING} more" if len(skipped_names) > NAMES_IN_WARNING else ""
        logger.warning("Skipped %d unreadable image file(s) in %s: %s%s", len(skipped_names), root, shown, more)
    x = np.divide(pixels[:len(kept)], np.float32(255), dtype=np.float32)
    y = None if labels is None else np.asarray([labels[i] for i in kept], dtype=np.int64)
    train, val, test = seeded_splits(x, y, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction,
                                     val_size=val_size)
    return Dataset(name=name, train=train, val=val, test=test, sample_shape=x.shape[1:],
                   class_names=class_names, source=str(root), quantized_8bit=True, skipped=skipped_names)


def read_headers(files: list[Path]) -> tuple[list[tuple[int, str, tuple[int, int]]], list[Path]]:
    """``(index, mode, size)`` of every file whose header Pillow reads, and the files it could not."""
    from PIL import Image  # imported here so that importing vaekit.data stays light

    headers, skipped = [], []
    for index, path in enumerate(files):
        try:
            with Image.open(path) as image:
                headers.append((index, image.mode, image.size))
        except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files
            skipped.append(path)
    return headers, skipped


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image files under ``root`` in a fixed order, with class indices when sub-folders are classes."""
    try:
        entries = sorted(entry for entry in root.iterdir() if not entry.name.startswith("."))
    except OSError as exc:
        raise DataError(f"cannot read folder {root} ({exc.strerror or exc}): check its permissions") from exc
    loose = [entry for entry in entries if entry.is_file() and _is_image_name(entry.name)]
    classes = {entry.name: files for entry in entries if entry.is_dir() and (files := _images_under(entry))}
    if classes and loose:
        raise DataError(f"{root} holds {len(loose)} image(s) next to {len(classes)} class sub-folder(s): move "
                        "the loose images into a sub-folder (one per class) or remove them")
    if not classes:
        if not loose:
            raise DataError(f"{root} holds no .png, .jpg or .jpeg images (searched recursively){_idx_hint(entries)}: "
                            "put images in it, in one sub-folder per class if they have labels")
        return loose, None, None
    class_names = sorted(classes)
    files = [path for class_name in class_names for path in classes[class_name]]
    labels = [label for label, class_name in enumerate(class_names) for _ in classes[class_name]]
    return files, labels, class_names


def _images_under(folder: Path) -> list[Path]:
    found = []
    for current, folders, names in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(current) / name for name in sorted(names) if not name.startswith(".") and _is_image_name(name)]
    return found


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _idx_hint(entries: list[Path]) -> str:
    if any("-ubyte" in entry.name for entry in entries):
        return " (it seems to hold IDX files: use --dataset fashion-mnist or mnist with --data-dir)"
    return ""


def _target_size(sizes: set[tuple[int, int]], image_size: int | None) -> tuple[int, int]:
    """``(height, width)`` to store: ``image_size`` squared, the shared size, or the default."""
    if image_size is not None:
        return image_size, image_size
    if len(sizes) == 1:
        width, height = next(iter(sizes))
        return height, width
    if sizes:
        logger.info("Images have %d different sizes; resizing all to %dx%d (set image_size to choose)",
                    len(sizes), DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE)
    return DEFAULT_IMAGE_SIZE, DEFAULT_IMAGE_SIZE


def read_pixels(path: Path, channels: int, size: tuple[int, int]) -> np.ndarray:
    """Decode one image as uint8 ``(channels, height, width)``, resized to ``size`` = (width, height)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode in SIXTEEN_BIT_MODES:  # Image.convert("L") would clip 16-bit values, not scale them
            wide = np.asarray(image, dtype=np.float64)
            image = Image.fromarray(np.clip(np.rint(wide / 257), 0, 255).astype(np.uint8))
        image = image.convert("L" if channels == 1 else "RGB")
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)
