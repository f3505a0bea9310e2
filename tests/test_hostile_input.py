"""Hostile sizes, flags and Python calls (issue 14): each is refused up front with one line that says
what is wrong (and, for sizes, the memory it would need), never a traceback or an exhausted machine.

The command line runs in this process (``vaekit.cli.app.main``) on a tiny digits VAE trained once
(tests/tiny_runs.py), so the whole file costs seconds.
"""
from __future__ import annotations

import gzip
import io
import json
import struct
import re
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

import vaekit
from conftest import quick_config
from tiny_runs import tiny_runs
from vaekit.cli.app import main
from vaekit.data import load_dataset
from vaekit.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def run_dir():
    return tiny_runs() / "digits-vae"


def refused(capsys, *args: str) -> str:
    """Run ``vaekit ARGS`` here; it must exit 2 with exactly one line, an error; returns that line."""
    code = main([str(arg) for arg in args])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("vaekit: error: "), err
    return lines[0]


# -- 11: hostile sizes ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["sample", "{run}", "-n", "100000000"], ["-n 100000000", "100,000,000 images", "GiB"]),
    (["interpolate", "{run}", "--steps", "100000000"], ["--steps 100000000", "GiB"]),
    (["interpolate", "{run}", "--grid", "0", "1", "2", "3", "--steps", "100000"], ["--steps 100000", "TiB"]),
    (["traverse", "{run}", "--steps", "10000000"], ["--steps 10000000", "20,000,001 images", "GiB"]),
    (["latent-map", "{run}", "--grid-size", "100000"], ["--grid-size 100000", "10,000,000,000 images", "TiB"]),
    (["sample", "{run}", "-n", "10001"], ["at most 10,000 images"]),
])
def test_figures_too_large_for_memory_are_refused_with_their_size(capsys, run_dir, args, words):
    line = refused(capsys, *[arg.format(run=run_dir) for arg in args])
    for word in words:
        assert word in line


def test_networks_too_large_for_memory_are_refused_before_allocation(capsys, tmp_path):
    line = refused(capsys, "train", "--dataset", "digits", "--hidden", "10000000000", "--epochs", "1",
                   "--device", "cpu", "--out", tmp_path / "huge")
    assert "parameters" in line and "--hidden" in line and "more than this machine's" in line and "TiB" in line


def test_an_iwae_k_too_large_for_memory_is_refused(capsys, tmp_path):
    line = refused(capsys, "train", "--dataset", "digits", "--model", "iwae", "--iw-k", "100000000", "--hidden", "16",
                   "--epochs", "1", "--device", "cpu", "--out", tmp_path / "iwae")
    assert "--iw-k 100000000" in line and "more than this machine's" in line


def test_iw_samples_too_large_for_memory_are_refused(capsys, run_dir):
    line = refused(capsys, "evaluate", run_dir, "--iw-samples", "10000000000", "--no-regularity", "--device", "cpu")
    assert "--iw-samples 10000000000" in line and "more than this machine's" in line
    assert not (run_dir / "eval.json").exists()


def test_a_networks_size_is_its_weights_bytes_against_this_machines_memory(monkeypatch):
    """On a (pretend) 1 MiB machine: digits' 64 values, a VAE with latent 2 (encoder output 4)."""
    import vaekit.limits
    from vaekit.limits import size_text

    def weights(hidden):        # Linear layers: (fan_in + 1) * fan_out, encoder 64 -> h -> 4, decoder 2 -> h -> 64
        return (64 + 1) * hidden + (hidden + 1) * 4 + (2 + 1) * hidden + (hidden + 1) * 64

    from vaekit.models import build_model

    monkeypatch.setattr(vaekit.limits, "physical_memory", lambda: 2 ** 20)
    assert 4 * weights(16) < 2 ** 20 < 4 * weights(4096)
    fits = build_model(quick_config(model="vae", latent_dim=2, hidden=[16]), (1, 8, 8))
    assert sum(p.numel() for p in fits.parameters()) == weights(16)
    expected = (f"the encoder and decoder's {weights(4096):,} float32 parameters (training needs about four times as "
                f"much again, for gradients and Adam's moments) needs {size_text(4 * weights(4096))}, more than this "
                "machine's 1 MiB of memory")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        build_model(quick_config(model="vae", latent_dim=2, hidden=[4096]), (1, 8, 8))


# -- 11: hostile data files ---------------------------------------------------------------------------
def npy_header(shape, descr="<f4") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def test_a_tiny_npy_whose_header_claims_373_gib_is_refused(tmp_path):
    path = tmp_path / "claims.npy"
    path.write_bytes(npy_header((100_000, 1000, 1000)) + b"\0" * 64)          # 192 bytes, as in the issue
    assert path.stat().st_size == 192
    with pytest.raises(DataError, match=r"truncated .* shape \(100000, 1000, 1000\) of float32 \(373 GiB\)"):
        load_dataset(str(path))


def test_an_npz_member_whose_header_claims_too_much_is_refused(tmp_path):
    path = tmp_path / "claims.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", npy_header((10 ** 6, 10 ** 6)) + b"\0" * 100)
    with pytest.raises(DataError, match=r"claims.npz\['x'\] announces an array of shape \(1000000, 1000000\)"):
        load_dataset(str(path))


def test_an_array_larger_than_memory_is_refused_naming_both(tmp_path, monkeypatch):
    import vaekit.limits
    from vaekit.limits import size_text

    np.save(tmp_path / "x.npy", np.zeros((1000, 8, 8), np.uint8))
    needed = 64_000 + 2 * 64_000 * 4                                 # the bytes, and two float32 copies
    monkeypatch.setattr(vaekit.limits, "physical_memory", lambda: 2 ** 19)
    with pytest.raises(DataError, match=re.escape(f"needs {size_text(needed)}, more than this machine's 512 KiB of memory")):
        load_dataset(str(tmp_path / "x.npy"))
    monkeypatch.setattr(vaekit.limits, "physical_memory", lambda: 2 ** 20)
    assert len(load_dataset(str(tmp_path / "x.npy")).train) > 0


def idx_header(*shape: int) -> bytes:
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


def write_mnist(folder, images: bytes):
    """An MNIST folder whose training images are ``images`` (gzip); the other three files are fine."""
    folder.mkdir()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(images)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(4) + bytes(4)))
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(4, 2, 2) + bytes(16)))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_header(4) + bytes(4)))


def test_a_gzip_idx_bomb_is_refused_after_reading_what_its_header_announces(tmp_path):
    compressor = zlib.compressobj(9, wbits=31)                       # wbits 31: gzip framing
    zeros = bytes(2 ** 20)
    bomb = compressor.compress(idx_header(4, 2, 2) + bytes(16))     # 4 images of 2x2, as announced...
    bomb += b"".join(compressor.compress(zeros) for _ in range(64)) + compressor.flush()   # ...then 64 MiB more
    assert len(bomb) < 200_000
    write_mnist(tmp_path / "mnist", bomb)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match="more than 1048576 bytes beyond the 16 bytes of data its header announces"):
            load_dataset("mnist", data_dir=tmp_path / "mnist", download=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2 ** 20            # the 64 MiB were never decompressed whole


def test_an_idx_header_announcing_more_than_memory_is_refused_before_reading(tmp_path):
    write_mnist(tmp_path / "mnist", gzip.compress(idx_header(60_000, 60_000, 60_000)))
    with pytest.raises(DataError, match=r"60000x60000x60000 = 216000000000000 bytes .* more than this machine's"):
        load_dataset("mnist", data_dir=tmp_path / "mnist", download=False)


# -- 13: flags ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_kl_warmup_must_be_a_finite_number_of_epochs(capsys, tmp_path, value):
    line = refused(capsys, "train", "--dataset", "digits", "--kl-warmup", value, "--epochs", "1", "--out", tmp_path / "r")
    assert "--kl-warmup must be a finite number of epochs >= 0" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, words", [
    (["sample", "{run}", "--seed", "-1"], "--seed must be a whole number from 0 to 4294967295, not -1"),
    (["interpolate", "{run}", "--seed", str(2 ** 40)], "--seed must be a whole number"),
    (["reconstruct", "{run}", "--out", "{tmp}/fig.txt"], ".txt is not an image format: write a figure as .png"),
    (["reconstruct", "{run}", "--out", "{tmp}"], "cannot write the figure to"),
    (["traverse", "{run}", "--range", "inf"], "a finite --range > 0"),
    (["traverse", "{run}", "--range", "nan"], "a finite --range > 0"),
    (["arithmetic", "{run}", "--plus=--1", "--minus", "1"], "unknown class '--1'"),
    (["arithmetic", "{run}", "--plus", "²", "--minus", "1"], "unknown class '²'"),
])
def test_bad_flags_are_one_line_errors(capsys, run_dir, tmp_path, args, words):
    line = refused(capsys, *[arg.format(run=run_dir, tmp=tmp_path) for arg in args])
    assert words in line
    assert not (tmp_path / "fig.txt").exists()


def test_figures_may_be_written_in_other_formats(capsys, run_dir, tmp_path):
    assert main(["reconstruct", str(run_dir), "-n", "3", "--out", str(tmp_path / "fig.svg")]) == 0
    assert (tmp_path / "fig.svg").read_text().lstrip().startswith("<?xml")


# -- 14: the Python API -------------------------------------------------------------------------------
def test_train_takes_lists_and_tensors(digits_dataset):
    x = digits_dataset.train.x[:120, 0]
    from_list = vaekit.train(x.tolist(), model="ae", hidden=[8], latent_dim=2, epochs=1, out=None)
    from_tensor = vaekit.train(torch.as_tensor(x), y=torch.as_tensor(digits_dataset.train.y[:120]), model="ae",
                               hidden=[8], latent_dim=2, epochs=1, out=None)
    for result in (from_list, from_tensor):
        assert result.model.sample_shape == (1, 8, 8)
    assert from_tensor.model.class_names is not None


@pytest.mark.parametrize("data, error, words", [
    (object(), ConfigError, "not object"),
    ([[0.5, 0.5], [0.5]], DataError, "cannot be made into one array"),
    ("x" * 5000, DataError, "cannot be a path"),
])
def test_train_refuses_what_is_not_data_in_one_short_line(data, error, words):
    with pytest.raises(error, match=words) as caught:
        vaekit.train(data, epochs=1, out=None)
    assert len(str(caught.value)) < 400 and "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("device, words", [("cuda", "sees no CUDA GPU"), ("cuda:3", "sees no CUDA GPU"),
                                           ("gpu", "unknown device 'gpu'")])
def test_load_on_a_device_this_machine_lacks_is_a_config_error(run_dir, device, words):
    with pytest.raises(ConfigError, match=words):
        vaekit.load(run_dir, device=device)


def test_iw_samples_must_be_a_whole_number(run_dir, digits_dataset):
    from vaekit.evaluation.evaluate import evaluate_model

    model = vaekit.load(run_dir)
    with pytest.raises(ConfigError, match="--iw-samples must be a whole number of importance samples, not 1.5"):
        evaluate_model(model, digits_dataset, iw_samples=1.5, regularity=False)
    with pytest.raises(ConfigError, match="--iw-samples must be at least 1"):
        evaluate_model(model, digits_dataset, iw_samples=0, regularity=False)
    assert evaluate_model(model, digits_dataset, iw_samples=2.0, regularity=False).iw_samples == 2


# -- 17: arrays into the model --------------------------------------------------------------------------
def test_encode_and_decode_take_numpy_arrays(run_dir, digits_dataset):
    model = vaekit.load(run_dir)
    x = digits_dataset.test.x[:5]
    with torch.no_grad():
        expected = model.encode(torch.as_tensor(x))
        got = model.encode(x.astype(np.float64))                    # converted to the model's dtype
        torch.testing.assert_close(got.mean, expected.mean)
        torch.testing.assert_close(model.decode(got.mean.numpy()), model.decode(expected.mean))
        with pytest.raises(DataError, match=r"shaped \(B, 1, 8, 8\), not \(1, 8, 8\) \(one sample: add a batch axis"):
            model.encode(x[0])
        with pytest.raises(DataError, match="not uint8 .divide 8-bit pixels by 255"):
            model.encode((x * 255).astype(np.uint8))
        with pytest.raises(DataError, match="takes a torch tensor or a NumPy array of numbers, not str"):
            model.encode("images")


# -- 15: a truncated PNG under --cache memmap ------------------------------------------------------------
def test_a_truncated_png_is_skipped_by_the_memmap_cache_as_in_memory(tmp_path, caplog):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / label / f"{i}.png")
    damaged = folder / "b" / "3.png"
    damaged.write_bytes(damaged.read_bytes()[:-30])                 # header intact, pixel data cut short
    with Image.open(damaged) as image:
        assert image.size == (8, 8)                                  # readable header: not skipped when listed
    in_memory = load_dataset(str(folder), cache="none")
    cached = load_dataset(str(folder), cache="memmap")
    again = load_dataset(str(folder), cache="memmap")                # from the cache: nothing decoded
    assert in_memory.skipped == cached.skipped == again.skipped == ("b/3.png",)
    for dataset in (cached, again):
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(dataset.split(part).x, in_memory.split(part).x)
            np.testing.assert_array_equal(dataset.split(part).y, in_memory.split(part).y)
    assert "Traceback" not in caplog.text


def test_json_written_beside_the_cache_lists_the_skipped_rows(tmp_path):
    from vaekit.cache import cache_root

    folder = tmp_path / "loose"
    folder.mkdir()
    for i in range(5):
        Image.fromarray(np.full((4, 4), i * 40, np.uint8)).save(folder / f"{i}.png")
    (folder / "2.png").write_bytes((folder / "2.png").read_bytes()[:-20])
    load_dataset(str(folder), cache="memmap")
    [listing] = [path for path in (cache_root() / "images").glob("loose-*.json")]
    assert json.loads(listing.read_text())["unreadable"] == [2]


def test_a_truncated_png_met_while_streaming_is_one_line_naming_it(tmp_path):
    """Streamed without a cache, a file is first decoded by a DataLoader worker during training; its
    error used to reach the user wrapped in the worker's traceback."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "streamed"
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / label / f"{i}.png")
    from vaekit.data.splits import split_indices

    files = sorted(folder.rglob("*.png"))
    train_positions = split_indices(len(files), seed=0, val_fraction=0.1, test_fraction=0.1)[0]
    damaged = files[int(train_positions[0])]            # in the training split, which alone is streamed
    damaged.write_bytes(damaged.read_bytes()[:-30])
    with pytest.raises(DataError) as caught:
        vaekit.train(str(folder), stream="on", workers=1, hidden=[8], latent_dim=2, epochs=1, batch_size=8,
                     device="cpu", out=None)
    message = str(caught.value)
    assert damaged.name in message and "\n" not in message and "Traceback" not in message
