"""What the CPU is, from /proc/cpuinfo (Linux) where there is one: its model name and its feature
flags. No torch here, so that tools which only describe the machine (the load test's client) stay light."""
from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _read() -> str | None:
    try:
        return CPUINFO.read_text()
    except OSError:
        return None


def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The CPU's feature flags, from the first "flags" (x86) or "Features" (Arm) line of ``cpuinfo``
    (default: /proc/cpuinfo); None where there is no such file or line (macOS, Windows)."""
    if cpuinfo is None:
        cpuinfo = _read()
        if cpuinfo is None:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one), else what ``platform`` says."""
    for line in (_read() or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
