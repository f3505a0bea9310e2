"""Per-image binary attributes from a table, matched by file name to an image folder.

Two formats are read:

* a CSV with a header row; the first column names the image file, every other column is an
  attribute of 0/1 (or -1/1) values::

      file,Eyeglasses,Smiling
      000001.jpg,0,1

* CelebA's ``list_attr_celeba.txt``: the first line is the number of images, the second the
  attribute names, then one whitespace-separated line per image, ``000001.jpg -1 1 ...``.

A vaekit image-folder Dataset does not keep file names, and its splits are a seeded permutation of
the readable files, so table rows cannot be tied to dataset indices without redoing the loader's
bookkeeping. Instead the images a table names are read straight from the folder with the loader's
own decoding (grey or RGB, resized with the same filter), at the run's sample shape.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaekit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TRUE_VALUES = {"1", "1.0", "true"}
FALSE_VALUES = {"0", "0.0", "-1", "-1.0", "false"}
NAMES_SHOWN = 5


@dataclass(frozen=True, eq=False)
class AttributeTable:
    """``values[i, k]`` is True when image ``files[i]`` has attribute ``names[k]``."""

    files: list[str]
    names: list[str]
    values: np.ndarray
    source: str = ""

    def column(self, name: str) -> np.ndarray:
        """The boolean column called ``name`` (case-insensitive), or :class:`ConfigError` listing the names."""
        lowered = [n.lower() for n in self.names]
        if name.strip().lower() not in lowered:
            raise ConfigError(f"unknown attribute {name!r} in {self.source or 'the table'}: use one of {', '.join(self.names)}")
        return self.values[:, lowered.index(name.strip().lower())]


def read_attribute_table(path: str | Path) -> AttributeTable:
    """Read a CSV with a header row, or CelebA's ``list_attr_celeba.txt`` (detected by its count line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read attribute file {path} ({getattr(exc, 'strerror', None) or exc})") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise DataError(f"attribute file {path} is empty")
    if lines[0][1].strip().isdigit():
        return _read_celeba(path, lines)
    return _read_csv(path, lines)


def _read_celeba(path: Path, lines: list[tuple[int, str]]) -> AttributeTable:
    declared = int(lines[0][1])
    if len(lines) < 2:
        raise DataError(f"{path} has a count line but no line of attribute names (CelebA format)")
    names = lines[1][1].split()
    rows = [(number, line.split()) for number, line in lines[2:]]
    rows = [(number, fields[0], fields[1:]) for number, fields in rows]
    if declared != len(rows):
        log.warning("%s says it lists %d images but holds %d rows; using the rows", path, declared, len(rows))
    return _table(path, names, rows)


def _read_csv(path: Path, lines: list[tuple[int, str]]) -> AttributeTable:
    parsed = list(csv.reader(line for _, line in lines))
    header = [field.strip() for field in parsed[0]]
    if len(header) < 2:
        raise DataError(f"{path}: the header row needs a file-name column and at least one attribute column, "
                        f"got {header!r}")
    rows = [(number, fields[0].strip(), [f.strip() for f in fields[1:]])
            for (number, _), fields in zip(lines[1:], parsed[1:])]
    return _table(path, header[1:], rows)


def _table(path: Path, names: list[str], rows) -> AttributeTable:
    if not rows:
        raise DataError(f"{path} lists no images")
    values = np.zeros((len(rows), len(names)), dtype=bool)
    seen: dict[str, int] = {}
    for i, (number, file, fields) in enumerate(rows):
        if len(fields) != len(names):
            raise DataError(f"{path} line {number}: {len(fields)} attribute values for {len(names)} attributes "
                            f"({file!r}): every row needs a file name and one value per attribute")
        if file in seen:
            raise DataError(f"{path} line {number}: {file!r} is listed twice (first on line {seen[file]})")
        seen[file] = number
        for k, field in enumerate(fields):
            value = field.lower()
            if value not in TRUE_VALUES | FALSE_VALUES:
                raise DataError(f"{path} line {number}: {names[k]} is {field!r}; attribute values must be 0/1 or -1/1")
            values[i, k] = value in TRUE_VALUES
    return AttributeTable(files=[file for _, file, _ in rows], names=list(names), values=values, source=str(path))


def match_folder(table: AttributeTable, root: str | Path) -> tuple[list[Path], np.ndarray]:
    """The folder's image files that ``table`` names, and the table row of each.

    A row matches by its path relative to ``root`` (``class/x.png``), else by file name alone when
    that name is unique in the folder. No match at all is an error; rows naming missing images are
    left out with a warning that says how many matched and names the first missing ones.
    """
    from vaekit.data.folder import list_images  # the loader's own listing: same files, same rules

    root = Path(root)
    files, _, _ = list_images(root)
    by_relative = {path.relative_to(root).as_posix(): path for path in files}
    by_name: dict[str, Path | None] = {}
    for path in files:
        by_name[path.name] = None if path.name in by_name else path     # None: ambiguous name
    paths, rows, missing = [], [], []
    for row, file in enumerate(table.files):
        key = file.replace("\\", "/").removeprefix("./")
        found = by_relative.get(key) or by_name.get(Path(key).name)
        if found is None:
            missing.append(file)
        else:
            paths.append(found)
            rows.append(row)
    shown = ", ".join(missing[:NAMES_SHOWN]) + (" ..." if len(missing) > NAMES_SHOWN else "")
    if not paths:
        example = next(iter(by_relative), "none")
        raise DataError(f"none of the {len(table.files)} images named in {table.source or 'the table'} is in {root} "
                        f"(the table names e.g. {table.files[0]!r}, the folder holds e.g. {example!r}): "
                        "pass the attribute file that belongs to this image folder")
    if missing:
        log.warning("%d of %d rows of %s match an image in %s; %d name images that are not there (%s)",
                    len(paths), len(table.files), table.source or "the table", root, len(missing), shown)
    return paths, np.asarray(rows, dtype=np.int64)


def read_folder_images(paths: list[Path], sample_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Images at ``paths`` decoded as the folder loader does, at ``sample_shape`` = (C, H, W).

    Returns float32 images in [0, 1] and the indices of ``paths`` that could be read.
    """
    from vaekit.data.folder import read_pixels  # the loader's own decoding: mode, 16-bit scaling, resize

    if len(sample_shape) != 3:
        raise ConfigError(f"attribute tables apply to image-folder runs, not data shaped {tuple(sample_shape)}")
    channels, height, width = sample_shape
    images, kept = [], []
    for index, path in enumerate(paths):
        try:
            images.append(read_pixels(path, channels, (width, height)))
            kept.append(index)
        except Exception:  # noqa: BLE001 - Pillow raises many types for damaged files
            log.warning("skipped unreadable image %s", path)
    if not images:
        raise DataError(f"none of the {len(paths)} matched images could be read")
    x = np.divide(np.stack(images), np.float32(255), dtype=np.float32)
    return x, np.asarray(kept, dtype=np.int64)
