"""Distributed training under torchrun: two CPU processes (Gloo) train what one process trains.

How close the curves must be, and why:

* The plain autoencoder draws no noise, so two ranks compute the same updates as one process: the
  same global batches, gradients averaged by DDP with each rank's loss weighted by its share of the
  batch. Only the order of floating-point sums differs (each rank sums its half, then Gloo adds the
  halves), so the per-epoch losses agree to a relative 1e-4 (measured: about 1e-7).
* A VAE draws its binarisation and reparameterisation noise per rank (distinct streams, by design),
  so its two-process curve is another Monte Carlo draw of the same training and cannot match to float
  precision. The end-to-end test therefore trains the noise-free AE, where the match must be tight,
  and the per-rank seeds are checked on their own.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import quick_config
from vaekit.training import distributed
from vaekit.training.distributed import Group, Launch, launch, per_rank_batch
from vaekit.errors import ConfigError
from vaekit.training.trainer import Trainer, train

SMALL = ["--dataset", "digits", "--arch", "mlp", "--hidden", "32", "--latent-dim", "3", "--batch-size", "64",
         "--lr", "3e-3", "--seed", "0", "--device", "cpu"]


# -- the launcher's environment ------------------------------------------------------------------
def test_no_torchrun_variables_means_one_process():
    assert launch({}) == Launch(0, 1, 0)
    assert not launch({}).distributed and launch({}).is_main
    single = launch({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"})  # torchrun --nproc_per_node 1
    assert not single.distributed


def test_torchrun_variables_are_read():
    env = {"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert launch(env) == Launch(5, 8, 1)
    assert launch(env).distributed and not launch(env).is_main


@pytest.mark.parametrize("env, needle", [
    ({"WORLD_SIZE": "two", "RANK": "0"}, "not integers"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "inconsistent"),
    ({"WORLD_SIZE": "2", "RANK": "1"}, "MASTER_ADDR and MASTER_PORT are not set"),
])
def test_bad_launch_environment_is_a_clear_error(env, needle):
    with pytest.raises(ConfigError, match=needle):
        launch(env)


# -- sharding arithmetic, checked rank by rank without a process group -----------------------------
def _groups(world):
    return [Group(Launch(rank, world, rank), torch.device("cpu")) for rank in range(world)]


@pytest.mark.parametrize("world, batch", [(2, 64), (3, 64), (4, 5), (4, 3), (2, 1)])
def test_ranks_split_a_global_batch_and_their_weighted_losses_average_to_its_mean(world, batch):
    index = torch.randperm(1000, generator=torch.Generator().manual_seed(batch))[:batch]
    per_sample = torch.rand(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    parts = [group.part(index) for group in _groups(world)]
    real = torch.cat([p.index[:p.count] for p in parts])
    assert torch.equal(real, index)  # every sample once, in order, across the ranks
    assert sorted(p.count for p in parts)[-1] - sorted(p.count for p in parts)[0] <= 1
    # DDP averages the ranks' gradients; each rank's batch-mean loss times its weight must make that
    # average the mean over the whole global batch (the one-process loss).
    weighted = [per_sample[p.index].mean() * p.weight for p in parts]
    assert float(sum(weighted) / world) == pytest.approx(float(per_sample[index].mean()), rel=1e-12)
    for p in parts:
        if p.count == 0:  # fewer samples than ranks: a real sample that weighs nothing
            assert len(p.index) == 1 and p.weight == 0.0


def test_one_process_keeps_the_whole_batch_and_its_seeds():
    group = Group(Launch(), torch.device("cpu"))
    index = torch.arange(10)
    part = group.part(index)
    assert part.index is index and part.count == 10 and part.weight is None
    assert group.noise_seed(1234) == 1234
    seeds = {g.noise_seed(1234) for g in _groups(4)}
    assert len(seeds) == 4 and 1234 in seeds  # distinct per rank, rank 0 the single-process seed


def test_validation_shares_cover_the_set():
    x = torch.arange(11)
    assert torch.equal(torch.cat([g.local(x) for g in _groups(3)]), x)
    assert per_rank_batch(128, 4) == "32" and per_rank_batch(100, 3) == "33-34"


def test_single_process_training_is_untouched_without_torchrun(tmp_path, digits_dataset, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    trainer = Trainer(quick_config(epochs=1), digits_dataset, None)
    assert not trainer.group.distributed and trainer.train_model is trainer.model
    assert len(trainer.val_x) == len(digits_dataset.val)
    first = train(quick_config(epochs=2), digits_dataset, tmp_path / "a").history
    second = train(quick_config(epochs=2), digits_dataset, tmp_path / "b").history
    assert not torch.distributed.is_initialized()
    assert [r["train_loss"] for r in first] == [r["train_loss"] for r in second]
    assert "distributed" not in json.loads((tmp_path / "a" / "run.json").read_text())
    distributed.leave()  # a no-op without a process group


# -- two processes under torchrun -----------------------------------------------------------------
def _vaekit_command() -> list[str]:
    script = Path(sys.executable).with_name("vaekit")  # what `$(which vaekit)` names in the README
    return [str(script)] if script.exists() else ["-m", "vaekit"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # --standalone: a single-node rendezvous on localhost with a free port chosen by torchrun itself,
    # so parallel test runs cannot collide on a fixed --master_port.
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
               *_vaekit_command(), "train", *args]
    done = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _curve(run: Path) -> list[tuple[float, float]]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(line["train_loss"], line["val_loss"]) for line in lines]


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_two_processes_match_one_and_resume(tmp_path, digits_dataset):
    before = _files(tmp_path)
    first = _torchrun(*SMALL, "--model", "ae", "--epochs", "2", "--out", "two", cwd=tmp_path)
    # Only rank 0 printed and wrote: one header, one line per epoch, one metrics line per epoch.
    assert first.stdout.count("training ae") == 1
    assert "distributed: 2 processes (torchrun), global batch 64 (32 per process), lr 0.003" in first.stdout
    assert first.stderr.count("epoch   1/2") == 1 and first.stderr.count("epoch   2/2") == 1
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 2
    assert _files(tmp_path) - before == {"two/run.json", "two/config.json", "two/metrics.jsonl", "two/README.md",
                                         "two/checkpoints/best.safetensors", "two/checkpoints/last.safetensors"}
    info = json.loads((tmp_path / "two" / "run.json").read_text())
    assert info["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch": 64, "per_rank_batch": "32",
                                   "lr": 0.003, "batch_size_means": "global"}

    resumed = _torchrun("--resume", "two", "--epochs", "3", cwd=tmp_path)
    assert resumed.stderr.count("resuming after epoch 2 of 3") == 1
    assert resumed.stderr.count("epoch   3/3") == 1
    metrics = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in metrics] == [1, 2, 3]

    # The same training in this one process (what `vaekit train` without torchrun runs).
    reference = train(quick_config(model="ae", epochs=3), digits_dataset, None).history
    for two, one in zip(metrics, reference, strict=True):
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
        assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4)


@pytest.mark.parametrize("model, needle", [("factor-vae", "auxiliary network"), ("vq-vae", "moving averages")])
def test_models_whose_state_ddp_would_not_keep_in_step_are_refused(digits_dataset, monkeypatch, model, needle):
    """FactorVAE's discriminator optimizer and VQ-VAE's EMA codebook are not synchronised by DDP."""
    two = Group(Launch(rank=0, world_size=2), torch.device("cpu"))
    monkeypatch.setattr(distributed, "join", lambda device: two)
    extra = {"code_dim": 1} if model == "vq-vae" else {}
    with pytest.raises(ConfigError, match=needle):
        Trainer(quick_config(model=model, **extra), digits_dataset, None)
    monkeypatch.undo()
    Trainer(quick_config(model=model, **extra), digits_dataset, None)  # one process: accepted
