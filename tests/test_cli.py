"""The command line end to end, as a user runs it, including every bad input the foundation names."""
from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

QUICK = ["--hidden", "32", "--latent-dim", "3", "--epochs", "2", "--batch-size", "64", "--device", "cpu"]
EVAL_KEYS = {"split", "n", "likelihood", "proper_likelihood", "recon", "kl", "nelbo", "nll", "iw_samples",
             "bits_per_dim", "mse", "kl_per_dim", "active_units", "pca_mse"}


def assert_clean_error(proc, *fragments: str) -> None:
    """Non-zero exit, one error line naming the problem (after any warnings), no traceback."""
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("vaekit: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert all(line.startswith("vaekit: warning: ") for line in lines[:-1]), proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    proc = run_cli("train", "--dataset", "digits", *QUICK, "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    return run


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys; from vaekit.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "train" in out and out.strip().endswith("False")


def test_train_evaluate_end_to_end(trained_run):
    assert (trained_run / "checkpoints/best.safetensors").is_file()
    proc = run_cli("evaluate", str(trained_run), "--iw-samples", "50")
    assert proc.returncode == 0, proc.stderr
    assert "NLL  (K = 50)" in proc.stdout and "PCA MSE (3 components)" in proc.stdout
    result = json.loads((trained_run / "eval.json").read_text())
    assert EVAL_KEYS <= result.keys()
    assert result["split"] == "test" and result["iw_samples"] == 50
    assert result["nll"] <= result["nelbo"] and result["bits_per_dim"] > 0


def test_resume_from_cli(tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--dataset", "digits", *QUICK, "--out", str(run)).returncode == 0
    proc = run_cli("train", "--resume", str(run), "--epochs", "3")
    assert proc.returncode == 0, proc.stderr
    epochs = [json.loads(l)["epoch"] for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]
    assert_clean_error(run_cli("train", "--resume", str(run), "--latent-dim", "5"), "only --epochs")


def test_config_file_and_overrides(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "digits"\nlatent-dim = 2\nhidden = [16]\nepochs = 1\nmodel = "beta-vae"\n')
    run = tmp_path / "run"
    proc = run_cli("train", "--config", str(config), "--latent-dim", "4", "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((run / "config.json").read_text())
    assert saved["latent_dim"] == 4 and saved["hidden"] == [16] and saved["beta"] == 4.0
    yaml_config = tmp_path / "run.yaml"
    yaml_config.write_text("dataset: digits\nlatent_dim: 2\nepochs: 1\nhidden: 16\n")
    assert run_cli("train", "--config", str(yaml_config), "--out", str(tmp_path / "r2")).returncode == 0


def test_datasets_lists_where_data_comes_from():
    proc = run_cli("datasets")
    assert proc.returncode == 0
    assert "digits" in proc.stdout and "scikit-learn" in proc.stdout and "fashion-mnist" in proc.stdout


# -- bad input: one clear line, non-zero exit, nothing lost ------------------------------------------
def test_unknown_dataset(tmp_path):
    assert_clean_error(run_cli("train", "--dataset", "imagenette", "--out", str(tmp_path / "r")), "unknown dataset")


def _idx_images(n=4, magic=0x0803):
    header = magic.to_bytes(4, "big") + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    return header + bytes(n * 28 * 28)


def _idx_labels(n=4):
    return (0x0801).to_bytes(4, "big") + n.to_bytes(4, "big") + bytes(n)


@pytest.mark.parametrize("damage", ["bad-gzip", "wrong-magic", "truncated"])
def test_corrupt_dataset_files(tmp_path, damage):
    folder = tmp_path / "fm"
    folder.mkdir()
    files = {"train-images-idx3-ubyte.gz": _idx_images(), "train-labels-idx1-ubyte.gz": _idx_labels(),
             "t10k-images-idx3-ubyte.gz": _idx_images(), "t10k-labels-idx1-ubyte.gz": _idx_labels()}
    for name, payload in files.items():
        data = gzip.compress(payload)
        if name.startswith("train-images"):
            if damage == "bad-gzip":
                data = b"this is not gzip" + data[16:]
            elif damage == "wrong-magic":
                data = gzip.compress(_idx_images(magic=0x0801))
            else:
                data = gzip.compress(payload[:-100])
        (folder / name).write_bytes(data)
    proc = run_cli("train", "--dataset", "fashion-mnist", "--data-dir", str(folder), "--out", str(tmp_path / "r"))
    assert_clean_error(proc, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "r").exists()


def test_missing_dataset_without_network(tmp_path):
    env = {"VAEKIT_MNIST_URL": "http://127.0.0.1:9/", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "VAEKIT_DATA_DIR": str(tmp_path / "nothing")}
    proc = run_cli("train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r"), env_extra=env)
    assert_clean_error(proc, "mnist", "--data-dir")


def test_folder_without_readable_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"not a png")
    (folder / "b.jpg").write_bytes(b"")
    assert_clean_error(run_cli("train", "--dataset", str(folder), "--out", str(tmp_path / "r")), "no readable image")


def test_folder_with_some_unreadable_images_warns_and_trains(tmp_path):
    folder = tmp_path / "imgs"
    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((10, 10), 20 * i, np.uint8)).save(folder / label / f"{i}.png")
    (folder / "dogs" / "broken.png").write_bytes(b"garbage")
    proc = run_cli("train", "--dataset", str(folder), "--image-size", "8", "--arch", "conv", "--epochs", "1",
                   "--latent-dim", "2", "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 unreadable image file(s): dogs/broken.png" in proc.stderr
    info = json.loads((tmp_path / "r/run.json").read_text())
    assert info["data"]["class_names"] == ["cats", "dogs"] and info["data"]["sample_shape"] == [1, 8, 8]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_in_array_file(tmp_path, bad):
    x = np.random.default_rng(0).random((50, 4, 4)).astype(np.float32)
    x[7, 1, 2] = bad
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("train", "--dataset", str(tmp_path / "x.npy"), "--out", str(tmp_path / "r"))
    assert_clean_error(proc, "x.npy", "index 7")


def test_latent_dim_below_one(tmp_path):
    assert_clean_error(run_cli("train", "--dataset", "digits", "--latent-dim", "0", "--out", str(tmp_path / "r")),
                       "--latent-dim must be at least 1")


def test_existing_run_is_refused_and_untouched(trained_run):
    before = tree_digest(trained_run)
    proc = run_cli("train", "--dataset", "digits", *QUICK, "--out", str(trained_run))
    assert_clean_error(proc, "already holds a run", "--resume", "--overwrite")
    assert tree_digest(trained_run) == before


def test_overwrite_replaces_a_run(tmp_path):
    run = tmp_path / "run"
    assert run_cli("train", "--dataset", "digits", *QUICK, "--out", str(run)).returncode == 0
    (run / "eval.json").write_text("{}")
    proc = run_cli("train", "--dataset", "digits", *QUICK, "--epochs", "1", "--out", str(run), "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert not (run / "eval.json").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_run_with_missing_or_corrupt_weights(tmp_path, damage):
    run = tmp_path / "run"
    assert run_cli("train", "--dataset", "digits", *QUICK, "--epochs", "1", "--out", str(run)).returncode == 0
    # Both checkpoints: a best that last.safetensors can still give (its epoch was the best) is written
    # again from it, as after a kill (vaekit.training.commit), and the evaluation goes on.
    for name in ("best", "last"):
        weights = run / f"checkpoints/{name}.safetensors"
        if damage == "missing":
            weights.unlink()
        else:
            weights.write_bytes(weights.read_bytes()[:200])
    assert_clean_error(run_cli("evaluate", str(run), "--iw-samples", "5"), "best.safetensors", damage)


def test_not_a_run_folder(tmp_path):
    assert_clean_error(run_cli("evaluate", str(tmp_path)), "not a vaekit run")


def test_unknown_config_key(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('dataset = "digits"\nlatent_dims = 4\n')
    assert_clean_error(run_cli("train", "--config", str(config), "--out", str(tmp_path / "r")),
                       "unknown key 'latent_dims'", "latent-dim")
    assert not (tmp_path / "r").exists()
