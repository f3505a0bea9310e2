"""Experiment tracking (--log tensorboard,mlflow), read back with the libraries' own readers:
TensorBoard's EventAccumulator and MLflow's client."""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import StopAfter, quick_config
from vaekit.errors import ConfigError
from vaekit.training import tracking
from vaekit.training.distributed import Group, Launch
from vaekit.training.trainer import Callback, resume, train

pytest.importorskip("tensorboard", reason="the tracking extra: pip install 'vaekit[tracking]'")
pytest.importorskip("mlflow", reason="the tracking extra: pip install 'vaekit[tracking]'")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2


@pytest.fixture(autouse=True)
def mlflow_file_store_allowed(monkeypatch):
    """MLflow 3 opens a file store only with this set (vaekit sets it for itself; readers need it too)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")


def _events(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def _scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _mlflow_run(run: Path):
    from mlflow.tracking import MlflowClient

    state = json.loads((run / "tracking.json").read_text())["mlflow"]
    client = MlflowClient(tracking_uri=state["uri"])
    return client, client.get_run(state["run_id"])


class StopDuring(Callback):
    """Interrupts training in the middle of an epoch (after ``batch`` steps of epoch ``epoch``, 1-based)."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_batch(self, *, epoch, batch, steps_per_epoch, values):
        if epoch + 1 == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_tensorboard_records_every_scalar_images_and_hparams(tmp_path, digits_dataset, monkeypatch):
    monkeypatch.setattr(tracking, "IMAGES_EVERY", 1)        # image grids after every epoch, not every 5th
    run = tmp_path / "run"
    logged = train(quick_config(log="tensorboard"), digits_dataset, run)
    history = _history(run)
    events = _events(run / "tensorboard")

    # Per epoch: each number of metrics.jsonl under its own name, at the step the epoch ended on.
    for key in ("train_loss", "train_recon", "train_kl", "val_loss", "val_recon", "val_kl", "lr", "beta",
                "seconds", "images_per_s", "elapsed_s", "epoch"):
        assert _scalars(events, key) == [(r["step"], pytest.approx(r[key], rel=1e-6)) for r in history], key
    # Per step: the loss terms of every step; their batch-weighted mean over an epoch is the epoch's train_loss.
    steps = _scalars(events, "step/loss")
    assert [s for s, _ in steps] == list(range(1, history[-1]["step"] + 1))
    per_epoch = history[0]["step"]
    sizes = [min(64, len(digits_dataset.train) - 64 * i) for i in range(per_epoch)]
    first_epoch = sum(v * n for (_, v), n in zip(steps[:per_epoch], sizes)) / sum(sizes)
    assert first_epoch == pytest.approx(history[0]["train_loss"], rel=1e-5)
    assert {"step/recon", "step/kl"} <= set(events.Tags()["scalars"])
    assert [v for _, v in _scalars(events, "step/lr")] == pytest.approx([3e-3] * len(steps))

    # Image grids after each epoch: 8 validation images over their reconstructions, 16 samples, 8x8
    # tiles one pixel apart.
    from PIL import Image

    for tag, rows in (("reconstruction", 2), ("samples", 2)):
        images = events.Images(tag)
        assert [image.step for image in images] == [r["step"] for r in history]
        pixels = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)))
        assert pixels.shape[:2] == (rows * 9 - 1, 8 * 9 - 1)
    original = np.asarray(Image.open(io.BytesIO(events.Images("reconstruction")[0].encoded_image_string)), dtype=float)
    original = original if original.ndim == 2 else original[..., 0]     # grey, perhaps stored as RGB
    first = np.asarray(digits_dataset.val.x[0])[0] * 255
    assert np.abs(original[:8, :8] - first).max() <= 1.0          # the top row holds the validation images

    # HPARAMS: the config with the final metrics, in the sub-run TensorBoard's hparams tab reads.
    summary = _events(run / "tensorboard" / "hparams")
    content = summary.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["model"].string_value == "vae" and hparams["latent_dim"].number_value == 3
    assert hparams["hidden"].string_value == "32" and hparams["log"].string_value == "tensorboard"
    assert _scalars(summary, "val_loss") == [(history[-1]["step"], pytest.approx(history[-1]["val_loss"], rel=1e-6))]
    best = min(history, key=lambda r: r["val_loss"])
    assert _scalars(summary, "best_val_loss")[0][1] == pytest.approx(best["val_loss"], rel=1e-6)

    # Tracking observes: the same training without it gives the same numbers (images were drawn
    # after epoch 1, so epoch 2 would show any disturbance of the model or the random state).
    plain = train(quick_config(), digits_dataset, tmp_path / "plain")
    assert [r["val_loss"] for r in plain.history] == [r["val_loss"] for r in logged.history]
    assert not (tmp_path / "plain" / "tensorboard").exists() and not (tmp_path / "plain" / "tracking.json").exists()


@pytest.mark.slow
def test_resumed_tensorboard_curves_continue_without_duplicate_steps(tmp_path, digits_dataset):
    run = tmp_path / "run"
    config = quick_config(log="tensorboard", epochs=3)
    # Interrupted after epoch 1's checkpoint but before the tracker saw the epoch...
    with pytest.raises(KeyboardInterrupt):
        train(config, digits_dataset, run, callbacks=[StopAfter(1)])
    assert json.loads((run / "tracking.json").read_text())["tensorboard"]["epochs_logged"] == 0
    # ...then killed in the middle of epoch 2, after logging steps that the next session does again.
    with pytest.raises(KeyboardInterrupt):
        resume(run, lambda cfg: digits_dataset, callbacks=[StopDuring(2, 5)])
    middle = _events(run / "tensorboard")
    assert max(s for s, _ in _scalars(middle, "step/loss")) > _history(run)[-1]["step"]   # logged past the checkpoint
    resume(run, lambda cfg: digits_dataset)
    history = _history(run)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    events = _events(run / "tensorboard")
    steps = [s for s, _ in _scalars(events, "step/loss")]
    assert steps == list(range(1, history[-1]["step"] + 1))              # each step once, in order
    assert _scalars(events, "val_loss") == [(r["step"], pytest.approx(r["val_loss"], rel=1e-6)) for r in history]
    assert json.loads((run / "tracking.json").read_text())["tensorboard"]["epochs_logged"] == 3


def test_mlflow_records_params_metrics_images_resume_and_evaluation(tmp_path, digits_dataset):
    from vaekit.evaluation.evaluate import evaluate

    import vaekit

    run = tmp_path / "run"
    vaekit.train("digits", out=run, log="mlflow", hidden=[32], latent_dim=3, epochs=2, batch_size=64, lr=3e-3,
                 device="cpu")                          # from Python: log is a training option like any other
    client, logged = _mlflow_run(run)
    assert Path(json.loads((run / "tracking.json").read_text())["mlflow"]["uri"].removeprefix("file://")) == (run / "mlruns").resolve()
    assert logged.info.status == "FINISHED" and logged.info.run_name == "run"
    assert client.get_experiment(logged.info.experiment_id).name == "vaekit"
    params = logged.data.params
    assert params["model"] == "vae" and params["latent_dim"] == "3" and params["epochs"] == "2"
    history = _history(run)
    val = client.get_metric_history(logged.info.run_id, "val_loss")
    assert sorted((m.step, m.value) for m in val) == [(r["step"], pytest.approx(r["val_loss"])) for r in history]
    steps = sorted(m.step for m in client.get_metric_history(logged.info.run_id, "step/loss"))
    assert steps == list(range(1, history[-1]["step"] + 1))
    images = [a.path for a in client.list_artifacts(logged.info.run_id, "images")]
    assert any(p.startswith("images/reconstruction+step+") for p in images)
    assert any(p.startswith("images/samples+step+") for p in images)

    # Resumed with more epochs: the same MLflow run goes on; params never change, so the new
    # epochs value is a tag.
    resume(run, lambda cfg: digits_dataset, epochs=3)
    client, logged = _mlflow_run(run)
    history = _history(run)
    val = client.get_metric_history(logged.info.run_id, "val_loss")
    assert sorted(m.step for m in val) == [r["step"] for r in history]
    assert sorted(m.step for m in client.get_metric_history(logged.info.run_id, "step/loss")) == \
        list(range(1, history[-1]["step"] + 1))
    assert logged.data.params["epochs"] == "2" and logged.data.tags["resumed.epochs"] == "3"
    assert len(client.search_runs([logged.info.experiment_id])) == 1

    # `vaekit evaluate` adds eval.json's numbers.
    values = evaluate(run, iw_samples=3, regularity=False)
    client, logged = _mlflow_run(run)
    assert logged.data.metrics["eval/nll"] == pytest.approx(values["nll"])
    assert logged.data.metrics["eval/mse"] == pytest.approx(values["mse"])
    assert "eval.json" in [a.path for a in client.list_artifacts(logged.info.run_id)]


@pytest.mark.slow
def test_the_command_line_logs_to_both_and_evaluate_reaches_tensorboard(tmp_path, capsys):
    from vaekit.cli.app import main

    run = tmp_path / "run"
    small = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "3", "--epochs", "1", "--batch-size", "64",
             "--device", "cpu"]
    assert main(["train", *small, "--log", "mlflow,tensorboard", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    _, logged = _mlflow_run(run)
    assert f"tensorboard: {run / 'tensorboard'}  (view: tensorboard --logdir {run / 'tensorboard'})" in out
    assert f"mlflow: run {logged.info.run_id} in {(run / 'mlruns').resolve().as_uri()}" in out
    assert json.loads((run / "config.json").read_text())["log"] == "mlflow,tensorboard"
    assert main(["evaluate", str(run), "--iw-samples", "3", "--no-regularity", "--device", "cpu"]) == 0
    values = json.loads((run / "eval.json").read_text())
    summary = _events(run / "tensorboard" / "hparams")
    assert _scalars(summary, "eval/nll")[0][1] == pytest.approx(values["nll"], rel=1e-6)
    _, logged = _mlflow_run(run)
    assert logged.data.metrics["eval/nll"] == pytest.approx(values["nll"])
    # A run folder elsewhere: --mlflow-uri names the store (a plain folder is made a file: URI).
    store = tmp_path / "store"
    assert main(["train", *small, "--log", "mlflow", "--mlflow-uri", str(store), "--out", str(tmp_path / "b")]) == 0
    assert (store / "meta.yaml").exists() or any(store.iterdir())
    assert not (tmp_path / "b" / "mlruns").exists()


def test_missing_library_or_bad_option_is_one_line(tmp_path, capsys, monkeypatch):
    from vaekit.cli.app import main

    small = ["--dataset", "digits", "--hidden", "32", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "r")]
    monkeypatch.setitem(sys.modules, "mlflow", None)      # as if mlflow were not installed
    assert main(["train", *small, "--log", "tensorboard,mlflow"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("vaekit: error: --log tensorboard,mlflow needs MLflow, which is not installed: "
                   "pip install 'vaekit[tracking]'")
    assert not (tmp_path / "r").exists()                   # refused before anything was written
    assert main(["train", *small, "--log", "wandb"]) == 2
    assert "unknown --log 'wandb': choose one of none, tensorboard, mlflow" in capsys.readouterr().err
    assert main(["train", *small, "--mlflow-uri", str(tmp_path)]) == 2
    assert "add --log mlflow" in capsys.readouterr().err


def test_only_the_process_writing_the_run_folder_tracks(digits_dataset):
    config = quick_config(log="tensorboard")
    second_rank = SimpleNamespace(config=config, run_dir=None, group=Group(Launch(1, 2, 1), torch.device("cpu")))
    assert tracking.trackers(second_rank) == []
    one_process = SimpleNamespace(config=config, run_dir=None, group=Group(Launch(0, 1, 0), torch.device("cpu")))
    with pytest.raises(ConfigError, match="records into the run folder"):
        tracking.trackers(one_process)
    assert tracking.trackers(SimpleNamespace(config=quick_config(), run_dir=None, group=one_process.group)) == []


def test_log_option_is_normalised_and_accepts_a_list_in_files():
    from vaekit.training.config import TrainConfig

    assert quick_config(log="MLflow, tensorboard,mlflow").log == "mlflow,tensorboard"
    assert quick_config(log="none").log == "none" and quick_config().log == "none"
    assert TrainConfig.from_dict({"log": ["tensorboard", "mlflow"]}).resolved().log == "tensorboard,mlflow"


def test_tile_puts_grey_gaps_between_images():
    images = np.stack([np.full((1, 2, 3), v, dtype=np.float32) for v in (0.0, 1.0, 0.25)])
    grid = tracking.tile(images, columns=2)
    assert grid.shape == (1, 2 * 3 - 1, 2 * 4 - 1)
    assert (grid[0, :2, :3] == 0).all() and (grid[0, :2, 4:] == 1).all() and (grid[0, 3:, :3] == 0.25).all()
    assert (grid[0, 2, :] == 0.5).all() and (grid[0, :, 3] == 0.5).all() and (grid[0, 3:, 4:] == 0.5).all()


@pytest.mark.slow
def test_under_torchrun_only_rank_zero_records(tmp_path):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    # "--" ends torchrun's own options: without it, torchrun takes --log for an abbreviation of its --log-dir.
    script = Path(sys.executable).with_name("vaekit")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "--",
               *([str(script)] if script.exists() else ["-m", "vaekit"]), "train", "--dataset", "digits", "--model", "ae", "--hidden", "32", "--latent-dim", "3", "--epochs", "1",
               "--batch-size", "64", "--device", "cpu", "--log", "tensorboard,mlflow", "--out", "two"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "two"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    events = _events(run / "tensorboard")
    history = _history(run)
    assert [s for s, _ in _scalars(events, "step/loss")] == list(range(1, history[-1]["step"] + 1))
    client, logged = _mlflow_run(run)
    assert len(client.search_runs([logged.info.experiment_id])) == 1
    assert sorted(m.step for m in client.get_metric_history(logged.info.run_id, "step/loss")) == \
        list(range(1, history[-1]["step"] + 1))


def test_no_image_grids_for_flat_vectors():
    from conftest import unlabelled_dataset
    from vaekit.models import build_model

    data = unlabelled_dataset(*(np.random.default_rng(0).random((n, 12), dtype=np.float32) for n in (20, 8, 8)))
    model = build_model(quick_config(likelihood="gaussian"), data.sample_shape)
    assert tracking.image_grids(model, data) == {}


@pytest.mark.slow
def test_resume_can_start_tracking_a_run_with_its_whole_history(tmp_path, capsys):
    from vaekit.cli.app import main

    run = tmp_path / "run"
    small = ["--dataset", "digits", "--hidden", "32", "--latent-dim", "3", "--batch-size", "64", "--device", "cpu"]
    assert main(["train", *small, "--epochs", "1", "--out", str(run)]) == 0
    assert not (run / "tensorboard").exists()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--log", "tensorboard"]) == 0
    history = _history(run)
    events = _events(run / "tensorboard")
    assert _scalars(events, "val_loss") == [(r["step"], pytest.approx(r["val_loss"], rel=1e-6)) for r in history]
    assert [s for s, _ in _scalars(events, "step/loss")] == list(range(history[0]["step"] + 1, history[1]["step"] + 1))
    assert json.loads((run / "config.json").read_text())["log"] == "tensorboard"
