"""Property-based tests of the loaders (issue 14, "keep it from coming back"): IDX files, .npy/.npz
arrays and image folders, whole, cut short, padded, with flipped bytes or lying headers.

The property for every loader: it returns the data the file holds, or refuses with a
:class:`DataError` whose message is one line; never another exception. Example counts are small and
there is no deadline, so the file costs seconds.
"""
from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from vaekit.data import load_dataset  # noqa: E402
from vaekit.data.arrays import load_array_file  # noqa: E402
from vaekit.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx  # noqa: E402
from vaekit.errors import DataError  # noqa: E402

BOUNDED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("properties")


def one_line(error: DataError) -> None:
    assert "\n" not in str(error) and "Traceback" not in str(error) and len(str(error)) < 2000, str(error)


# A change to a file's bytes: none, cut the end, add bytes, overwrite one byte.
Mutation = st.one_of(
    st.just(("none", 0, 0)),
    st.tuples(st.just("cut"), st.integers(1, 64), st.just(0)),
    st.tuples(st.just("pad"), st.integers(1, 64), st.integers(0, 255)),
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
)


def mutate(data: bytes, mutation) -> bytes:
    kind, amount, value = mutation
    if kind == "cut":
        return data[:max(0, len(data) - amount)]
    if kind == "pad":
        return data + bytes([value]) * amount
    if kind == "flip" and data:
        position = amount % len(data)
        return data[:position] + bytes([data[position] ^ value]) + data[position + 1:]
    return data


# -- IDX --------------------------------------------------------------------------------------------
def idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


@BOUNDED
@given(images=hnp.arrays(np.uint8, hnp.array_shapes(min_dims=3, max_dims=3, max_side=6)),
       compress=st.booleans(), mutation=Mutation)
def test_idx_images_load_exactly_or_are_refused(workdir, images, compress, mutation):
    data = mutate(idx_bytes(images), mutation)
    path = workdir / ("images-idx3-ubyte.gz" if compress else "images-idx3-ubyte")
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        loaded = read_idx(path, magic=IMAGES_MAGIC)
    except DataError as error:
        one_line(error)
        assert mutation[0] != "none", error
        return
    if mutation[0] == "none":
        np.testing.assert_array_equal(loaded, images)
    # Whatever loaded is what the (possibly changed) header says the file holds.
    assert loaded.dtype == np.uint8 and loaded.ndim == 3
    assert data[4:16] == struct.pack(">3I", *loaded.shape) and data[16:] == loaded.tobytes()


@BOUNDED
@given(header=st.binary(min_size=0, max_size=24), rest=st.binary(max_size=64), compress=st.booleans())
def test_any_bytes_as_an_idx_label_file_load_or_are_refused(workdir, header, rest, compress):
    data = header + rest
    path = workdir / ("labels-idx1-ubyte.gz" if compress else "labels-idx1-ubyte")
    path.write_bytes(gzip.compress(data) if compress else data)
    try:
        labels = read_idx(path, magic=LABELS_MAGIC)
    except DataError as error:
        one_line(error)
        return
    assert data[:4] == b"\0\0\x08\x01" and labels.shape == (int.from_bytes(data[4:8], "big"),)


@BOUNDED
@given(dims=st.lists(st.integers(0, 2 ** 32 - 1), min_size=3, max_size=3), tail=st.binary(max_size=32))
def test_idx_headers_announcing_any_size_never_allocate_it(workdir, dims, tail):
    path = workdir / "lying-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", *dims) + tail))
    try:
        loaded = read_idx(path, magic=IMAGES_MAGIC)
    except DataError as error:
        one_line(error)
        return
    assert loaded.size == len(tail) == int(np.prod(dims, dtype=object))


# -- .npy and .npz --------------------------------------------------------------------------------------
SAMPLE_SHAPES = st.sampled_from([(3, 4), (3, 2, 2), (4, 1, 2, 2), (3, 3, 2, 2), (5, 6)])
DTYPES = st.sampled_from([np.uint8, np.float32, np.float64, np.bool_, np.int16])


def saved(array: np.ndarray, kind: str, labels: np.ndarray | None = None) -> bytes:
    buffer = io.BytesIO()
    if kind == "npy":
        np.save(buffer, array)
    else:
        np.savez(buffer, x=array, **({} if labels is None else {"y": labels}))
    return buffer.getvalue()


def loaded_values(dataset) -> np.ndarray:
    return np.sort(np.concatenate([dataset.split(part).x.reshape(-1) for part in ("train", "val", "test")]))


@BOUNDED
@given(data=st.data(), kind=st.sampled_from(["npy", "npz"]), mutation=Mutation)
def test_array_files_load_their_values_or_are_refused(workdir, data, kind, mutation):
    shape = data.draw(SAMPLE_SHAPES)
    dtype = data.draw(DTYPES)
    array = data.draw(hnp.arrays(dtype, shape))
    labels = data.draw(st.none() | hnp.arrays(np.int64, (shape[0],), elements=st.integers(0, 3)))
    path = workdir / f"samples.{kind}"
    path.write_bytes(mutate(saved(array, kind, labels if kind == "npz" else None), mutation))
    try:
        dataset = load_array_file(path, name=path.name, seed=0, val_fraction=0.2, test_fraction=0.2)
    except DataError as error:
        one_line(error)
        return
    total = sum(len(dataset.split(part)) for part in ("train", "val", "test"))
    if mutation[0] == "none":
        assert total == shape[0]
        if dtype == np.uint8:       # 8-bit values load as x / 255, every one of them
            np.testing.assert_array_equal(loaded_values(dataset), np.sort((array / np.float32(255)).reshape(-1)))
    assert all(np.isfinite(dataset.split(part).x).all() for part in ("train", "val", "test"))


@BOUNDED
@given(shape=st.lists(st.integers(0, 2 ** 40), min_size=1, max_size=4), descr=st.sampled_from(["<f4", "|u1", "<f8"]),
       tail=st.binary(max_size=48), kind=st.sampled_from(["npy", "npz"]))
def test_array_headers_announcing_any_size_never_allocate_it(workdir, shape, descr, tail, kind):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    path = workdir / f"lying.{kind}"
    if kind == "npy":
        path.write_bytes(header.getvalue() + tail)
    else:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("x.npy", header.getvalue() + tail)
    try:
        dataset = load_array_file(path, name=path.name, seed=0, val_fraction=0.2, test_fraction=0.2)
    except DataError as error:
        one_line(error)
        return
    assert sum(len(dataset.split(part)) for part in ("train", "val", "test")) == shape[0]


# -- image folders ----------------------------------------------------------------------------------------
IMAGE = st.tuples(
    st.sampled_from(["L", "RGB", "RGBA", "I;16", "P", "1"]),
    st.sampled_from(["PNG", "JPEG"]),
    st.integers(2, 12), st.integers(2, 12),                                 # width, height
    st.one_of(st.just(0), st.integers(1, 200)),                             # bytes cut from the end
)


def image_bytes(mode: str, fmt: str, width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    image = base.convert(mode) if mode != "I;16" else Image.fromarray(      # uint16: 16-bit grey, "I;16"
        rng.integers(0, 65536, (height, width), dtype=np.uint16))
    if fmt == "JPEG" and image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(images=st.lists(IMAGE, min_size=1, max_size=7), classes=st.booleans(), cache=st.sampled_from(["none", "memmap"]))
def test_image_folders_load_what_decodes_and_skip_the_rest(workdir, images, classes, cache, monkeypatch_module):
    import shutil

    folder = workdir / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    names = []
    for i, (mode, fmt, width, height, cut) in enumerate(images):
        data = image_bytes(mode, fmt, width, height, seed=i)
        name = f"{'ab'[i % 2]}/{i}.{fmt.lower()}" if classes else f"{i}.{fmt.lower()}"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data[:max(0, len(data) - cut)])
        names.append(name)
    try:
        dataset = load_dataset(str(folder), image_size=4, cache=cache)
    except DataError as error:
        one_line(error)
        return
    total = sum(len(dataset.split(part)) for part in ("train", "val", "test"))
    assert total + len(dataset.skipped) == len(names)
    assert set(dataset.skipped) <= set(names)
    assert dataset.sample_shape in ((1, 4, 4), (3, 4, 4))
    for part in ("train", "val", "test"):
        x = np.asarray(dataset.split(part).x)
        assert x.dtype == np.float32 and ((0 <= x) & (x <= 1)).all()


@pytest.fixture(scope="module")
def monkeypatch_module():
    """Decode the memmap cache in this process (no worker start-up per example; the workers' own path
    is covered by test_hostile_input.py)."""
    import vaekit.data.memmap

    patch = pytest.MonkeyPatch()
    patch.setattr(vaekit.data.memmap, "default_workers", lambda: 0)
    yield patch
    patch.undo()
