"""Two tiny digits runs, trained once per test process and shared by the hostile-input tests
(test_hostile_input.py, test_serve_hostile.py, test_serve_fuzz.py), which only read them:
``digits-vae`` (a VAE, latent 2) and ``digits-ae`` (an autoencoder, latent 3)."""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from conftest import quick_config


@functools.cache
def tiny_runs() -> Path:
    """The folder holding both runs (removed when the test process ends)."""
    from vaekit.data import load_dataset
    from vaekit.training.trainer import train

    root = Path(tempfile.mkdtemp(prefix="vaekit-tiny-runs-"))
    atexit.register(shutil.rmtree, root, True)
    digits = load_dataset("digits")
    train(quick_config(model="vae", latent_dim=2, hidden=[16], epochs=1), digits, root / "digits-vae")
    train(quick_config(model="ae", latent_dim=3, hidden=[16], epochs=1), digits, root / "digits-ae")
    return root
