"""The runs one explorer serves: found once at start-up, opened on first use, addressed by id.

A run's id is its folder's path relative to the folder given to ``vaekit serve`` ("fashion-mnist-vae",
"sweep/beta-4"), or the folder's own name when a single run is served. Requests name runs by id
only: an id is looked up in this registry's table and never joined onto a path, so no request can
reach a file outside the served runs.

A run that cannot be read or opened (a damaged run.json, a missing dataset, weights of another
shape) is marked with its reason the first time, listed with it by ``GET /api/runs``, and refused
from then on without trying again (opening can mean downloading a dataset): one broken run never
stops the others from being served. Restart the server to try it again.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from vaekit.errors import RunError, VaekitError
from vaekit.training.run import open_run
from vaekit.serve.images import BadInput

log = logging.getLogger(__name__)

SEARCH_DEPTH = 2   # a folder of runs, or a folder of sweeps (each a folder of runs)


@dataclass
class RunEntry:
    id: str
    path: Path
    summary: dict
    error: str | None = None


def find_runs(root: Path, depth: int = SEARCH_DEPTH) -> list[Path]:
    """``root`` itself when it is a run, else the runs in its sub-folders (``depth`` levels, sorted)."""
    if (root / "run.json").is_file():
        return [root]
    found: list[Path] = []
    if depth == 0:
        return found
    try:
        children = sorted(child for child in root.iterdir() if child.is_dir() and not child.name.startswith("."))
    except OSError as exc:
        raise RunError(f"cannot read folder {root} ({exc.strerror or exc})") from None
    for child in children:
        found += find_runs(child, depth - 1)
    return found


class RunRegistry:
    """The served runs, each opened (model loaded, data encoded) once, the first time it is asked for."""

    def __init__(self, path: str | Path, *, data_dir: str | None = None, device: str = "cpu",
                 map_points: int | None = None):
        root = Path(path)
        if not root.is_dir():
            raise RunError(f"{root} is not a folder: pass a run folder (from vaekit train --out) or a folder of runs")
        paths = find_runs(root)
        if not paths:
            raise RunError(f"no vaekit runs in {root}: pass a run folder (it holds run.json) or a folder of them")
        self.root = root
        self.data_dir, self.device, self.map_points = data_dir, device, map_points
        self.entries: dict[str, RunEntry] = {}
        for run_path in paths:
            run_id = run_path.name if run_path == root else run_path.relative_to(root).as_posix()
            self.entries[run_id] = self._describe(run_id, run_path)
        self._opened: dict = {}
        self._locks = {run_id: threading.Lock() for run_id in self.entries}

    @property
    def default(self) -> str:
        """The first run not known to be broken (the first run when all are)."""
        return next((entry.id for entry in self.entries.values() if entry.error is None), next(iter(self.entries)))

    @staticmethod
    def _describe(run_id: str, path: Path) -> RunEntry:
        try:
            run = open_run(path)
            config = run.config
        except Exception as exc:  # noqa: BLE001 - whatever is wrong with one run, the others are served
            if not isinstance(exc, VaekitError):
                log.warning("cannot read run %s", path, exc_info=True)
            return RunEntry(run_id, path, {"model": None, "dataset": None, "latent_dim": None, "arch": None},
                            _reason(exc))
        summary = {"model": config.model, "dataset": config.dataset, "latent_dim": config.latent_dim, "arch": config.arch}
        return RunEntry(run_id, path, summary)

    def listing(self) -> list[dict]:
        return [{"id": entry.id, **entry.summary, "opened": entry.id in self._opened, "error": entry.error}
                for entry in self.entries.values()]

    def opened(self, run_id: str | None = None):
        """The run ``run_id`` if it is open already, else None (never opens, never waits)."""
        return self._opened.get(self.default if run_id is None else run_id)

    def get(self, run_id: str | None = None):
        """The opened :class:`~vaekit.serve.explorer.Explorer` of ``run_id`` (default: the first run that
        opens), or :class:`BadInput`."""
        run_id = self.default if run_id is None else run_id
        entry = self.entries.get(run_id)
        if entry is None:
            known = ", ".join(repr(name) for name in self.entries)
            raise BadInput(f"no run called {run_id!r} is served here: use one of {known}", 404)
        if run_id in self._opened:
            return self._opened[run_id]
        with self._locks[run_id]:          # one thread opens a run; the others wait for it
            if run_id not in self._opened:
                if entry.error is not None:
                    raise BadInput(f"run {run_id!r} cannot be explored: {entry.error}", 409)
                from vaekit.serve.explorer import Explorer     # torch and the model code: only once a run is opened

                options = {} if self.map_points is None else {"map_points": self.map_points}
                try:
                    self._opened[run_id] = Explorer(run_id, entry.path, data_dir=self.data_dir, device=self.device,
                                                    **options)
                except Exception as exc:  # noqa: BLE001 - remembered, so it is neither retried nor fatal
                    log.warning("cannot open run %s: %s", entry.path, _reason(exc),
                                exc_info=not isinstance(exc, VaekitError))
                    entry.error = _reason(exc)
                    raise BadInput(f"run {run_id!r} cannot be explored: {entry.error}", 409) from None
            return self._opened[run_id]


def _reason(exc: Exception) -> str:
    """Why a run cannot be served, in one line: a VaekitError's own message, else the exception's type
    and first line (the traceback goes to the server log)."""
    if isinstance(exc, VaekitError):
        return str(exc)
    first = (str(exc).splitlines() or [""])[0][:300]
    return f"it failed to open ({type(exc).__name__}: {first}); the server log has the details"
