"""Data larger than memory: images/s and peak memory of streaming an image folder vs the memmap cache vs memory.

    python -m vaekit.bench.streaming                  # 20,000 generated 28x28 grey PNGs
    python -m vaekit.bench.streaming --images 5000    # quicker

Generates a folder of PNGs (in a temporary directory), then measures each way of feeding it to the
trainer in a fresh process, so that each peak-memory figure is that mode's alone:

* ``memory``      -- ``--stream off``: decode the whole folder once into a float32 array, train from it;
* ``stream-w0``   -- ``--stream on --workers 0``: decode each batch's PNGs in the training process;
* ``stream-w2``   -- ``--stream on --workers 2``: two DataLoader worker processes decode ahead;
* ``memmap``      -- ``--stream on --cache memmap``: batches read from the uint8 memory map (built
  once beforehand; its build time is reported as ``memmap-build``).

For each: the seconds to open the dataset; the data rate (one epoch of batches of 128 read through
the trainer's own reader, no model) and that pass's CPU time per image (the training process plus its
workers: a figure a busy machine hardly changes); and the training rate (one epoch of the MLP VAE
784-512-16-512-784, batch 128). Peak memory is VmHWM of the training process; with workers, the
largest worker's peak (``ru_maxrss`` of the finished children, which counts pages shared with the
parent too) is given separately. Writes benchmarks/results/streaming.json.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaekit.bench.results import RESULTS

MODES = {
    "memory": dict(stream="off", workers=0),
    "stream-w0": dict(stream="on", workers=0),
    "stream-w2": dict(stream="on", workers=2),
    "memmap": dict(stream="on", cache="memmap", workers=0),
}


def generate(root: Path, n: int, side: int) -> None:
    """``n`` grey PNGs with structure (a bright blob whose place depends on the class) and noise."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in range(10):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:side, 0:side]
    for i in range(n):
        label = i % 10
        cy, cx = side * (0.25 + 0.5 * (label // 5)), side * (0.1 + 0.2 * (label % 5)) + rng.normal(0, 1)
        blob = 230 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (side / 7) ** 2))
        pixels = np.clip(blob + rng.normal(0, 12, size=(side, side)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(root / f"c{label}" / f"{i:06d}.png")


def child(mode: str, folder: str) -> dict:
    """Runs in its own process: open, read one epoch, train one epoch; report rates and peak memory."""
    import resource

    import torch

    from vaekit.training.config import TrainConfig
    from vaekit.data import batches, load_dataset
    from vaekit.training.distributed import Group, Launch
    from vaekit.training.trainer import Trainer

    options = MODES.get(mode, MODES["memmap"])
    started = time.perf_counter()
    dataset = load_dataset(folder, stream=options["stream"], cache=options.get("cache", "none"))
    opened = time.perf_counter() - started
    if mode == "memmap-build":
        return {"mode": mode, "seconds": opened, "images": len(dataset.train) + len(dataset.val) + len(dataset.test)}
    config = TrainConfig(dataset=folder, epochs=1, batch_size=128, device="cpu", **options).resolved()
    group = Group(Launch(), torch.device("cpu"))
    reader = batches.on_device(dataset.train.x, torch.device("cpu"), config, group)
    order = torch.randperm(len(reader), generator=torch.Generator().manual_seed(0))
    if isinstance(reader, batches.StreamedBatches):
        reader.start_epoch(order)
    before = os.times()
    started = time.perf_counter()
    for start in range(0, len(order), 128):
        reader[order[start:start + 128]]
    data_rate = len(order) / (time.perf_counter() - started)
    during = os.times()
    del reader
    gc.collect()  # shuts the workers down, so their CPU time is counted as the children's
    after = os.times()
    own = (during.user + during.system) - (before.user + before.system)
    workers = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    data_cpu_us = (own + workers) / len(order) * 1e6
    trainer = Trainer(config, dataset, None)
    record = trainer.train_epoch(trainer.steps_per_epoch)
    hwm = int([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]) / 1024
    del trainer
    workers_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if options["workers"] else None
    return {"mode": mode, "open_seconds": opened, "data_images_per_s": data_rate, "data_cpu_us_per_image": data_cpu_us,
            "train_images_per_s": record["images_per_s"], "peak_mib": hwm, "worker_peak_mib": workers_peak,
            "n_train": len(dataset.train)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--side", type=int, default=28)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS / "streaming.json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.folder)))
        return
    load_before = os.getloadavg()  # the machine may be shared: say how busy it was
    with tempfile.TemporaryDirectory(prefix="vaekit-stream-bench-") as tmp:
        folder = Path(tmp) / "images"
        started = time.perf_counter()
        generate(folder, args.images, args.side)
        print(f"generated {args.images} {args.side}x{args.side} PNGs in {time.perf_counter() - started:.1f} s "
              f"({sum(f.stat().st_size for f in folder.rglob('*.png')) / 1e6:.1f} MB)", file=sys.stderr)
        # Passive OpenMP waiting: idle torch threads sleep instead of spinning, so CPU time is work done.
        env = dict(os.environ, VAEKIT_CACHE_DIR=str(Path(tmp) / "cache"), OMP_WAIT_POLICY="PASSIVE")
        rows = []
        for mode in ("memory", "stream-w0", "stream-w2", "memmap-build", "memmap"):
            done = subprocess.run([sys.executable, __file__, "--child", mode, "--folder", str(folder)], env=env,
                                  capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    import torch

    result = {"images": args.images, "side": args.side, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d"), "load_average_after": os.getloadavg(),
              "load_average_before": load_before, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'mode':<12} {'open s':>8} {'data img/s':>11} {'CPU us/img':>11} {'train img/s':>12} {'peak MiB':>9} {'worker MiB':>11}")
    for row in rows:
        if row["mode"] == "memmap-build":
            print(f"{'memmap-build':<12} {row['seconds']:>8.1f}   (one-time decode of {row['images']} images)")
            continue
        worker = f"{row['worker_peak_mib']:.0f}" if row["worker_peak_mib"] else "-"
        print(f"{row['mode']:<12} {row['open_seconds']:>8.2f} {row['data_images_per_s']:>11,.0f} {row['data_cpu_us_per_image']:>11.1f} "
              f"{row['train_images_per_s']:>12,.0f} {row['peak_mib']:>9.0f} {worker:>11}")


if __name__ == "__main__":
    main()
