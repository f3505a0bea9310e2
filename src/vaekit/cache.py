"""Where vaekit keeps what it builds or fetches once: judging classifiers, generated data sets,
image caches and downloads.

``$VAEKIT_CACHE_DIR`` moves everything vaekit builds; without it the user cache of the XDG Base
Directory Specification is used (``$XDG_CACHE_HOME/vaekit``, by default ``~/.cache/vaekit``).
"""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "VAEKIT_CACHE_DIR"


def user_cache() -> Path:
    """``$XDG_CACHE_HOME/vaekit``, else ``~/.cache/vaekit``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vaekit"


def cache_root() -> Path:
    """``$VAEKIT_CACHE_DIR`` when set, else :func:`user_cache`."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else user_cache()
