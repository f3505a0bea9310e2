"""Sizes that cannot fit: refused before anything is allocated, with the memory they would need.

A request that asks for more memory than the machine has (a 192-byte .npy whose header claims
373 GiB, ``vaekit sample -n 100000000``, ``--hidden 1000000000``) would otherwise be attempted and
end in a ``MemoryError`` traceback, or in the operating system killing the process after it has
pushed everything else into swap. Each such size is computed from what was asked for, before the
work starts, and compared with this machine's physical memory; the error names both.

Torch-free, so the data modules can use it.
"""
from __future__ import annotations

import operator
import os

from vaekit.errors import ConfigError, VaekitError

FALLBACK_MEMORY = 8 * 1024 ** 3     # when the operating system does not say (not POSIX)
MAX_SEED = 2 ** 32 - 1              # the largest seed NumPy, torch and scikit-learn all accept


def physical_memory() -> int:
    """Bytes of physical memory on this machine (8 GiB where the operating system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def size_text(nbytes: float) -> str:
    """``1536`` -> "1.5 KiB", ``4e11`` -> "373 GiB": two or three significant figures, binary units."""
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    if unit == "bytes":
        return f"{int(value)} bytes"
    return f"{value:.3g} {unit}" if value < 1000 else f"{value:,.0f} {unit}"


def check_memory(nbytes: float, what: str, fix: str, *, error: type[VaekitError] = ConfigError,
                 limit: int | None = None) -> None:
    """Refuse, as ``error``, when ``what`` needs more than ``limit`` bytes (default: the physical memory).

    The message reads "<what> needs <size>, more than this machine's <memory> of memory: <fix>".
    """
    limit = physical_memory() if limit is None else limit
    if nbytes > limit:
        raise error(f"{what} needs {size_text(nbytes)}, more than this machine's {size_text(limit)} of memory: {fix}")


def check_seed(seed, flag: str = "--seed") -> int:
    """``seed`` as an int, or :class:`ConfigError`: a whole number from 0 to 2**32 - 1 (NumPy refuses
    negative seeds and scikit-learn larger ones, so only these work everywhere)."""
    try:
        value = None if isinstance(seed, bool) else operator.index(seed)
    except TypeError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{flag} must be a whole number from 0 to {MAX_SEED}, not {seed!r}")
    return value
