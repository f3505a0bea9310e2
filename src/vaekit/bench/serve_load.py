"""Load test of the latent explorer: `vaekit serve` on 127.0.0.1, hammered by concurrent decode requests.

    python -m vaekit.bench.serve_load runs/fashion-mnist-vae [--requests 2000] [--clients 8]

Starts the real command (`python -m vaekit serve RUN --port 0`, uvicorn and all) in a subprocess and
measures, in this order:

1. the model alone: ``vaekit.latent.decode_images`` of one code, in this process, on one torch thread
   as in the server (no HTTP);
2. single-decode latency: one client, one code per ``POST /api/decode``, requests one after another
   (what the page does while the cursor moves: it keeps at most one decode in flight);
3. load: ``--requests`` decode requests (one code each) shared by ``--clients`` threads, each with its
   own keep-alive connection; requests/s over the wall time, latency percentiles, errors.

Every response must be 200 with one PNG data URL; any error makes the script exit 1. The clients
run on the same machine as the server and share its cores (and Python's GIL among themselves), so
the throughput is a floor for a machine where they do not. Results go to
benchmarks/results/serve-load.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vaekit.bench.results import RESULTS
from vaekit.cpuinfo import cpu_name

import numpy as np



def start_server(run: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", run, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("vaekit explorer: "):
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    # Drain stdout (uvicorn's access log) so a full pipe never blocks the server.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, line.split()[2].rstrip("/")


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "max_ms": float(ms.max())}


def model_only(run: str, repeats: int) -> dict[str, float]:
    import torch

    import vaekit
    from vaekit import latent

    torch.set_num_threads(1)                  # as in the server (see vaekit.serve.server.Server)
    model = vaekit.load(run)
    z = np.random.default_rng(0).standard_normal((1, model.latent_dim))
    for _ in range(20):
        latent.decode_images(model, z)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        latent.decode_images(model, z)
        times.append(time.perf_counter() - started)
    return {"torch_threads": torch.get_num_threads(), "latent_dim": model.latent_dim, **percentiles(times)}


def decode(client, url: str, code: list[float]) -> tuple[float, str | None]:
    started = time.perf_counter()
    try:
        response = client.post(url + "/api/decode", json={"z": [code]})
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            return elapsed, f"HTTP {response.status_code}: {response.text[:200]}"
        images = response.json()["images"]
        if len(images) != 1 or not images[0].startswith("data:image/png;base64,"):
            return elapsed, f"unexpected answer: {str(images)[:200]}"
        return elapsed, None
    except Exception as exc:  # noqa: BLE001 - a benchmark counts every failure
        return time.perf_counter() - started, f"{type(exc).__name__}: {exc}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run folder (or folder of runs) to serve")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--single", type=int, default=300, help="sequential requests for the single-decode latency")
    parser.add_argument("--out", default=str(RESULTS / "serve-load.json"))
    args = parser.parse_args()
    import httpx

    started = time.perf_counter()
    process, url = start_server(args.run)
    print(f"server {url} ready in {time.perf_counter() - started:.1f} s")
    try:
        with httpx.Client(timeout=60) as client:
            info = client.get(url + "/api/info").json()
        dim = info["latent_dim"]
        rng = np.random.default_rng(0)
        codes = rng.standard_normal((args.requests + args.single, dim)).round(4).tolist()

        alone = model_only(args.run, repeats=args.single)
        print(f"model alone: decode_images of 1 code  p50 {alone['p50_ms']:.2f} ms  p95 {alone['p95_ms']:.2f} ms")

        with httpx.Client(timeout=60) as client:
            for code in codes[:20]:
                decode(client, url, code)                                       # warm-up
            single = [decode(client, url, code) for code in codes[args.requests:]]
        single_errors = [error for _, error in single if error]
        single_stats = percentiles([elapsed for elapsed, _ in single])
        print(f"single client, 1 code/request: p50 {single_stats['p50_ms']:.2f} ms  p95 {single_stats['p95_ms']:.2f} ms"
              f"  ({len(single_errors)} errors)")

        shares = [codes[k:args.requests:args.clients] for k in range(args.clients)]

        def client_loop(share):
            with httpx.Client(timeout=60) as client:
                return [decode(client, url, code) for code in share]

        wall_started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = [result for part in pool.map(client_loop, shares) for result in part]
        wall = time.perf_counter() - wall_started
    finally:
        process.terminate()
        process.wait(20)

    errors = [error for _, error in results if error] + single_errors
    load = {"requests": len(results), "clients": args.clients, "wall_s": wall, "requests_per_s": len(results) / wall,
            "errors": len(errors), **percentiles([elapsed for elapsed, _ in results])}
    print(f"{args.clients} clients, {len(results)} requests: {load['requests_per_s']:.0f} requests/s, "
          f"p50 {load['p50_ms']:.1f} ms, p95 {load['p95_ms']:.1f} ms, {len(errors)} errors")
    record = {
        "command": " ".join(["python", "-m", "vaekit.bench.serve_load", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version()},
        "run": {"path": args.run, "model": info["model"], "arch": info["arch"], "latent_dim": dim,
                "parameters": info["parameters"]},
        "model_alone": alone, "single_client": {**single_stats, "requests": len(single), "errors": len(single_errors)},
        "load": load, "first_errors": errors[:5],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
