"""The latent-space toolkit: each formula against an independent computation, then the commands end to end."""
from __future__ import annotations

import logging
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import quick_config, run_cli
from vaekit import latent
from vaekit.figures import plots
from vaekit.errors import ConfigError, DataError
from vaekit.models import build_model


@pytest.fixture(scope="module")
def digits():
    from vaekit.data import load_dataset

    return load_dataset("digits")


def untrained(model="vae", latent_dim=3, shape=(1, 8, 8), **overrides):
    """A randomly initialised model: the latent functions' contracts do not depend on training."""
    torch.manual_seed(0)
    return build_model(quick_config(model=model, latent_dim=latent_dim, **overrides), shape).eval()


def posterior_means(model, x) -> np.ndarray:
    """Independent of vaekit.latent: one big batch straight through the model."""
    with torch.no_grad():
        return model.encode(torch.as_tensor(x)).mean.numpy().astype(np.float64)


# -- codes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_reconstruct_decodes_the_posterior_mean(kind, digits):
    model = untrained(kind)
    x = digits.test.x[:7]
    with torch.no_grad():
        expected = model.decode(model.encode(torch.as_tensor(x)).mean).clamp(0, 1).numpy()
    got = latent.reconstruct(model, x)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # Batching does not change anything.
    np.testing.assert_allclose(latent.encode_means(model, x, batch_size=2), posterior_means(model, x), atol=1e-6)


def test_decoded_images_are_clipped_for_unbounded_decoders():
    model = untrained("ae", likelihood="mse")
    z = np.full((4, 3), 50.0)               # far outside the data: an mse decoder leaves [0, 1]
    raw = latent.decode_images(model, z, clip=False)
    assert raw.min() < 0 or raw.max() > 1
    clipped = latent.decode_images(model, z)
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert latent.decode_images(model, np.zeros((2, 5, 3))).shape == (2, 5, 1, 8, 8)


def test_index_checks_name_the_valid_range():
    assert latent.check_indices([0, 9], 10) == [0, 9]
    for bad in (10, -1):
        with pytest.raises(ConfigError, match="out of range.*10 images.*0 to 9"):
            latent.check_indices([bad], 10)


# -- paths ----------------------------------------------------------------------------------------
def test_slerp_between_orthogonal_unit_vectors_stays_on_the_circle():
    a, b = np.eye(4)[0], np.eye(4)[1]
    path = latent.slerp(a, b, 11)
    t = np.linspace(0, 1, 11)[:, None]
    closed_form = np.cos(t * np.pi / 2) * a + np.sin(t * np.pi / 2) * b
    np.testing.assert_allclose(path, closed_form, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)


def test_slerp_endpoints_constant_angle_steps_and_fallbacks():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=6), rng.normal(size=6)
    path = latent.slerp(a, b, 9)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    # Equal norms: constant angular speed along the arc and a constant norm, where the straight
    # line dips towards the origin.
    b_same = b / np.linalg.norm(b) * np.linalg.norm(a)
    arc = latent.slerp(a, b_same, 9)
    unit = arc / np.linalg.norm(arc, axis=1, keepdims=True)
    angles = np.arccos(np.clip(np.sum(unit[1:] * unit[:-1], axis=1), -1, 1))
    np.testing.assert_allclose(angles, angles[0], atol=1e-9)
    assert angles.sum() == pytest.approx(np.arccos(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    np.testing.assert_allclose(np.linalg.norm(arc, axis=1), np.linalg.norm(a))
    assert np.linalg.norm(latent.lerp(a, b_same, 9), axis=1)[4] < 0.99 * np.linalg.norm(a)
    # Parallel codes and the zero code fall back to the straight line.
    np.testing.assert_allclose(latent.slerp(a, 2 * a, 5), latent.lerp(a, 2 * a, 5))
    np.testing.assert_allclose(latent.slerp(np.zeros(6), b, 5), latent.lerp(np.zeros(6), b, 5))
    assert np.isfinite(latent.slerp(a, -a, 5)).all()


def test_linear_interpolation_midpoint_is_the_mean():
    a, b = np.array([1.0, -2.0, 3.0]), np.array([5.0, 0.0, -1.0])
    path = latent.interpolate(a, b, 5, "linear")
    np.testing.assert_allclose(path[[0, -1]], [a, b])
    np.testing.assert_allclose(path[2], (a + b) / 2)
    with pytest.raises(ConfigError, match="linear or slerp"):
        latent.interpolate(a, b, 5, "cubic")
    with pytest.raises(ConfigError, match="at least 2"):
        latent.lerp(a, b, 1)


def test_bilinear_grid_corners_are_the_four_codes():
    corners = np.random.default_rng(2).normal(size=(4, 3))
    grid = latent.bilinear_grid(corners, 5, 7)
    assert grid.shape == (5, 7, 3)
    np.testing.assert_allclose([grid[0, 0], grid[0, -1], grid[-1, 0], grid[-1, -1]], corners)
    np.testing.assert_allclose(grid[2, 3], corners.mean(0))                 # the centre
    np.testing.assert_allclose(grid[0], latent.lerp(corners[0], corners[1], 7))   # edges are lines


def test_traversal_rows_change_only_their_dimension():
    z = np.array([0.5, -1.0, 2.0, 0.0])
    offsets = np.linspace(-3, 3, 7)
    codes = latent.traversal(z, [2, 0], offsets, scale=np.array([1.0, 1.0, 0.5, 1.0]))
    assert codes.shape == (2, 7, 4)
    for row, dim in enumerate([2, 0]):
        others = [d for d in range(4) if d != dim]
        np.testing.assert_array_equal(codes[row][:, others], np.broadcast_to(z[others], (7, 3)))
    np.testing.assert_allclose(codes[0, :, 2], 2.0 + 0.5 * offsets)
    np.testing.assert_allclose(codes[1, :, 0], 0.5 + offsets)


@pytest.mark.parametrize("kind", ["vae", "ae"])
def test_traverse_sorts_rows_by_kl_or_code_variance(kind, digits):
    model = untrained(kind, latent_dim=4)
    x = digits.test.x
    result = latent.traverse(model, x[:1], x, span=2.0, steps=5)
    means = posterior_means(model, x)
    if kind == "vae":
        with torch.no_grad():
            kl = model.encode(torch.as_tensor(x)).kl_per_dim().double().mean(0).numpy()
        expected, name = kl, "KL"
    else:
        expected, name = means.var(0), "variance"
    assert result.score_name == name
    np.testing.assert_array_equal(result.dims, np.argsort(-expected))
    np.testing.assert_allclose(result.scores, np.sort(expected)[::-1], rtol=1e-5)
    scale = np.ones(4) if kind == "vae" else np.sqrt(means.var(0))
    z0 = means[0]
    for row, dim in enumerate(result.dims):
        changed = np.abs(result.codes[row] - z0) > 1e-5
        assert not changed[:, np.arange(4) != dim].any()
        np.testing.assert_allclose(result.codes[row, :, dim], z0[dim] + np.linspace(-2, 2, 5) * scale[dim], atol=1e-5)
    np.testing.assert_allclose(result.images[0, 2], latent.reconstruct(model, x[:1])[0], atol=1e-6)
    assert len(latent.traverse(model, x[:1], x, max_dims=2).dims) == 2


# -- sampling -------------------------------------------------------------------------------------
def test_prior_samples_have_the_prior_moments():
    z = latent.prior_samples(3, 40000, temperature=0.5, seed=3)
    np.testing.assert_allclose(z.mean(0), 0, atol=4 * 0.5 / math.sqrt(40000))
    np.testing.assert_allclose(np.cov(z.T), 0.25 * np.eye(3), atol=0.01)
    np.testing.assert_array_equal(latent.prior_samples(3, 5, seed=1), latent.prior_samples(3, 5, seed=1))


def test_gmm_samples_match_the_encoded_means_moments():
    rng = np.random.default_rng(4)
    # An aggregate posterior that is not Gaussian: two elongated clusters.
    means = np.concatenate([rng.normal([3, 0, 1], [1.0, 0.3, 0.5], size=(3000, 3)),
                            rng.normal([-2, 1, 0], [0.4, 1.0, 0.2], size=(2000, 3))])
    mixture = latent.fit_aggregate_posterior(means, components=4, seed=0)
    samples = latent.mixture_samples(mixture, 40000, seed=5)
    spread = means.std(0)
    np.testing.assert_allclose(samples.mean(0), means.mean(0), atol=0.05 * spread.max())
    np.testing.assert_allclose(np.cov(samples.T), np.cov(means.T), atol=0.08 * spread.max() ** 2)
    # Samples land in the clusters, not between them (which a single Gaussian would fill).
    assert np.mean(np.abs(samples[:, 0] - 0.5) < 0.5) < 0.05


def test_sample_codes_warns_for_an_autoencoders_prior_and_fits_a_mixture():
    ae = untrained("ae")
    with pytest.warns(UserWarning, match="--sampler gmm"):
        latent.sample_codes(ae, 4, sampler="prior")
    train_means = np.random.default_rng(6).normal(size=(500, 3)) * [1, 2, 3] + 5
    codes = latent.sample_codes(ae, 2000, sampler="gmm", train_means=train_means, components=3)
    assert codes.shape == (2000, 3) and abs(codes.mean() - 5) < 0.3
    with pytest.raises(ConfigError, match="prior or gmm"):
        latent.sample_codes(ae, 4, sampler="flow")
    with pytest.raises(ConfigError, match="temperature"):
        latent.prior_samples(3, 4, temperature=0)


# -- arithmetic -----------------------------------------------------------------------------------
def test_class_vector_is_the_difference_of_class_means(digits):
    model = untrained("vae")
    train = digits.train
    means = posterior_means(model, train.x)
    expected = means[train.y == 3].mean(0) - means[train.y == 8].mean(0)
    targets = digits.test.x[:4]
    result = latent.class_arithmetic(model, train.x, train.y, targets, 3, 8, [-1.0, 0.0, 2.0])
    np.testing.assert_allclose(result.vector, expected, atol=1e-5)
    assert (result.n_plus, result.n_minus) == (np.sum(train.y == 3), np.sum(train.y == 8))
    assert result.images.shape == (4, 3, 1, 8, 8)
    np.testing.assert_allclose(result.images[:, 1], latent.reconstruct(model, targets), atol=1e-6)  # alpha = 0
    shifted = latent.decode_images(model, posterior_means(model, targets) + 2.0 * expected)
    np.testing.assert_allclose(result.images[:, 2], shifted, atol=1e-5)


def test_class_labels_resolve_by_name_or_index():
    names = ["T-shirt/top", "Trouser", "Bag"]
    y = np.array([0, 0, 2, 2])
    assert latent.resolve_class("bag", names, y) == 2
    assert latent.resolve_class("0", names, y) == 0
    with pytest.raises(ConfigError, match="unknown class 'hat'.*'T-shirt/top', 'Trouser', 'Bag'"):
        latent.resolve_class("hat", names, y)
    with pytest.raises(ConfigError, match="'Trouser'.*no examples"):
        latent.resolve_class("Trouser", names, y)
    with pytest.raises(ConfigError, match="out of range"):
        latent.resolve_class("7", names, y)
    with pytest.raises(ConfigError, match="no labels"):
        latent.resolve_class("0", None, None)
    picked = latent.images_not_of(np.array([0, 1, 2, 1, 0, 2]), 1, 3, seed=0)
    assert len(picked) == 3 and 1 not in np.array([0, 1, 2, 1, 0, 2])[picked]
    assert latent.parse_alphas("-2,-1,0,1.5") == [-2, -1, 0, 1.5]
    with pytest.raises(ConfigError, match="--alpha"):
        latent.parse_alphas("a,b")


# -- attribute tables -----------------------------------------------------------------------------
CSV_TEXT = "file,Eyeglasses,Smiling\na.png,1,0\nb.png,0,1\nc.png,1,1\n"
CELEBA_TEXT = "3\nEyeglasses Smiling \na.png  1 -1\nb.png -1  1\nc.png  1  1\n"


@pytest.mark.parametrize("text", [CSV_TEXT, CELEBA_TEXT], ids=["csv", "celeba"])
def test_attribute_tables_in_both_formats(tmp_path, text):
    path = tmp_path / "attrs.txt"
    path.write_text(text)
    table = latent.read_attribute_table(path)
    assert table.files == ["a.png", "b.png", "c.png"]
    assert table.names == ["Eyeglasses", "Smiling"]
    np.testing.assert_array_equal(table.column("eyeglasses"), [True, False, True])
    np.testing.assert_array_equal(table.column("Smiling"), [False, True, True])
    with pytest.raises(ConfigError, match="unknown attribute 'Hat'.*Eyeglasses, Smiling"):
        table.column("Hat")


@pytest.mark.parametrize("text, message", [
    ("file,A,B\na.png,1\n", "line 2: 1 attribute values for 2 attributes"),
    ("file,A\na.png,2\n", "line 2: A is '2'"),
    ("file,A\na.png,1\na.png,0\n", "line 3: 'a.png' is listed twice"),
    ("2\nA B\na.png 1 -1\nb.png 1\n", "line 4: 1 attribute values for 2"),
    ("file\na.png\n", "header row needs"),
])
def test_malformed_attribute_tables(tmp_path, text, message):
    path = tmp_path / "attrs.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        latent.read_attribute_table(path)


def write_images(folder, names, rng, size=8):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size + 2, size + 2), dtype=np.uint8)).save(folder / name)


def test_rows_are_matched_to_folder_images_and_mismatches_reported(tmp_path, caplog):
    folder = tmp_path / "faces"
    write_images(folder, ["a.png", "b.png", "c.png"], np.random.default_rng(7))
    table_path = tmp_path / "attrs.csv"
    table_path.write_text("file,A\nimg/a.png,1\nb.png,0\nzzz.png,1\n")
    table = latent.read_attribute_table(table_path)
    with caplog.at_level(logging.WARNING):
        paths, rows = latent.match_folder(table, folder)
    assert [p.name for p in paths] == ["a.png", "b.png"] and rows.tolist() == [0, 1]
    assert "2 of 3 rows" in caplog.text and "zzz.png" in caplog.text
    table_path.write_text("file,A\nx.png,1\ny.png,0\n")
    with pytest.raises(DataError, match="none of the 2 images named in .* is in"):
        latent.match_folder(latent.read_attribute_table(table_path), folder)


def test_folder_images_are_read_as_the_dataset_loader_reads_them(tmp_path):
    from vaekit.data import load_dataset

    folder = tmp_path / "imgs"
    names = [f"{i:02d}.png" for i in range(12)]
    write_images(folder, names, np.random.default_rng(8))
    dataset = load_dataset(str(folder), image_size=8)
    loaded = np.concatenate([dataset.train.x, dataset.val.x, dataset.test.x])
    read, kept = latent.read_folder_images([folder / n for n in names], (1, 8, 8))
    assert kept.tolist() == list(range(12))
    key = lambda images: sorted(image.tobytes() for image in images)  # noqa: E731 - order-free comparison
    assert key(read) == key(loaded)


def test_table_arithmetic_vector_and_edited_images(tmp_path):
    folder = tmp_path / "imgs"
    rng = np.random.default_rng(9)
    names = [f"{i:02d}.png" for i in range(20)]
    write_images(folder, names, rng)
    flags = np.arange(20) % 3 == 0
    (tmp_path / "attrs.csv").write_text("file,Bright\n" + "".join(f"{n},{int(f)}\n" for n, f in zip(names, flags)))
    table = latent.read_attribute_table(tmp_path / "attrs.csv")
    model = untrained("vae", shape=(1, 8, 8))
    result = latent.table_arithmetic(model, table, folder, "Bright", None, [0.0, 1.0], rows=2, seed=0)
    images, _ = latent.read_folder_images([folder / n for n in names], (1, 8, 8))
    means = posterior_means(model, images)
    edited = [next(i for i in range(20) if np.array_equal(images[i], original)) for original in result.originals]
    assert not flags[edited].any()                               # edited images lack the attribute
    without = [i for i in np.flatnonzero(~flags) if i not in edited]
    np.testing.assert_allclose(result.vector, means[flags].mean(0) - means[without].mean(0), atol=1e-5)
    assert (result.n_plus, result.n_minus) == (flags.sum(), len(without))
    np.testing.assert_allclose(result.images[:, 0], latent.reconstruct(model, result.originals), atol=1e-6)
    assert list(result.names) == [names[i] for i in edited]


# -- denoising, maps, figures ---------------------------------------------------------------------
def test_psnr_against_a_hand_computation():
    clean = np.zeros((2, 1, 2, 2))
    estimate = clean.copy()
    estimate[0, 0, 0, 0] = 0.5            # MSE 0.25 / 4 = 0.0625 -> 10 log10(1 / 0.0625) = 12.0412 dB
    estimate[1] = 0.1                     # MSE 0.01 -> 20 dB
    np.testing.assert_allclose(latent.psnr(estimate, clean), [10 * math.log10(16), 20.0])
    assert latent.psnr(estimate, clean, peak=2.0)[1] == pytest.approx(20 + 20 * math.log10(2))
    assert latent.psnr(clean, clean)[0] == math.inf


def test_corruptions():
    x = np.full((200, 3, 8, 8), 0.5, np.float32)
    noisy = latent.corrupt(x, 0.1, kind="gaussian", seed=0)           # 5 sd from either bound
    assert abs(noisy.std() - 0.1) < 0.005 and abs(noisy.mean() - 0.5) < 0.005
    clipped = latent.corrupt(x, 1.0, kind="gaussian", seed=0)
    assert clipped.min() == 0 and clipped.max() == 1
    np.testing.assert_array_equal(latent.corrupt(x, 0.0), x)
    masked = latent.corrupt(x, 0.25, kind="mask", seed=0)
    zero = masked == 0
    assert set(np.unique(masked)) == {0.0, 0.5}
    assert abs(zero.mean() - 0.25) < 0.01
    assert (zero.all(axis=1) == zero.any(axis=1)).all()        # a pixel is masked in all channels
    with pytest.raises(ConfigError, match="at most 1"):
        latent.corrupt(x, 1.5, kind="mask")
    with pytest.raises(ConfigError, match="gaussian or mask"):
        latent.corrupt(x, 0.1, kind="salt")


def test_denoise_scores_corrupted_and_reconstructed_images(digits):
    model = untrained("vae")
    x = digits.test.x[:20]
    result = latent.denoise(model, x, 0.2, seed=1)
    np.testing.assert_allclose(result.psnr_corrupted, latent.psnr(latent.corrupt(x, 0.2, seed=1), x))
    np.testing.assert_allclose(result.reconstructed, latent.reconstruct(model, result.corrupted), atol=1e-6)


def test_projections_and_grids():
    rng = np.random.default_rng(10)
    codes = rng.normal(size=(300, 5)) * [5, 2, 1, 0.5, 0.1]
    projection = latent.project_2d(codes, method="pca")
    assert projection.points.shape == (300, 2) and projection.axis_labels[0].startswith("PC1 (")
    assert projection.explained_variance[0] > 0.7
    assert latent.project_2d(codes[:, :2]).axis_labels == ("z0", "z1")   # 0-based, as everywhere
    np.testing.assert_allclose(latent.quantile_grid(3), [-1.6448536, 0.0, 1.6448536], atol=1e-6)
    grid = latent.manifold_codes(np.array([1.0, 2.0, 3.0]), np.array([-1.0, 1.0]))
    assert grid.shape == (2, 3, 2) and grid[0, 0].tolist() == [1.0, 1.0] and grid[1, 2].tolist() == [3.0, -1.0]


def test_image_grid_shapes_and_sizes():
    rng = np.random.default_rng(11)
    assert plots.as_picture(rng.random(64)).shape == (8, 8)
    assert plots.as_picture(rng.random(12)).shape == (3, 4)
    assert plots.as_picture(rng.random((3, 5, 6))).shape == (5, 6, 3)
    cells = [[rng.random((1, 28, 28)) for _ in range(12)], [None] + [rng.random((1, 28, 28)) for _ in range(11)]]
    figure = plots.image_grid(cells, row_labels=["a", "b"], col_titles=[str(i) for i in range(12)], title="t")
    width, height = figure.get_size_inches() * figure.dpi
    assert 800 < width <= 1600 and height > 100
    many = plots.image_grid([[rng.random((3, 16, 16)) for _ in range(60)]])
    assert many.get_size_inches()[0] * many.dpi <= 1600


def test_plots_do_not_touch_the_pyplot_backend():
    code = "import matplotlib; b = matplotlib.get_backend(); import vaekit.figures.plots; print(matplotlib.get_backend() == b)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


# -- the commands, end to end ---------------------------------------------------------------------
# Each command runs through vaekit.cli.app.main in this process (argv to PNG, the same code path as the
# console script, without paying for a fresh torch import per call); a few run as real subprocesses
# to pin the process-level contract: exit codes, stderr lines, no traceback.
QUICK = dict(hidden=[32], epochs=2, batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-D VAE and a 3-D AE trained on digits."""
    import vaekit

    root = tmp_path_factory.mktemp("latent")
    vaekit.train("digits", root / "vae", latent_dim=2, **QUICK)
    vaekit.train("digits", root / "ae", model="ae", latent_dim=3, **QUICK)
    return root


def cli(capsys, *args: str):
    """``vaekit ARGS`` in this process: (exit code, stdout, stderr)."""
    from vaekit.cli.app import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_png(path, *, min_width=150, max_width=1700, max_height=2400):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert min_width <= width <= max_width and 80 <= height <= max_height, (path, image.size)


def assert_one_error_line(stderr: str, *fragments: str):
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("vaekit: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


COMMANDS = [
    ("reconstruct", ["-n", "6"], "reconstruct.png", "MSE per pixel"),
    ("sample", ["-n", "16", "--sampler", "gmm"], "sample.png", ""),
    ("interpolate", ["--from", "3", "--to", "4", "--method", "slerp", "--steps", "6"], "interpolate.png", "|z|"),
    ("interpolate", ["--grid", "0", "1", "2", "3", "--steps", "4"], "interpolate-grid.png", ""),
    ("interpolate", [], "interpolate.png", "|z|"),                     # the defaults: 10 steps, linear
    ("interpolate", ["--grid", "4", "5", "6", "7"], "interpolate-grid.png", ""),  # 8 per side
    ("traverse", ["--index", "2", "--steps", "5"], "traverse.png", "KL per dimension (nats): z"),
    ("latent-map", [], "latent-map.png", ""),
    ("arithmetic", ["--plus", "1", "--minus", "7", "--rows", "3"], "arithmetic.png", "attribute vector"),
    ("denoise", ["--noise", "0.3", "--kind", "mask", "-n", "4", "--measure", "100"], "denoise.png", "PSNR"),
]


@pytest.mark.parametrize("command, options, file, printed", COMMANDS, ids=[c[2] for c in COMMANDS])
def test_commands_write_figures(runs, capsys, command, options, file, printed):
    code, out, err = cli(capsys, command, runs / "vae", *options)
    assert code == 0, err
    path = runs / "vae" / "figures" / file
    assert f"wrote {path}" in out and printed in out
    assert_png(path)


def test_autoencoder_commands(runs, capsys, tmp_path):
    for command in (["traverse"], ["latent-map"], ["sample", "--sampler", "gmm"]):
        code, out, err = cli(capsys, *command, runs / "ae", "--out", tmp_path / f"{command[0]}.png")
        assert code == 0, err
        assert_png(tmp_path / f"{command[0]}.png")
    assert "variance of the encoded means" in cli(capsys, "traverse", runs / "ae", "--out", tmp_path / "t.png")[1]


@pytest.mark.parametrize("args, fragments", [
    (["interpolate", "{vae}", "--from", "0", "--to", "999"], ["999 is out of range", "0 to 179"]),
    (["interpolate", "{vae}", "--grid", "0", "1", "2", "180"], ["180 is out of range"]),
    (["traverse", "{vae}", "--index", "-1"], ["out of range"]),
    (["reconstruct", "{vae}", "-n", "0"], ["-n must be at least 1"]),
    (["arithmetic", "{vae}", "--plus", "banana", "--minus", "1"], ["unknown class 'banana'", "'0', '1'"]),
    (["arithmetic", "{vae}", "--plus", "1"], ["--minus B is needed"]),
    (["arithmetic", "{vae}", "--plus", "1", "--minus", "1"], ["same class"]),
    (["arithmetic", "{vae}", "--plus", "1", "--minus", "3", "--alpha", "x"], ["--alpha"]),
    (["arithmetic", "{vae}", "--plus", "1", "--minus", "3", "--attributes", "x.csv"], ["image folder"]),
    (["denoise", "{vae}", "--noise", "2", "--kind", "mask"], ["at most 1"]),
    (["sample", "{vae}", "--temperature", "-1"], ["--temperature must be a positive number"]),
    (["reconstruct", "{root}"], ["not a vaekit run"]),
])
def test_bad_input_gives_one_clean_error(runs, capsys, args, fragments):
    code, out, err = cli(capsys, *[a.format(vae=runs / "vae", root=runs) for a in args])
    assert code == 2
    assert_one_error_line(err, *fragments)


def test_as_a_user_runs_it(runs, tmp_path):
    """Real processes: a figure, the AE prior warning on stderr, and a clean error with exit code 2."""
    out = tmp_path / "ae-samples.png"
    proc = run_cli("sample", str(runs / "ae"), "-n", "8", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    assert proc.stderr.startswith("vaekit: warning: ") and "--sampler gmm" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_png(out)
    proc = run_cli("traverse", str(runs / "vae"), "--index", "5000")
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, "5000 is out of range", "0 to 179")


def test_attribute_csv_on_an_image_folder_run(tmp_path, capsys):
    import vaekit

    folder = tmp_path / "faces"
    names = [f"{i:03d}.png" for i in range(40)]
    write_images(folder, names, np.random.default_rng(12))
    run = tmp_path / "run"
    vaekit.train(str(folder), run, image_size=8, latent_dim=3, **{**QUICK, "epochs": 1})
    (tmp_path / "good.csv").write_text("file,Glasses\n" + "".join(f"{n},{i % 2}\n" for i, n in enumerate(names)))
    code, out, err = cli(capsys, "arithmetic", run, "--attributes", tmp_path / "good.csv", "--plus", "glasses", "--rows", "3")
    assert code == 0, err
    assert "from 20 'glasses' and 17 'not glasses' images" in out
    assert_png(run / "figures" / "arithmetic.png")
    (tmp_path / "other.csv").write_text("file,Glasses\nx1.png,1\nx2.png,0\n")
    code, _, err = cli(capsys, "arithmetic", run, "--attributes", tmp_path / "other.csv", "--plus", "Glasses")
    assert code == 2
    assert_one_error_line(err, "none of the 2 images named in")
    code, _, err = cli(capsys, "arithmetic", run, "--attributes", tmp_path / "good.csv", "--plus", "Hat")
    assert code == 2
    assert_one_error_line(err, "unknown attribute 'Hat'", "Glasses")
