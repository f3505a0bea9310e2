"""Small C kernels for the loops torch runs as several passes (see decoder.c), compiled on first
use with the machine's C compiler and loaded with ctypes.

Optional by design: without a compiler, where the build or its self-check fails, or with
``VAEKIT_NATIVE=0``, :func:`decoder_kernels` returns None and vaekit computes the same numbers with
torch, more slowly. The library is built for this CPU (``-march=native``) and cached under
``cache_root()/native``, named by a hash of the source, the compiler, its flags and the CPU, so a
cache shared between machines never runs code built for another one. ``CC`` picks the compiler.

The kernels are self-contained: they read and write only float32 buffers vaekit allocates (or
contiguous tensors it owns, by ``Tensor.data_ptr()``), and take nothing from torch's own libraries,
so no private symbol of torch or of its BLAS can change under them.
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import shutil
import subprocess
import threading
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from vaekit.cache import cache_root
from vaekit.files import replacing

log = logging.getLogger(__name__)

NATIVE_ENV = "VAEKIT_NATIVE"
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared")
# gcc's auto-vectoriser prefers 256-bit vectors on Intel CPUs with AVX-512 unless asked for 512;
# decoder.c's likelihood loop ran 1.75x faster with 512 here (BENCHMARKS.md, "Speed").
X86_FLAGS = ("-mprefer-vector-width=512",)
COMPILE_TIMEOUT_S = 120

_lock = threading.Lock()
_loaded: dict[str, ctypes.CDLL | None] = {}
_checked: dict[str, DecoderKernels | None] = {}


def compiler() -> str | None:
    """``$CC``, else the first of cc, gcc and clang on the PATH."""
    return os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


def _cpu() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        keep = [line for line in lines if line.startswith(("model name", "flags", "Features", "CPU part"))]
        return "\n".join(sorted(set(keep))) or platform.processor()
    except OSError:
        return platform.processor()


def _flags() -> tuple[str, ...]:
    return FLAGS + (X86_FLAGS if platform.machine().lower() in ("x86_64", "amd64") else ())


def _build(name: str, cc: str) -> Path:
    source = resources.files(__package__).joinpath(f"{name}.c").read_bytes()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout.split("\n", 1)[0]
    key = hashlib.sha256(b"\0".join(x.encode() if isinstance(x, str) else x for x in
                                    (source, cc, version, " ".join(_flags()), _cpu(), platform.machine()))).hexdigest()
    target = cache_root() / "native" / f"{name}-{key[:16]}.so"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with replacing(target) as tmp:
            src = Path(tmp).with_suffix(".c")
            try:
                src.write_bytes(source)
                run = subprocess.run([cc, *_flags(), str(src), "-o", tmp], capture_output=True, text=True,
                                     timeout=COMPILE_TIMEOUT_S)
            finally:
                src.unlink(missing_ok=True)
            if run.returncode != 0:
                raise OSError(f"{cc} failed: {(run.stderr.strip().splitlines() or ['no message'])[-1]}")
        log.debug("built %s", target)
    return target


def library(name: str) -> ctypes.CDLL | None:
    """The compiled ``native/<name>.c``, built once per machine and loaded once per process, or None."""
    with _lock:
        if name not in _loaded:
            _loaded[name] = _load(name)
        return _loaded[name]


def _load(name: str) -> ctypes.CDLL | None:
    if os.environ.get(NATIVE_ENV, "1").strip() == "0":
        return None
    cc = compiler()
    if cc is None:
        log.info("no C compiler (cc, gcc, clang or $CC): vaekit uses its torch code for %s", name)
        return None
    try:
        return ctypes.CDLL(str(_build(name, cc)))
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("the native %s kernel is not available (%s): vaekit uses its torch code", name, exc)
        return None


def reset() -> None:
    """Forget the loaded libraries (tests; a changed ``VAEKIT_NATIVE`` or ``CC``)."""
    with _lock:
        _loaded.clear()
        _checked.clear()


def _softplus(v: float) -> float:
    return max(v, 0.0) + math.log1p(math.exp(-abs(v)))


@dataclass(frozen=True)
class DecoderKernels:
    """The functions of decoder.c, called with data pointers (see there for the layouts)."""

    linear_relu: Callable
    bernoulli_rows: Callable


def _floats(values) -> ctypes.Array:
    return (ctypes.c_float * len(values))(*values)


def _self_check(k: DecoderKernels) -> str | None:
    """Why the kernels cannot be trusted (their results on a few values against float64 here), or None."""
    values = [-100.0, -30.0, -5.5, -1.0, -1e-4, 0.0, 1e-4, 0.75, 3.0, 17.0, 40.0, 100.0] * 3   # 36: vector body and tail
    data = [float(i % 2) for i in range(len(values))]
    shift = [(j % 7 - 3) / 2 for j in range(len(values))]                              # a bias added on the way
    # Two images of one sample each, sums written 2 apart: without the bias into out[0] and out[2],
    # then with it into out[1] and out[3] (the same pointer moved by one float).
    logits, x, bias, out = _floats(values * 2), _floats(data * 2), _floats(shift), _floats([7.0] * 4)
    for offset, b in ((0, None), (1, ctypes.addressof(bias))):
        k.bernoulli_rows(ctypes.addressof(logits), b, ctypes.addressof(x), 2, 1, len(values),
                         ctypes.addressof(out) + offset * ctypes.sizeof(ctypes.c_float), 2)
    for i, offsets in ((0, [0.0] * len(values)), (2, [0.0] * len(values)), (1, shift), (3, shift)):
        expected = sum(xi * (v + c) - _softplus(v + c) for xi, v, c in zip(data, values, offsets))
        if not (math.isfinite(out[i]) and abs(out[i] - expected) <= 1e-4 * max(1.0, abs(expected))):
            return f"bernoulli_rows gave {out[i]!r} where {expected!r} was expected"
    # Two codes of two samples (sample-major in, image-major out), 3 -> 20 units.
    z = [0.5, -1.0, 2.0, 1.5, 0.25, -0.75, -2.0, 1.0, 0.0, 0.3, -0.6, 0.9]          # (s, b, k): 2 x 2 x 3
    wt = [((k * 7 + j * 3) % 11 - 5) / 4 for k in range(3) for j in range(20)]      # (k, j): 3 x 20
    bias = [(j % 5 - 2) / 3 for j in range(20)]
    arrays = [_floats(z), _floats(wt), _floats(bias), _floats([0.0] * 80)]
    k.linear_relu(*map(ctypes.addressof, arrays[:3]), 2, 2, 3, 20, ctypes.addressof(arrays[3]))
    h = arrays[3]
    for b in range(2):
        for s in range(2):
            for j in range(20):
                want = max(0.0, bias[j] + sum(z[(s * 2 + b) * 3 + c] * wt[c * 20 + j] for c in range(3)))
                if abs(h[(b * 2 + s) * 20 + j] - want) > 1e-5:
                    return f"linear_relu gave {h[(b * 2 + s) * 20 + j]!r} where {want!r} was expected"
    return None


def decoder_kernels() -> DecoderKernels | None:
    """decoder.c's kernels, built and checked once per process, or None (then use torch).

    The library must first reproduce values computed here in float64, so a miscompiled kernel is
    never used."""
    lib = library("decoder")
    if lib is None:
        return None
    with _lock:
        if "decoder" not in _checked:
            pointer, length = ctypes.c_void_p, ctypes.c_long
            lib.vaekit_bernoulli_rows.argtypes = [pointer, pointer, pointer, length, length, length, pointer, length]
            lib.vaekit_linear_relu.argtypes = [pointer, pointer, pointer, length, length, length, length, pointer]
            lib.vaekit_bernoulli_rows.restype = lib.vaekit_linear_relu.restype = None
            kernels = DecoderKernels(lib.vaekit_linear_relu, lib.vaekit_bernoulli_rows)
            problem = _self_check(kernels)
            if problem:
                log.warning("the native decoder kernels failed their check (%s): vaekit uses its torch code", problem)
            _checked["decoder"] = None if problem else kernels
        return _checked["decoder"]
