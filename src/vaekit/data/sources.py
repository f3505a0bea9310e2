"""Where the IDX files of a named data set come from, and fetching them when they are nowhere.

Search order (the first folder holding all four files wins):

1. the ``data_dir`` argument (``--data-dir``): ``data_dir/<name>/`` or ``data_dir`` itself;
2. the ``VAEKIT_DATA_DIR`` environment variable, same two layouts;
3. the user cache, ``$XDG_CACHE_HOME/vaekit/datasets/<name>`` (default ``~/.cache/...``);
4. the folder a Debian package installed them in, found with ``dpkg -L <package>``;
5. a download into the user cache, when allowed.

Each file may be gzip-compressed (``<stem>.gz``) or not (``<stem>``).
"""
from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vaekit.cache import user_cache
from vaekit.errors import DataError
from vaekit.data.download import DownloadError, Progress, download_file

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "VAEKIT_DATA_DIR"

# role -> file name stem, as published by LeCun for MNIST and by Zalando for Fashion-MNIST.
IDX_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class IdxSource:
    """Where to look for and fetch the four IDX files of one data set.

    ``md5`` maps each ``<stem>.gz`` file name to the checksum of the official download; it is
    checked on downloads only (repackaged copies, such as Debian's, are recompressed).
    ``VAEKIT_<NAME>_URL`` (e.g. ``VAEKIT_FASHION_MNIST_URL``) replaces ``base_urls`` when set.
    """

    name: str
    base_urls: tuple[str, ...]
    md5: dict[str, str]
    debian_package: str | None = None

    def download_urls(self) -> tuple[str, ...]:
        override = os.environ.get(self.url_env_var())
        return (override,) if override else self.base_urls

    def url_env_var(self) -> str:
        return "VAEKIT_" + self.name.upper().replace("-", "_") + "_URL"


def cache_dir(name: str) -> Path:
    """The folder downloads of data set ``name`` go to (XDG Base Directory Specification)."""
    return user_cache() / "datasets" / name


def idx_files_in(folder: Path) -> dict[str, Path]:
    """The IDX files present in ``folder``, by role; the uncompressed copy wins when both exist."""
    found = {}
    for role, stem in IDX_STEMS.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
    return found


def dpkg_listing(package: str) -> list[str]:
    """The paths ``dpkg -L package`` lists, or ``[]`` when dpkg or the package is missing."""
    try:
        result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    return result.stdout.splitlines() if result.returncode == 0 else []


def debian_folders(package: str) -> list[Path]:
    """Folders holding one of the IDX files among those installed by a Debian package."""
    names = set(IDX_STEMS.values()) | {f"{stem}.gz" for stem in IDX_STEMS.values()}
    folders: list[Path] = []
    for line in dpkg_listing(package):
        path = Path(line.strip())
        if path.name in names and path.parent not in folders:
            folders.append(path.parent)
    return folders


@dataclass(frozen=True)
class _Place:
    label: str  # how the place is named in messages
    folders: tuple[Path, ...]
    origin_note: str = ""  # appended to the folder in Dataset.source


def _places(source: IdxSource, data_dir: str | os.PathLike | None) -> list[_Place]:
    places = []
    for label, root in (("--data-dir", data_dir), ("$" + DATA_DIR_ENV, os.environ.get(DATA_DIR_ENV))):
        if root:
            root = Path(root).expanduser()
            if not root.is_dir():
                logger.warning("%s %s is not a folder; looking elsewhere for %s", label, root, source.name)
            places.append(_Place(f"{label} {root}", (root / source.name, root)))
        else:
            places.append(_Place(f"{label} (not set)", ()))
    places.append(_Place(_pretty(cache_dir(source.name)), (cache_dir(source.name),)))
    if source.debian_package:
        folders = tuple(debian_folders(source.debian_package))
        note = "" if folders else " (not installed)"
        places.append(_Place(f"the {source.debian_package} Debian package{note}", folders,
                             f" (Debian package {source.debian_package})"))
    return places


def locate(source: IdxSource, data_dir: str | os.PathLike | None = None) -> tuple[dict[str, Path], str] | None:
    """Return ``(files by role, description of where)`` from the first complete folder, or None."""
    return _search(source, _places(source, data_dir))


def _search(source: IdxSource, places: list[_Place]) -> tuple[dict[str, Path], str] | None:
    for place in places:
        for folder in place.folders:
            files = idx_files_in(folder)
            if len(files) == len(IDX_STEMS):
                return files, f"{folder}{place.origin_note}"
            if files:
                logger.warning("%s holds only %d of the %d %s IDX files; looking elsewhere",
                               folder, len(files), len(IDX_STEMS), source.name)
    return None


def obtain(source: IdxSource, *, data_dir: str | os.PathLike | None = None, download: bool = True,
           progress: Progress | None = None) -> tuple[dict[str, Path], str]:
    """Locate the four IDX files, downloading the missing ones into the cache when allowed.

    Returns ``(files by role, human-readable source)``; raises :class:`DataError` saying where it
    looked and how to fix it when the files cannot be had.
    """
    places = _places(source, data_dir)
    found = _search(source, places)
    if found is not None:
        return found
    reason = "downloading is off"
    if download:
        try:
            return _download_missing(source, progress)
        except DownloadError as exc:
            reason = f"the download failed ({exc})"
    raise DataError(_not_found_message(source, places, reason, download))


def _download_missing(source: IdxSource, progress: Progress | None) -> tuple[dict[str, Path], str]:
    folder = cache_dir(source.name)
    files = idx_files_in(folder)
    urls_used = []
    for role, stem in IDX_STEMS.items():
        if role in files:
            continue
        name = f"{stem}.gz"
        urls = [base.rstrip("/") + "/" + name for base in source.download_urls()]
        urls_used.append(download_file(urls, folder / name, md5=source.md5.get(name), progress=progress))
        files[role] = folder / name
    origin = urls_used[0].rsplit("/", 1)[0] + "/" if urls_used else "an earlier download"
    return files, f"{folder} (downloaded from {origin})"


def _not_found_message(source: IdxSource, places: list[_Place], reason: str, download: bool) -> str:
    labels = [place.label for place in places]
    where = ", ".join(labels[:-1]) + " or " + labels[-1]
    fixes = []
    if source.debian_package:
        fixes.append(f"install it with `apt-get install {source.debian_package}`")
    fixes.append(f"pass --data-dir DIR with the files {', '.join(s + '.gz' for s in IDX_STEMS.values())}")
    if not download:
        fixes.append("allow downloading")
    return f"{source.name} not found in {where}, and {reason}: {' or '.join(fixes)}"


def _pretty(path: Path) -> str:
    home = Path(os.path.expanduser("~"))
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)
