"""Tests for vaekit.data: IDX parsing, file search order, downloads, NumPy files, image folders, splits.

Everything runs on tiny files written here; downloads are served by an http.server thread on
127.0.0.1. No test touches the real network, the user's cache or $VAEKIT_DATA_DIR.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from vaekit.data import Dataset, DatasetInfo, Split, dataset_names, list_datasets, load_dataset
from vaekit.data import builtin, download, sources
from vaekit.data.splits import split_indices, split_sizes
from vaekit.errors import ConfigError, DataError

REAL_DPKG_LISTING = sources.dpkg_listing
STEMS = sources.IDX_STEMS


# ----------------------------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Point HOME and the cache into tmp_path, hide dpkg, unset our variables, make retries instant."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("VAEKIT_DATA_DIR", "VAEKIT_MNIST_URL", "VAEKIT_FASHION_MNIST_URL", "http_proxy",
                 "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sources, "dpkg_listing", lambda package: [])
    monkeypatch.setattr(download, "RETRY_DELAYS_S", (0.0, 0.0))


def idx_bytes(array: np.ndarray, *, type_code: int = 0x08, ndim: int | None = None) -> bytes:
    """Encode ``array`` as IDX: two zero bytes, type code, ndim, big-endian uint32 sizes, payload."""
    ndim = array.ndim if ndim is None else ndim
    header = bytes([0, 0, type_code, ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_idx_arrays(n_train: int = 20, n_test: int = 6, rows: int = 4, cols: int = 3, seed: int = 1):
    """Images whose pixel [0, 0] is a unique id (train 0.., test 100..), labels = id % 10."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n, first_id in (("train", n_train, 0), ("test", n_test, 100)):
        images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
        images[:, 0, 0] = np.arange(first_id, first_id + n)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = (np.arange(first_id, first_id + n) % 10).astype(np.uint8)
    return arrays


def write_idx_set(folder: Path, arrays=None, *, compress: bool = True) -> dict:
    """Write the four IDX files into ``folder``; return the arrays."""
    arrays = make_idx_arrays() if arrays is None else arrays
    folder.mkdir(parents=True, exist_ok=True)
    for role, stem in STEMS.items():
        data = idx_bytes(arrays[role])
        if compress:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / stem).write_bytes(data)
    return arrays


def ids(split: Split) -> np.ndarray:
    """The unique ids stored in pixel [0, 0] by make_idx_arrays."""
    return np.rint(split.x[:, 0, 0, 0] * 255).astype(int)


def save_image(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    (image.convert(mode) if mode else image).save(path)


def gray(value: int, size=(6, 5)) -> np.ndarray:
    return np.full(size, value, dtype=np.uint8)


@pytest.fixture
def http_server(tmp_path):
    """A static file server on 127.0.0.1 that can fail chosen files with HTTP 503 a number of times."""
    root = tmp_path / "www"
    root.mkdir()
    state = SimpleNamespace(root=root, failures={}, requests=[])

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            name = self.path.lstrip("/")
            state.requests.append(name)
            if state.failures.get(name, 0) > 0:
                state.failures[name] -= 1
                self.send_error(503, "try again")
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/"
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


# ----------------------------------------------------------------------------------------------
# IDX files
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    arrays = write_idx_set(tmp_path / "data", compress=compress)
    dataset = load_dataset("mnist", data_dir=tmp_path / "data", val_fraction=0.25)
    assert dataset.sample_shape == (1, 4, 3)
    assert dataset.class_names == [str(d) for d in range(10)]
    assert dataset.quantized_8bit
    assert dataset.source == str(tmp_path / "data")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (15, 5, 6)
    np.testing.assert_array_equal(dataset.test.x[:, 0], arrays["test_images"] / np.float32(255))
    np.testing.assert_array_equal(dataset.test.y, arrays["test_labels"])
    for split in (dataset.train, dataset.val):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        np.testing.assert_array_equal(split.x[:, 0] * 255, arrays["train_images"][ids(split)])
        np.testing.assert_array_equal(split.y, ids(split) % 10)
    assert sorted(np.concatenate([ids(dataset.train), ids(dataset.val)])) == list(range(20))


def test_idx_official_split_is_seeded(tmp_path):
    write_idx_set(tmp_path)
    first = load_dataset("mnist", data_dir=tmp_path, seed=3)
    again = load_dataset("mnist", data_dir=tmp_path, seed=3)
    other = load_dataset("mnist", data_dir=tmp_path, seed=4)
    np.testing.assert_array_equal(ids(first.val), ids(again.val))
    assert set(ids(first.val)) != set(ids(other.val))
    assert not set(ids(first.val)) & set(ids(first.train))


def corrupt_bad_gzip(folder):
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b" + b"not really gzip data")
    return "train-images-idx3-ubyte.gz", "not a valid gzip"


def corrupt_cut_gzip(folder):
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    return path.name, "not a valid gzip"


def corrupt_gz_name_plain_content(folder):
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(idx_bytes(np.zeros(6, np.uint8)))
    return "t10k-labels-idx1-ubyte.gz", "not a valid gzip"


def corrupt_wrong_magic(folder):  # a label file where images belong
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(20, np.uint8))))
    return "train-images-idx3-ubyte.gz", "magic number 0x00000801"


def corrupt_not_idx(folder):
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"<html>Not Found</html>"))
    return "t10k-images-idx3-ubyte.gz", "magic number"


def corrupt_type_code(folder):
    data = idx_bytes(np.zeros((20, 4, 3), np.uint8), type_code=0x0D)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))
    return "train-images-idx3-ubyte.gz", "data type code 0x0d"


def corrupt_truncated(folder):
    data = idx_bytes(np.zeros((20, 4, 3), np.uint8))[:-5]
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))
    return "train-images-idx3-ubyte.gz", "truncated"


def corrupt_extra_bytes(folder):
    data = idx_bytes(np.zeros(6, np.uint8)) + b"\x00\x00"
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(data))
    return "t10k-labels-idx1-ubyte.gz", "2 bytes too many"


def corrupt_header_only(folder):
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08"))
    return "train-labels-idx1-ubyte.gz", "truncated"


def corrupt_count_mismatch(folder):
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(19, np.uint8))))
    return "train-labels-idx1-ubyte.gz", "holds 20 images but"


@pytest.mark.parametrize("corrupt", [
    corrupt_bad_gzip, corrupt_cut_gzip, corrupt_gz_name_plain_content, corrupt_wrong_magic, corrupt_not_idx,
    corrupt_type_code, corrupt_truncated, corrupt_extra_bytes, corrupt_header_only, corrupt_count_mismatch,
])
def test_idx_corruption_is_a_helpful_data_error(tmp_path, corrupt):
    write_idx_set(tmp_path)
    file_name, problem = corrupt(tmp_path)
    with pytest.raises(DataError) as caught:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    message = str(caught.value)
    assert file_name in message and problem in message
    assert "delete" in message and "--data-dir" in message and "\n" not in message


def test_idx_labels_beyond_class_count(tmp_path):
    arrays = make_idx_arrays()
    arrays["test_labels"][0] = 10
    write_idx_set(tmp_path, arrays)
    with pytest.raises(DataError, match="label 10 but mnist has only 10 classes"):
        load_dataset("mnist", data_dir=tmp_path)


# ----------------------------------------------------------------------------------------------
# Where named data sets come from
# ----------------------------------------------------------------------------------------------

def test_search_order(tmp_path, monkeypatch):
    given = tmp_path / "given"
    env = tmp_path / "env"
    cache = tmp_path / "cache" / "vaekit" / "datasets" / "fashion-mnist"
    debian = tmp_path / "usr" / "share" / "fm"
    for folder, n_train in ((given / "fashion-mnist", 11), (env, 12), (cache, 13), (debian, 14)):
        write_idx_set(folder, make_idx_arrays(n_train=n_train))
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(env))
    listing = ["/.", str(debian.parent), str(debian), str(tmp_path / "doc" / "README.md.gz")]
    listing += [str(debian / f"{stem}.gz") for stem in STEMS.values()]
    monkeypatch.setattr(sources, "dpkg_listing",
                        lambda package: listing if package == "dataset-fashion-mnist" else [])

    def train_size(**kwargs):
        dataset = load_dataset("fashion-mnist", download=False, **kwargs)
        return len(dataset.train) + len(dataset.val), dataset.source

    assert train_size(data_dir=given) == (11, str(given / "fashion-mnist"))  # data_dir/<name>/
    assert train_size() == (12, str(env))  # $VAEKIT_DATA_DIR, files directly inside
    monkeypatch.delenv("VAEKIT_DATA_DIR")
    assert train_size() == (13, str(cache))
    for path in cache.iterdir():
        path.unlink()
    size, source = train_size()
    assert size == 14 and source.startswith(str(debian)) and "dataset-fashion-mnist" in source
    assert [info.where for info in list_datasets() if info.name == "fashion-mnist"] == [source]


def test_partial_folder_is_skipped(tmp_path, monkeypatch, caplog):
    write_idx_set(tmp_path / "partial")
    (tmp_path / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    write_idx_set(tmp_path / "env")
    monkeypatch.setenv("VAEKIT_DATA_DIR", str(tmp_path / "env"))
    with caplog.at_level(logging.WARNING, logger="vaekit.data"):
        dataset = load_dataset("mnist", data_dir=tmp_path / "partial", download=False)
    assert dataset.source == str(tmp_path / "env")
    assert "only 3 of the 4" in caplog.text


def test_not_found_without_download(tmp_path, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")  # the default, ~/.cache, with HOME in tmp_path
    with pytest.raises(DataError) as caught:
        load_dataset("fashion-mnist", data_dir=tmp_path / "nowhere", download=False)
    message = str(caught.value)
    assert message.startswith("fashion-mnist not found in --data-dir")
    for expected in ("$VAEKIT_DATA_DIR", "~/.cache/vaekit/datasets/fashion-mnist",
                     "dataset-fashion-mnist Debian package", "downloading is off",
                     "apt-get install dataset-fashion-mnist", "--data-dir DIR"):
        assert expected in message


def test_dpkg_missing_is_tolerated(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dpkg executable here
    assert REAL_DPKG_LISTING("dataset-fashion-mnist") == []


def test_list_datasets(tmp_path):
    write_idx_set(tmp_path / "mnist")
    infos = {info.name: info for info in list_datasets(tmp_path)}
    assert list(infos) == dataset_names() == ["fashion-mnist", "mnist", "digits", "dsprites", "dsprites-small",
                                             "breast-cancer", "wine"]
    assert all(isinstance(info, DatasetInfo) and info.description for info in infos.values())
    assert infos["mnist"].available and infos["mnist"].where == str(tmp_path / "mnist")
    assert not infos["fashion-mnist"].available
    assert infos["fashion-mnist"].where == "download from http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    assert infos["digits"].available and infos["digits"].where == "scikit-learn (bundled)"


# ----------------------------------------------------------------------------------------------
# Downloads (served locally)
# ----------------------------------------------------------------------------------------------

def serve_idx_set(server, monkeypatch, *, set_checksums: bool = True):
    arrays = write_idx_set(server.root)
    monkeypatch.setenv("VAEKIT_MNIST_URL", server.url)
    if set_checksums:
        for path in server.root.iterdir():
            monkeypatch.setitem(builtin.MNIST.source.md5, path.name, hashlib.md5(path.read_bytes()).hexdigest())
    return arrays


def test_download_with_checksum_progress_and_cache(tmp_path, monkeypatch, http_server):
    arrays = serve_idx_set(http_server, monkeypatch)
    calls = []
    dataset = load_dataset("mnist", progress=lambda done, total: calls.append((done, total)))
    cache = tmp_path / "cache" / "vaekit" / "datasets" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{stem}.gz" for stem in STEMS.values())
    assert dataset.source == f"{cache} (downloaded from {http_server.url})"
    np.testing.assert_array_equal(dataset.test.y, arrays["test_labels"])
    sizes = {(tmp_path / "www" / name).stat().st_size for name in http_server.requests}
    assert calls[0][0] == 0 and all(total in sizes for _, total in calls)
    assert {done for done, total in calls if done == total} == sizes
    served = len(http_server.requests)
    again = load_dataset("mnist", download=False)  # now from the cache, no request
    assert len(http_server.requests) == served == 4 and again.source == str(cache)


def test_download_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch, http_server):
    serve_idx_set(http_server, monkeypatch, set_checksums=False)  # the official MNIST checksums won't match
    with pytest.raises(DataError) as caught:
        load_dataset("mnist")
    message = str(caught.value)
    assert "download failed" in message and "checksum mismatch" in message and "--data-dir" in message
    cache = tmp_path / "cache" / "vaekit" / "datasets" / "mnist"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_retries_transient_failure(tmp_path, monkeypatch, http_server, caplog):
    serve_idx_set(http_server, monkeypatch)
    http_server.failures["train-labels-idx1-ubyte.gz"] = 2
    with caplog.at_level(logging.WARNING, logger="vaekit.data"):
        dataset = load_dataset("mnist")
    assert len(dataset.test) == 6
    assert http_server.requests.count("train-labels-idx1-ubyte.gz") == 3
    assert "retrying" in caplog.text


def test_download_gives_up_after_three_tries(tmp_path, monkeypatch, http_server):
    serve_idx_set(http_server, monkeypatch)
    http_server.failures["train-images-idx3-ubyte.gz"] = 5
    with pytest.raises(DataError, match="HTTP 503"):
        load_dataset("mnist")
    assert http_server.requests.count("train-images-idx3-ubyte.gz") == 3


def test_download_tries_next_mirror_and_only_missing_files(tmp_path, monkeypatch, http_server):
    serve_idx_set(http_server, monkeypatch)
    monkeypatch.delenv("VAEKIT_MNIST_URL")
    source = sources.IdxSource("mnist", (http_server.url + "missing/", http_server.url), builtin.MNIST.source.md5)
    cache = tmp_path / "cache" / "vaekit" / "datasets" / "mnist"
    cache.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        (cache / name).write_bytes((http_server.root / name).read_bytes())
    files, where = sources.obtain(source)
    assert sorted(http_server.requests) == ["missing/t10k-labels-idx1-ubyte.gz", "missing/train-labels-idx1-ubyte.gz",
                                            "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert set(files.values()) == set(cache.iterdir()) and where.endswith(f"(downloaded from {http_server.url})")


# ----------------------------------------------------------------------------------------------
# NumPy files
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, sample_shape", [
    ((10, 5, 4), (1, 5, 4)), ((10, 1, 5, 4), (1, 5, 4)), ((10, 3, 5, 4), (3, 5, 4)), ((10, 7), (7,)),
])
def test_npy_shapes(tmp_path, shape, sample_shape):
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    dataset = load_dataset(str(tmp_path / "x.npy"))
    assert dataset.sample_shape == sample_shape and dataset.name == str(tmp_path / "x.npy")
    assert dataset.train.y is None and dataset.class_names is None and dataset.quantized_8bit
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (8, 1, 1)
    everything = np.concatenate([dataset.train.x, dataset.val.x, dataset.test.x])
    assert everything.dtype == np.float32 and everything.shape == (10, *sample_shape)
    assert sorted(everything.reshape(10, -1).tolist()) == sorted((pixels.reshape(10, -1) / np.float32(255)).tolist())


@pytest.mark.parametrize("values, quantized", [
    (np.arange(12, dtype=np.float64).reshape(4, 3) / 255, True),
    (np.linspace(0, 1, 12, dtype=np.float32).reshape(4, 3), False),
    (np.eye(4, dtype=bool), True),
])
def test_npy_value_types(tmp_path, values, quantized):
    np.save(tmp_path / "v.npy", values)
    dataset = load_dataset(tmp_path / "v.npy")
    assert dataset.quantized_8bit is quantized
    assert 0 <= dataset.train.x.min() and dataset.train.x.max() <= 1 and dataset.train.x.dtype == np.float32


def test_npy_nan_and_inf_are_counted_and_located(tmp_path):
    values = np.full((30, 2, 2), 0.5)
    values[17, 1, 0] = values[20, 0, 0] = values[29, 1, 1] = np.nan
    values[25, 0, 1] = np.inf
    np.save(tmp_path / "x.npy", values)
    with pytest.raises(DataError, match=r"x\.npy contains 3 NaN values and 1 infinite value "
                                        r"\(first at index 17, element \[17, 1, 0\]\)"):
        load_dataset(str(tmp_path / "x.npy"))


@pytest.mark.parametrize("array, expected", [
    (np.full((5, 4), 2.0), "every feature column is constant"),
    (np.zeros((5, 4), np.complex64), "not numeric"),
    (np.zeros(5), "1 dimensions"),
    (np.zeros((5, 2, 2, 2, 2)), "5 dimensions"),
    (np.zeros((5, 8, 8, 3)), r"channels-last\? use x.transpose\(0, 3, 1, 2\)"),
    (np.zeros((0, 4)), "holds no samples"),
    (np.zeros((5, 0)), "empty samples"),
    (np.array([[0.5], [None]], dtype=object), "Python objects.*allow_pickle=False"),
])
def test_npy_rejections(tmp_path, array, expected):
    np.save(tmp_path / "bad.npy", array, allow_pickle=True)
    with pytest.raises(DataError, match=expected):
        load_dataset(str(tmp_path / "bad.npy"))


def test_too_few_samples(tmp_path):
    np.save(tmp_path / "two.npy", np.zeros((2, 3), np.uint8))
    with pytest.raises(DataError, match="only 2 sample"):
        load_dataset(str(tmp_path / "two.npy"))


@pytest.mark.parametrize("name, content, expected", [
    ("junk.npy", b"hello, not numpy", "not a NumPy .npy file"),
    ("junk.npz", b"hello, not a zip", r"not a NumPy .npz \(zip\) archive"),
    ("cut.npz", b"PK\x03\x04 truncated", "damaged"),
])
def test_unreadable_array_files(tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=expected):
        load_dataset(str(tmp_path / name))


def test_npz_with_labels(tmp_path):
    x = np.arange(40, dtype=np.uint8).reshape(10, 2, 2)
    y = np.array([7, 3, 3, 7, 9, 3, 7, 9, 9, 3])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    dataset = load_dataset(str(tmp_path / "d.npz"), seed=5)
    assert dataset.class_names == ["3", "7", "9"] and dataset.sample_shape == (1, 2, 2)
    for split in (dataset.train, dataset.val, dataset.test):
        sample_ids = np.rint(split.x[:, 0, 0, 0] * 255).astype(int) // 4
        assert [dataset.class_names[label] for label in split.y] == [str(y[i]) for i in sample_ids]


def test_npz_string_labels(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((6, 3)), y=np.array(["b", "a", "c", "a", "b", "c"]))
    dataset = load_dataset(str(tmp_path / "s.npz"))
    assert dataset.class_names == ["a", "b", "c"] and dataset.train.y.dtype == np.int64


@pytest.mark.parametrize("arrays, expected", [
    ({"images": np.zeros((4, 3))}, r"no array named 'x' \(arrays present: images\)"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(3, np.int64)}, r"shape \(3,\) but must hold one label per sample"),
    ({"x": np.zeros((4, 3)), "y": np.zeros(4)}, "labels must be integers"),
    ({"x": np.zeros((4, 3)), "y": np.array([{}, {}, {}, {}], dtype=object)}, "Python objects"),
])
def test_npz_rejections(tmp_path, arrays, expected):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=expected):
        load_dataset(str(tmp_path / "bad.npz"))


# ----------------------------------------------------------------------------------------------
# Image folders
# ----------------------------------------------------------------------------------------------

def test_image_folder_with_class_subfolders(tmp_path):
    for i in range(4):
        save_image(tmp_path / "imgs" / "dog" / f"{i}.png", gray(10 + i))
        save_image(tmp_path / "imgs" / "cat" / "deeper" / f"{i}.JPG", gray(200), mode="L")
    save_image(tmp_path / "imgs" / "bird" / "only.jpeg", gray(100), mode="L")
    (tmp_path / "imgs" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / "dog" / "labels.csv").write_text("a,b\n")
    (tmp_path / "imgs" / "empty").mkdir()
    dataset = load_dataset(str(tmp_path / "imgs"))
    assert dataset.class_names == ["bird", "cat", "dog"] and dataset.skipped == ()
    assert dataset.sample_shape == (1, 6, 5) and dataset.quantized_8bit
    splits = [dataset.train, dataset.val, dataset.test]
    assert sum(map(len, splits)) == 9 and all(len(split) for split in splits)
    for split in splits:
        for sample, label in zip(split.x, split.y):
            value = round(float(sample.mean()) * 255)
            assert dataset.class_names[label] == ("dog" if value < 20 else "cat" if value > 150 else "bird")


def test_image_folder_unlabelled_rgb_resized(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        save_image(tmp_path / f"{i}.png", rng.integers(0, 256, (8 + i, 8, 3), dtype=np.uint8))
    save_image(tmp_path / "alpha.png", rng.integers(0, 256, (6, 6, 4), dtype=np.uint8))  # RGBA: alpha dropped
    save_image(tmp_path / "gray.png", gray(50))
    dataset = load_dataset(str(tmp_path), image_size=4)
    assert dataset.class_names is None and dataset.train.y is None
    assert dataset.sample_shape == (3, 4, 4) and dataset.train.x.dtype == np.float32
    default = load_dataset(str(tmp_path))  # mixed sizes and no image_size: 64 x 64
    assert default.sample_shape == (3, 64, 64)


def test_image_folder_grayscale_modes(tmp_path):
    save_image(tmp_path / "a.png", gray(128, (5, 6)))
    save_image(tmp_path / "b.png", np.full((5, 6), 65535, dtype=np.uint16))  # 16-bit: scaled, not clipped
    save_image(tmp_path / "c.png", np.eye(5, 6, dtype=bool))  # mode "1"
    save_image(tmp_path / "d.png", np.zeros((5, 6, 2), np.uint8))  # "LA"
    dataset = load_dataset(str(tmp_path), val_fraction=0.25, test_fraction=0.25)
    assert dataset.sample_shape == (1, 5, 6)
    means = sorted(float(x.mean()) * 255 for split in ("train", "val", "test") for x in dataset.split(split).x)
    np.testing.assert_allclose(means, [0, 255 * 5 / 30, 128, 255], atol=1e-3)


def test_image_folder_skips_corrupt_files(tmp_path, caplog):
    for i in range(5):
        save_image(tmp_path / "ok" / f"{i}.png", gray(i))
    (tmp_path / "ok" / "broken.png").write_bytes(b"definitely not a png")
    good = (tmp_path / "ok" / "0.png").read_bytes()
    (tmp_path / "ok" / "cut.png").write_bytes(good[: len(good) // 2])  # valid header, truncated pixels
    with caplog.at_level(logging.WARNING, logger="vaekit.data"):
        dataset = load_dataset(str(tmp_path / "ok"))
    assert dataset.skipped == ("broken.png", "cut.png")
    assert sum(len(dataset.split(name)) for name in ("train", "val", "test")) == 5
    assert "Skipped 2 unreadable image file(s)" in caplog.text and "broken.png" in caplog.text


def test_folder_of_only_corrupt_images(tmp_path):
    for name in ("a.png", "b.jpg", "c.JPEG"):
        (tmp_path / name).write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"no readable image in .*all 3 PNG/JPEG files failed"):
        load_dataset(str(tmp_path))


def test_folder_rejections(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match="holds no .png, .jpg or .jpeg images"):
        load_dataset(str(tmp_path / "empty"))
    save_image(tmp_path / "mixed" / "loose.png", gray(1))
    save_image(tmp_path / "mixed" / "class" / "a.png", gray(1))
    with pytest.raises(DataError, match="move the loose images into a sub-folder"):
        load_dataset(str(tmp_path / "mixed"))


def test_unknown_names_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="unknown dataset 'cifar': use one of fashion-mnist, mnist, digits"):
        load_dataset("cifar")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    (tmp_path / "table.xlsx").write_text("1,2\n")
    with pytest.raises(DataError, match="neither a folder, a .npy or .npz file nor a .csv, .tsv or .parquet table"):
        load_dataset("table.xlsx")
    (tmp_path / "table.csv").write_text("1,2\n")          # a header and no rows
    with pytest.raises(DataError, match="table.csv has no rows"):
        load_dataset("table.csv")


def test_bad_arguments_are_config_errors():
    for kwargs in ({"val_fraction": 0}, {"test_fraction": 1.5}, {"val_fraction": 0.6, "test_fraction": 0.4},
                   {"image_size": 0}, {"image_size": 2.5}):
        with pytest.raises(ConfigError):
            load_dataset("digits", **kwargs)


# ----------------------------------------------------------------------------------------------
# digits, splits, the Dataset object
# ----------------------------------------------------------------------------------------------

def test_digits():
    dataset = load_dataset("digits", val_fraction=0.2, test_fraction=0.2)
    sizes = [len(dataset.split(name)) for name in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == 359
    assert dataset.sample_shape == (1, 8, 8) and dataset.train.x.shape[1:] == (1, 8, 8)
    assert dataset.class_names == [str(d) for d in range(10)] and not dataset.quantized_8bit
    assert dataset.train.x.min() == 0 and dataset.train.x.max() == 1 and dataset.source == "scikit-learn (bundled)"
    assert np.allclose(dataset.train.x * 16, np.rint(dataset.train.x * 16))
    np.testing.assert_array_equal(load_dataset("Digits").test.x, load_dataset("digits").test.x)  # any case


def test_splits_are_seeded_and_disjoint():
    first = split_indices(100, seed=7, val_fraction=0.1, test_fraction=0.2)
    again = split_indices(100, seed=7, val_fraction=0.1, test_fraction=0.2)
    other = split_indices(100, seed=8, val_fraction=0.1, test_fraction=0.2)
    assert [len(part) for part in first] == [70, 10, 20]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
    assert sorted(np.concatenate(first).tolist()) == list(range(100))


def test_dataset_splits_are_seeded_with_aligned_labels(tmp_path):
    x = np.arange(50, dtype=np.uint8)[:, None].repeat(3, axis=1)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(50) % 5)
    first, again, other = (load_dataset(str(tmp_path / "d.npz"), seed=s) for s in (1, 1, 2))
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(first.split(name).x, again.split(name).x)
        np.testing.assert_array_equal(first.split(name).y, np.rint(first.split(name).x[:, 0] * 255) % 5)
    assert not np.array_equal(first.val.x, other.val.x)
    seen = [set(np.rint(first.split(name).x[:, 0] * 255).astype(int)) for name in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert set().union(*seen) == set(range(50))


@pytest.mark.parametrize("n, fractions, expected", [
    (3, (0.1, 0.1), (1, 1, 1)), (4, (0.49, 0.49), (1, 1, 2)), (10, (0.1, 0.1), (8, 1, 1)),
    (11, (0.01, 0.3), (7, 1, 3)), (60000, (0.1, 0.0), (54000, 6000, 0)),
])
def test_split_sizes_never_leave_a_part_empty(n, fractions, expected):
    assert split_sizes(n, *fractions) == expected


def test_dataset_split_by_name():
    split = Split(x=np.zeros((2, 3), np.float32), y=None)
    dataset = Dataset("t", split, split, split, (3,), None, "test", True)
    assert dataset.split("val") is split and len(split) == 2 and dataset.skipped == ()
    with pytest.raises(DataError, match="unknown split 'validation'"):
        dataset.split("validation")


# ----------------------------------------------------------------------------------------------
# The real thing, when the Debian package is installed
# ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(not sources.debian_folders("dataset-fashion-mnist"),
                    reason="the dataset-fashion-mnist Debian package is not installed")
def test_real_fashion_mnist_from_debian_package(monkeypatch):
    monkeypatch.setattr(sources, "dpkg_listing", REAL_DPKG_LISTING)
    dataset = load_dataset("fashion-mnist", download=False)
    assert len(dataset.train) + len(dataset.val) == 60000 and len(dataset.test) == 10000
    assert len(dataset.val) == 6000
    assert dataset.sample_shape == (1, 28, 28) and dataset.train.x.shape[1:] == (1, 28, 28)
    assert dataset.class_names[0] == "T-shirt/top" and len(dataset.class_names) == 10
    assert dataset.quantized_8bit and "Debian package dataset-fashion-mnist" in dataset.source
    assert sorted(np.unique(dataset.test.y).tolist()) == list(range(10))
