"""One writer per run folder: ``RUN/.lock``, a lock file that names its holder.

Training, resuming, evaluating and every command that writes into a run folder hold its lock for as
long as they run; a second writer is refused at once with a one-line error naming the holder (pid,
host, command, since when) instead of interleaving its files with the first one's.

The lock is ``fcntl.flock`` on the file, which the operating system releases when its process ends,
however it ends (``kill -9`` included): a lock left by a dead process is taken over, never waited on.
The JSON inside (pid, host, command, since) is only there to name the holder. Where ``fcntl`` is
missing (Windows) the file is created with ``O_EXCL`` instead, and a holder on this host whose pid no
longer runs is taken as gone. Under torchrun only rank 0 writes, so only rank 0 locks.

A process may lock a folder it already holds (``vaekit report`` evaluates, and evaluating locks): the
lock is counted and released by the outermost holder.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vaekit.errors import RunError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

_held: dict[str, "RunLock"] = {}     # resolved folder -> this process's lock on it
_guard = threading.Lock()


class RunLock:
    """A held lock on one run folder; release it with :meth:`release` or use it as a context manager."""

    def __init__(self, folder: Path, fd: int | None):
        self.folder = folder
        self.path = folder / LOCK_NAME
        self.fd = fd
        self.depth = 1

    def release(self) -> None:
        with _guard:
            self.depth -= 1
            if self.depth > 0:
                return
            _held.pop(_key(self.folder), None)
            # Unlink while still holding it: a process that opened the old file then finds, after its
            # own flock, that the name points elsewhere (or nowhere), and starts again.
            try:
                self.path.unlink(missing_ok=True)
            finally:
                if self.fd is not None:
                    os.close(self.fd)
                    self.fd = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_run(folder: str | Path, *, command: str | None = None) -> RunLock:
    """Lock the existing folder ``folder`` for writing, or raise :class:`RunError` naming its holder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunError(f"run folder {folder} does not exist")
    with _guard:
        held = _held.get(_key(folder))
        if held is not None:
            held.depth += 1
            return held
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or _command_line(),
                  "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        lock = RunLock(folder, _acquire_flock(folder, holder) if fcntl is not None else _acquire_exclusive(folder, holder))
        _held[_key(folder)] = lock
        return lock


def holder_of(folder: str | Path) -> dict[str, Any] | None:
    """Who holds ``folder``'s lock now (its JSON), or None when nobody does."""
    path = Path(folder) / LOCK_NAME
    if not path.exists():
        return None
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {}
        except OSError:  # no flock on this file system: judge by the holder's pid, as below
            pass
        else:
            return None
        finally:
            os.close(fd)
    info = _read_path(path)
    return info if info is not None and _alive(info) else None


def _acquire_flock(folder: Path, holder: dict[str, Any]) -> int | None:
    """The locked file's descriptor; None when this file system has no flock (then the O_EXCL lock was taken)."""
    path = folder / LOCK_NAME
    for _ in range(10):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = _read(fd)
            os.close(fd)
            raise RunError(_busy(folder, info)) from None
        except OSError:  # ENOLCK and the like: a file system without flock
            os.close(fd)
            log.info("%s has no flock: locking with O_EXCL and the holder's pid instead", folder)
            return _acquire_exclusive(folder, holder)
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            previous = _read(fd)
            if previous and previous.get("pid") != holder["pid"]:
                log.info("taking over the lock of %s left by pid %s (%s), which has ended",
                         folder, previous.get("pid"), previous.get("command"))
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode("utf-8"), 0)
            return fd
        os.close(fd)  # the holder released (and removed) the file between our open and our flock
    raise RunError(f"{folder} is being locked and unlocked by other processes too fast to join: try again")


def _acquire_exclusive(folder: Path, holder: dict[str, Any]) -> None:
    """Without fcntl: create the lock file with O_EXCL, taking over one whose holder is gone."""
    path = folder / LOCK_NAME
    for _ in range(10):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            info = _read_path(path)
            if info is not None and _alive(info):
                raise RunError(_busy(folder, info)) from None
            log.info("taking over the lock of %s left by %s, which has ended", folder, info)
            # Move the stale file aside under a name of our own, so that of two processes taking it
            # over at once only one removes it (the other finds it gone and tries O_EXCL again).
            aside = path.with_name(f"{LOCK_NAME}.{os.getpid()}.stale")
            try:
                os.replace(path, aside)
                aside.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
            continue
        try:
            os.write(fd, json.dumps(holder).encode("utf-8"))
        finally:
            os.close(fd)
        return None
    raise RunError(f"cannot take the lock {path}: remove it if no vaekit command is using {folder}")


def _alive(info: dict[str, Any]) -> bool:
    """Whether a holder may still run: on another host we cannot tell, so yes; here, if its pid exists."""
    if info.get("host") != socket.gethostname():
        return True
    try:
        pid = int(info.get("pid"))
    except (TypeError, ValueError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but is not ours (EPERM)
        return True
    return True


def _busy(folder: Path, info: dict[str, Any] | None) -> str:
    if not info:
        who = "another process"
    else:
        who = f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')!s:.120}) since {info.get('since')}"
    return (f"{folder} is in use by {who}: wait until it ends, or write elsewhere (another --out); "
            "a lock left by a process that has ended is taken over without asking")


def _read(fd: int) -> dict[str, Any] | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _read_path(path: Path) -> dict[str, Any] | None:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _command_line() -> str:
    words = [Path(sys.argv[0]).name if sys.argv else "python", *sys.argv[1:]]
    if words[0] in ("__main__.py", "-m"):
        words[0] = "vaekit"
    return " ".join(words)


def _key(folder: Path) -> str:
    return str(Path(folder).resolve())
