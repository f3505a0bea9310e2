"""The training loop: Adam on the (beta-weighted) negative ELBO, with checkpoints and resume.

Determinism: every epoch draws its shuffling and its noise from generators seeded by (seed, epoch),
so a run resumed from the checkpoint written after epoch k replays epochs k+1.. exactly as an
uninterrupted run would. The whole dataset lives as one tensor on the training device and batches
are taken by index: no per-sample Python.

The run folder is locked while training writes into it (:mod:`vaekit.training.lock`), and each epoch
is committed in an order that survives a kill at any point (:mod:`vaekit.training.commit`).
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.training import acceleration
from vaekit.training import distributed
from vaekit.training import tracking
from vaekit.training.checkpoint import Checkpoint, load_checkpoint, training_state
from vaekit.training.commit import commit_epoch
from vaekit.training.config import TrainConfig
from vaekit.training.device import resolve_device
from vaekit.data import batches
from vaekit.errors import ConfigError, RunError, TrainingDiverged
from vaekit.nn.likelihoods import Bernoulli, binarize, observed
from vaekit.models import build_model
from vaekit.models.base import ModelOutput
from vaekit.training.card import write_card
from vaekit.training.data_location import data_location
from vaekit.training.lock import lock_run
from vaekit.training.run import check_run_dir, describe_data, open_for_writing, open_run, prepare_run_dir, write_run_info

log = logging.getLogger(__name__)

VAL_SEED_OFFSET = 7919  # fixes the validation binarisation and sampling noise


class Callback:
    """Progress hooks; override any of them. The CLI's progress bar is one of these."""

    def on_train_start(self, *, start_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        """Before the first epoch (``start_epoch`` > 0 when resuming)."""

    def on_batch(self, *, epoch: int, batch: int, steps_per_epoch: int, values: dict[str, float]) -> None:
        """After a step whose loss was checked (every step on the CPU, every 25 on an accelerator)."""

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """After each epoch, with its metrics record (the line written to metrics.jsonl)."""

    def on_train_end(self, *, result: "TrainResult | None" = None, error: BaseException | None = None) -> None:
        """After training, with its result, or with the ``error`` that stopped it (then ``result`` is
        None). Optional: callbacks without it are skipped."""


@dataclass
class TrainResult:
    run_dir: Path | None
    model: torch.nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val_loss: float = math.inf
    best_epoch: int = 0
    stopped_early: bool = False


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 1) % (2**63)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    if config.lr_schedule == "cosine":
        return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return config.lr


def kl_weight(config: TrainConfig, step: int, steps_per_epoch: int) -> float | None:
    if config.beta is None:
        return None
    warmup_steps = config.kl_warmup * steps_per_epoch
    return config.beta if warmup_steps <= 0 else config.beta * min(1.0, step / warmup_steps)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, in the fastest implementation this torch has for the parameters' device.

    The fused kernel updates each parameter in one pass instead of about ten (on the CPU as well
    since torch 2.4); it cut the MLP VAE's step time by a quarter here (BENCHMARKS.md, "Speed").
    It computes the same update as the default implementation, up to float rounding. Where torch
    has no fused kernel for the device, the multi-tensor (foreach) one is used.
    """
    params = main_parameters(model)
    try:
        return torch.optim.Adam(params, lr=config.lr, fused=True)
    except RuntimeError:  # "fused=True requires ... supported devices"
        return torch.optim.Adam(params, lr=config.lr, foreach=True)


def main_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters the loss trains: all but those a model trains with its own auxiliary optimizer."""
    auxiliary = {id(p) for p in model.auxiliary_parameters()}
    return [p for p in model.parameters() if id(p) not in auxiliary]


def _rows(data, index):
    """``data[index]``: for a tensor, ``index_select``, which gathers a batch of rows about 5x faster
    on the CPU than advanced indexing (BENCHMARKS.md, "Speed"); streamed data index themselves."""
    if isinstance(data, torch.Tensor) and isinstance(index, torch.Tensor):
        return torch.index_select(data, 0, index)
    return data[index]


def _model_inputs(y: torch.Tensor | None, index) -> dict[str, Any]:
    """Keyword inputs besides x: the batch's labels for a conditional model."""
    return {} if y is None else {"y": _rows(y, index)}


@torch.inference_mode()
def validation_loss(model, x: torch.Tensor, seed: int, batch_size: int = 1000, y: torch.Tensor | None = None) -> dict[str, float]:
    """Mean loss terms (and a model's extra terms) on held-out data, with fixed noise so epochs are comparable."""
    model.eval()
    generator = torch.Generator(device=x.device).manual_seed(seed)
    totals: dict[str, float] = {}
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        out = model(batch, generator=generator, **_model_inputs(y, slice(start, start + batch_size)))
        for name, value in out.values(extras=True).items():
            totals[name] = totals.get(name, 0.0) + value * len(batch)
    model.train()
    return {k: v / len(x) for k, v in totals.items()}


class Trainer:
    """Owns the model, optimizer and data tensors of one run."""

    def __init__(self, config: TrainConfig, dataset, run_dir: Path | None, callbacks=()):
        self.config = config
        self.dataset = dataset
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks)
        self.group = distributed.join(resolve_device(config.device))  # a group of one unless under torchrun
        self.device = self.group.device
        self.precision = acceleration.resolve_precision(config.precision, self.device)  # auto: bf16 where it pays
        torch.manual_seed(config.seed)
        self.model = build_model(config, dataset.sample_shape, class_names=dataset.class_names).to(self.device)
        _fit_model_to_data(self.model, dataset)
        self.optimizer = make_optimizer(self.model, config)
        # A model may train a second network with its own optimizer (FactorVAE's discriminator).
        self.aux_optimizer = self.model.auxiliary_optimizer()
        if self.group.distributed:
            check_distributable(config)
        acceleration.compile_networks(self.model, config.compile)  # in place; off by default
        self.train_model = self.group.wrap(self.model)  # DistributedDataParallel under torchrun
        likelihood = self.model.likelihood
        self.train_x = batches.on_device(dataset.train.x, self.device, config, self.group)  # or a reader streaming from disk
        if isinstance(likelihood, Bernoulli) and likelihood.binarize == "static":
            self.train_x = observed(self.train_x, likelihood, config.seed)
        self.dynamic_binarization = isinstance(likelihood, Bernoulli) and likelihood.binarize == "dynamic"
        self.group.check(config.batch_size, len(dataset.val))
        self.val_x = self.group.local(observed(torch.as_tensor(batches.whole(dataset.val.x), device=self.device), likelihood, config.seed + VAL_SEED_OFFSET))
        self.steps_per_epoch = math.ceil(len(self.train_x) / config.batch_size)
        self.train_y = self.val_y = None
        if self.model.conditional:
            self.train_y = _labels(dataset.train, self.device)
            self.val_y = self.group.local(_labels(dataset.val, self.device))
        self.model.prepare_training(len(self.train_x), self.steps_per_epoch)  # the dataset size, the epoch length
        self.epoch = 0
        self.step = 0
        self.best_val_loss = math.inf
        self.best_epoch = 0
        self.epochs_since_best = 0
        self.history: list[dict[str, Any]] = []
        self.callbacks += tracking.trackers(self)  # --log: TensorBoard, MLflow (rank 0 only)

    # -- checkpoints -----------------------------------------------------------------------------
    def hardware(self) -> dict[str, Any]:
        """Where this run trains, for run.json: the device, its name, whether it has bfloat16 dot
        products, and the precision it trains in (``--precision auto`` resolved)."""
        return acceleration.describe_hardware(self.device, self.precision)

    def _state(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "step": self.step, "best_val_loss": self.best_val_loss,
                "best_epoch": self.best_epoch, "epochs_since_best": self.epochs_since_best}

    def restore(self, checkpoint: Checkpoint, path: Path | str = "last.safetensors") -> None:
        state = training_state(checkpoint, Path(path))
        checkpoint.load_model(self.model)
        checkpoint.load_optimizer(self.optimizer)
        if self.aux_optimizer is not None:
            checkpoint.load_optimizer(self.aux_optimizer, auxiliary=True)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_val_loss = float(state["best_val_loss"])
        self.best_epoch, self.epochs_since_best = int(state["best_epoch"]), int(state["epochs_since_best"])
        rng = checkpoint.group("extra").get("rng_torch")
        if rng is not None:
            torch.set_rng_state(rng.to("cpu", torch.uint8))

    def _commit(self, record: dict[str, Any], improved: bool) -> None:
        """Write the finished epoch: last (with ``record``), best if ``improved``, then the metrics line."""
        if self.run_dir is None:
            return
        commit_epoch(self.run_dir, self.model, self._state(), record, improved=improved, optimizer=self.optimizer,
                     auxiliary_optimizer=self.aux_optimizer, extra_tensors={"rng_torch": torch.get_rng_state()})

    def _elapsed_before(self) -> float:
        """Wall time that earlier sessions of this run spent training (0 for a new run): a resumed run's
        ``elapsed_s`` goes on from its last metrics record, so its learning curve has no gap."""
        if self.run_dir is None or self.epoch == 0 or not (self.run_dir / "metrics.jsonl").exists():
            return 0.0
        for line in reversed((self.run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("epoch") == self.epoch:
                return float(record.get("elapsed_s", 0.0))
        return 0.0

    def _training_images_in_order(self, size: int = 1000):
        """The whole training split in batches of ``size``, in order, on the device (streamed data
        are read from disk again), for models that fit something to it after an epoch."""
        for start in range(0, len(self.train_x), size):
            if isinstance(self.train_x, batches.StreamedBatches):
                pixels = self.train_x.images.uint8(np.arange(start, min(start + size, len(self.train_x))))
                yield torch.as_tensor(pixels, device=self.device).to(torch.float32).div_(255)
            else:
                yield self.train_x[start:start + size]

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.config
        total_steps = cfg.epochs * self.steps_per_epoch
        for cb in self.callbacks:
            cb.on_train_start(start_epoch=self.epoch, epochs=cfg.epochs, steps_per_epoch=self.steps_per_epoch)
        stopped_early = False
        self.model.train()
        elapsed = self._elapsed_before()
        while self.epoch < cfg.epochs:
            started = time.perf_counter()
            record = self.train_epoch(total_steps)
            self.epoch += 1
            self.model.after_epoch(self._training_images_in_order())  # e.g. VQ-VAE refits its code prior
            val = self.group.mean(validation_loss(self.model, self.val_x, self.group.noise_seed(cfg.seed + VAL_SEED_OFFSET),
                                                  y=self.val_y), len(self.val_x))
            record.update({f"val_{k}": v for k, v in val.items()})
            if not math.isfinite(val["loss"]):
                raise TrainingDiverged(f"the validation loss is {val['loss']} after epoch {self.epoch}: "
                                       "try a lower --lr or --grad-clip 1.0; the last good checkpoint is kept")
            improved = val["loss"] < self.best_val_loss
            if improved:
                self.best_val_loss, self.best_epoch, self.epochs_since_best = val["loss"], self.epoch, 0
            else:
                self.epochs_since_best += 1
            record["best"] = improved
            elapsed += time.perf_counter() - started
            record["elapsed_s"] = elapsed  # wall time since training began: the x axis of a learning curve
            self._commit(record, improved)
            self.history.append(record)
            log.info("epoch %d/%d: %s", self.epoch, cfg.epochs, {k: round(v, 3) for k, v in record.items() if isinstance(v, float)})
            for cb in self.callbacks:
                cb.on_epoch_end(record)
            if cfg.patience is not None and self.epochs_since_best >= cfg.patience:
                stopped_early = True
                log.info("early stopping: no better validation loss for %d epochs", cfg.patience)
                break
        if self.run_dir is not None and self.best_epoch == 0:
            raise RunError("training ran no epoch, so no checkpoint was written")
        return TrainResult(self.run_dir, self.model, self.history, self.best_val_loss, self.best_epoch, stopped_early)

    def train_epoch(self, total_steps: int) -> dict[str, Any]:
        """One pass over the training data; returns its metrics record. ``fit`` advances the epoch.

        Everything around the step lives here, once: this epoch's seeded order and noise, this rank's
        share of each batch, the schedules (learning rate, KL weight), the checked loss and the callbacks."""
        cfg = self.config
        n = len(self.train_x)
        seed = epoch_seed(cfg.seed, self.epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).to(self.device)
        noise = torch.Generator(device=self.device).manual_seed(self.group.noise_seed(seed + 1))
        if isinstance(self.train_x, batches.StreamedBatches):
            self.train_x.start_epoch(order)  # workers start reading this epoch's batches, in this order
        meter = EpochMeter(self.device, self.model.divergence_advice())
        started = time.perf_counter()
        lr = beta = None
        for batch in range(self.steps_per_epoch):
            part = self.group.part(order[batch * cfg.batch_size:(batch + 1) * cfg.batch_size])  # this rank's share
            x = _rows(self.train_x, part.index)
            if self.dynamic_binarization:
                x = binarize(x, noise)
            lr, beta = learning_rate(cfg, self.step, total_steps), kl_weight(cfg, self.step, self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            out = self.training_step(x, part, beta=beta, generator=noise, meter=meter,
                                     last=batch == self.steps_per_epoch - 1)
            if meter.checked:
                for cb in self.callbacks:
                    cb.on_batch(epoch=self.epoch, batch=batch + 1, steps_per_epoch=self.steps_per_epoch,
                                values=out.values())
        seconds = time.perf_counter() - started
        record: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step, "lr": lr, "beta": beta}
        record.update(meter.means(self.group, n, variational=self.model.variational))
        record.update({"seconds": seconds, "images_per_s": n / seconds})
        return record

    def training_step(self, x: torch.Tensor, part: distributed.Part, *, beta: float | None,
                      generator: torch.Generator, meter: "EpochMeter", last: bool = False) -> ModelOutput:
        """One optimiser step on one batch: the model's loss, its gradient (clipped with --grad-clip),
        the check that the loss is finite (before the update, so a NaN never reaches the weights), the
        update, then the step of a model's auxiliary network. Returns the model's output."""
        cfg, model = self.config, self.model
        with acceleration.autocast(self.precision, self.device):  # bf16 only when asked for
            out = self.train_model(x, beta=beta, generator=generator, step=self.step,  # the model, or its DDP wrapper
                                   **_model_inputs(self.train_y, part.index))
        self.optimizer.zero_grad(set_to_none=True)
        (out.loss if part.weight is None else out.loss * part.weight).backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        meter.add(out, part.count)
        self.step += 1
        meter.check(self.step, self.epoch, force=last)
        self.optimizer.step()
        if self.aux_optimizer is not None:
            self.aux_optimizer.zero_grad(set_to_none=True)
            with acceleration.autocast(self.precision, self.device):  # its inputs come from the forward pass above
                auxiliary_loss = model.auxiliary_loss(out.auxiliary, generator=generator)
            auxiliary_loss.backward()
            self.aux_optimizer.step()
            self.aux_optimizer.zero_grad(set_to_none=True)  # no stale gradients in the model's clipping
        return out


class EpochMeter:
    """Sums of an epoch's loss terms (weighted by each batch's share), checked for NaN as they come.

    Checking needs a device sync; on the CPU that costs nothing, so every step is checked there and
    every ``ACCELERATOR_CHECK_EVERY`` steps on an accelerator (and the epoch's last step always)."""

    ACCELERATOR_CHECK_EVERY = 25

    def __init__(self, device: torch.device, advice: str):
        self.advice = advice        # the model's words on what to try if the loss diverges
        self.check_every = 1 if device.type == "cpu" else self.ACCELERATOR_CHECK_EVERY
        self.sums = torch.zeros(3, device=device, dtype=torch.float64)       # loss, recon, kl
        self.pending = torch.zeros(3, device=device, dtype=torch.float64)    # since the last check
        self.extras: dict[str, torch.Tensor] = {}
        self.checked = False

    def add(self, out: ModelOutput, count: int) -> None:
        kl = out.kl.detach() if out.kl is not None else out.loss.new_zeros(())
        self.pending += torch.stack([out.loss.detach(), out.recon.detach(), kl]).double() * count
        for name, value in out.extras.items():
            self.extras[name] = self.extras.get(name, 0.0) + value.detach().double() * count

    def check(self, step: int, epoch: int, *, force: bool = False) -> None:
        """Raise TrainingDiverged if a loss since the last check was NaN or infinite (when due)."""
        self.checked = force or step % self.check_every == 0
        if not self.checked:
            return
        if not torch.isfinite(self.pending).all():
            raise TrainingDiverged(
                f"the loss became NaN or infinite at step {step} (epoch {epoch + 1}): "
                f"{self.advice}; the last good checkpoint is kept")
        self.sums += self.pending
        self.pending.zero_()

    def means(self, group: distributed.Group, n: int, *, variational: bool) -> dict[str, float]:
        """The epoch's ``train_*`` metrics: sums over every process, divided by the training-set size."""
        loss, recon, kl = (group.sum(self.sums) / n).tolist()
        record = {"train_loss": loss, "train_recon": recon}
        if variational:
            record["train_kl"] = kl
        record.update({f"train_{name}": float(group.sum(value) / n) for name, value in self.extras.items()})
        return record


def _fit_model_to_data(model, dataset) -> None:
    """Give the model the data's scaling and feature names, refuse a likelihood the data cannot have,
    and start a Gaussian likelihood's sigma and the posterior variances where the matching linear-Gaussian
    model has them (before any checkpoint is restored, so a resumed run is unchanged)."""
    scaling = getattr(dataset, "scaling", None)
    model.scaling, model.feature_names = scaling, getattr(dataset, "feature_names", None)
    likelihood = model.likelihood
    if scaling is not None and likelihood.name not in ("gaussian", "mse"):
        raise ConfigError(f"{dataset.name} holds real values (standardised for training), which the {likelihood.name} "
                          "likelihood cannot model: use --likelihood gaussian (or mse for an autoencoder)")
    if hasattr(likelihood, "initialise") and isinstance(dataset.train.x, np.ndarray):
        log_var = likelihood.initialise(dataset.train.x, model.latent_dim)
        if log_var is not None:
            model.start_posterior_variance(log_var)


def check_distributable(config: TrainConfig) -> None:
    """Refuse a model whose state DistributedDataParallel would not keep in step across processes.

    Decided from the model's class alone, so the command line can refuse before loading any data or
    creating the run folder."""
    from vaekit.models import model_class
    from vaekit.models.base import AutoEncoder

    cls = model_class(config.model)
    if cls.auxiliary_optimizer is not AutoEncoder.auxiliary_optimizer:
        raise ConfigError(f"--model {config.model} trains an auxiliary network, which distributed training does not support: run it in one process")
    if cls.single_process_reason:
        raise ConfigError(f"--model {config.model} cannot train under torchrun: {cls.single_process_reason}; run it in one process")


def _labels(split, device: torch.device) -> torch.Tensor:
    if split.y is None:
        raise ConfigError("a conditional model needs class labels, and this dataset has none: use a labelled dataset "
                          "(an .npz with y, an image folder with sub-folders, or a named one)")
    return torch.as_tensor(split.y, device=device).long()


def train(config: TrainConfig, dataset, out: str | Path | None, *, overwrite: bool = False, callbacks=()) -> TrainResult:
    """Train a new run. ``out=None`` trains in memory without writing a run folder.

    The folder is locked while training writes it (a second writer gets a :class:`RunError` naming
    this process); it is created only once the model and data are known to train, so a refused
    setting leaves nothing behind. Data given as a path are recorded by absolute path and fingerprint."""
    config = config.resolved()
    group = distributed.join(resolve_device(config.device))  # under torchrun: every rank, then only rank 0 writes
    lock = None
    try:
        run_dir = None
        if out is not None and group.is_main:
            run_dir = Path(out)
            check_run_dir(run_dir, overwrite=overwrite)
        trainer = Trainer(config, dataset, run_dir, callbacks)
        if run_dir is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = lock_run(run_dir)
            prepare_run_dir(run_dir, overwrite=overwrite)   # checked again, now that no other writer can interfere
            location = data_location(config.dataset)
            if location is not None:
                config.dataset = location["path"]  # found again from any working directory
            if config.data_dir is not None:
                config.data_dir = str(Path(config.data_dir).expanduser().resolve())
            write_run_info(run_dir, config, describe_data(dataset, location), trainer.model, _launch(trainer.group, config),
                           hardware=trainer.hardware())
        return _finish(trainer)
    finally:
        if lock is not None:
            lock.release()
        distributed.leave()


def resume(run_dir: str | Path, dataset_loader, *, epochs: int | None = None, callbacks=()) -> TrainResult:
    """Continue a run from its last checkpoint. ``dataset_loader(config)`` returns the dataset (and may
    set ``config.dataset`` to where it found the data, which run.json then records).

    Before anything else the folder is locked and a commit that a kill left half done is finished
    (:func:`vaekit.training.commit.recover`). A run killed before its first checkpoint starts again
    from epoch 1."""
    lock = open_for_writing(run_dir) if distributed.launch().is_main else None   # only rank 0 writes
    try:
        return _resume(run_dir, dataset_loader, epochs=epochs, callbacks=callbacks)
    finally:
        if lock is not None:
            lock.release()
        distributed.leave()


def _resume(run_dir: str | Path, dataset_loader, *, epochs: int | None, callbacks) -> TrainResult:
    run = open_run(run_dir)
    config = run.config
    if epochs is not None:
        config.epochs = epochs
        config.validate()
    checkpoint = None
    done = 0
    last = run.checkpoint_path("last")
    if last.exists() or run.checkpoint_path("best").exists():
        checkpoint = load_checkpoint(last)
        done = training_state(checkpoint, last)["epoch"]
    if done >= config.epochs:
        raise RunError(f"{run.path} has already trained {done} epochs (asked for {config.epochs}): "
                       f"pass --epochs N with N > {done} to train longer")
    recorded = config.dataset
    dataset = dataset_loader(config)
    if tuple(dataset.sample_shape) != run.sample_shape:
        raise RunError(f"the dataset's shape {tuple(dataset.sample_shape)} differs from the run's {run.sample_shape}")
    group = distributed.join(resolve_device(config.device))  # every rank reads the checkpoint; rank 0 writes
    trainer = Trainer(config, dataset, run.path if group.is_main else None, callbacks)
    if checkpoint is not None:
        trainer.restore(checkpoint, last)
    if group.is_main:
        data = dict(run.info["data"])
        if config.dataset != recorded:   # the data moved and were found (or given) elsewhere
            data["path"] = config.dataset
        if checkpoint is None:
            _start_again(run.path)
        write_run_info(run.path, config, data, trainer.model, _launch(group, config), created=run.info.get("created"),
                       hardware=trainer.hardware())
    return _finish(trainer)


def _start_again(path: Path) -> None:
    """A run killed before its first checkpoint: no metrics line can belong to it."""
    (path / "metrics.jsonl").unlink(missing_ok=True)


def _finish(trainer: Trainer) -> TrainResult:
    """Train to the end, then wait for every process before the group is torn down: a rank that tore
    down Gloo while rank 0 was still writing its last checkpoint was sometimes aborted at exit."""
    try:
        result = trainer.fit()
    except BaseException as error:
        _end_callbacks(trainer.callbacks, error=error)
        raise
    if trainer.run_dir is not None:
        write_card(trainer.run_dir)  # the model card now holds the whole training budget
    _end_callbacks(trainer.callbacks, result=result)
    trainer.group.barrier()
    return result


def _end_callbacks(callbacks, **outcome) -> None:
    for cb in callbacks:
        end = getattr(cb, "on_train_end", None)      # optional (the CLI's progress bar has none)
        if end is not None:
            end(**outcome)


def _launch(group: distributed.Group, config: TrainConfig) -> dict[str, Any] | None:
    """What run.json records of a torchrun launch; None for one process."""
    return group.describe(config.batch_size, config.lr) if group.distributed else None
