"""Files written whole or not at all: each is written to a temporary file beside its target and moved
into place (``os.replace`` is atomic on one file system), so a reader sees the old file or the new
one, never half of one. Torch-free, so data modules can use it without importing torch.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temporary_beside(path: Path) -> str:
    """A temporary file in ``path``'s folder with the permissions a plain open() would give."""
    fd, tmp = tempfile.mkstemp(dir=Path(path).parent, prefix=f".{Path(path).name}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``, on any error it is removed."""
    tmp = temporary_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with replacing(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
