"""Training data on the device: one tensor when it is in memory, else batches read by DataLoader workers.

The trainer indexes its training data the same way in both cases, ``x = train_x[index]``, with the
indices of this epoch's seeded permutation. For a streamed split (:class:`vaekit.data.stream.LazyImages`)
the trainer first hands the whole epoch to :meth:`StreamedBatches.start_epoch`; worker processes then
decode (or read from the memory map) the batches ahead of the training step, in exactly that order,
as uint8, which is copied to the device (from pinned memory on CUDA) and scaled to [0, 1] there. The
order is a function of (seed, epoch), so streaming is as deterministic and resumable as in-memory
training, and under torchrun each rank's workers read only that rank's share of every batch.
"""
from __future__ import annotations

import collections

import numpy as np
import torch
from torch.utils.data import DataLoader

from vaekit.errors import ConfigError, DataError
from vaekit.data.memmap import default_workers
from vaekit.data.stream import LazyImages


def on_device(x, device: torch.device, config, group):
    """``x`` as a tensor on ``device``, or a :class:`StreamedBatches` reader when ``x`` is streamed."""
    if not isinstance(x, LazyImages):
        return torch.as_tensor(x, device=device)
    if config.likelihood == "bernoulli" and config.binarize == "static":
        raise ConfigError("--binarize static fixes one binarisation of the whole training set, which needs it in "
                          "memory; this folder is streamed: use --binarize dynamic or none, or raise --max-memory")
    return StreamedBatches(x, device=device, batch_size=config.batch_size, group=group,
                           workers=default_workers() if config.workers is None else config.workers)


def whole(x) -> np.ndarray:
    """An in-memory array: a streamed split is loaded if it fits the memory budget, else a DataError."""
    return np.asarray(x)


class _Plan:
    """A sampler whose items are index arrays (one per batch); the trainer replaces them each epoch."""

    def __init__(self):
        self.batches: list[np.ndarray] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Reader:
    """Map-style dataset over a lazy split whose items are whole batches of uint8 pixels."""

    def __init__(self, images: LazyImages):
        self.images = images

    def __getitem__(self, positions: np.ndarray) -> torch.Tensor | str:
        try:
            return torch.from_numpy(self.images.uint8(positions))
        except DataError as exc:
            # Returned, not raised: DataLoader would re-raise a worker's exception with the worker's
            # traceback pasted into its message; StreamedBatches raises it here, as one line.
            return str(exc)

    def __len__(self) -> int:
        return len(self.images)


class StreamedBatches:
    """The training split read from disk batch by batch, in the order the trainer announces."""

    def __init__(self, images: LazyImages, *, device: torch.device, batch_size: int, group, workers: int):
        if workers < 0:
            raise ConfigError(f"--workers must be 0 or more, not {workers}")
        self.images, self.device, self.batch_size, self.group = images, device, batch_size, group
        self.plan = _Plan()
        self.loader = DataLoader(_Reader(images), batch_size=None, sampler=self.plan, num_workers=workers,
                                 pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                                 prefetch_factor=4 if workers > 0 else None)
        self._pending: collections.deque[int] = collections.deque()
        self._batches = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.images.shape

    def start_epoch(self, order: torch.Tensor) -> None:
        """Queue this epoch: the global batches of ``order`` (a permutation), this rank's share of each."""
        order = order.cpu()
        plan = [self.group.part(order[start:start + self.batch_size]).index.numpy()
                for start in range(0, len(order), self.batch_size)]
        self.plan.batches = plan
        self._pending = collections.deque(len(index) for index in plan)
        self._batches = iter(self.loader)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        if self._batches is None or not self._pending:
            raise RuntimeError("streamed training data is read in the order given to start_epoch(order)")
        expected = self._pending.popleft()
        if len(index) != expected:
            raise RuntimeError(f"asked for a batch of {len(index)} images where the epoch's plan has {expected}")
        pixels = next(self._batches)
        if isinstance(pixels, str):         # a file that failed to decode (see _Reader)
            raise DataError(pixels)
        return pixels.to(self.device, non_blocking=True).to(torch.float32).div_(255)
