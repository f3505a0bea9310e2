"""The importance-weighted bound (Burda et al. 2016, eq. 8) and the loop that runs it over a data set.

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x)

:func:`importance_weighted_bound` estimates it for one batch of images, decoding the K samples in
chunks under a memory cap; :func:`iw_estimates` runs it over many images, batch after batch, in
parallel threads on the CPU. Both give the same numbers for a given seed however the work is split.
"""
from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import torch

from vaekit.evaluation.fused import linear_bernoulli

# Decoder output per chunk of the IW bound: small enough that the likelihood's passes over it run
# from cache rather than memory, large enough for efficient matrix products. 12 MiB (4,000 rows of
# 784 values) was 1.5x faster than 64 MiB here; 2-6 MiB measured the same (BENCHMARKS.md, "Speed").
IW_CHUNK_BYTES = 12 * 2**20
# The fused Linear + Bernoulli path (fused.py) makes one pass over the logits, so its chunk can be
# small enough to stay near a core's own cache: 300-500 rows of 784 measured best, 1,000-2,000 rows
# 3-10% slower (BENCHMARKS.md, "Speed").
FUSED_CHUNK_BYTES = 3 * 2**19


def _rows_per_chunk(model, memory_cap_bytes: int, chunk_bytes: int) -> int:
    """How many decoder evaluations to run at once: within the memory cap (a generous 8 floats of
    working memory per output) and, for speed, about ``chunk_bytes`` of output."""
    values = math.prod(model.sample_shape) * model.likelihood.params_per_value
    return max(1, min(memory_cap_bytes // (4 * 8 * values), chunk_bytes // (4 * values)))


@torch.inference_mode()
def importance_weighted_bound(model, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None,
                              noise: torch.Tensor | None = None, memory_cap_bytes: int = 512 * 2**20,
                              y: torch.Tensor | None = None, with_elbo: bool = False) -> tuple[torch.Tensor, ...]:
    """Per image: (log p(x) estimated with K importance samples, Monte-Carlo E_q[log p(x|z)]), and with
    ``with_elbo`` also the Monte-Carlo ELBO, the mean of the K log weights.

    Samples are decoded in chunks of at most ``memory_cap_bytes`` of decoder output, keeping only
    their K x B log-likelihoods, so K = 1000 costs time, not memory. ``noise`` (K, B, noise dim) replaces
    the draw from ``generator``. ``y`` are the labels a conditional model is evaluated with (then
    the bound is on log p(x|y)). A model whose proposal is not one diagonal Gaussian (``joint_proposal``:
    the two-level HVAE) scores its samples itself with ``log_importance_weights(x, noise)``; every other
    model goes through encode / log_likelihood / prior, or the equal and faster fused.py where it applies.
    """
    own_weights = model.log_importance_weights if model.joint_proposal else None
    condition = {} if y is None else {"y": y}
    posterior = None if own_weights is not None else model.encode(x, **condition)
    batch = x.shape[0]
    # All the noise is drawn at once (it is small: K x B x L), so the estimate for a given seed does
    # not depend on how the decoder work is chunked.
    if noise is None:
        noise = model.iw_noise(k, batch, generator, x.device)
    elif posterior is not None and noise.shape[1:] != posterior.mean.shape:
        raise ValueError(f"noise of shape {tuple(noise.shape)} does not fit codes of shape {tuple(posterior.mean.shape)}")
    # Decoder chunks: samples per chunk, then the K log-likelihoods (K x B, small), then the rest of
    # the log weights, log p(z) - log q(z|x), in chunks of the generic size (a learned prior such as
    # the VampPrior needs working memory per code), then one log-sum-exp over K in float64.
    generic = max(1, min(k, _rows_per_chunk(model, memory_cap_bytes, IW_CHUNK_BYTES) // batch))
    small = max(1, min(k, _rows_per_chunk(model, memory_cap_bytes, FUSED_CHUNK_BYTES) // batch))
    fused = linear_bernoulli(model, x) if own_weights is None and y is None else None
    chunk = generic if fused is None else small
    log_px_z = torch.empty(k, batch, device=x.device, dtype=torch.float64)
    log_w = torch.empty(k, batch, device=x.device, dtype=torch.float64)
    if own_weights is not None:
        for done in range(0, k, chunk):
            part, weights = own_weights(x, noise[done:done + chunk])
            log_px_z[done:done + chunk], log_w[done:done + chunk] = part, weights
    else:
        z_all = posterior.reparameterize(noise)                                  # (K, B, L)
        whole = fused.all_codes(z_all) if fused is not None else None          # the whole loop, where it applies
        if whole is not None:
            log_px_z.copy_(whole)
        elif fused is not None:
            for done in range(0, k, chunk):
                log_px_z[done:done + chunk] = fused(z_all[done:done + chunk])
        else:
            # The images repeated for one chunk of samples (sample-major), built once: every chunk reads a prefix.
            tiled = x.unsqueeze(0).expand(chunk, *x.shape).reshape(chunk * batch, *x.shape[1:])
            for done in range(0, k, chunk):
                z = z_all[done:done + chunk]
                n = z.shape[0]
                repeated = {} if y is None else {"y": y.repeat(n)}
                log_px_z[done:done + chunk] = model.log_likelihood(tiled[:n * batch], z.reshape(n * batch, -1),
                                                                   **repeated).view(n, batch)
        for done in range(0, k, generic):
            z = z_all[done:done + generic]
            log_w[done:done + generic] = model.prior.log_prob(z) - posterior.log_prob(z)
        log_w += log_px_z
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    return (bound, log_px_z.mean(0), log_w.mean(0)) if with_elbo else (bound, log_px_z.mean(0))


def default_workers(device: torch.device) -> int:
    """Threads for :func:`iw_estimates`: torch's thread count on the CPU, 1 elsewhere."""
    return torch.get_num_threads() if device.type == "cpu" else 1


def iw_estimates(model, x: torch.Tensor, k: int, *, generator: torch.Generator | None = None, batch_size: int = 100,
                 y: torch.Tensor | None = None, memory_cap_bytes: int = 512 * 2**20, with_elbo: bool = False,
                 workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, ...]:
    """:func:`importance_weighted_bound` of every image in ``x``, ``batch_size`` at a time, concatenated.

    Each batch's noise is drawn from ``generator`` in this thread, in batch order, so the result does
    not depend on ``workers``. With more than one worker (the default on the CPU: one per torch
    thread) batches run on that many threads, each with one intra-op thread: independent problems
    with no fork-join at every operation, each in its own core's cache. The memory cap is shared
    among them. ``progress(done, total)`` is called as batches finish, in order.
    """
    n = len(x)
    workers = max(1, min(workers or default_workers(x.device), math.ceil(n / batch_size)))
    cap = max(1, memory_cap_bytes // workers)

    def job(start: int, noise: torch.Tensor) -> tuple[torch.Tensor, ...]:
        part = slice(start, start + batch_size)
        return importance_weighted_bound(model, x[part], k, noise=noise, memory_cap_bytes=cap, with_elbo=with_elbo,
                                         y=None if y is None else y[part])

    def draw(start: int) -> torch.Tensor:
        return model.iw_noise(k, len(x[start:start + batch_size]), generator, x.device)

    results: list[tuple[torch.Tensor, ...]] = []

    def collect(result) -> None:
        results.append(result)
        if progress is not None:
            progress(min(len(results) * batch_size, n), n)

    if workers == 1:
        for start in range(0, n, batch_size):
            collect(job(start, draw(start)))
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            # torch.set_num_threads is per thread for OpenMP: each worker sets its own.
            with ThreadPoolExecutor(workers, thread_name_prefix="vaekit-iw", initializer=torch.set_num_threads,
                                    initargs=(1,)) as pool:
                pending: deque = deque()
                try:
                    for start in range(0, n, batch_size):
                        pending.append(pool.submit(job, start, draw(start)))
                        if len(pending) > 2 * workers:      # bounded look-ahead: noise is K x B x L per batch
                            collect(pending.popleft().result())
                    while pending:
                        collect(pending.popleft().result())
                except BaseException:                       # an error or Ctrl-C: do not start the batches still queued
                    for future in pending:
                        future.cancel()
                    raise
        finally:
            torch.set_num_threads(threads)
    return tuple(torch.cat(parts) for parts in zip(*results))
