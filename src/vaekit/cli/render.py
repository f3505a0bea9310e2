"""What the command line shows: progress bars and tables. The library never prints; this module does."""
from __future__ import annotations

import logging
import math
import sys
from typing import Any

from tqdm.auto import tqdm

log = logging.getLogger("vaekit.cli")


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
    """A ``progress(done, total)`` callback for counted work, used as a context manager."""

    def __init__(self, desc: str, unit: str = "it"):
        self.desc, self.unit, self.bar = desc, unit, None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, file=sys.stderr, leave=False, disable=None)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


class TrainBar:
    """Training callbacks: one bar per epoch with the live loss terms, one line per finished epoch."""

    def __init__(self):
        self.bar = None
        self.epochs = 0

    def on_train_start(self, *, start_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self.epochs = epochs
        if start_epoch:
            print(f"resuming after epoch {start_epoch} of {epochs}", file=sys.stderr)

    def on_batch(self, *, epoch: int, batch: int, steps_per_epoch: int, values: dict[str, float]) -> None:
        if self.bar is None:
            self.bar = tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{self.epochs}", unit="batch",
                            file=sys.stderr, leave=False, dynamic_ncols=True, disable=None)
        self.bar.update(batch - self.bar.n)
        if batch % 10 == 0 or batch == steps_per_epoch:
            self.bar.set_postfix({k: f"{v:.2f}" for k, v in values.items()}, refresh=False)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        terms = [f"loss {record['train_loss']:.2f}", f"val {record['val_loss']:.2f}"]
        if "val_kl" in record:
            terms.append(f"(recon {record['val_recon']:.2f} + kl {record['val_kl']:.2f})")
        mark = " *" if record.get("best") else ""
        print(f"epoch {record['epoch']:>3}/{self.epochs}  " + "  ".join(terms)
              + f"  {record['images_per_s']:,.0f} img/s{mark}", file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def dataset_warnings(dataset) -> None:
    skipped = dataset.skipped
    if skipped:
        shown = ", ".join(str(s) for s in skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        print(f"vaekit: warning: skipped {len(skipped)} unreadable image file(s): {shown}", file=sys.stderr)


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
             f"time: training {_duration(result.train_seconds)}, evaluation {_duration(result.eval_seconds)}",
             f"run saved to {result.run}"]
    if not result.faithful:
        changed = ", ".join(f"{k.replace('_', '-')} {v}" for k, v in result.overrides.items())
        if budget != recipe_budget:
            changed = ", ".join(filter(None, [changed, f"{budget} instead of {recipe_budget}"]))
        against = "the paper" if result.published is not None else "a run of the recipe as written"
        lines.append(f"not comparable with {against}: the recipe was changed ({changed})")
    return "\n".join(lines)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def eval_table(result: dict[str, Any]) -> str:
    rows = [
        ("split", f"{result['split']} ({result['n']} images)"),
        ("likelihood", result["likelihood"] + ("" if result["proper_likelihood"] else "  [not a normalised likelihood]")),
        ("reconstruction  -E[log p(x|z)]", _fmt(result["recon"]) + " nats"),
        ("KL(q(z|x) || p(z))", _fmt(result["kl"]) + (" nats" if result["kl"] is not None else "")),
        ("-ELBO", _fmt(result["nelbo"]) + (" nats" if result["nelbo"] is not None else "")),
        (f"NLL  (K = {result['iw_samples']})" if result["iw_samples"] else "NLL", _fmt(result["nll"]) + (" nats" if result["nll"] is not None else "")),
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


def datasets_table(infos) -> str:
    width = max(len(i.name) for i in infos)
    lines = []
    for info in infos:
        state = "available" if info.available else "not here"
        lines.append(f"{info.name:<{width}}  {state:<10} {info.where or ''}")
        lines.append(f"{'':<{width}}  {info.description}")
    lines.append("\nAlso accepted: a .npy file, a .npz with arrays x (and y), or a folder of PNG/JPEG images.")
    return "\n".join(lines)
