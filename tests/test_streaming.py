"""Image folders larger than memory: streamed splits, DataLoader workers and the memmap cache.

The folder is generated: 2,400 small grey PNGs in three class sub-folders. Streaming must give the
same splits, the same pixels and the same training run as loading the folder into memory.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from conftest import quick_config
from vaekit.data import load_dataset
from vaekit.data import memmap
from vaekit.data.batches import StreamedBatches
from vaekit.data.stream import LazyImages, memory_budget
from vaekit.errors import ConfigError, DataError
from vaekit.training.trainer import Trainer, resume, train

N_PER_CLASS = 800
SIDE = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three classes of 10x10 images: a bright square whose position depends on the class, plus noise."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for label, corner in enumerate(((1, 1), (1, 5), (5, 3))):
        (root / f"class{label}").mkdir()
        for i in range(N_PER_CLASS):
            pixels = rng.integers(0, 60, size=(SIDE, SIDE), dtype=np.uint8)
            r, c = corner[0] + rng.integers(0, 2), corner[1] + rng.integers(0, 2)
            pixels[r:r + 4, c:c + 4] = rng.integers(180, 256, size=(4, 4), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(root / f"class{label}" / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def in_memory(folder):
    return load_dataset(folder, stream="off")


def test_streamed_splits_are_the_in_memory_splits(folder, in_memory):
    streamed = load_dataset(folder, stream="on")
    assert isinstance(streamed.train.x, LazyImages) and streamed.train.x.shape == in_memory.train.x.shape
    assert isinstance(streamed.val.x, np.ndarray) and isinstance(streamed.test.x, np.ndarray)  # small: in memory
    assert len(streamed.train) + len(streamed.val) + len(streamed.test) == 3 * N_PER_CLASS
    for name in ("train", "val", "test"):
        a, b = streamed.split(name), in_memory.split(name)
        assert np.array_equal(a.y, b.y)
        assert np.array_equal(np.asarray(a.x), b.x)  # bit for bit: the same images in the same order
    lazy = streamed.train.x
    picks = np.array([17, 3, 900, 3])
    assert np.array_equal(lazy[picks], in_memory.train.x[picks])
    assert np.array_equal(lazy[5], in_memory.train.x[5])
    assert np.array_equal(lazy[10:20], in_memory.train.x[10:20])
    assert np.array_equal(lazy[torch.tensor([1, 2])], in_memory.train.x[[1, 2]])
    assert streamed.class_names == in_memory.class_names and streamed.sample_shape == (1, SIDE, SIDE)


def test_auto_streams_only_past_the_memory_budget(folder):
    assert isinstance(load_dataset(folder).train.x, np.ndarray)  # 2,400 tiny images fit any budget
    tiny = 50_000 / 1024 ** 3  # 50 kB: less than the folder's 0.96 MB decoded, more than one batch
    streamed = load_dataset(folder, max_memory=tiny)
    for split in (streamed.train, streamed.val, streamed.test):
        assert isinstance(split.x, LazyImages)  # val + test (0.19 MB) exceed it too: nothing loaded whole
    with pytest.raises(DataError, match="memory budget"):
        np.asarray(streamed.train.x)
    assert streamed.train.x[:5].shape == (5, 1, SIDE, SIDE)  # a batch at a time still works
    assert memory_budget(2.0) == 2 * 1024 ** 3 and memory_budget(None) > 0


def test_memmap_cache_is_built_once_and_follows_the_folder(folder, in_memory, monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    cached = load_dataset(folder, stream="on", cache="memmap")
    files = list((tmp_path / "cache" / "images").glob("*.npy"))
    assert len(files) == 1
    array = np.load(files[0], mmap_mode="r")
    assert array.dtype == np.uint8 and array.shape == (3 * N_PER_CLASS, 1, SIDE, SIDE)
    for name in ("train", "val", "test"):
        assert np.array_equal(np.asarray(cached.split(name).x), in_memory.split(name).x)
    assert not list((tmp_path / "cache" / "images").glob("*.tmp"))

    def refuse(*args, **kwargs):
        raise AssertionError("the cache was rebuilt although the folder did not change")

    monkeypatch.setattr(memmap, "_build", refuse)
    again = load_dataset(folder, cache="memmap")  # fits in memory: loaded from the cache, not the PNGs
    assert isinstance(again.train.x, np.ndarray) and np.array_equal(again.train.x, in_memory.train.x)
    monkeypatch.undo()
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    touched = folder / "class0" / "0000.png"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a changed file: a new fingerprint
    load_dataset(folder, stream="on", cache="memmap")
    rebuilt = list((tmp_path / "cache" / "images").glob("*.npy"))
    assert len(rebuilt) == 1 and rebuilt[0] != files[0]  # the stale cache is gone


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_training_equals_in_memory_training(folder, in_memory, workers):
    config = quick_config(dataset=str(folder), epochs=2, batch_size=100, workers=workers)
    streamed = load_dataset(folder, stream="on")
    reference = train(config, in_memory, None).history
    trainer = Trainer(config, streamed, None)
    assert isinstance(trainer.train_x, StreamedBatches)
    history = trainer.fit().history
    for a, b in zip(history, reference, strict=True):
        for key in ("train_loss", "train_recon", "train_kl", "val_loss"):
            assert a[key] == b[key], key  # the same batches in the same order, bit for bit


def test_streamed_run_resumes_like_an_uninterrupted_one(folder, tmp_path):
    streamed = load_dataset(folder, stream="on")
    full = train(quick_config(dataset=str(folder), epochs=2, stream="on", workers=0), streamed, tmp_path / "full").history
    train(quick_config(dataset=str(folder), epochs=1, stream="on", workers=0), streamed, tmp_path / "part")
    resumed = resume(tmp_path / "part", lambda config: load_dataset(folder, stream=config.stream), epochs=2).history
    assert resumed[-1]["train_loss"] == full[-1]["train_loss"] and resumed[-1]["val_loss"] == full[-1]["val_loss"]


def test_static_binarisation_needs_the_data_in_memory(folder):
    streamed = load_dataset(folder, stream="on")
    with pytest.raises(ConfigError, match="binarize static"):
        Trainer(quick_config(dataset=str(folder), binarize="static"), streamed, None)


def test_cli_trains_streamed_with_the_cache_and_evaluates(folder, tmp_path, monkeypatch, capsys):
    from vaekit.cli.app import main

    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "cache"))
    run = tmp_path / "run"
    code = main(["train", "--dataset", str(folder), "--stream", "on", "--cache", "memmap", "--workers", "1",
                 "--arch", "mlp", "--hidden", "32", "--latent-dim", "3", "--epochs", "1", "--batch-size", "200",
                 "--device", "cpu", "--out", str(run)])
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["stream"], config["cache"], config["workers"]) == ("on", "memmap", 1)
    assert main(["evaluate", str(run), "--iw-samples", "10", "--no-regularity"]) == 0
    result = json.loads((run / "eval.json").read_text())
    assert result["n"] == 240 and np.isfinite(result["nll"])
    assert main(["train", "--dataset", str(folder), "--stream", "sometimes", "--out", str(tmp_path / "bad")]) == 2
    assert "vaekit: error: unknown --stream 'sometimes'" in capsys.readouterr().err


def test_under_torchrun_each_rank_streams_only_its_share(folder, in_memory):
    from vaekit.data.batches import on_device
    from vaekit.training.distributed import Group, Launch

    streamed = load_dataset(folder, stream="on")
    config = quick_config(dataset=str(folder), batch_size=100, workers=0)
    n = len(streamed.train)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    seen = []
    for rank in range(2):
        group = Group(Launch(rank, 2, rank), torch.device("cpu"))
        reader = on_device(streamed.train.x, torch.device("cpu"), config, group)
        reader.start_epoch(order)
        for start in range(0, n, 100):
            index = group.part(order[start:start + 100]).index
            x = reader[index]
            assert torch.equal(x, torch.as_tensor(in_memory.train.x[index.numpy()]))
            seen.append(index)
        with pytest.raises(RuntimeError, match="start_epoch"):
            reader[index]  # the epoch's plan is used up
    assert torch.equal(torch.sort(torch.cat(seen)).values, torch.arange(n))  # the ranks together read the epoch once


def test_evaluation_of_splits_past_the_budget_fails_first_with_a_clear_error(folder, in_memory, monkeypatch):
    import vaekit.evaluation.evaluate as evaluation

    model = train(quick_config(dataset=str(folder), epochs=1, batch_size=200), in_memory, None).model
    calls, bound = [], evaluation.iw_estimates
    monkeypatch.setattr(evaluation, "iw_estimates", lambda *a, **k: calls.append(1) or bound(*a, **k))
    tiny = load_dataset(folder, max_memory=50_000 / 1024 ** 3, stream="on")  # every split streamed
    with pytest.raises(DataError, match="the test split .* memory budget"):  # not decoded image by image
        evaluation.evaluate_model(model, tiny, iw_samples=4, regularity=False)
    budget = 700_000 / 1024 ** 3  # the test split fits, the training split (0.78 MB) does not
    streamed = load_dataset(folder, max_memory=budget)
    assert isinstance(streamed.train.x, LazyImages) and isinstance(streamed.test.x, np.ndarray)
    with pytest.raises(DataError, match="the train split .* memory budget"):  # the PCA baseline needs it whole
        evaluation.evaluate_model(model, streamed, iw_samples=4, regularity=False)
    assert calls == []  # both refused before any image was evaluated
