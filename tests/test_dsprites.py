"""dSprites generation on small grids: indexing, geometry against closed forms, determinism, the cache."""
from __future__ import annotations

import math

import numpy as np
import pytest

from vaekit.data import dsprites
from vaekit.errors import DataError


def test_sizes_and_factor_values_follow_the_original():
    assert dsprites.N_IMAGES == 737_280 == 3 * 6 * 40 * 32 * 32
    assert dsprites.FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert np.allclose(dsprites.FACTOR_VALUES[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert dsprites.FACTOR_VALUES[2][0] == 0 and math.isclose(dsprites.FACTOR_VALUES[2][-1], 2 * math.pi)
    assert dsprites.FACTOR_VALUES[3][0] == 0 and dsprites.FACTOR_VALUES[3][-1] == 1


def test_index_round_trip_and_order():
    rng = np.random.default_rng(0)
    index = rng.integers(0, dsprites.N_IMAGES, size=1000)
    assert np.array_equal(dsprites.factors_to_index(dsprites.index_to_factors(index)), index)
    # pos_y varies fastest, shape slowest, as in the original file's order
    f = np.array([[2, 3, 17, 5, 9]])
    assert dsprites.factors_to_index(f)[0] == (((2 * 6 + 3) * 40 + 17) * 32 + 5) * 32 + 9
    assert np.array_equal(dsprites.index_to_factors([0, 1, 32, dsprites.N_IMAGES - 1]),
                          [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [2, 5, 39, 31, 31]])
    values = dsprites.factor_values(f)
    assert np.allclose(values, [[2, 0.8, 17 * 2 * math.pi / 39, 5 / 31, 9 / 31]])


@pytest.mark.parametrize("bad", [[[3, 0, 0, 0, 0]], [[0, 0, 0, 0, -1]], [[0, 0, 0, 0]]])
def test_bad_factors_are_refused(bad):
    with pytest.raises(DataError):
        dsprites.factors_to_index(np.array(bad))


def test_render_is_binary_deterministic_and_shapes_differ():
    factors = np.array([[s, 5, 3, 16, 16] for s in range(3)])
    first, second = dsprites.render(factors), dsprites.render(factors)
    assert first.shape == (3, 64, 64) and first.dtype == np.uint8
    assert set(np.unique(first)) == {0, 1}
    assert np.array_equal(first, second)
    for a in range(3):
        for b in range(a + 1, 3):
            assert (first[a] != first[b]).sum() > 20


@pytest.mark.parametrize("scale", [0, 5])
def test_areas_match_the_closed_forms(scale):
    s = dsprites.FACTOR_VALUES[1][scale]
    square = (2 * dsprites.SQUARE_HALF_SIDE * s) ** 2
    ellipse = math.pi * dsprites.ELLIPSE_SEMI_AXES[0] * dsprites.ELLIPSE_SEMI_AXES[1] * s * s
    # Area of (x^2 + y^2 - 1)^3 <= x^2 y^3, by Monte Carlo on a fine grid (independent of the renderer).
    grid = np.linspace(-1.5, 1.5, 1501)
    x, y = np.meshgrid(grid, grid)
    heart_units = ((x * x + y * y - 1) ** 3 <= x * x * y ** 3).mean() * 9
    heart = heart_units * (dsprites.HEART_REACH / 1.2935 * s) ** 2
    images = dsprites.render(np.array([[shape, scale, 0, 16, 16] for shape in range(3)]))
    areas = images.reshape(3, -1).sum(axis=1)
    tolerance = 0.12 if scale == 0 else 0.05   # pixelation matters more for small shapes
    for area, expected in zip(areas, (square, ellipse, heart)):
        assert abs(area - expected) <= tolerance * expected


def test_positions_move_by_whole_pixels_and_in_image_directions():
    base = np.array([[1, 4, 7, 10, 12]])
    moved_x = base + [0, 0, 0, 2, 0]     # two steps of 1.5 px: exactly 3 pixels to the right
    moved_y = base + [0, 0, 0, 0, 2]     # 3 pixels down
    image, right, down = dsprites.render(np.concatenate([base, moved_x, moved_y]))
    assert np.array_equal(np.roll(image, 3, axis=1), right)
    assert np.array_equal(np.roll(image, 3, axis=0), down)


def test_centre_of_symmetric_shapes_is_where_the_factors_say():
    rows = [[shape, 5, 0, ix, iy] for shape in (0, 1) for ix in (0, 15, 31) for iy in (0, 31)]
    images = dsprites.render(np.array(rows)).astype(float)
    r, c = np.mgrid[0:64, 0:64] + 0.5
    for (shape, _, _, ix, iy), image in zip(rows, images):
        mass = image.sum()
        expected_x = dsprites.FIRST_CENTRE + dsprites.CENTRE_STEP * ix
        expected_y = dsprites.FIRST_CENTRE + dsprites.CENTRE_STEP * iy
        assert abs((image * c).sum() / mass - expected_x) < 0.3
        assert abs((image * r).sum() / mass - expected_y) < 0.3


def test_every_shape_stays_inside_the_frame():
    # A shape in a corner is the same shape as one in the middle (same sub-pixel phase), moved: nothing is cut off.
    for shape in range(3):
        for orientation in range(0, 40, 3):
            for ix, iy in ((0, 0), (31, 31), (0, 31)):
                mx, my = (16 if ix == 0 else 15), (16 if iy == 0 else 15)   # same parity, 24 pixels away
                corner, middle = dsprites.render(np.array([[shape, 5, orientation, ix, iy],
                                                           [shape, 5, orientation, mx, my]]))
                moved = np.roll(middle, (int(1.5 * (iy - my)), int(1.5 * (ix - mx))), axis=(0, 1))
                assert np.array_equal(corner, moved)


def test_rotation():
    ellipse = dsprites.render(np.array([[1, 5, o, 16, 16] for o in (0, 39, 10)]))
    assert np.array_equal(ellipse[0], ellipse[1])          # 0 and 2 pi are the same angle, as in the original
    rows, cols = np.nonzero(ellipse[0])
    assert np.ptp(cols) > 1.6 * np.ptp(rows)                # orientation 0: the long axis is horizontal
    rows, cols = np.nonzero(ellipse[2])                     # 10 steps = 92.3 degrees: nearly vertical
    assert np.ptp(rows) > 1.6 * np.ptp(cols)
    heart = dsprites.render(np.array([[2, 5, 0, 16, 16]]))[0]
    rows = np.nonzero(heart)[0]
    widths = heart.sum(axis=1)[rows.min():rows.max() + 1]
    assert widths[-1] < widths[len(widths) // 3]            # upright: the point is at the bottom


def test_packed_block_agrees_with_render_and_unpack():
    block = 123
    packed = dsprites.packed_block(block)
    index = np.arange(block * 1024, (block + 1) * 1024)
    expected = dsprites.render(dsprites.index_to_factors(index))
    assert np.array_equal(dsprites.unpack(packed)[:, 0], expected.astype(np.float32))


def test_cache_is_reused_and_repaired(tmp_path):
    calls = []

    def make():
        calls.append(1)
        return np.arange(24, dtype=np.uint8).reshape(4, 6)

    path = tmp_path / "cache" / "array.npy"
    first = dsprites.cached_array(path, (4, 6), make, "test")
    second = dsprites.cached_array(path, (4, 6), make, "test")
    assert len(calls) == 1 and isinstance(second, np.memmap)
    assert np.array_equal(first, second)
    assert sorted(p.name for p in path.parent.iterdir()) == ["array.npy"]   # no temporary files left
    path.write_bytes(b"not an npy file")
    third = dsprites.cached_array(path, (4, 6), make, "test")
    assert len(calls) == 2 and np.array_equal(third, first)
    assert dsprites.cached_array(path, (4, 6), make, "test").shape == (4, 6) and len(calls) == 2


def test_cache_path_follows_the_environment_and_fingerprint(monkeypatch, tmp_path):
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path))
    path = dsprites.cache_path()
    assert path.parent == tmp_path / "datasets"
    assert dsprites.FINGERPRINT in path.name and path.suffix == ".npy"


@pytest.fixture
def sparse_packed():
    """A full-sized packed array that is zero except for the rows a test fills (untouched pages cost nothing)."""
    return np.zeros((dsprites.N_IMAGES, dsprites.PACKED_BYTES), dtype=np.uint8)


def test_ground_truth_observations_by_index_arithmetic(sparse_packed):
    factors = np.array([[2, 1, 30, 4, 27], [0, 5, 0, 31, 0], [1, 3, 12, 9, 9]])
    images = dsprites.render(factors)
    sparse_packed[dsprites.factors_to_index(factors)] = np.packbits(images.reshape(3, -1), axis=1)
    truth = dsprites.DSpritesFactors(sparse_packed)
    shuffled = factors[[2, 0, 1]]
    observed = truth.observations(shuffled)
    assert observed.shape == (3, 1, 64, 64) and observed.dtype == np.float32
    assert np.array_equal(observed[:, 0], images[[2, 0, 1]].astype(np.float32))


def test_subset_dataset_has_factors_labels_and_fixed_membership(monkeypatch, sparse_packed):
    subset = dsprites.DSpritesDataset(name="dsprites-test", description="test", size=60)
    chosen = subset.indices()
    assert len(chosen) == 60 and np.array_equal(chosen, subset.indices()) and np.all(np.diff(chosen) > 0)
    factors = dsprites.index_to_factors(chosen)
    sparse_packed[chosen] = np.packbits(dsprites.render(factors).reshape(60, -1), axis=1)
    monkeypatch.setattr(dsprites, "load_packed", lambda progress=None: sparse_packed)
    data = subset.load(seed=0, val_fraction=0.1, test_fraction=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (48, 6, 6)
    assert data.class_names == ["square", "ellipse", "heart"] and data.sample_shape == (1, 64, 64)
    seen = np.concatenate([dsprites.factors_to_index(s.factors) for s in (data.train, data.val, data.test)])
    assert np.array_equal(np.sort(seen), chosen)
    for part in (data.train, data.test):
        assert np.array_equal(part.y, part.factors[:, 0])
        assert np.array_equal(part.x, data.ground_truth.observations(part.factors))
    assert data.ground_truth.factor_sizes == dsprites.FACTOR_SIZES


def test_named_datasets_are_registered():
    from vaekit.data import dataset_names, list_datasets

    assert {"dsprites", "dsprites-small"} <= set(dataset_names())
    info = {i.name: i for i in list_datasets()}
    assert info["dsprites"].available and "737,280" in info["dsprites"].description
    assert "73,728" in info["dsprites-small"].description


def test_too_little_memory_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(dsprites, "_available_memory", lambda: 2 * 2**30)
    with pytest.raises(DataError, match="dsprites-small"):
        dsprites.DSPRITES.load()
