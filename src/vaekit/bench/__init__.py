"""``vaekit bench``: vaekit against the loop a user would write, in one run on one machine.

For the MLP VAE 784-512-16-512-784 and the default conv VAE, both at the same batch size on the
same images with the same starting weights:

* training images/s of vaekit's ``Trainer.train_epoch`` and of the plain loop (:mod:`.plain`);
* importance-weighted evaluation (K samples per image) in image-samples/s: vaekit's
  ``iw_estimates`` (what ``vaekit evaluate`` runs) against the plain transcription of Burda et al.;
* peak memory of each, in a fresh process per measurement (the peak of a process cannot be reset);
* the FLOP rate each reaches, from the layers' shapes (:func:`.measure.vae_flops`), as a share of
  the fp32 matrix-multiply rate measured in the same run;
* the K = 1000 NLL of the whole test set with vaekit, against its lower bound: the decoder's FLOPs
  divided by the matmul rate, measured beside each tenth of the work (:func:`_nll_against_bound`),
  and, strictest, by the fastest rate measured anywhere in the run.

vaekit and the plain loop alternate, repeat after repeat, and medians are reported, so both see the
same machine load; the per-pair ratios' median is reported beside the ratio of medians. Evaluation
uses the weights the timed training left, copied into the plain model (speed does not depend on
them, but the two NLLs can then be compared); vaekit trains with ``binarize="none"`` so that both
sides compute the same loss (cross-entropy on grey levels, as pytorch/examples does).
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import torch

from vaekit.bench import plain
from vaekit.bench.measure import machine, matmul_gflops, peak_rss_mib, vae_flops

ARCHS = ("mlp", "conv")
PARTS = ("train", "eval", "memory", "nll")
NETWORKS = {"mlp": "MLP VAE 784-512-16-512-784", "conv": "conv VAE 1-32-64 channels (4x4, stride 2), latent 16"}


def vaekit_config(arch: str, batch_size: int, device: str):
    from vaekit.training.config import TrainConfig

    return TrainConfig(model="vae", arch=arch, hidden=[512], latent_dim=16, batch_size=batch_size,
                       likelihood="bernoulli", binarize="none", device=device, seed=0).resolved()


def copy_weights(model, baseline) -> None:
    """Give the plain model vaekit's weights (vaekit's fused [mean, logvar] head is split in two)."""
    linears = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    up_linears = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    deconvs = [m for m in model.decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    head = linears[-1]
    latent = head.out_features // 2
    with torch.no_grad():
        if isinstance(baseline, plain.PlainMLPVAE):
            pairs = [(linears[0], baseline.fc1), (up_linears[0], baseline.fc3), (up_linears[1], baseline.fc4)]
        else:
            pairs = [(convs[0], baseline.conv1), (convs[1], baseline.conv2), (up_linears[0], baseline.fc3),
                     (deconvs[0], baseline.deconv1), (deconvs[1], baseline.deconv2)]
        for source, target in pairs:
            target.weight.copy_(source.weight)
            target.bias.copy_(source.bias)
        for rows, target in ((slice(0, latent), baseline.fc21), (slice(latent, None), baseline.fc22)):
            target.weight.copy_(head.weight[rows])
            target.bias.copy_(head.bias[rows])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], Any], device: torch.device) -> float:
    _sync(device)
    started = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - started


def _summary(ours: list[float], theirs: list[float], flops_per_item: float, gflops: float) -> dict:
    a, b = statistics.median(ours), statistics.median(theirs)
    rate = lambda per_s: per_s * flops_per_item / 1e9
    return {"vaekit": a, "plain": b, "ratio": a / b, "median_pair_ratio": statistics.median(x / y for x, y in zip(ours, theirs)),
            "vaekit_gflops": rate(a), "plain_gflops": rate(b), "vaekit_share": rate(a) / gflops, "plain_share": rate(b) / gflops,
            "vaekit_runs": ours, "plain_runs": theirs}


def _iw_vaekit(model, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """-log p(x) per image, by the loop ``evaluate_model`` runs (iw.py); noise from ``generator``
    (a fresh one seeded 0 by default)."""
    from vaekit.evaluation.iw import iw_estimates

    model.eval()
    generator = generator if generator is not None else torch.Generator(device=x.device).manual_seed(0)
    return -iw_estimates(model, x, k, generator=generator)[0]


NLL_PARTS = 10


def _nll_against_bound(model, x: torch.Tensor, k: int, flops: dict, device: torch.device, matmul_size: int,
                       earlier_rates: list[float]) -> dict:
    """The K-sample NLL of ``x``, timed in NLL_PARTS consecutive parts (whole batches of 100, drawing
    from one generator, so the numbers are those of a single call) with a matmul probe before the
    first part and after each. A part's lower bound is its FLOPs at the faster of the two probes on
    either side: the machine's speed drifts by tens of percent over minutes here, and this follows
    it. Also given: the bound at the fastest rate measured anywhere in the run, the strictest."""
    generator = torch.Generator(device=x.device).manual_seed(0)
    per_image = k * flops["iw_sample"] + flops["encoder"]
    step = max(100, -(-len(x) // NLL_PARTS // 100) * 100)
    rates = [matmul_gflops(matmul_size, repeats=3)]
    seconds = bound = 0.0
    nll: list[torch.Tensor] = []
    for start in range(0, len(x), step):
        part = x[start:start + step]
        seconds += _timed(lambda: nll.append(_iw_vaekit(model, part, k, generator)), device)
        rates.append(matmul_gflops(matmul_size, repeats=3))
        bound += len(part) * per_image / (max(rates[-2:]) * 1e9)
    total = len(x) * per_image
    best = max(rates + list(earlier_rates))
    return {"images": len(x), "k": k, "seconds": seconds, "tflop": total / 1e12, "parts": len(nll),
            "matmul_gflops_beside": rates, "bound_seconds": bound, "ratio_to_bound": seconds / bound,
            "matmul_gflops": best, "bound_seconds_run_best": total / (best * 1e9),
            "ratio_to_bound_run_best": seconds * best * 1e9 / total, "mean_nll": float(torch.cat(nll).mean())}


def bench_arch(arch: str, dataset, *, parts, steps: int, repeats: int, batch_size: int, eval_images: int, k: int,
               nll_images: int, device: torch.device, progress: Callable[[str], None], matmul_size: int = 2048) -> dict:
    from vaekit.data import Split
    from vaekit.nn.likelihoods import Bernoulli, observed
    from vaekit.training.trainer import Trainer

    config = vaekit_config(arch, batch_size, device.type)
    n_train = steps * batch_size
    if len(dataset.train) < n_train:
        from vaekit.errors import ConfigError

        raise ConfigError(f"--steps {steps} at batch {batch_size} needs {n_train} training images; the data set has {len(dataset.train)}")
    subset = dataclasses.replace(dataset, train=Split(dataset.train.x[:n_train], None))
    trainer = Trainer(config, subset, None)
    model = trainer.model
    torch.manual_seed(0)
    baseline = plain.PLAIN_MODELS[arch]().to(device)
    copy_weights(model, baseline)
    optimizer = torch.optim.Adam(baseline.parameters())
    data = torch.as_tensor(subset.train.x, device=device)
    flops = vae_flops(model.encoder, model.decoder, dataset.sample_shape, config.latent_dim)
    result: dict[str, Any] = {"network": NETWORKS[arch], "batch_size": batch_size, "flops_per_image": flops,
                              "parameters": sum(p.numel() for p in model.parameters())}
    gflops: list[float] = []
    total_steps = 10**9
    if "train" in parts:
        trainer.train_epoch(total_steps)            # warm-up: allocator, caches, first-call dispatch
        plain.train_epoch(baseline, optimizer, data, batch_size)
        ours, theirs = [], []
        for r in range(repeats):
            trainer.epoch += 1
            ours.append(n_train / _timed(lambda: trainer.train_epoch(total_steps), device))
            theirs.append(n_train / _timed(lambda: plain.train_epoch(baseline, optimizer, data, batch_size), device))
            gflops.append(matmul_gflops(matmul_size))
            progress(f"{arch} training, repeat {r + 1}/{repeats}: vaekit {ours[-1]:,.0f} images/s, plain {theirs[-1]:,.0f}")
        result["train"] = {"steps": steps, "images": n_train, **_summary(ours, theirs, flops["train_step"], statistics.median(gflops))}
    if "eval" in parts or "nll" in parts:
        likelihood = Bernoulli("static")
        test = observed(torch.as_tensor(dataset.test.x, device=device), likelihood, seed=104729)
        copy_weights(model, baseline)   # the same weights on both sides (training moved them apart)
    if "eval" in parts:
        x = test[:eval_images]
        ours, theirs, nll = [], [], {}
        _iw_vaekit(model, x[:2], 10)
        plain.iw_nll(baseline, x[:2], 10)
        for r in range(repeats):
            ours.append(len(x) * k / _timed(lambda: nll.__setitem__("vaekit", _iw_vaekit(model, x, k)), device))
            theirs.append(len(x) * k / _timed(lambda: nll.__setitem__("plain", plain.iw_nll(baseline, x, k)), device))
            gflops.append(matmul_gflops(matmul_size))
            progress(f"{arch} IW evaluation, repeat {r + 1}/{repeats}: vaekit {ours[-1]:,.0f} image-samples/s, plain {theirs[-1]:,.0f}")
        per_sample = flops["iw_sample"] + flops["encoder"] / k
        result["eval"] = {"images": len(x), "k": k, "mean_nll_vaekit": float(nll["vaekit"].mean()),
                          "mean_nll_plain": float(nll["plain"].mean()),
                          **_summary(ours, theirs, per_sample, statistics.median(gflops))}
    if "nll" in parts:
        result["nll"] = _nll_against_bound(model, test[:nll_images], k, flops, device, matmul_size, gflops)
        progress(f"{arch} NLL of {nll_images} images, K = {k}: {result['nll']['seconds']:.1f} s, "
                 f"{result['nll']['ratio_to_bound']:.2f}x the FLOP bound")
    result["matmul_gflops"] = statistics.median(gflops) if gflops else matmul_gflops(matmul_size)
    return result


def memory_probe(side: str, arch: str, phase: str, steps: int, batch_size: int, eval_images: int, k: int) -> dict:
    """Run in a fresh process: peak resident memory of one side's training or evaluation (MiB).

    ``working`` is the peak above the memory held once the data and model are ready."""
    from vaekit.nn.likelihoods import Bernoulli, observed
    from vaekit.training.trainer import Trainer
    from vaekit.data import Dataset, Split

    torch.manual_seed(0)
    x = torch.rand(max(steps * batch_size, eval_images), 1, 28, 28)
    if side == "vaekit":
        data = Dataset(name="bench", train=Split(x[:steps * batch_size].numpy(), None), val=Split(x[:10].numpy(), None),
                       test=Split(x[:eval_images].numpy(), None), sample_shape=(1, 28, 28), class_names=None,
                       source="memory", quantized_8bit=False)
        trainer = Trainer(vaekit_config(arch, batch_size, "cpu"), data, None)
        train = lambda: trainer.train_epoch(10**9)
        evaluate = lambda: _iw_vaekit(trainer.model, observed(x[:eval_images], Bernoulli("static"), 0), k)
    else:
        baseline = plain.PLAIN_MODELS[arch]()
        optimizer = torch.optim.Adam(baseline.parameters())
        data_x = x[:steps * batch_size]
        train = lambda: plain.train_epoch(baseline, optimizer, data_x, batch_size)
        evaluate = lambda: plain.iw_nll(baseline, observed(x[:eval_images], Bernoulli("static"), 0), k)
    from vaekit.bench.measure import _current_rss_mib

    ready = _current_rss_mib()
    (train if phase == "train" else evaluate)()
    peak = peak_rss_mib()
    return {"peak_mib": peak, "ready_mib": ready, "working_mib": None if peak is None or ready is None else peak - ready}


def _memory(arch: str, steps: int, batch_size: int, eval_images: int, k: int, progress) -> dict:
    out: dict[str, dict] = {}
    for phase in ("train", "eval"):
        for side in ("vaekit", "plain"):
            code = ("import json, sys; from vaekit.bench import memory_probe; "
                    f"print(json.dumps(memory_probe({side!r}, {arch!r}, {phase!r}, {steps}, {batch_size}, {eval_images}, {k})))")
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"the memory probe failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
            out.setdefault(phase, {})[side] = json.loads(proc.stdout.strip().splitlines()[-1])
            progress(f"{arch} memory, {phase}, {side}: {out[phase][side]['working_mib']:.0f} MiB working")
    return out


def run_bench(*, archs=ARCHS, parts=PARTS, steps: int = 50, repeats: int = 5, batch_size: int = 128,
              eval_images: int = 200, k: int = 1000, nll_images: int = 10_000, nll_archs=("mlp",),
              dataset="fashion-mnist", data_dir: str | None = None, device: str = "cpu",
              threads: int | None = None, progress: Callable[[str], None] | None = None, matmul_size: int = 2048) -> dict:
    """Measure everything the module docstring lists; returns a JSON-ready dict."""
    from vaekit.data import load_dataset
    from vaekit.errors import ConfigError
    from vaekit.training.device import resolve_device

    bad = [a for a in archs if a not in ARCHS] + [p for p in parts if p not in PARTS]
    if bad:
        raise ConfigError(f"unknown bench part or model {bad[0]!r}: models are {', '.join(ARCHS)}, parts {', '.join(PARTS)}")
    for name, value in (("steps", steps), ("repeats", repeats), ("batch-size", batch_size), ("eval-images", eval_images),
                        ("k", k), ("nll-images", nll_images)):
        if value < 1:
            raise ConfigError(f"--{name} must be at least 1, not {value}")
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"--threads must be at least 1, not {threads}")
        torch.set_num_threads(threads)
    progress = progress or (lambda message: None)
    torch_device = resolve_device(device)
    data = load_dataset(dataset, data_dir=data_dir) if isinstance(dataset, str) else dataset
    if tuple(data.sample_shape) != (1, 28, 28):
        raise ConfigError(f"the bench's networks take 28x28 grey images; {data.name} has shape {tuple(data.sample_shape)}")
    started = time.perf_counter()
    result: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M"), "device": str(torch_device),
                              "settings": {"steps": steps, "repeats": repeats, "batch_size": batch_size, "eval_images": eval_images,
                                           "k": k, "nll_images": nll_images, "dataset": data.name, "parts": list(parts)},
                              "models": {}}
    for arch in archs:
        arch_parts = [p for p in parts if p != "nll" or arch in nll_archs]
        entry = bench_arch(arch, data, parts=arch_parts, steps=steps, repeats=repeats, batch_size=batch_size,
                           eval_images=eval_images, k=k, nll_images=min(nll_images, len(data.test)), device=torch_device,
                           progress=progress, matmul_size=matmul_size)
        if "memory" in parts and torch_device.type == "cpu":
            entry["memory"] = _memory(arch, min(steps, 20), batch_size, min(eval_images, 100), k, progress)
        result["models"][arch] = entry
    result["machine"]["load_average_end"] = machine()["load_average"]
    result["seconds"] = time.perf_counter() - started
    return result


def format_table(result: dict) -> str:
    """The benchmark as a plain-text table."""
    m = result["machine"]
    lines = [f"vaekit bench  {result['date']}  {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), "
             f"device {result['device']}",
             f"load average at start / end: {_load(m.get('load_average'))} / {_load(m.get('load_average_end'))}", ""]
    for arch, entry in result["models"].items():
        lines.append(f"{entry['network']}, batch {entry['batch_size']}: "
                     f"{entry['flops_per_image']['train_step'] / 1e6:.2f} MFLOP per training image, "
                     f"{entry['flops_per_image']['iw_sample'] / 1e6:.2f} MFLOP per importance sample; "
                     f"fp32 matmul {entry['matmul_gflops']:.0f} GFLOP/s (median)")
        rows = [("", "vaekit", "plain", "vaekit/plain")]
        for part, label in (("train", "training images/s ({runs} x {steps} steps, median)"),
                            ("eval", "IW eval image-samples/s (K = {k}, {images} images)")):
            if part in entry:
                t = entry[part]
                rows.append((label.format(runs=len(t["vaekit_runs"]), **t), f"{t['vaekit']:,.0f}", f"{t['plain']:,.0f}",
                             f"{t['ratio']:.2f}x (pairs {t['median_pair_ratio']:.2f}x)"))
                rows.append(("  GFLOP/s, share of matmul", f"{t['vaekit_gflops']:.1f} ({t['vaekit_share']:.0%})",
                             f"{t['plain_gflops']:.1f} ({t['plain_share']:.0%})", ""))
        if "eval" in entry:
            e = entry["eval"]
            rows.append(("  mean NLL, nats (same weights, own noise)", f"{e['mean_nll_vaekit']:.2f}", f"{e['mean_nll_plain']:.2f}", ""))
        for phase, label in (("train", "training"), ("eval", "IW eval")):
            mem = entry.get("memory", {}).get(phase)
            if mem:
                v, p = mem["vaekit"]["working_mib"], mem["plain"]["working_mib"]
                rows.append((f"peak memory, {label} (MiB above ready)", f"{v:.0f}", f"{p:.0f}", f"{v / p:.2f}x" if p else ""))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines += ["  " + "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(r)).rstrip()
                  for r in rows]
        if "nll" in entry:
            n = entry["nll"]
            lines.append(f"  NLL, K = {n['k']}, {n['images']:,} test images: {n['seconds']:.1f} s; FLOP lower bound "
                         f"{n['bound_seconds']:.1f} s ({n['tflop']:.2f} TFLOP at the matmul rate measured beside each of "
                         f"{n['parts']} parts, {min(n['matmul_gflops_beside']):.0f}-{max(n['matmul_gflops_beside']):.0f} GFLOP/s): "
                         f"{n['ratio_to_bound']:.2f}x the bound")
            lines.append(f"    at the fastest matmul rate of the whole run ({n['matmul_gflops']:.0f} GFLOP/s): "
                         f"{n['ratio_to_bound_run_best']:.2f}x")
        lines.append("")
    lines.append(f"({result['seconds']:.0f} s in all)")
    return "\n".join(lines)


def _load(values) -> str:
    return "n/a" if not values else " ".join(f"{v:.2f}" for v in values)
