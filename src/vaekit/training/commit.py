"""How each epoch reaches the run folder, so that a process killed at any point loses nothing.

After every epoch the trainer writes, in this order:

1. ``checkpoints/last.safetensors``: weights, optimizer, training state and the epoch's metrics line.
   Moving it into place is the commit: from then on the epoch is done.
2. ``checkpoints/best.safetensors``, when the epoch improved the validation loss.
3. the epoch's line, appended to ``metrics.jsonl``.

Each file is replaced atomically (:mod:`vaekit.files`), and steps 2 and 3 can be redone from the file
of step 1. :func:`recover` does so whenever a run folder is opened for writing (training, resuming,
evaluating, figures), under the folder's lock: it writes ``best`` again when ``last`` says its own
epoch was the best and ``best`` is older, appends the metrics line ``last`` holds when the file lacks
it, drops a partial last line (a kill mid-append) and lines of epochs ``last`` has not committed, and
deletes the temporary files an interrupted write left. A kill before step 1 completes leaves the
previous epoch committed, and resuming trains the lost epoch again, with the same seeds, to the same
weights (:mod:`vaekit.training.trainer`).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaekit.errors import RunError
from vaekit.files import append_line, atomic_write_text, remove_temporaries

log = logging.getLogger(__name__)

METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
LAST = "last.safetensors"
BEST = "best.safetensors"
NUMBERS = ("train_loss", "val_loss")   # besides its epoch, what every metrics line has (the curves plot them)


def commit_epoch(run_dir: Path, model, state: dict[str, Any], record: dict[str, Any], *, improved: bool,
                 optimizer, auxiliary_optimizer=None, extra_tensors: dict[str, Any] | None = None) -> None:
    """Write one finished epoch into ``run_dir``: last (the commit), then best if ``improved``, then its metrics line."""
    from vaekit.training.checkpoint import save_checkpoint

    folder = Path(run_dir) / CHECKPOINTS
    save_checkpoint(folder / LAST, model, state, optimizer, extra_tensors=extra_tensors,
                    auxiliary_optimizer=auxiliary_optimizer, record=record)
    if improved:
        save_checkpoint(folder / BEST, model, state)
    append_line(Path(run_dir) / METRICS, json.dumps(record))


@dataclass
class MetricsFile:
    """metrics.jsonl as read: the usable records, the numbers of damaged lines, and whether the last
    line was cut short (a process killed while appending it)."""

    records: list[dict[str, Any]] = field(default_factory=list)
    damaged: list[int] = field(default_factory=list)
    partial_tail: bool = False


def read_metrics(path: Path) -> MetricsFile:
    """Read metrics.jsonl, keeping every line that is a JSON object with a whole-number ``epoch`` and
    numbers for ``train_loss`` and ``val_loss``; the others are counted as damaged."""
    result = MetricsFile()
    path = Path(path)
    if not path.exists():
        return result
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise RunError(f"cannot read {path}: {exc.strerror}") from None
    lines = text.split("\n")
    tail = lines.pop()  # "" when the file ends with a newline, as every complete write leaves it
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _record(line)
        if record is None:
            result.damaged.append(number)
        else:
            result.records.append(record)
    if tail.strip():
        record = _record(tail)
        if record is None:
            result.partial_tail = True
        else:
            result.records.append(record)
    return result


def _record(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    epoch = record.get("epoch")
    if not (isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 1):
        return None
    if not all(isinstance(record.get(key), (int, float)) and not isinstance(record.get(key), bool) for key in NUMBERS):
        return None
    return record


def history(path: Path) -> list[dict[str, Any]]:
    """The usable records of a metrics file, warning (once, in the log) about lines that are not."""
    metrics = read_metrics(path)
    if metrics.damaged:
        log.warning("%s: skipped damaged line(s) %s (not a JSON object with an epoch and losses)",
                    path, ", ".join(str(n) for n in metrics.damaged[:10]))
    return metrics.records


def recover(run_dir: Path) -> list[str]:
    """Finish the commit a killed process left half done (see the module's docstring); returns what it did.

    Call it only while holding the run folder's lock. A ``last`` checkpoint too damaged to read is left
    to the command that needs it, which says so."""
    from vaekit.training.checkpoint import load_metadata

    run_dir = Path(run_dir)
    done: list[str] = []
    for folder in (run_dir, run_dir / CHECKPOINTS, run_dir / "figures"):
        removed = remove_temporaries(folder)
        if removed:
            done.append(f"removed {len(removed)} unfinished temporary file(s) in {folder}")
    last = run_dir / CHECKPOINTS / LAST
    if not last.is_file():
        return _report(run_dir, done)
    try:
        meta = load_metadata(last)
    except RunError as exc:
        log.warning("%s", exc)
        return _report(run_dir, done)
    state = meta.get("state", {})
    epoch = state.get("epoch")
    if not isinstance(epoch, int):
        return _report(run_dir, done)
    if epoch >= 1 and state.get("best_epoch") == epoch and checkpoint_epoch(run_dir / CHECKPOINTS / BEST) != epoch:
        _best_from_last(last, run_dir / CHECKPOINTS / BEST)
        done.append(f"wrote best.safetensors of epoch {epoch} again from last.safetensors")
    done += _repair_metrics(run_dir / METRICS, epoch, meta.get("record"))
    return _report(run_dir, done)


def _report(run_dir: Path, done: list[str]) -> list[str]:
    for line in done:
        log.info("%s: %s", run_dir, line)
    return done


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file holds, from its metadata alone; None if it is missing or unreadable."""
    from vaekit.training.checkpoint import load_metadata

    if not path.is_file():
        return None
    try:
        return load_metadata(path).get("state", {}).get("epoch")
    except RunError:
        return None


def _best_from_last(last: Path, best: Path) -> None:
    """The best checkpoint an uninterrupted run would have written: last's weights and state, no optimizer."""
    from vaekit.training.checkpoint import load_checkpoint, write_checkpoint

    checkpoint = load_checkpoint(last)
    tensors = {k: v for k, v in checkpoint.tensors.items() if k.startswith("model.")}
    write_checkpoint(best, tensors, {"state": checkpoint.state})


def _repair_metrics(path: Path, epoch: int, record: dict[str, Any] | None) -> list[str]:
    """Make metrics.jsonl end at ``epoch`` with that epoch's line (from ``record``, when last holds it)."""
    metrics = read_metrics(path)
    kept = [r for r in metrics.records if r["epoch"] <= epoch]
    done = []
    if metrics.partial_tail:
        done.append("dropped a partial last line of metrics.jsonl (a write cut short)")
    if metrics.damaged:
        done.append(f"dropped damaged line(s) {', '.join(map(str, metrics.damaged[:10]))} of metrics.jsonl")
        log.warning("%s: dropped damaged line(s) %s (not a JSON object with an epoch and losses)", path,
                    ", ".join(map(str, metrics.damaged[:10])))
    if len(kept) < len(metrics.records):
        done.append(f"dropped metrics of epochs after {epoch}, which no checkpoint holds")
    if record is not None and not any(r["epoch"] == epoch for r in kept):
        kept.append(record)
        done.append(f"appended the metrics of epoch {epoch} from last.safetensors")
    if done:
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
    return done
