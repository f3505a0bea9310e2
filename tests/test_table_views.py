"""Table runs through the latent commands, the report and the explorer: features instead of pictures,
numbers in the data's original units, and one-line refusals of what only images can do."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from vaekit import latent
from vaekit.figures import images as figures
from vaekit.figures import table_plots

from conftest import run_cli

QUICK = dict(hidden=[16], epochs=3, batch_size=128, device="cpu")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-D VAE on breast-cancer, a 3-D AE on wine, and a tiny digits VAE (an image run)."""
    import vaekit

    root = tmp_path_factory.mktemp("table-views")
    vaekit.train("breast-cancer", root / "cancer", latent_dim=2, **QUICK)
    vaekit.train("wine", root / "wine", model="ae", latent_dim=3, **QUICK)
    vaekit.train("digits", root / "digits", latent_dim=2, **{**QUICK, "epochs": 1})
    return root


@pytest.fixture(scope="module")
def cancer(runs):
    return latent.load_model_and_data(runs / "cancer")


def cli(capsys, *args):
    from vaekit.cli.app import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("vaekit: error: "), err
    return lines[0]


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=np.float64)


# -- decoding in the data's units ------------------------------------------------------------------
def test_table_decodes_are_unclipped_and_original_units_come_from_the_scaling(cancer):
    model, data = cancer
    z = np.random.default_rng(0).normal(size=(50, 2)) * 2
    with torch.no_grad():
        raw = model.decode(torch.as_tensor(z, dtype=torch.float32)).numpy()
    assert raw.min() < 0                                        # standardised values: a clip would change them
    np.testing.assert_allclose(latent.decode_images(model, z), raw, atol=1e-6)
    values = latent.decode_values(model, z)
    np.testing.assert_allclose(values, raw * data.scaling.scale + data.scaling.mean, rtol=1e-5)


def test_regularity_judges_table_decodes_unclipped(cancer):
    from vaekit.evaluation.regularity import decode_images

    model, _ = cancer
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(1)) * 2
    with torch.no_grad():
        raw = model.decode(z)
    assert raw.min() < 0
    np.testing.assert_allclose(decode_images(model, z).numpy(), raw.numpy(), atol=1e-6)


# -- numbers out: sample and reconstruct --out x.csv / x.npy -----------------------------------------
def test_sample_csv_has_the_feature_names_and_original_units(runs, cancer, capsys, tmp_path):
    model, data = cancer
    code, out, err = cli(capsys, "sample", runs / "cancer", "-n", "400", "--out", tmp_path / "s.csv")
    assert code == 0, err
    assert "400 rows, original units" in out
    header, rows = read_csv(tmp_path / "s.csv")
    assert header == list(data.feature_names) and rows.shape == (400, 30)
    mean, scale = data.scaling.mean, data.scaling.scale
    # Near the data's means (decoded prior samples of a VAE centre on them), in the data's units ...
    assert np.all(np.abs(rows.mean(0) - mean) < 0.75 * scale)
    # ... not the standardised ones: 'mean area' averages about 650 with an sd of about 350.
    area = data.feature_names.index("mean area")
    assert mean[area] > 1.5 * scale[area] and rows[:, area].mean() > 300
    # The same seed writes the same numbers as .npy.
    assert cli(capsys, "sample", runs / "cancer", "-n", "400", "--out", tmp_path / "s.npy")[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), rows, rtol=1e-6)


def test_reconstruct_csv_is_the_reconstruction_in_original_units(runs, cancer, capsys, tmp_path):
    model, data = cancer
    code, _, err = cli(capsys, "reconstruct", runs / "cancer", "-n", "7", "--out", tmp_path / "r.csv")
    assert code == 0, err
    header, rows = read_csv(tmp_path / "r.csv")
    expected = data.scaling.inverse(latent.reconstruct(model, data.test.x[:7]))
    assert header == list(data.feature_names)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)


def test_decode_lists_and_writes_rows_in_original_units(runs, cancer, capsys, tmp_path):
    model, data = cancer
    codes = np.array([[0.0, 0.0], [-1.0, 2.0]])
    code, out, err = cli(capsys, "decode", runs / "cancer", "--z", "0,0", "--z=-1,2", "--out", tmp_path / "d.csv")
    assert code == 0, err
    header, rows = read_csv(tmp_path / "d.csv")
    expected = latent.decode_values(model, codes)
    assert header == list(data.feature_names)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
    area = data.feature_names.index("mean area")
    listed = [line for line in out.splitlines() if line.startswith("mean area ")]
    assert [float(v) for v in listed[0].split()[2:]] == pytest.approx(expected[:, area], rel=1e-3)
    code, _, err = cli(capsys, "decode", runs / "cancer", "--z", "0,0,1")
    assert code == 2 and "code 1 has 3 numbers: this model's codes are 2 finite numbers" in one_error_line(err)
    code, out, err = cli(capsys, "decode", runs / "digits", "--z", "0,0", "--out", tmp_path / "d.png")
    assert code == 0 and "1 codes decoded" in out and (tmp_path / "d.png").exists()


def test_rows_csv_quotes_names_and_refuses_images(tmp_path):
    from vaekit.data.rows import save_rows
    from vaekit.errors import ConfigError

    save_rows(tmp_path / "q.csv", np.array([[1.5, -2.25e-7]]), ["a, b", 'c"d'])
    header, rows = read_csv(tmp_path / "q.csv")
    assert header == ["a, b", 'c"d'] and rows.tolist() == [[1.5, -2.25e-7]]
    with pytest.raises(ConfigError, match="trained on images: write .npy"):
        save_rows(tmp_path / "x.csv", np.zeros((2, 4)), None)


# -- figures ---------------------------------------------------------------------------------------
def texts(figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def test_interpolation_shows_the_real_rows_in_original_units(cancer):
    model, data = cancer
    made = figures.interpolation(model, data, start=0, end=3, steps=5)
    ax = made.figure.axes[0]                                     # then the colour bar's
    assert [t.get_text() for t in ax.get_yticklabels()] == list(data.feature_names)
    # 30 features x (5 steps + 2 real rows) = 210 cells, each with its value: the first column is
    # test row 0 as it was in the table.
    cells = texts(made.figure)
    assert len(cells) == 30 * 7
    first = data.scaling.inverse(data.test.x[0])
    assert cells[0::7] == [table_plots.short_number(v) for v in first]
    assert made.summary.startswith("|z| along the path")


def test_arithmetic_compares_the_decoded_change_with_the_datas_class_difference(cancer):
    model, data = cancer
    made = figures.arithmetic(model, data, plus="malignant", minus="benign", alphas=[-1, 0, 1], rows=4)
    train, original = data.train, data.scaling.inverse(data.train.x)
    difference = original[train.y == 0].mean(0) - original[train.y == 1].mean(0)
    cells = np.array(texts(made.figure), dtype=object).reshape(30, 4)
    assert list(cells[:, 3]) == [table_plots.short_number(v) for v in difference]
    assert set(cells[:, 1]) == {"0"}                               # alpha = 0 changes nothing
    assert "correlation of the α = 1 change with the data's class difference" in made.summary


def test_latent_map_of_a_2d_table_maps_features_over_the_grid(cancer):
    model, data = cancer
    made = figures.latent_map(model, data, grid_size=6)
    titles = [ax.get_title() for ax in made.figure.axes if ax.get_visible()]
    mapped = [t for t in titles if t in data.feature_names]
    assert len(mapped) == 6 and mapped[0] in made.summary
    assert "test rows" in titles[0]


def test_traversal_and_samples_on_an_autoencoder_table(runs):
    model, data = latent.load_model_and_data(runs / "wine")
    made = figures.traversal(model, data, steps=5)
    assert made.summary.startswith("feature each dimension moves most: z")
    assert len(texts(made.figure)) == 13 * 3                       # 13 features x 3 latent dimensions
    made = figures.samples(model, data, n=30, sampler="gmm")
    assert made.values.shape == (30, 13) and made.summary.startswith("30 samples")


def test_short_numbers():
    assert [table_plots.short_number(v) for v in (4254.4, 23.44, 1.524, 0.0123, 0.0, -0.5, 2.5e-5, 3e6)] == \
        ["4254", "23.4", "1.52", "0.012", "0", "-0.5", "2.5e-05", "3e+06"]


# -- every command on a table run ------------------------------------------------------------------
COMMANDS = [
    ("reconstruct", [], "MSE per standardised value"),
    ("sample", ["-n", "20"], "20 samples; their feature means"),
    ("interpolate", ["--from", "1", "--to", "2", "--steps", "4"], "|z| along the path"),
    ("traverse", ["--steps", "3"], "feature each dimension moves most"),
    ("latent-map", ["--grid-size", "5"], "mapped over the decoded grid"),
    ("arithmetic", ["--plus", "malignant", "--minus", "benign", "--rows", "3"], "attribute vector"),
]


@pytest.mark.parametrize("command, options, printed", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_table_commands_write_figures(runs, capsys, tmp_path, command, options, printed):
    from PIL import Image

    code, out, err = cli(capsys, command, runs / "cancer", *options, "--out", tmp_path / "f.png")
    assert code == 0, err
    assert printed in out
    with Image.open(tmp_path / "f.png") as image:
        assert 400 <= image.size[0] <= 1700 and 250 <= image.size[1] <= 2100


@pytest.mark.parametrize("args, fragment", [
    (["denoise", "{cancer}"], "denoise (pixel noise scored by PSNR) needs a run trained on images, and this run was "
                              "trained on the table breast-cancer (30 features)"),
    (["interpolate", "{cancer}", "--grid", "0", "1", "2", "3"], "interpolate --grid (a grid of decoded images) needs a run"),
    (["arithmetic", "{cancer}", "--plus", "0", "--attributes", "a.csv"], "--attributes names images of an image folder"),
    (["traverse", "{cancer}", "--out", "t.csv"], "--out t.csv: .csv is not an image format: write a figure as .png (or .pdf, .svg)"),
    (["sample", "{cancer}", "--out", "s.txt"], "or .csv / .npy for the decoded values"),
    (["sample", "{digits}", "--out", "{tmp}/s.csv"], "a CSV holds the rows of a table, and this run was trained on images"),
])
def test_image_only_requests_refuse_with_one_line(runs, capsys, tmp_path, args, fragment):
    code, _, err = cli(capsys, *[a.format(cancer=runs / "cancer", digits=runs / "digits", tmp=tmp_path) for a in args])
    assert code == 2 and fragment in one_error_line(err)


def test_image_run_sample_npy_holds_the_images(runs, capsys, tmp_path):
    assert cli(capsys, "sample", runs / "digits", "-n", "5", "--out", tmp_path / "d.npy")[0] == 0
    images = np.load(tmp_path / "d.npy")
    assert images.shape == (5, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


@pytest.mark.slow
def test_as_a_user_runs_it(runs, tmp_path):
    proc = run_cli("sample", str(runs / "wine"), "-n", "12", "--sampler", "gmm", "--out", str(tmp_path / "w.csv"))
    assert proc.returncode == 0, proc.stderr
    header, rows = read_csv(tmp_path / "w.csv")
    assert header[0] == "alcohol" and rows.shape == (12, 13) and 10 < rows[:, 0].mean() < 16   # % alcohol
    proc = run_cli("denoise", str(runs / "wine"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# -- report ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_report_of_a_table_run_has_features_in_original_units(runs, cancer, capsys):
    from vaekit.evaluation.evaluate import evaluate

    evaluate(runs / "cancer", iw_samples=20, regularity=False, device="cpu")
    code, _, err = cli(capsys, "report", runs / "cancer", "--device", "cpu")
    assert code == 0, err
    page = (runs / "cancer" / "report.html").read_text()
    assert "<h2>Features</h2>" in page and "<h2>Latent map</h2>" in page
    model, data = cancer
    area = data.feature_names.index("mean area")
    assert f"<td>mean area</td><td class=\"num\">{data.scaling.mean[area]:,.4f}</td>" in page


# -- explorer --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(runs):
    from fastapi.testclient import TestClient

    from vaekit.serve import RunRegistry, create_app

    return TestClient(create_app(RunRegistry(runs), allowed_hosts=None))


def test_explorer_info_names_the_features_and_their_scaling(client, cancer):
    _, data = cancer
    info = client.get("/api/info", params={"run": "cancer"}).json()
    assert info["feature_names"] == list(data.feature_names)
    np.testing.assert_allclose(info["feature_mean"], data.scaling.mean)
    np.testing.assert_allclose(info["feature_scale"], data.scaling.scale)
    assert info["can_upload"] is False
    assert client.get("/api/info", params={"run": "digits"}).json()["feature_names"] is None


def test_explorer_decodes_rows_in_original_units(client, cancer):
    model, data = cancer
    z = [[0.0, 0.0], [1.5, -2.0]]
    body = client.post("/api/decode", json={"run": "cancer", "z": z}).json()
    np.testing.assert_allclose(body["values"], latent.decode_values(model, np.array(z)), rtol=1e-5)
    assert len(body["images"]) == 2 and body["images"][0].startswith("data:image/png;base64,")
    found = client.get("/api/test-images/4", params={"run": "cancer"}).json()
    np.testing.assert_allclose(found["image_values"], data.scaling.inverse(data.test.x[4]), rtol=1e-5)
    recon = data.scaling.inverse(latent.reconstruct(model, data.test.x[4:5]))[0]
    np.testing.assert_allclose(found["reconstruction_values"], recon, rtol=1e-5)
    path = client.post("/api/interpolate", json={"run": "cancer", "start": z[0], "end": z[1], "steps": 3}).json()
    np.testing.assert_allclose(path["values"][-1], body["values"][1], rtol=1e-5)
    drawn = client.post("/api/sample", json={"run": "cancer", "n": 4}).json()
    assert np.asarray(drawn["values"]).shape == (4, 30)
    images = client.post("/api/decode", json={"run": "digits", "z": z}).json()
    assert images["values"] is None


def test_feature_glyph_draws_one_bar_per_feature():
    from vaekit.serve.images import GLYPH_DOWN, GLYPH_UP, feature_glyph

    glyph = feature_glyph(np.array([3.0, 0.0, -1.5, 10.0]))
    channels, height, width = glyph.shape
    middle = height // 2
    assert channels == 3 and width == 4 * 4 + 1 and height % 2 == 1
    column = lambda i: glyph[:, :, 1 + 4 * i]                   # noqa: E731 - a bar's first pixel column
    up = np.all(np.isclose(column(0), np.asarray(GLYPH_UP)[:, None]), axis=0)
    assert up[:middle].all() and not up[middle:].any()          # +3 sd fills the upper half
    assert not (column(1)[:, :middle] < 1).any() and not (column(1)[:, middle + 1:] < 1).any()
    down = np.all(np.isclose(column(2), np.asarray(GLYPH_DOWN)[:, None]), axis=0)
    assert down.sum() == round(middle / 2) and down[middle + 1:].any()
    assert np.array_equal(column(3), column(0))                 # clipped at +3 sd


@pytest.mark.slow
def test_explorer_page_shows_a_table_run_as_features(runs):
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on PATH (scripts/setup.sh installs Debian's)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from test_serve_api import serving
    from test_serve_browser import ARGS

    from vaekit.serve import RunRegistry, create_app

    with serving(create_app(RunRegistry(runs))) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        problems = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.goto(url + "/#run=cancer")
        page.wait_for_function("() => document.querySelector('#features td.value') && "
                               "document.querySelector('#features td.value').textContent !== ''")
        assert page.locator("#features tbody tr").count() == 30
        assert page.is_hidden("#decoded") and page.is_visible("#features")
        x, y = page.evaluate("() => toPixel(state.map.points[0])")
        box = page.locator("#map").bounding_box()
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_function("() => document.querySelector('#features td.input').textContent !== ''")
        index = page.evaluate("() => state.map.indices[0]")
        first_input = page.inner_text("#features tbody tr:first-child td.input")
        row = json.loads(page.evaluate(f"() => fetch('/api/test-images/{index}?run=cancer').then(r => r.text())"))
        assert float(first_input) == pytest.approx(row["image_values"][0], rel=0.01)   # mean radius, in mm
        assert "test rows" in page.inner_text("#map-title")
        browser.close()
        assert not problems, problems
