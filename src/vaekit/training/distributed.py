"""Training on several processes with PyTorch's distributed engine (``torchrun``), one model per process.

    torchrun --nproc_per_node 4 $(which vaekit) train --dataset fashion-mnist ...

torchrun starts one copy of ``vaekit train`` per process and tells each who it is through environment
variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); without them vaekit
trains in one process exactly as before. The conventions, chosen so that N processes train the same
model one process would:

* ``--batch-size`` is the **global** batch: each optimiser step consumes ``batch_size`` samples in all.
  Every rank draws the same seeded permutation of the epoch, cuts the same global batches from it, and
  takes its own contiguous piece of each (``torch.tensor_split``: sizes differ by at most one).
* DistributedDataParallel averages gradients over ranks; each rank scales its batch-mean loss by
  ``world_size * n_rank / n_batch``, so the averaged gradient is that of the global batch mean even
  when the pieces are unequal (the last batch of an epoch). The learning rate therefore needs no
  scaling: same global batch, same lr, same updates up to floating-point reduction order.
* Noise (dynamic binarisation, the reparameterisation ``eps``) is drawn per rank from generators seeded
  by ``(seed, epoch, rank)``: distinct on every rank, identical on a rerun; rank 0 uses exactly the
  single-process seeds.
* Metrics are sums over samples reduced with ``all_reduce`` and divided by the global count; the
  validation set is split between the ranks the same way, so every rank sees the same validation
  loss and takes the same early-stopping decision.
* Only rank 0 writes the run folder and prints; every rank reads the checkpoint on ``--resume``.

Backends: NCCL on CUDA (each process uses ``cuda:LOCAL_RANK``), Gloo on the CPU.
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

import torch
import torch.distributed as dist

from vaekit.errors import ConfigError

log = logging.getLogger(__name__)

RANK_SEED_STRIDE = 104_729  # a prime: rank r's noise seeds are the single-process ones + r * stride
ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Launch:
    """Who this process is, as the launcher's environment says; no process group involved."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch(environ: Mapping[str, str] | None = None) -> Launch:
    """Read torchrun's variables; a single process (rank 0 of 1) when ``WORLD_SIZE`` is absent."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return Launch()
    try:
        world = int(env["WORLD_SIZE"])
        rank = int(env.get("RANK", "0"))
        local_rank = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError:
        shown = ", ".join(f"{k}={env[k]!r}" for k in ENV_VARS if k in env)
        raise ConfigError(f"the distributed environment variables are not integers ({shown}): "
                          "launch vaekit with torchrun") from None
    if world < 1 or not 0 <= rank < world or local_rank < 0:
        raise ConfigError(f"RANK={rank}, LOCAL_RANK={local_rank}, WORLD_SIZE={world} are inconsistent: launch vaekit with torchrun")
    if world > 1:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if k not in env]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world} but {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                              "not set: launch vaekit with torchrun, which sets them")
    return Launch(rank, world, local_rank)


@dataclass(frozen=True)
class Part:
    """This rank's piece of one global batch: the sample ``index`` to read, how many samples it really
    holds (``count``) and the factor for its batch-mean loss (``weight``; None in one process)."""

    index: torch.Tensor
    count: int
    weight: float | None


class Group:
    """The processes training one model together; a group of one when not launched by torchrun."""

    def __init__(self, launch_info: Launch, device: torch.device, backend: str | None = None):
        self.launch = launch_info
        self.rank, self.world_size = launch_info.rank, launch_info.world_size
        self.device = device
        self.backend = backend

    @property
    def distributed(self) -> bool:
        return self.launch.distributed

    @property
    def is_main(self) -> bool:
        return self.launch.is_main

    # -- data ------------------------------------------------------------------------------------
    def part(self, batch_index: torch.Tensor) -> Part:
        """This rank's piece of a global batch (given as sample indices, identical on every rank)."""
        n = len(batch_index)
        if not self.distributed:
            return Part(batch_index, n, None)
        piece = torch.tensor_split(batch_index, self.world_size)[self.rank]
        if len(piece) == 0:
            # The last global batch has fewer samples than ranks. This rank still runs a step (DDP needs
            # every rank in every gradient reduction) on one real sample whose loss weighs nothing.
            return Part(batch_index[:1], 0, 0.0)
        return Part(piece, len(piece), self.world_size * len(piece) / n)

    def check(self, batch_size: int, n_val: int) -> None:
        """Refuse a global batch or a validation set too small to give every rank a sample."""
        if batch_size < self.world_size:
            raise ConfigError(f"--batch-size {batch_size} is the global batch, shared by {self.world_size} processes: "
                              f"make it at least {self.world_size}")
        if n_val < self.world_size:
            raise ConfigError(f"the validation split has {n_val} sample(s), fewer than the {self.world_size} processes "
                              "sharing it: raise --val-fraction or start fewer processes")

    def local(self, x):
        """This rank's contiguous share of an array or tensor (used for the validation set)."""
        if not self.distributed:
            return x
        bounds = [len(x) * r // self.world_size for r in range(self.world_size + 1)]
        return x[bounds[self.rank]:bounds[self.rank + 1]]

    def noise_seed(self, seed: int) -> int:
        """Rank 0 keeps the single-process seed; rank r draws its own, reproducible, stream."""
        return seed + self.rank * RANK_SEED_STRIDE

    # -- communication ---------------------------------------------------------------------------
    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (a new tensor; the input is left alone)."""
        if not self.distributed:
            return tensor
        total = tensor.detach().clone()
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    def mean(self, values: dict[str, float], count: int) -> dict[str, float]:
        """The sample-weighted mean over ranks of per-rank means ``values`` taken over ``count`` samples."""
        if not self.distributed:
            return values
        names = sorted(values)
        local = torch.tensor([values[k] * count for k in names] + [count], dtype=torch.float64, device=self.device)
        total = self.sum(local).tolist()
        return {name: total[i] / total[-1] for i, name in enumerate(names)}

    def barrier(self) -> None:
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to train through: DistributedDataParallel over ``model`` (the same parameters)."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def describe(self, batch_size: int, lr: float) -> dict[str, Any]:
        """What run.json records about the launch (global batch, per-rank batch, lr, backend)."""
        return {"world_size": self.world_size, "backend": self.backend, "global_batch": batch_size,
                "per_rank_batch": per_rank_batch(batch_size, self.world_size), "lr": lr,
                "batch_size_means": "global"}


def per_rank_batch(batch_size: int, world_size: int) -> str:
    """``"64"``, or ``"42-43"`` when the global batch does not divide evenly."""
    low, high = batch_size // world_size, -(-batch_size // world_size)
    return str(low) if low == high else f"{low}-{high}"


_joined: Group | None = None
_created = False


def join(device: torch.device) -> Group:
    """The group this process trains in, initialising the process group once under torchrun.

    ``device`` is the one asked for (already resolved from ``auto``); under torchrun a CUDA device
    becomes ``cuda:LOCAL_RANK``. Calling again returns the same group.
    """
    global _joined, _created
    info = launch()
    if not info.distributed:
        return Group(info, device)
    if _joined is not None and dist.is_initialized():
        return _joined
    if device.type == "cuda":
        if info.local_rank >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK={info.local_rank} but this machine has {torch.cuda.device_count()} CUDA "
                              "GPU(s): start at most that many processes per node (--nproc_per_node)")
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise ConfigError(f"distributed training runs on CUDA (NCCL) or the CPU (Gloo), not {device.type}: "
                          "pass --device cuda or --device cpu")
    if not dist.is_initialized():
        kwargs = {"device_id": device} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=info.rank, world_size=info.world_size, timeout=TIMEOUT, **kwargs)
        _created = True
    elif (dist.get_rank(), dist.get_world_size()) != (info.rank, info.world_size):
        raise ConfigError("the process group already set up differs from RANK/WORLD_SIZE in the environment")
    _joined = Group(info, device, dist.get_backend())
    _joined.barrier()
    log.info("rank %d of %d on %s (%s)", info.rank, info.world_size, device, _joined.backend)
    return _joined


def leave() -> None:
    """Tear down the process group if :func:`join` created it (a no-op in one process)."""
    global _joined, _created
    if _created and dist.is_initialized():
        dist.destroy_process_group()
    _joined, _created = None, False
