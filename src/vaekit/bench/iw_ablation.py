"""What each part of the fast importance-weighted evaluation buys, measured in one interleaved run.

The MLP VAE 784-512-16-512-784 (untrained weights: speed does not depend on them) scores 200
binarised images with K = 1000 samples, five ways, alternately, ``--repeats`` times:

* ``generic``: the plain chunked loop (model.log_likelihood, 12 MiB chunks), one batch at a time
  with torch's intra-op threads: how vaekit evaluated before this work;
* ``threads``: the same, batches on worker threads with one intra-op thread each (iw.iw_estimates);
* ``torch-fused``: plus the fused Linear + Bernoulli scorer in torch (fused.py, no C kernels);
* ``c-chunked``: plus the C kernels for the first layer and the likelihood, chunk by chunk, each
  chunk's buffers allocated afresh;
* ``c-whole``: the whole loop over the K codes (``LinearBernoulli.all_codes``): 256-row chunks
  into buffers allocated once, the product by ``torch.mm(out=)``, the bias added in the likelihood
  pass (what vaekit runs by default).

Each figure is the share of the fastest fp32 matmul rate (2048 x 2048) measured right before and
after it, so machine load cancels as far as it can; 1 / share is the ratio to the FLOP bound.

    python -m vaekit.bench.iw_ablation [--repeats 5] [--json benchmarks/results/iw-ablation.json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import torch

from vaekit.evaluation import fused
from vaekit.evaluation import iw
from vaekit.evaluation import native
from vaekit.bench import vaekit_config
from vaekit.bench.measure import machine, matmul_gflops, vae_flops
from vaekit.models import build_model


@contextlib.contextmanager
def variant(name: str):
    """Switch the parts off that ``name`` does not use; restore them after."""
    saved = (iw.linear_bernoulli, native.decoder_kernels, fused.LinearBernoulli.all_codes)
    try:
        if name in ("generic", "threads"):
            iw.linear_bernoulli = lambda *a, **k: None
        if name == "torch-fused":
            native.decoder_kernels = lambda: None
        if name == "c-chunked":
            fused.LinearBernoulli.all_codes = lambda self, z: None
        yield
    finally:
        iw.linear_bernoulli, native.decoder_kernels, fused.LinearBernoulli.all_codes = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = build_model(vaekit_config("mlp", 128, "cpu"), (1, 28, 28)).eval()
    x = torch.bernoulli(torch.rand(args.images, 1, 28, 28))
    flops = vae_flops(model.encoder, model.decoder, (1, 28, 28), 16)
    total = args.images * (1000 * flops["iw_sample"] + flops["encoder"])
    names = ("generic", "threads", "torch-fused", "c-chunked", "c-whole")
    shares: dict[str, list[float]] = {n: [] for n in names}
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(args.repeats):
        for name in names:
            with variant(name):
                rate = matmul_gflops(2048, 2)
                started = time.perf_counter()
                iw.iw_estimates(model, x, 1000, generator=torch.Generator().manual_seed(0),
                                workers=1 if name == "generic" else None)
                elapsed = time.perf_counter() - started
                rate = max(rate, matmul_gflops(2048, 2))
            seconds[name].append(elapsed)
            shares[name].append(total / elapsed / 1e9 / rate)
    result = {"machine": machine(), "images": args.images, "k": 1000, "repeats": args.repeats,
              "variants": {n: {"seconds": seconds[n], "share_of_matmul": shares[n],
                               "median_share": statistics.median(shares[n]),
                               "median_ratio_to_bound": 1 / statistics.median(shares[n])} for n in names}}
    for n in names:
        v = result["variants"][n]
        print(f"{n:12s} share of matmul {v['median_share']:.2f}  ratio to the FLOP bound {v['median_ratio_to_bound']:.2f}x  "
              f"({statistics.median(seconds[n]):.2f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
