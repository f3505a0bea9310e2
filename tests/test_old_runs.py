"""Run folders written by an older vaekit still load, evaluate and resume, with the old code's numbers.

The folders in tests/data/runs-v0/ were written by the vaekit named in their README.txt, before the
internals were redesigned, and reference.json / eval.json in each hold what that vaekit computed from
them. Only public entry points are used (vaekit.load, vaekit.evaluate, `python -m vaekit`), so this
file keeps working when internal modules move. Every test works on a copy in a temporary folder: the
fixtures themselves are never written (checked below).

Never regenerate the fixtures or their references with a newer vaekit: that would test nothing.
"""
from __future__ import annotations

import hashlib
import json
import math
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit

# About 8 s on 2 idle cores, 20-100 s when the cores are shared (training threads contend).
pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent / "data" / "runs-v0"
MODELS = ["ae", "beta-tcvae", "beta-vae", "capacity-vae", "cvae", "dip-vae", "factor-vae", "hvae", "iwae",
          "vae", "vamp", "vq-vae"]
ATOL = 1e-5          # model outputs on the reference inputs (values of order 1)
RTOL = 1e-5          # evaluation numbers (nats of order 10)
RESUME_RTOL = 1e-4   # the third epoch's metrics; losing the optimizer's state moves them by ~1%
EVAL_KEYS = ["n", "recon", "kl", "nelbo", "nll", "iw_samples", "bits_per_dim", "mse", "kl_per_dim",
             "active_units", "pca_mse", "latent_dim"]


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def fixtures_untouched():
    before = _digest(FIXTURES)
    yield
    assert _digest(FIXTURES) == before, "a test wrote into tests/data/runs-v0: work on a copy"


def _copy(name: str, parent: Path) -> Path:
    target = parent / name
    shutil.copytree(FIXTURES / name, target)
    return target


def _reference(name: str) -> dict:
    return json.loads((FIXTURES / name / "reference.json").read_text())


def model_outputs(model, x: torch.Tensor, y: torch.Tensor) -> dict[str, np.ndarray]:
    """The model contract as the runs-v0 code had it: ``encode(x)`` is a posterior whose ``mode()`` is
    the code (``std`` its spread, for variational models), ``decode(z)`` the expected image; conditional
    models take the labels ``y`` in both; VQ-VAE's ``sample_prior`` draws from its fitted code prior.
    Should the contract change, adapt this function only: the reference values stay."""
    condition = {"y": y} if getattr(model, "conditional", False) else {}
    out = {}
    with torch.no_grad():
        posterior = model.encode(x, **condition)
        mean = posterior.mode()
        out["posterior_mean"] = mean.numpy()
        out["decoded"] = model.decode(mean, **condition).numpy()
        if model.variational:
            out["posterior_std"] = posterior.std.numpy()
        if model.config.model == "vq-vae":
            # Temperature -> 0: the prior's most likely codes, whatever the random stream.
            z = model.sample_prior(len(x), generator=torch.Generator().manual_seed(0), temperature=1e-3)
            out["prior_mode_decoded"] = model.decode(z).numpy()
    return out


def test_every_fixture_is_there():
    present = sorted(p.name for p in FIXTURES.iterdir() if (p / "run.json").is_file())
    assert present == MODELS
    for name in MODELS:
        for file in ("run.json", "config.json", "metrics.jsonl", "eval.json", "reference.json",
                     "checkpoints/best.safetensors", "checkpoints/last.safetensors"):
            assert (FIXTURES / name / file).is_file(), f"{name}/{file}"


@pytest.mark.parametrize("name", MODELS)
def test_old_run_loads_to_the_same_model(name, tmp_path):
    run = _copy(name, tmp_path)
    ref = _reference(name)
    x = torch.tensor(ref["inputs"], dtype=torch.float32)
    y = torch.tensor(ref["labels"], dtype=torch.long)
    keys = {"posterior_mean", "decoded", "posterior_std", "prior_mode_decoded"} & ref.keys()
    # Both checkpoints: best and last hold the same weights here (every run's best epoch is its last).
    for which in ("best", "last"):
        model = vaekit.load(run, which=which)
        assert model.config.model == ref["model"]
        out = model_outputs(model, x, y)
        assert set(out) == keys
        for key in sorted(keys):
            np.testing.assert_allclose(out[key], np.array(ref[key]), rtol=0, atol=ATOL,
                                       err_msg=f"{name} ({which}): {key}")


@pytest.mark.parametrize("name", MODELS)
def test_old_run_evaluates_to_the_same_numbers(name, tmp_path):
    run = _copy(name, tmp_path)
    old = json.loads((FIXTURES / name / "eval.json").read_text())  # what `vaekit evaluate` wrote then
    new = vaekit.evaluate(run, iw_samples=20, seed=0, regularity=False, device="cpu")
    assert json.loads((run / "eval.json").read_text())["nelbo"] == new["nelbo"]
    for key in EVAL_KEYS:
        if old[key] is None:
            assert new[key] is None, f"{name}: {key}"
        else:
            assert new[key] == pytest.approx(old[key], rel=RTOL), f"{name}: {key}"
    if old["nll"] is not None:  # the variational models
        assert math.isfinite(new["nll"]) and math.isfinite(new["nelbo"])


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """name -> the copy after `python -m vaekit train --resume COPY --epochs 3`, run in this process
    (the same code the console script runs, without a fresh interpreter's start-up per model)."""
    done: dict[str, Path] = {}

    def resume(name: str) -> Path:
        if name not in done:
            run = _copy(name, tmp_path_factory.mktemp("resume"))
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(sys, "argv", ["vaekit", "train", "--resume", str(run), "--epochs", "3"])
                with pytest.raises(SystemExit) as exited:
                    runpy.run_module("vaekit", run_name="__main__", alter_sys=True)
            assert exited.value.code in (0, None), f"{name}: vaekit train --resume exited {exited.value.code}"
            done[name] = run
        return done[name]

    return resume


@pytest.mark.parametrize("name", MODELS)
def test_old_run_resumes_for_one_more_epoch(name, resumed):
    run = resumed(name)
    old_lines = (FIXTURES / name / "metrics.jsonl").read_text().splitlines()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    assert lines[:2] == old_lines  # the two old epochs are kept as they were
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert math.isfinite(records[2]["val_loss"]) and math.isfinite(records[2]["train_loss"])
    assert json.loads((run / "run.json").read_text())["config"]["epochs"] == 3
    model = vaekit.load(run, which="last")
    assert model.config.model == name


@pytest.mark.parametrize("name", MODELS)
def test_old_run_resumes_where_the_old_code_would(name, resumed):
    """The third epoch matches the one the old code wrote when resuming the same folder, so the
    optimizer (and FactorVAE's discriminator optimizer), the random streams and the schedules all
    continued from the checkpoint. A deliberate change to how training draws its random numbers
    would also move these: then say so in the change, and keep the test above."""
    old = _reference(name)["resumed_epoch_3"]
    new = json.loads((resumed(name) / "metrics.jsonl").read_text().splitlines()[2])
    assert set(new) == set(old) | {"elapsed_s"}  # the wall-time column is new since these runs
    # A deliberate change: beta-TCVAE logs its mi, tc and dim_kl with minibatch-stratified sampling
    # since issue 14 (the minibatch-weighted ones carried log N offsets). It still trains with the
    # minibatch-weighted estimator, so its loss is the old code's; and the three terms still sum to
    # the same Monte-Carlo KL.
    relogged = {f"{split}_{term}" for split in ("train", "val") for term in ("mi", "tc", "dim_kl")}
    if name == "beta-tcvae":
        for split in ("train", "val"):
            terms = [f"{split}_{term}" for term in ("mi", "tc", "dim_kl")]
            assert sum(new[k] for k in terms) == pytest.approx(sum(old[k] for k in terms), rel=RESUME_RTOL, abs=1e-3)
            assert abs(new[f"{split}_mi"] - old[f"{split}_mi"]) > 1       # the old mi had log N in it
    for key, value in old.items():
        if key in ("seconds", "images_per_s") or (name == "beta-tcvae" and key in relogged):
            continue
        if isinstance(value, float):
            assert new[key] == pytest.approx(value, rel=RESUME_RTOL, abs=1e-6), f"{name}: {key}"
        else:
            assert new[key] == value, f"{name}: {key}"
