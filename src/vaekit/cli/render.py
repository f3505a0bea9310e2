"""What the command line shows: progress bars and tables. The library never prints; this module does."""
from __future__ import annotations

import logging
import math
import sys
import threading
import time
from typing import Any, Callable

from tqdm.auto import tqdm

log = logging.getLogger("vaekit.cli")

PROGRESS_EVERY_S = 5.0   # without a terminal: one progress line this often during a long phase


class Ticker:
    """Progress for output that is not a terminal (piped, or written to a log), where the bars draw
    nothing: a daemon thread prints ``describe()`` every ``every`` seconds, so a six-minute epoch or
    evaluation shows it is alive. ``describe`` returns None while there is nothing to say."""

    def __init__(self, describe: Callable[[], str | None], *, every: float = PROGRESS_EVERY_S, stream=None):
        self.describe, self.every, self.stream = describe, every, stream or sys.stderr
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="vaekit-progress", daemon=True)

    @staticmethod
    def wanted(stream) -> bool:
        """True when ``stream`` is not a terminal (a terminal has the live bars instead)."""
        try:
            return not stream.isatty()
        except (AttributeError, ValueError):
            return True

    def start(self) -> "Ticker":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread.is_alive():
            self.thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self.stop_event.wait(self.every):
            try:
                line = self.describe()
                if line:
                    self.stream.write(line + "\n")   # one write, so it never splits another thread's line
                    self.stream.flush()
            except (ValueError, OSError):   # the stream was closed under us: stop quietly
                return


class DownloadBar:
    """A ``progress(bytes_done, bytes_total)`` callback drawing a byte progress bar."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, unit="B", unit_scale=True, desc="downloading", file=sys.stderr, leave=False, disable=None)
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.bar.close()
            self.bar = None


class CountBar:
    """A ``progress(done, total)`` callback for counted work, used as a context manager. Without a
    terminal it prints a line every few seconds instead (from its first count to the block's end)."""

    def __init__(self, desc: str, unit: str = "it", *, stream=None, every: float = PROGRESS_EVERY_S):
        self.desc, self.unit, self.bar = desc, unit, None
        self.stream = stream or sys.stderr
        self.done = self.total = None
        self.started = time.monotonic()
        self.ticker = Ticker(self.describe, every=every, stream=self.stream) if Ticker.wanted(self.stream) else None

    def __call__(self, done: int, total: int) -> None:
        restarted = self.done is not None and done < self.done   # the next run of a comparison, say
        if self.done is None or restarted:
            self.started = time.monotonic()
        self.done, self.total = done, total
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=self.stream, leave=False, disable=None)
        elif restarted:
            self.bar.reset(total=total)
        self.bar.update(done - self.bar.n)

    def describe(self) -> str | None:
        if self.done is None:
            return None
        elapsed = _duration(time.monotonic() - self.started)
        if self.total and self.done >= self.total:
            return f"{self.desc}: {self.total:,} {self.unit} done, finishing ({elapsed} elapsed)"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        return f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}{share}, {elapsed} elapsed"

    def __enter__(self):
        if self.ticker is not None:
            self.ticker.start()
        return self

    def __exit__(self, *exc):
        if self.ticker is not None:
            self.ticker.stop()
        if self.bar is not None:
            self.bar.close()


class TrainBar:
    """Training callbacks: one bar per epoch with the live loss terms, one line per finished epoch.
    Without a terminal the bar draws nothing, so a line every few seconds says where the epoch is."""

    def __init__(self, *, stream=None, every: float = PROGRESS_EVERY_S):
        self.bar = None
        self.epochs = 0
        self.stream = stream or sys.stderr
        self.position: tuple[int, int, int, dict[str, float]] | None = None   # epoch, batch, steps, values
        self.epoch_started = time.monotonic()
        self.started: tuple[float, int] | None = None   # when and after which epoch this process began training
        self.ticker = Ticker(self.describe, every=every, stream=self.stream) if Ticker.wanted(self.stream) else None

    def on_train_start(self, *, start_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self.epochs = epochs
        self.epoch_started = time.monotonic()
        self.started = (self.epoch_started, start_epoch)
        self.position = (start_epoch, 0, steps_per_epoch, {})
        if start_epoch:
            print(f"resuming after epoch {start_epoch} of {epochs}", file=self.stream)

    def on_batch(self, *, epoch: int, batch: int, steps_per_epoch: int, values: dict[str, float]) -> None:
        self.position = (epoch, batch, steps_per_epoch, values)
        if self.bar is None:
            self.bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                            file=self.stream, leave=False, dynamic_ncols=True, disable=None)
        self.bar.update(batch - self.bar.n)
        if batch % 10 == 0 or batch == steps_per_epoch:
            self.bar.set_postfix({k: f"{v:.2f}" for k, v in values.items()}, refresh=False)

    def describe(self) -> str | None:
        """The progress line: epoch, batch, share, time in this epoch and the latest loss."""
        if self.position is None or self.position[0] >= self.epochs:   # not started, or finished
            return None
        epoch, batch, steps, values = self.position
        elapsed = _duration(time.monotonic() - self.epoch_started)
        if batch >= steps:
            return f"epoch {epoch + 1}/{self.epochs}: all {steps} batches done, validating ({elapsed} in this epoch)"
        loss = f", loss {values['loss']:.2f}" if "loss" in values else ""
        return f"epoch {epoch + 1}/{self.epochs}: batch {batch}/{steps} ({batch / steps:.0%}), {elapsed} in this epoch{loss}"

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self.epoch_started = time.monotonic()
        if self.position is not None:
            self.position = (record["epoch"], 0, self.position[2], {})
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        terms = [f"loss {record['train_loss']:.2f}", f"val {record['val_loss']:.2f}"]
        if "val_iw_bound" in record:      # the loss is the importance-weighted bound: show the -ELBO beside it
            elbo = record["val_recon"] + record["val_kl"]
            terms.append(f"(IW bound; -ELBO {elbo:.2f} = recon {record['val_recon']:.2f} + kl {record['val_kl']:.2f})")
        elif "val_kl" in record:
            terms.append(f"(recon {record['val_recon']:.2f} + kl {record['val_kl']:.2f})")
        mark = " *" if record.get("best") else ""
        print(f"epoch {record['epoch']:>3}/{self.epochs}  " + "  ".join(terms)
              + f"  {record['images_per_s']:,.0f} img/s{self._time(record)}{mark}", file=self.stream)

    def _time(self, record: dict[str, Any]) -> str:
        """``  [12 min 04 s; about 47 min left]``: the training time so far, and the epochs still to
        train at this process's mean epoch so far (early stopping may end sooner)."""
        if self.started is None:
            return ""
        started, start_epoch = self.started
        now = time.monotonic()
        elapsed = record.get("elapsed_s", now - started)      # elapsed_s counts a resumed run's earlier epochs too
        done, left = record["epoch"] - start_epoch, self.epochs - record["epoch"]
        if done <= 0 or left <= 0:
            return f"  [{_duration(elapsed)}]"
        return f"  [{_duration(elapsed)}; about {_rough(left * (now - started) / done)} left]"

    def __enter__(self):
        if self.ticker is not None:
            self.ticker.start()
        return self

    def __exit__(self, *exc):
        if self.ticker is not None:
            self.ticker.stop()
        if self.bar is not None:
            self.bar.close()


def dataset_warnings(dataset) -> None:
    skipped = dataset.skipped
    if skipped:
        shown = ", ".join(str(s) for s in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"vaekit: warning: skipped {len(skipped)} unreadable image file(s): {shown}", file=sys.stderr)


def budget_warnings(config, dataset) -> None:
    warning = training_budget_warning(config, dataset)
    if warning:
        print(f"vaekit: warning: {warning}", file=sys.stderr)


def precision_hint(config_file, config) -> None:
    """Where a recipe file that trains in bf16 is trained on hardware without bfloat16 dot products
    (the trainer warns that bf16 is slow there), the options of the recipe's settings for it."""
    if config_file is None or config.precision != "bf16":
        return
    from vaekit.errors import ConfigError
    from vaekit.evaluation.reproduce import fallback_settings
    from vaekit.training.device import resolve_device
    from vaekit.training.recipes import read_recipe

    try:
        recipe = read_recipe(config_file)
    except ConfigError:                     # a config file that is not a recipe
        return
    if recipe.without_bf16 is not None and recipe.needs_fallback(resolve_device(config.device)):
        print(f"vaekit: hint: this device has no bfloat16 dot products, where the bf16 of {recipe.name} is several "
              f"times slower; its settings for such hardware: add {fallback_settings(recipe)} "
              f"(`vaekit reproduce {recipe.name}` takes them by itself)", file=sys.stderr)


SHORT_TRAINING_STEPS = 1000


def training_budget_warning(config, dataset) -> str | None:
    """A warning when a table's epochs add up to few optimiser steps (an epoch of a small table is a
    handful of batches: wine's 10 default epochs are 50 steps), else None."""
    if not getattr(dataset, "is_table", False):
        return None
    per_epoch = -(-len(dataset.train) // config.batch_size)
    steps = config.epochs * per_epoch
    if steps >= SHORT_TRAINING_STEPS:
        return None
    suggested = -(-4000 // per_epoch)
    return (f"{dataset.name} has {len(dataset.train)} training rows, so {config.epochs} epochs are only {steps} optimiser "
            f"steps; a table usually needs a few thousand: try --epochs {suggested}")


def train_header(config, dataset, out) -> str:
    shape = "x".join(str(s) for s in dataset.sample_shape)
    beta = "" if config.beta is None else f", beta={config.beta:g}"
    return (f"training {config.model} ({config.arch}, latent {config.latent_dim}, {config.likelihood}{beta}) on "
            f"{dataset.name} [{shape}; {len(dataset.train)} train / {len(dataset.val)} val] from {dataset.source}\n"
            f"run folder: {out}")


def launch_line(config, world_size: int) -> str:
    """The torchrun line under the training header: processes, global and per-process batch, lr."""
    from vaekit.training.distributed import per_rank_batch

    return (f"distributed: {world_size} processes (torchrun), global batch {config.batch_size} "
            f"({per_rank_batch(config.batch_size, world_size)} per process), lr {config.lr:g}")


def train_summary(result) -> str:
    lines = [f"best validation loss {result.best_val_loss:.3f} at epoch {result.best_epoch}"]
    if result.stopped_early:
        lines.append("stopped early: the validation loss stopped improving")
    lines.append(f"run saved to {result.run_dir}  (evaluate it: vaekit evaluate {result.run_dir})")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{seconds:.1f} s"


def _rough(seconds: float) -> str:
    """A time still to come, to the minute: ``under a minute``, ``47 min``, ``2 h 05 min``."""
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"


def reproduction(result) -> str:
    """vaekit's number beside the published one (if the recipe has one), and the time each part took."""
    recipe, score = result.recipe, result.recipe.scoring
    unit = f" {score.unit}" if score.unit else ""
    if result.score == "nll":
        budget, recipe_budget = f"S = {result.iw_samples}", f"S = {recipe.iw_samples}"
    else:
        budget, recipe_budget = f"{result.disentanglement_points} points", f"{recipe.disentanglement_points} points"
    width = max(16, len(score.heading))
    if result.published is None:
        published = f"{'published':<10}{'—':>{width}}   none: a baseline ({recipe.paper})"
        ours = f"{'vaekit':<10}{result.value:>{width}.2f}   {budget}"
    else:
        published = f"{'published':<10}{result.published:>{width}.2f}   {recipe.paper}"
        ours = (f"{'vaekit':<10}{result.value:>{width}.2f}   {budget}, {result.gap:+.2f}{unit}"
                + (" (worse)" if result.worse else ""))
    lines = [f"{'':<10}{score.heading:>{width}}", published, ours,
             f"time: training {_duration(result.train_seconds)}, evaluation {_duration(result.eval_seconds)}"
             + _hardware(result.hardware),
             f"run saved to {result.run}"]
    if result.without_bf16:
        lines.insert(-1, "trained the recipe's settings without bf16 ([recipe.without-bf16] in its file)")
    if not result.faithful:
        changed = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in result.overrides.items())
        if budget != recipe_budget:
            changed = ", ".join(filter(None, [changed, f"{budget} instead of {recipe_budget}"]))
        against = "the paper" if result.published is not None else "a run of the recipe as written"
        lines.append(f"not comparable with {against}: the recipe was changed ({changed})")
    return "\n".join(lines)


def _hardware(hardware: dict[str, Any] | None) -> str:
    """`` on AMD EPYC (cpu, 2 threads, fp32)``: where a time was measured, or nothing if unknown."""
    if not hardware:
        return ""
    return f" on {hardware['name']} ({hardware['device']}, {hardware['threads']} threads, {hardware['precision']})"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def eval_table(result: dict[str, Any]) -> str:
    # Terms of a likelihood that is not a normalised probability (an MSE autoencoder's) are losses, not nats.
    unit = " nats" if result["proper_likelihood"] else " (a loss, not nats)"
    rows = [
        ("split", f"{result['split']} ({result['n']} images)"),
        ("likelihood", result["likelihood"] + ("" if result["proper_likelihood"] else "  [not a normalised likelihood]")),
        ("reconstruction  -E[log p(x|z)]", _fmt(result["recon"]) + unit),
        ("KL(q(z|x) || p(z))", _fmt(result["kl"]) + (" nats" if result["kl"] is not None else "")),
        ("-ELBO", _fmt(result["nelbo"]) + (unit if result["nelbo"] is not None else "")),
        (f"NLL  (K = {result['iw_samples']})" if result["iw_samples"] else "NLL", _fmt(result["nll"]) + (unit if result["nll"] is not None else "")),
        ("bits/dim", _fmt(result["bits_per_dim"], 4)),
        ("MSE per pixel", _fmt(result["mse"], 5)),
        (f"PCA MSE ({result['latent_dim']} components)", _fmt(result["pca_mse"], 5)),
        ("active units", "n/a" if result["active_units"] is None else f"{result['active_units']} of {result['latent_dim']}"),
    ]
    rows += _regularity_rows(result)
    rows += _disentanglement_rows(result.get("disentanglement"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    lines += [f"note: {note}" for note in (result.get("regularity") or {}).get("notes", [])]
    return "\n".join(lines)


def _disentanglement_rows(scores: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The five disentanglement scores (all in [0, 1], higher is better); nothing when not measured."""
    if not scores:
        return []
    points = scores["settings"]["points"]
    return [("BetaVAE score", f"{_fmt(scores['beta_vae'])}  ({points} points; chance 1/{len(scores['factor_names'])})"),
            ("FactorVAE score", _fmt(scores["factor_vae"])),
            ("MIG", _fmt(scores["mig"])),
            ("DCI disentanglement / completeness", f"{_fmt(scores['dci_disentanglement'])} / {_fmt(scores['dci_completeness'])}"),
            ("DCI informativeness", f"{_fmt(scores['dci_informativeness'])}  (held-out accuracy, mean over factors)"),
            ("SAP", _fmt(scores["sap"]))]


def _regularity_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Continuity, coverage, completeness and fd with their references; nothing when they were not measured."""
    details = result.get("regularity")
    if not details:
        return []
    rows = []
    cont = result.get("continuity")
    if cont:
        rows.append(("continuity, random step  mean / p95", f"{_fmt(cont['random_mean'])} / {_fmt(cont['random_p95'])}"
                     "  RMS pixel change per latent std (lower = smoother)"))
        rows.append(("continuity, interpolation  mean / p95", f"{_fmt(cont['path_mean'])} / {_fmt(cont['path_p95'])}"
                     f"  (largest step {_fmt(cont['path_cliff'], 1)}x the path's mean)"))
    real_share, real_fd, real_conf = details.get("completeness_real"), details.get("fd_real"), details.get("confidence_real")
    prior = "N(0, I)" if details.get("prior", "N(0, I)") == "N(0, I)" else "model-prior"
    if "coverage" in result:      # the headline (eval.json files before it have none)
        real_coverage = details.get("coverage_real")
        rows.append((f"coverage  {prior} samples", _fmt(result.get("coverage"))
                     + (f"  share of real images' neighbourhoods reached (real images: {_fmt(real_coverage)})"
                        if real_coverage is not None else "")))
    rows.append((f"completeness  {prior} samples", _fmt(result.get("completeness"))
                 + (f"  share on the real-data manifold (real images: {_fmt(real_share)})" if real_share is not None else "")))
    rows.append((f"fd  {prior} samples", _fmt(result.get("fd"), 2)
                 + (f"  Fréchet distance of classifier features (real train vs test: {_fmt(real_fd, 2)})" if real_fd is not None else "")))
    if details.get("confidence") is not None:
        rows.append((f"classifier confidence  {prior} samples", f"{_fmt(details['confidence'])}  (real images: {_fmt(real_conf)})"))
    gmm = details.get("gmm")
    if gmm:
        coverage = f"coverage {_fmt(gmm['coverage'])}, " if "coverage" in gmm else ""
        rows.append(("samples from a GMM fitted to the codes",
                     f"{coverage}completeness {_fmt(gmm['completeness'])}, fd {_fmt(gmm['fd'], 2)}"))
    accuracy = (details.get("classifier") or {}).get("test_accuracy")
    if accuracy is not None:
        rows.append(("judging classifier", f"{accuracy:.1%} test accuracy"))
    return rows


def comparison_table(comparison) -> str:
    """``vaekit compare``'s table: one column per run, ``*`` after the best value of a row (among the
    runs that may be compared: same data, likelihood and K)."""
    header = ["", *comparison.columns]
    body = []
    for r, (name, values) in enumerate(comparison.rows):
        cells = []
        for c, value in enumerate(values):
            text = (f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}") if isinstance(value, float) else _fmt(value)
            cells.append(text + (" *" if (r, c) in comparison.marked else ""))
        body.append([name, *cells])
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
             for row in [header, *body]]
    return "\n".join(lines) + "\n(* best of its row among comparable runs; nats per image, MSE per value)"


def datasets_table(infos) -> str:
    width = max(len(i.name) for i in infos)
    lines = []
    for info in infos:
        state = "available" if info.available else "not here"
        lines.append(f"{info.name:<{width}}  {state:<10} {info.where or ''}")
        lines.append(f"{'':<{width}}  {info.description}")
    lines.append("\nAlso accepted: a .npy file, a .npz with arrays x (and y), or a folder of PNG/JPEG images.")
    return "\n".join(lines)
