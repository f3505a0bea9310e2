"""Where a run's data live, so that a run folder works from any directory, and after its data moved.

A run trained on a path (a .npy or .npz file, an image folder, a table) records the path made absolute
(as ``config.dataset``, and in run.json's ``data.path``) and a fingerprint of what was there: for a
file its size and SHA-256; for a folder the number and total size of its files and a SHA-256 of their
relative paths and sizes (reading every image of a large folder would take minutes; its listing
identifies it as well). A command that needs a run's data takes, in order:

1. the data named with ``--dataset PATH`` (a warning if its fingerprint differs from the run's);
2. the recorded path, if it is still there;
3. in ``--data-dir FOLDER``, the entry of the recorded name, or the folder itself, if its fingerprint
   matches (a run of an older vaekit has none: the name is enough).

Named data sets (digits, fashion-mnist ...) are found as always, in ``--data-dir``, the cache or by a
download. A run trained from in-memory arrays has no data on disk: the commands that need data ask for
them with ``--dataset PATH``, and those that need none (``vaekit sample``) do not ask.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from vaekit.errors import DataError

log = logging.getLogger(__name__)

ARRAY_DATASET = "<array>"      # config.dataset of a run trained from arrays in memory
CHUNK = 1 << 20


def is_named(dataset: str) -> bool:
    from vaekit.data import dataset_names

    return dataset.lower() in dataset_names()


def data_location(dataset: str) -> dict[str, Any] | None:
    """``{"path": absolute path, "fingerprint": {...}}`` for data given as a path that exists; None for a
    named data set or in-memory arrays."""
    if dataset == ARRAY_DATASET or is_named(dataset):
        return None
    path = Path(dataset).expanduser()
    if not path.exists():
        return None
    path = path.resolve()
    return {"path": str(path), "fingerprint": fingerprint(path)}


def fingerprint(path: Path) -> dict[str, Any]:
    """What identifies the data at ``path`` wherever it is moved: see the module's docstring."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        count = total = 0
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                file = Path(root) / name
                size = file.stat().st_size
                digest.update(f"{file.relative_to(path).as_posix()}\0{size}\n".encode("utf-8"))
                count, total = count + 1, total + size
        return {"kind": "folder", "files": count, "bytes": total, "sha256": digest.hexdigest()}
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return {"kind": "file", "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _matches(path: Path, expected: dict[str, Any] | None) -> bool:
    if expected is None:
        return True
    kind = "folder" if path.is_dir() else "file"
    if expected.get("kind") != kind:
        return False
    if kind == "file" and path.stat().st_size != expected.get("bytes"):
        return False  # cheap to rule out before hashing
    return fingerprint(path) == expected


def find_data(run_path: Path, config_dataset: str, data_info: dict[str, Any], *, dataset: str | None = None,
              data_dir: str | None = None) -> str:
    """The name or path to load for a run (see the module's docstring), or :class:`DataError` saying how to give it."""
    expected = data_info.get("fingerprint") if isinstance(data_info.get("fingerprint"), dict) else None
    if dataset is not None:
        given = Path(dataset).expanduser()
        if expected is not None and given.exists() and not _matches(given, expected):
            log.warning("%s differs from the data %s was trained on (%s): its numbers will describe other data",
                        dataset, run_path, data_info.get("path"))
        return dataset
    if config_dataset == ARRAY_DATASET:
        raise DataError(f"{run_path} was trained from in-memory arrays, which its folder does not hold: pass the data "
                        "with --dataset PATH (the arrays saved as .npy or .npz), or use the run from Python")
    if is_named(config_dataset):
        return config_dataset
    recorded = str(data_info.get("path") or config_dataset)
    if Path(recorded).expanduser().exists():
        return recorded
    name = Path(recorded).name
    if data_dir is not None:
        for candidate in (Path(data_dir).expanduser() / name, Path(data_dir).expanduser()):
            if candidate.exists() and _matches(candidate, expected):
                log.info("%s: found the data at %s", run_path, candidate)
                return str(candidate.resolve())
        raise DataError(f"{run_path} was trained on {recorded}, which is not there any more, and {data_dir} holds no "
                        f"{name} with the same contents: pass the data's new place with --dataset PATH")
    raise DataError(f"{run_path} was trained on {recorded}, which is not there any more: pass its new place with "
                    f"--dataset PATH, or --data-dir FOLDER for a folder holding {name}")
