"""Files written whole or not at all: each is written to a temporary file beside its target and moved
into place (``os.replace`` is atomic on one file system), so a reader sees the old file or the new
one, never half of one. Torch-free, so data modules can use it without importing torch.

A process killed mid-write leaves its temporary file behind (``.NAME.XXXX.tmp``);
:func:`remove_temporaries` clears them when the folder is next opened for writing. A full disk (or a
quota, or a read-only file system) becomes a one-line :class:`StorageError`, and the target keeps its
old contents.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vaekit.errors import StorageError, VaekitError

TEMPORARY_SUFFIX = ".tmp"
# The errors that mean "this storage cannot take the write", which the user must fix, not vaekit.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def temporary_beside(path: Path) -> str:
    """A temporary file in ``path``'s folder with the permissions a plain open() would give."""
    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.", suffix=TEMPORARY_SUFFIX)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named like a file :func:`temporary_beside` makes."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files an interrupted write left in ``folder`` (not its sub-folders); returns them.

    Call it only while no other process writes into ``folder`` (under its lock, for a run folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [path for path in folder.iterdir() if is_temporary(path) and path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def storage_error(path: Path, exc: BaseException) -> StorageError | None:
    """The :class:`StorageError` for a failed write to ``path``, or None when ``exc`` is another failure.

    ``exc`` is an OSError, or an error that only describes one in its text (safetensors writes from
    Rust and reports ``IoError(Os { code: 28, ... "No space left on device" })``)."""
    code = getattr(exc, "errno", None)
    if code in STORAGE_ERRNOS:
        reason = os.strerror(code)
    else:
        reason = next((os.strerror(c) for c in STORAGE_ERRNOS if os.strerror(c) in str(exc)), None)
        if reason is None:
            return None
    return StorageError(f"cannot write {path}: {reason}; free some space (or choose another --out) and run the "
                        "command again: the files already there are unchanged")


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed
    (a full disk becomes a :class:`StorageError`)."""
    tmp = temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        failure = storage_error(Path(path), exc) if isinstance(exc, Exception) and not isinstance(exc, VaekitError) else None
        if failure is not None:
            raise failure from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def append_line(path: Path, line: str) -> None:
    """Append one line (``line`` has no newline) and flush it to disk. A process killed mid-append can
    leave a partial last line, which the next reader must drop (:mod:`vaekit.training.run` does)."""
    try:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        failure = storage_error(Path(path), exc)
        if failure is not None:
            raise failure from None
        raise
