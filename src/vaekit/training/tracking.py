"""Experiment tracking: ``--log tensorboard,mlflow`` mirrors a run into TensorBoard and/or MLflow.

The run folder stays the source of truth; trackers are training callbacks that copy what it records:

* every step, the loss terms the progress bar shows (``step/loss``, ``step/recon``, ``step/kl``) and
  the learning rate (``step/lr``);
* every epoch, each number of the epoch's metrics.jsonl line under its own name (``train_loss``,
  ``val_loss``, ``lr``, ``elapsed_s``...), at the global step the epoch ended on;
* every ``IMAGES_EVERY`` epochs and after the last, a grid of validation images over their
  reconstructions and a grid of prior samples (image data only; samples for generative models);
* at the end, the hyperparameters with the final metrics (TensorBoard's HPARAMS tab, MLflow params);
* after ``vaekit evaluate``, eval.json's numbers (:func:`log_evaluation`), as ``eval/<key>``.

TensorBoard writes event files to RUN/tensorboard/ (the hyperparameter summary in its own sub-run,
RUN/tensorboard/hparams/, rewritten whole each time). MLflow writes to the store ``--mlflow-uri``
names, by default a file store in RUN/mlruns (see :func:`_mlflow_client` for why a file store), in
experiment "vaekit", one MLflow run per vaekit run; RUN/tracking.json remembers which, and how many
epochs each tracker has recorded, so a resumed run continues the same curves: epochs the previous
session did not get to record are replayed from metrics.jsonl, and TensorBoard hides any step the
previous session logged after its last checkpoint (``purge_step``), so no step appears twice.

Only the process that writes the run folder tracks (rank 0 under torchrun). The libraries are the
optional extra ``vaekit[tracking]``, imported only when a tracker starts.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaekit.errors import ConfigError, VaekitError
from vaekit.files import atomic_write_text
from vaekit.training.config import TrainConfig, log_backends

log = logging.getLogger(__name__)

STATE_FILE = "tracking.json"
TENSORBOARD_DIR = "tensorboard"
HPARAMS_RUN = "hparams"            # RUN/tensorboard/hparams: the sub-run TensorBoard's HPARAMS tab reads
MLFLOW_DIR = "mlruns"
MLFLOW_EXPERIMENT = "vaekit"
IMAGES_EVERY = 5                   # epochs between image grids (the last epoch always gets one)
RECONSTRUCTIONS = 8                # validation images shown over their reconstructions
SAMPLES = 16                       # prior samples, in rows of 8
IMAGE_SEED = 0                     # the same codes every time, so the grids show the model change
INSTALL = "pip install 'vaekit[tracking]'"
MODULES = {"tensorboard": ("tensorboard", "TensorBoard"), "mlflow": ("mlflow", "MLflow")}


# -- what is installed ---------------------------------------------------------------------------
def require(log_option: str) -> tuple[str, ...]:
    """The trackers ``log_option`` names, after checking that their libraries are installed (a
    ConfigError saying what to install if not). Imports nothing."""
    from importlib.util import find_spec

    backends = log_backends(log_option)
    missing = [MODULES[name][1] for name in backends if find_spec(MODULES[name][0]) is None]
    if missing:
        raise ConfigError(f"--log {','.join(backends)} needs {' and '.join(missing)}, which "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: {INSTALL}")
    return backends


def mlflow_uri(config: TrainConfig, run_dir: Path) -> str:
    """Where MLflow writes: ``config.mlflow_uri``, or a file store in RUN/mlruns. A plain path
    becomes an absolute file: URI, so a resumed run finds the store from any working directory."""
    uri = config.mlflow_uri or str(Path(run_dir) / MLFLOW_DIR)
    if "://" in uri or uri.startswith(("databricks", "sqlite:", "file:")):
        return uri
    return Path(uri).resolve().as_uri()


# -- the training callbacks ----------------------------------------------------------------------
def trackers(trainer) -> list[Tracker]:
    """The tracking callbacks for ``trainer``'s config (none without ``--log``). Only the process
    that writes the run folder gets them; tracking needs a run folder."""
    backends = log_backends(trainer.config.log)
    if not backends:
        return []
    if trainer.run_dir is None:
        if trainer.group.distributed and not trainer.group.is_main:
            return []          # rank 0 tracks for every process
        raise ConfigError(f"--log {','.join(backends)} records into the run folder: train into one (out=...)")
    require(trainer.config.log)
    kinds = {"tensorboard": TensorBoardTracker, "mlflow": MLflowTracker}
    return [kinds[name](trainer) for name in backends]


class Tracker:
    """One tracker: the trainer's callbacks (``on_train_start``, ``on_batch``, ``on_epoch_end``,
    ``on_train_end``) turned into the calls a subclass makes to its library."""

    name = ""

    def __init__(self, trainer):
        self.trainer = trainer
        self.run_dir = Path(trainer.run_dir)
        self.images_logged_at = 0       # the epoch of the last image grids

    # Subclasses: open the store (``resumed_at`` the global step training continues from, None for a
    # new run), record scalars and images, put what is recorded on disk (``flush``), and close.
    def open(self, state: dict[str, Any], resumed_at: int | None) -> dict[str, Any]:
        raise NotImplementedError

    def scalars(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def images(self, grids: dict[str, np.ndarray], step: int) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def finish(self, error: BaseException | None) -> None:
        raise NotImplementedError

    # The callbacks.
    def on_train_start(self, *, start_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        state = read_state(self.run_dir)
        if start_epoch == 0:                   # a new run: nothing carries over
            state = {name: mine for name, mine in state.items()
                     if name != self.name and name in log_backends(self.trainer.config.log)}
            write_state(self.run_dir, state)
        mine = self.open(state.get(self.name, {}), self.trainer.step if start_epoch else None)
        # Epochs the last session finished but did not record (killed between its checkpoint and its
        # trackers, or trained without this tracker): replay them from metrics.jsonl.
        done = mine.get("epochs_logged", 0)
        for record in _history(self.run_dir):
            if done < record["epoch"] <= start_epoch:
                self.scalars(epoch_scalars(record), int(record["step"]))
        self.flush()
        mine["epochs_logged"] = start_epoch
        self._save_state(mine)

    def on_batch(self, *, epoch: int, batch: int, steps_per_epoch: int, values: dict[str, float]) -> None:
        scalars = {f"step/{name}": value for name, value in values.items()}
        scalars["step/lr"] = float(self.trainer.optimizer.param_groups[0]["lr"])   # the rate this step used
        self.scalars(scalars, self.trainer.step)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        step = int(record["step"])
        self.scalars(epoch_scalars(record), step)
        if record["epoch"] % IMAGES_EVERY == 0:
            self._log_images(record["epoch"], step)
        self.flush()                           # recorded on disk before tracking.json says so
        mine = read_state(self.run_dir).get(self.name, {})
        mine["epochs_logged"] = record["epoch"]
        self._save_state(mine)

    def on_train_end(self, *, result=None, error: BaseException | None = None) -> None:
        if error is not None:
            try:
                self.finish(error)
            except Exception as exc:  # never hide the error that stopped training
                log.warning("could not close the %s log: %s", self.name, exc)
            return
        if self.trainer.epoch != self.images_logged_at:
            self._log_images(self.trainer.epoch, self.trainer.step)
        self.finish(None)

    # Helpers.
    def _log_images(self, epoch: int, step: int) -> None:
        grids = image_grids(self.trainer.model, self.trainer.dataset)
        if grids:
            self.images(grids, step)
        self.images_logged_at = epoch

    def _save_state(self, mine: dict[str, Any]) -> None:
        state = read_state(self.run_dir)
        state[self.name] = mine
        write_state(self.run_dir, state)


def destinations(run_dir: str | Path) -> dict[str, str]:
    """Where a run's trackers wrote, for people: tracker name -> folder, or MLflow run and store."""
    run_dir = Path(run_dir)
    state = read_state(run_dir)
    where = {}
    if "tensorboard" in state:
        where["tensorboard"] = str(run_dir / TENSORBOARD_DIR)
    if "run_id" in state.get("mlflow", {}):
        where["mlflow"] = f"run {state['mlflow']['run_id']} in {state['mlflow']['uri']}"
    return where


def epoch_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics.jsonl line by name (``best`` as 0 or 1), without ``step``, the x axis."""
    values = {}
    for key, value in record.items():
        if key == "step" or value is None or not isinstance(value, (int, float)):
            continue
        values[key] = float(value)
    return values


def read_state(run_dir: Path) -> dict[str, Any]:
    file = Path(run_dir) / STATE_FILE
    if not file.exists():
        return {}
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except ValueError:
        log.warning("%s is not valid JSON; tracking starts afresh", file)
        return {}
    return state if isinstance(state, dict) else {}


def write_state(run_dir: Path, state: dict[str, Any]) -> None:
    atomic_write_text(Path(run_dir) / STATE_FILE, json.dumps(state, indent=2) + "\n")


def _history(run_dir: Path) -> list[dict[str, Any]]:
    file = Path(run_dir) / "metrics.jsonl"
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- TensorBoard ---------------------------------------------------------------------------------
class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def open(self, state, resumed_at):
        from torch.utils.tensorboard import SummaryWriter

        folder = self.run_dir / TENSORBOARD_DIR
        if resumed_at is None:
            shutil.rmtree(folder, ignore_errors=True)     # a new run starts new curves
            state = {}
        else:
            _after_newest_event_file(folder)
        # purge_step: TensorBoard hides what an earlier session logged after its last checkpoint
        # (steps > resumed_at), which this session logs again.
        self.writer = SummaryWriter(str(folder), purge_step=None if resumed_at is None else resumed_at + 1)
        return state

    def scalars(self, values, step):
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def images(self, grids, step):
        for tag, grid in grids.items():
            self.writer.add_image(tag, grid, step, dataformats="CHW")

    def flush(self):
        self.writer.flush()

    def finish(self, error):
        self.writer.close()
        if error is None:
            write_hparams(self.run_dir)


def _after_newest_event_file(folder: Path) -> None:
    """Wait (at most a second) until a new event file's name sorts after the existing ones.

    TensorBoard reads a folder's event files in name order, and a name starts with the second it
    was made; a resumed session's file must come after the files whose steps it purges."""
    newest = max((int(f.name.split(".")[3]) for f in folder.glob("events.out.tfevents.*")
                  if f.name.split(".")[3].isdigit()), default=0)
    while int(time.time()) <= newest:
        time.sleep(0.05)


def hparams_values(config: TrainConfig) -> dict[str, Any]:
    """The config as hyperparameters: numbers, text and booleans (lists joined by commas, None as "none")."""
    values = {}
    for key, value in config.to_dict().items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        elif value is None:
            value = "none"
        values[key] = value
    return values


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The numbers beside the hyperparameters: the last epoch's (``val_loss``...), the best validation
    loss and its epoch, and eval.json's as ``eval/<key>`` once the run has been evaluated."""
    history = _history(run_dir)
    metrics: dict[str, float] = {}
    if history:
        last = history[-1]
        metrics.update({key: value for key, value in epoch_scalars(last).items()
                        if key.startswith(("train_", "val_")) or key in ("epoch", "elapsed_s")})
        best = min(history, key=lambda r: r.get("val_loss", math.inf))
        metrics["best_val_loss"], metrics["best_epoch"] = float(best["val_loss"]), float(best["epoch"])
    file = Path(run_dir) / "eval.json"
    if file.exists():
        metrics.update(evaluation_scalars(json.loads(file.read_text(encoding="utf-8"))))
    return metrics


def evaluation_scalars(values: dict[str, Any]) -> dict[str, float]:
    """eval.json's numbers as ``eval/<key>``: the top-level ones, and those one level down
    (``eval/disentanglement/mig``); lists and text are left out, booleans are 0 or 1."""
    scalars: dict[str, float] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
            scalars[name] = float(value)

    for key, value in values.items():
        if isinstance(value, dict):
            for inner, number in value.items():
                add(f"eval/{key}/{inner}", number)
        else:
            add(f"eval/{key}", value)
    return scalars


def write_hparams(run_dir: Path) -> None:
    """(Re)write RUN/tensorboard/hparams: the config as hyperparameters with :func:`final_metrics`."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    from vaekit.training.run import open_run

    run = open_run(run_dir)
    metrics = final_metrics(run_dir)
    steps = [int(r["step"]) for r in _history(run_dir)]
    step = steps[-1] if steps else 0
    folder = Path(run_dir) / TENSORBOARD_DIR / HPARAMS_RUN
    shutil.rmtree(folder, ignore_errors=True)
    experiment, start, end = hparams(hparams_values(run.config), metrics)
    with SummaryWriter(str(folder)) as writer:
        for summary in (experiment, start, end):
            writer.file_writer.add_summary(summary, step)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)


# -- MLflow --------------------------------------------------------------------------------------
BATCH_METRICS = 1000      # MLflow's limits per log_batch call
BATCH_PARAMS = 100


class MLflowTracker(Tracker):
    """One MLflow run per vaekit run. Per-step values are sent once an epoch is over (in batches),
    so a session killed mid-epoch leaves none of that epoch's steps behind to be logged twice."""

    name = "mlflow"

    def open(self, state, resumed_at):
        self.client, self.uri = _mlflow_client(mlflow_uri(self.trainer.config, self.run_dir))
        self.pending: list = []
        run_id = state.get("run_id") if resumed_at is not None and state.get("uri") == self.uri else None
        if run_id is not None and not _run_exists(self.client, run_id):
            run_id = None
        if run_id is None:
            experiment = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
            experiment_id = (experiment.experiment_id if experiment is not None
                             else self.client.create_experiment(MLFLOW_EXPERIMENT))
            run = self.client.create_run(experiment_id, run_name=self.run_dir.resolve().name,
                                         tags={"vaekit.run_dir": str(self.run_dir.resolve()),
                                               "vaekit.model": self.trainer.config.model,
                                               "vaekit.dataset": self.trainer.config.dataset})
            run_id = run.info.run_id
            state = {"uri": self.uri, "experiment_id": experiment_id, "run_id": run_id}
        else:
            self.client.update_run(run_id, status="RUNNING")
        self.run_id = run_id
        self._log_params()
        return state

    def _log_params(self) -> None:
        """The config as params. MLflow params never change, so a value changed on resume (--epochs)
        is recorded as the tag ``resumed.<name>``."""
        from mlflow.entities import Param, RunTag

        logged = self.client.get_run(self.run_id).data.params
        params, tags = [], []
        for key, value in hparams_values(self.trainer.config).items():
            text = str(value)
            if key not in logged:
                params.append(Param(key, text))
            elif logged[key] != text:
                tags.append(RunTag(f"resumed.{key}", text))
        for start in range(0, len(params), BATCH_PARAMS):
            self.client.log_batch(self.run_id, params=params[start:start + BATCH_PARAMS])
        if tags:
            self.client.log_batch(self.run_id, tags=tags)

    def scalars(self, values, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending.extend(Metric(key, float(value), now, step) for key, value in values.items())

    def flush(self):
        for start in range(0, len(self.pending), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=self.pending[start:start + BATCH_METRICS])
        self.pending = []

    def images(self, grids, step):
        for key, grid in grids.items():
            pixels = grid.transpose(1, 2, 0)                  # (H, W, C); grey as (H, W)
            self.client.log_image(self.run_id, np.ascontiguousarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels),
                                  key=key, step=step, synchronous=True)

    def finish(self, error):
        if error is None:
            self.flush()
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            final = final_metrics(self.run_dir)
            self.client.log_batch(self.run_id, metrics=[Metric(key, final[key], now, self.trainer.step)
                                                        for key in ("best_val_loss", "best_epoch") if key in final])
            self.client.set_terminated(self.run_id, "FINISHED")
        else:
            self.pending = []                   # steps past the last checkpoint: the next session redoes them
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            self.client.set_terminated(self.run_id, status)


def _mlflow_client(uri: str):
    """An MlflowClient on ``uri`` (and the URI), or a ConfigError saying why the store cannot be used.

    Two MLflow defaults are changed, unless the environment sets them: its usage telemetry (sent to
    mlflow.org from a background thread) is off, as vaekit reaches no network at run time; and its file
    store, which MLflow 3 refuses unless ``MLFLOW_ALLOW_FILE_STORE`` is true, is allowed: it is the
    only store mlflow-skinny has without a server (a sqlite: store needs SQLAlchemy and Alembic)."""
    import os

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)         # opens the store now, not mid-training
    except Exception as exc:  # MLflow raises many types for a store it cannot open
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot use the MLflow store {uri} ({first[:200]}): pass a folder, a file: URI "
                          "or an http(s): server as --mlflow-uri") from None
    return client, uri


def _run_exists(client, run_id: str) -> bool:
    try:
        return client.get_run(run_id).info.lifecycle_stage != "deleted"
    except Exception:  # MlflowException: no such run in this store
        return False


# -- images --------------------------------------------------------------------------------------
def tile(images: np.ndarray, columns: int, gap: int = 1, background: float = 0.5) -> np.ndarray:
    """(N, C, H, W) images in [0, 1] -> one (C, rows * (H + gap) - gap, columns * (W + gap) - gap)
    image, row by row, with ``gap`` pixels of grey between tiles so small images stay apart."""
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    grid = np.full((c, rows * (h + gap) - gap, columns * (w + gap) - gap), background, dtype=np.float32)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        grid[:, r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = image
    return grid


@torch.no_grad()
def image_grids(model, dataset) -> dict[str, np.ndarray]:
    """``reconstruction``: the first validation images over their reconstructions; ``samples``: decoded
    prior samples (generative models). Empty for data that are not images. Seeded, and the model's
    training mode and the global random state are left as they were."""
    if len(dataset.sample_shape) != 3:
        return {}
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = torch.as_tensor(np.asarray(dataset.val.x[:RECONSTRUCTIONS]), dtype=torch.float32, device=device)
        columns = len(x)
        grids = {"reconstruction": tile(np.concatenate([x.cpu().numpy(), _images(model.reconstruct(x))]), columns)}
        if model.generative:
            generator = torch.Generator(device=device).manual_seed(IMAGE_SEED)
            codes = model.sample_prior(SAMPLES, generator=generator)
            grids["samples"] = tile(_images(model.decode(codes)), RECONSTRUCTIONS)
        return grids
    finally:
        model.train(was_training)


def _images(x: torch.Tensor) -> np.ndarray:
    return x.float().clamp(0, 1).cpu().numpy()


# -- after evaluation ----------------------------------------------------------------------------
def log_evaluation(run_dir: str | Path, values: dict[str, Any]) -> None:
    """Send eval.json's numbers to the trackers the run was trained with (nothing without ``--log``).

    Called by ``vaekit evaluate`` after it wrote eval.json. A missing library or store is a warning,
    not an error: the evaluation is written and worth keeping."""
    from vaekit.training.run import open_run

    run_dir = Path(run_dir)
    config = open_run(run_dir).config
    backends = log_backends(config.log)
    if not backends:
        return
    try:
        require(config.log)
        if "tensorboard" in backends:
            write_hparams(run_dir)
        if "mlflow" in backends:
            _log_evaluation_to_mlflow(run_dir, config, values)
    except VaekitError as exc:
        log.warning("eval.json is written, but not logged: %s", exc)


def _log_evaluation_to_mlflow(run_dir: Path, config: TrainConfig, values: dict[str, Any]) -> None:
    from mlflow.entities import Metric

    state = read_state(run_dir).get("mlflow", {})
    if "run_id" not in state:
        raise ConfigError(f"{run_dir} has no MLflow run to add to ({STATE_FILE} names none)")
    client, _ = _mlflow_client(state.get("uri") or mlflow_uri(config, run_dir))
    if not _run_exists(client, state["run_id"]):
        raise ConfigError(f"the MLflow run {state['run_id']} of {run_dir} is not in {state.get('uri')}")
    history = _history(run_dir)
    step = int(history[-1]["step"]) if history else 0
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value in evaluation_scalars(values).items()]
    for start in range(0, len(metrics), BATCH_METRICS):
        client.log_batch(state["run_id"], metrics=metrics[start:start + BATCH_METRICS])
    client.log_dict(state["run_id"], values, "eval.json")
