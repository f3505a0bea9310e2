"""The explorer's JSON API (vaekit serve): every endpoint against an independent computation, every bad input.

Two tiny runs are trained once for the module on the bundled digits (a 3-D VAE, whose map is a PCA
plane, and a 2-D AE, whose map is the code itself), so the run picker and both model kinds are
covered. The browser tests import :func:`train_runs` and :func:`serving` from here.
"""
from __future__ import annotations

import base64
import contextlib
import io
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import quick_config, run_cli

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from vaekit import latent  # noqa: E402
from vaekit.serve import RunRegistry, create_app  # noqa: E402
from vaekit.serve.explorer import MapPlane  # noqa: E402
from vaekit.serve.images import MAX_UPLOAD_BYTES  # noqa: E402


# -- shared with the browser tests ------------------------------------------------------------------
def train_runs(root, dataset) -> None:
    """A folder of two tiny digits runs: ``digits-ae`` (latent 2) and ``digits-vae`` (latent 3)."""
    from vaekit.training.trainer import train

    train(quick_config(model="ae", latent_dim=2, epochs=3), dataset, root / "digits-ae")
    train(quick_config(model="vae", latent_dim=3, epochs=3), dataset, root / "digits-vae")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app):
    """Run ``app`` under uvicorn on 127.0.0.1 (a free port) in a background thread; yields the base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, digits_dataset):
    root = tmp_path_factory.mktemp("served")
    train_runs(root, digits_dataset)
    return root


@pytest.fixture(scope="module")
def registry(runs_root):
    return RunRegistry(runs_root)


@pytest.fixture(scope="module")
def client(registry):
    return TestClient(create_app(registry, allowed_hosts=None))


@pytest.fixture(scope="module")
def vae(registry):
    return registry.get("digits-vae")


@pytest.fixture(scope="module")
def ae(registry):
    return registry.get("digits-ae")


def pixels(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as image:
        assert image.format == "PNG"
        return np.asarray(image, np.float64) / 255


def png(array: np.ndarray, *, format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format)
    return buffer.getvalue()


def detail(response) -> str:
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    assert "Traceback" not in body["detail"]
    return body["detail"]


# -- runs, info, map ------------------------------------------------------------------------------
def test_runs_lists_both_runs_and_a_default(client):
    body = client.get("/api/runs").json()
    assert [run["id"] for run in body["runs"]] == ["digits-ae", "digits-vae"]
    assert body["default"] == "digits-ae"
    assert {run["model"] for run in body["runs"]} == {"ae", "vae"}
    assert all(run["error"] is None for run in body["runs"])


@pytest.mark.parametrize("run, kind, dims", [("digits-vae", "vae", 3), ("digits-ae", "ae", 2)])
def test_info_describes_the_run(client, run, kind, dims, digits_dataset):
    info = client.get("/api/info", params={"run": run}).json()
    assert info["model"] == kind and info["variational"] == (kind == "vae")
    assert info["latent_dim"] == dims and len(info["start"]) == dims
    assert info["dataset"] == "digits" and info["sample_shape"] == [1, 8, 8]
    assert info["class_names"] == digits_dataset.class_names
    assert sorted(d["index"] for d in info["dimensions"]) == list(range(dims))
    assert all(d["low"] < d["high"] for d in info["dimensions"])
    kls = [d["kl"] for d in info["dimensions"]]
    if kind == "vae":
        assert kls == sorted(kls, reverse=True)         # most informative dimension first
        assert all(d["low"] <= -3 and d["high"] >= 3 for d in info["dimensions"])   # +-3 prior std at least
    else:
        assert kls == [None] * dims


def test_info_defaults_to_the_first_run(client):
    assert client.get("/api/info").json()["run"] == "digits-ae"


def test_map_of_a_2d_latent_is_the_code_itself(client, ae, digits_dataset):
    body = client.get("/api/map", params={"run": "digits-ae"}).json()
    codes = latent.encode_means(ae.model, digits_dataset.test.x[body["indices"]])
    np.testing.assert_allclose(body["points"], codes, atol=1e-4)
    assert body["method"] == "identity" and body["axis_labels"] == ["z0", "z1"]
    assert body["labels"] == digits_dataset.test.y[body["indices"]].tolist()


def test_map_of_a_3d_latent_is_the_pca_plane(client, vae, digits_dataset):
    from sklearn.decomposition import PCA

    body = client.get("/api/map", params={"run": "digits-vae"}).json()
    assert len(body["points"]) == len(digits_dataset.test)      # fewer test images than MAP_POINTS
    codes = latent.encode_means(vae.model, digits_dataset.test.x[body["indices"]]).astype(np.float64)
    reference = PCA(n_components=2).fit_transform(codes)
    points = np.asarray(body["points"])
    for k in range(2):                                          # principal axes are defined up to sign
        sign = np.sign(points[:, k] @ reference[:, k])
        np.testing.assert_allclose(points[:, k], sign * reference[:, k], atol=2e-3)
    axes = np.asarray(body["axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-9)
    assert body["method"] == "pca" and body["axis_labels"][0].startswith("PC1 (")


def test_lift_moves_a_code_within_the_map_plane_only():
    rng = np.random.default_rng(0)
    plane = MapPlane.fit(rng.standard_normal((200, 5)) * [3, 2, 1, 0.5, 0.1])
    z, target = rng.standard_normal(5), np.array([0.7, -1.2])
    lifted = plane.lift(z, target)
    np.testing.assert_allclose(plane.project(lifted), target, atol=1e-12)
    # What changed lies in the plane: the part orthogonal to both axes is untouched.
    residual = (lifted - z) - (lifted - z) @ plane.axes.T @ plane.axes
    np.testing.assert_allclose(residual, 0, atol=1e-12)


# -- decode ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("run", ["digits-vae", "digits-ae"])
def test_decode_returns_the_models_images_as_pngs(client, registry, run):
    model = registry.get(run).model
    z = np.random.default_rng(1).standard_normal((5, model.latent_dim))
    body = client.post("/api/decode", json={"run": run, "z": z.tolist()}).json()
    assert len(body["images"]) == 5
    with torch.no_grad():
        expected = model.decode(torch.as_tensor(z, dtype=torch.float32)).clamp(0, 1).numpy()[:, 0]
    got = np.stack([pixels(url) for url in body["images"]])
    assert got.shape == (5, 8, 8)
    np.testing.assert_allclose(got, expected, atol=0.5 / 255 + 1e-6)   # 8-bit rounding only


def test_decode_accepts_256_codes(client):
    body = client.post("/api/decode", json={"run": "digits-ae", "z": [[0.1, -0.2]] * 256}).json()
    assert len(body["images"]) == 256 and len(set(body["images"])) == 1


@pytest.mark.parametrize("payload, status, words", [
    ({"z": [[0.0, 0.0]]}, 422, "has 2 numbers: this run's codes have 3"),
    ({"z": [[0.0, 0.0, 0.0], [1.0, 2.0]]}, 422, "z[1] has 2 numbers"),
    ({"z": [[0.0, 0.0, 0.0]] * 257}, 422, "at most 256"),
    ({"z": []}, 422, "at least 1"),
    ({"z": [[]]}, 422, "at least 1"),
    ({"z": [[0.0, "a", 0.0]]}, 422, "z[0][1]"),
    ({"z": [[0.0, 1e9, 0.0]]}, 422, "less than or equal to 10000"),
    ({"z": [0.0, 0.0, 0.0]}, 422, "valid list"),
    ({}, 422, "z: Field required"),
    ({"z": [[0.0, 0.0, 0.0]], "colour": "red"}, 422, "Extra inputs"),
    ({"run": "nope", "z": [[0.0, 0.0, 0.0]]}, 404, "no run called 'nope'"),
    ({"run": "../digits-vae", "z": [[0.0, 0.0, 0.0]]}, 404, "no run called"),
])
def test_decode_refuses_bad_codes_with_a_message(client, payload, status, words):
    response = client.post("/api/decode", json={"run": "digits-vae", **payload})
    assert response.status_code == status
    assert words in detail(response)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_decode_refuses_non_finite_numbers(client, text):
    body = '{"run": "digits-vae", "z": [[0, %s, 0]]}' % text
    response = client.post("/api/decode", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert detail(response) == "z[0][1]: Input should be a finite number"


def test_decode_refuses_a_body_that_is_not_json(client):
    response = client.post("/api/decode", content=b"{z: ", headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "not valid JSON" in detail(response)


# -- test images and uploads ----------------------------------------------------------------------
def test_test_image_gives_the_image_its_posterior_and_reconstruction(client, vae, digits_dataset):
    body = client.get("/api/test-images/7", params={"run": "digits-vae"}).json()
    x = digits_dataset.test.x[7:8]
    with torch.no_grad():
        posterior = vae.model.encode(torch.as_tensor(x))
        recon = vae.model.decode(posterior.mean).clamp(0, 1).numpy()[0, 0]
    np.testing.assert_allclose(body["mean"], posterior.mean[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(body["logvar"], posterior.logvar[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pixels(body["image"]), x[0, 0], atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(pixels(body["reconstruction"]), recon, atol=0.5 / 255 + 1e-6)
    assert body["label"] == int(digits_dataset.test.y[7]) and body["class_name"] == str(body["label"])
    np.testing.assert_allclose(body["point"], vae.plane.project(np.asarray(body["mean"]))[None][0], atol=1e-9)


@pytest.mark.parametrize("index", ["180", "100000", "-1"])
def test_test_image_out_of_range_is_404(client, index):
    response = client.get(f"/api/test-images/{index}", params={"run": "digits-vae"})
    assert response.status_code == 404
    assert "the test split has 180 images" in detail(response)


def test_test_image_index_must_be_an_integer(client):
    assert client.get("/api/test-images/abc").status_code == 422


def upload(client, data: bytes, name="x.png", kind="image/png", **form):
    return client.post("/api/encode", files={"file": (name, data, kind)}, data={"run": "digits-vae", **form})


def test_encode_upload_matches_encoding_the_same_pixels(client, vae, digits_dataset):
    grey = np.rint(digits_dataset.test.x[3, 0] * 255).astype(np.uint8)     # the 8x8 test image, 8-bit
    body = upload(client, png(grey)).json()
    x = torch.as_tensor(grey[None, None] / np.float32(255), dtype=torch.float32)
    with torch.no_grad():
        posterior = vae.model.encode(x)
    np.testing.assert_allclose(body["mean"], posterior.mean[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(body["logvar"], posterior.logvar[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(pixels(body["input"]), grey / 255, atol=1e-9)
    assert len(body["point"]) == 2

    inverted = upload(client, png(grey), invert="true").json()
    with torch.no_grad():
        expected = vae.model.encode(1 - x).mean[0].numpy()
    np.testing.assert_allclose(inverted["mean"], expected, atol=1e-5)


def test_encode_resizes_colour_jpegs_to_the_runs_shape(client, ae):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    response = client.post("/api/encode", files={"file": ("p.jpg", png(photo, format="JPEG"), "image/jpeg")},
                           data={"run": "digits-ae"})
    body = response.json()
    assert response.status_code == 200, body
    assert pixels(body["input"]).shape == (8, 8)
    assert body["logvar"] is None and len(body["mean"]) == 2          # a plain autoencoder: a point


def test_encode_refuses_bad_uploads(client):
    cases = [
        (b"", 422, "empty"),
        (b"hello, I am text" * 10, 415, "not an image"),
        (png(np.zeros((4, 4), np.uint8), format="GIF"), 415, "GIF image: only PNG and JPEG"),
        (png(np.zeros((64, 64), np.uint8))[:60], 415, "damaged or truncated"),
    ]
    for data, status, words in cases:
        response = upload(client, data)
        assert response.status_code == status, (words, response.text)
        assert words in detail(response)


def test_encode_refuses_uploads_over_5_mb(client):
    image = png(np.zeros((8, 8), np.uint8))
    data = image + b"\0" * (MAX_UPLOAD_BYTES + 1000 - len(image))     # a valid PNG with a tail: 1000 bytes too many
    response = upload(client, data)                                    # refused by the upload check
    assert response.status_code == 413
    assert "5 MB" in detail(response)
    huge = upload(client, b"\0" * (7 * 2**20))                       # refused by the body limit
    assert huge.status_code == 413 and "5 MB" in detail(huge)


def test_encode_refuses_decompression_bombs(client):
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")               # 64 megapixels in a few kB
    assert len(bomb.getvalue()) < 100_000
    response = upload(client, bomb.getvalue())
    assert response.status_code == 413
    assert "8000x8000 pixels" in detail(response)


def test_encode_needs_a_file(client):
    response = client.post("/api/encode", data={"run": "digits-vae"})
    assert response.status_code == 422
    assert "file: Field required" in detail(response)


# -- interpolate, sample, attribute -------------------------------------------------------------
def test_interpolate_decodes_the_straight_path(client, vae):
    a, b = [0.5, -1.0, 2.0], [-1.5, 0.0, 1.0]
    body = client.post("/api/interpolate", json={"run": "digits-vae", "start": a, "end": b, "steps": 5}).json()
    np.testing.assert_allclose(body["z"], [np.add(a, t * np.subtract(b, a)) for t in np.linspace(0, 1, 5)], atol=1e-12)
    direct = client.post("/api/decode", json={"run": "digits-vae", "z": [a, b]}).json()["images"]
    assert body["images"][0] == direct[0] and body["images"][-1] == direct[1]
    np.testing.assert_allclose(body["points"], vae.plane.project(np.asarray(body["z"])), atol=1e-9)


def test_interpolate_slerp_keeps_unit_codes_on_the_sphere(client):
    body = client.post("/api/interpolate", json={"run": "digits-vae", "start": [1, 0, 0], "end": [0, 1, 0],
                                                 "steps": 7, "method": "slerp"}).json()
    np.testing.assert_allclose(np.linalg.norm(body["z"], axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(body["z"][3], [np.sqrt(0.5), np.sqrt(0.5), 0], atol=1e-12)


@pytest.mark.parametrize("change, words", [
    ({"steps": 1}, "steps: Input should be greater than or equal to 2"),
    ({"steps": 65}, "steps: Input should be less than or equal to 64"),
    ({"method": "cubic"}, "method: Input should be 'linear' or 'slerp'"),
    ({"start": [0.0, 0.0]}, "z[0] has 2 numbers"),
    ({"end": [0.0, 0.0, 0.0, 0.0]}, "z[1] has 4 numbers"),
])
def test_interpolate_refuses_bad_requests(client, change, words):
    response = client.post("/api/interpolate", json={"run": "digits-vae", "start": [0, 0, 0], "end": [1, 1, 1], **change})
    assert response.status_code == 422
    assert words in detail(response)


def test_sample_draws_from_the_models_prior(client, vae):
    body = client.post("/api/sample", json={"run": "digits-vae", "n": 6, "seed": 11, "temperature": 0.5}).json()
    expected = vae.model.sample_prior(6, generator=torch.Generator().manual_seed(11), temperature=0.5)
    np.testing.assert_allclose(body["z"], expected.numpy(), atol=1e-6)
    assert len(body["images"]) == 6 and body["warning"] is None
    again = client.post("/api/sample", json={"run": "digits-vae", "n": 6, "seed": 11, "temperature": 0.5}).json()
    other = client.post("/api/sample", json={"run": "digits-vae", "n": 6, "seed": 12, "temperature": 0.5}).json()
    assert again["z"] == body["z"] and other["z"] != body["z"]


def test_sample_from_an_autoencoder_warns_and_offers_the_mixture(client, ae):
    prior = client.post("/api/sample", json={"run": "digits-ae", "n": 4}).json()
    assert "no prior" in prior["warning"] and "gmm" in prior["warning"]
    mixture = client.post("/api/sample", json={"run": "digits-ae", "n": 64, "sampler": "gmm", "seed": 3}).json()
    assert mixture["warning"] is None
    z = np.asarray(mixture["z"])
    # Mixture samples follow the encoded training codes, whatever their scale.
    np.testing.assert_allclose(z.mean(0), ae.train_codes.mean(0), atol=4 * ae.train_codes.std(0).max() / np.sqrt(64))


@pytest.mark.parametrize("change, words", [
    ({"n": 0}, "n: Input should be greater than or equal to 1"),
    ({"n": 65}, "n: Input should be less than or equal to 64"),
    ({"temperature": 0}, "temperature: Input should be greater than 0"),
    ({"sampler": "flow"}, "sampler: Input should be 'prior' or 'gmm'"),
    ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
])
def test_sample_refuses_bad_requests(client, change, words):
    response = client.post("/api/sample", json={"run": "digits-vae", **change})
    assert response.status_code == 422
    assert words in detail(response)


def test_attribute_is_the_difference_of_class_mean_codes(client, vae, digits_dataset):
    body = client.post("/api/attribute", json={"run": "digits-vae", "plus": "7", "minus": "1"}).json()
    codes = latent.encode_means(vae.model, digits_dataset.train.x).astype(np.float64)
    y = digits_dataset.train.y
    expected = codes[y == 7].mean(0) - codes[y == 1].mean(0)
    np.testing.assert_allclose(body["vector"], expected, atol=1e-5)
    assert (body["plus"], body["minus"]) == ("7", "1")
    assert (body["n_plus"], body["n_minus"]) == (int(np.sum(y == 7)), int(np.sum(y == 1)))
    assert body["norm"] == pytest.approx(np.linalg.norm(expected), abs=1e-5)


@pytest.mark.parametrize("plus, minus, words", [
    ("7", "7", "two different classes"),
    ("seven", "1", "unknown class 'seven'"),
    ("12", "1", "class index 12 is out of range"),
])
def test_attribute_refuses_bad_classes(client, plus, minus, words):
    response = client.post("/api/attribute", json={"run": "digits-vae", "plus": plus, "minus": minus})
    assert response.status_code == 422
    assert words in detail(response)


# -- the page and security ------------------------------------------------------------------------
def test_page_and_assets_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and "latent explorer" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "http" not in page.text.replace('href="/docs"', "")             # nothing from elsewhere
    modules = ["main.js", "state.js", "dom.js", "api.js", "decoder.js", "plot.js", "map.js", "panels.js", "tools.js"]
    assert '<script type="module" src="/static/main.js">' in page.text
    for name, kind in [("explorer.css", "text/css")] + [(name, "text/javascript") for name in modules]:
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], name
        assert "://" not in asset.text                                      # no CDN: works offline
    # Every module the page imports is in the served table (and nothing the table lacks is imported).
    imported = set()
    for name in modules:
        imported |= set(re.findall(r'^import .* from "\./([\w-]+\.js)";$', client.get(f"/static/{name}").text, re.M))
    assert imported == set(modules) - {"main.js"}


@pytest.mark.parametrize("path", ["/static/app.py", "/static/..%2fapp.py", "/static/../serve/app.py",
                                  "/static/%2e%2e/%2e%2e/run.py", "/run.json", "/digits-vae/run.json",
                                  "/static/explorer.js", "/static/index.html", "/static/__init__.py",
                                  "/static/static/main.js", "/static/..%2f__init__.py", "/static/main.py",
                                  "/main.js", "/state.js"])
def test_no_file_outside_the_assets_can_be_read(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text and "format" not in response.text


def test_openapi_documents_every_endpoint(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ["/api/runs", "/api/info", "/api/map", "/api/test-images/{index}", "/api/decode", "/api/encode",
                 "/api/interpolate", "/api/sample", "/api/attribute"]:
        assert path in paths, path


def test_other_host_names_are_refused(registry):
    guarded = TestClient(create_app(registry), base_url="http://127.0.0.1:8000")
    assert guarded.get("/api/runs").status_code == 200
    assert guarded.get("/api/runs", headers={"host": "localhost:8000"}).status_code == 200
    assert guarded.get("/api/runs", headers={"host": "[::1]:8000"}).status_code == 200
    rebound = guarded.get("/api/runs", headers={"host": "attacker.example:8000"})
    assert rebound.status_code == 421 and "127.0.0.1" in detail(rebound)


def test_unexpected_errors_are_logged_not_shown(registry, monkeypatch, caplog):
    explorer = registry.get("digits-ae")

    def broken(codes):
        raise RuntimeError("secret /home/user/path")

    monkeypatch.setattr(explorer, "decode", broken)
    quiet = TestClient(create_app(registry, allowed_hosts=None), raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="vaekit.serve.app"):
        response = quiet.post("/api/decode", json={"run": "digits-ae", "z": [[0, 0]]})
    assert response.status_code == 500
    assert detail(response) == "internal error: the server log has the details"
    assert "secret" not in response.text
    assert any("secret" in (record.exc_text or "") or record.exc_info for record in caplog.records)


def test_a_broken_run_is_listed_and_refused_with_its_reason(tmp_path, runs_root):
    import shutil

    shutil.copytree(runs_root / "digits-ae", tmp_path / "good")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{not json")
    local = TestClient(create_app(RunRegistry(tmp_path), allowed_hosts=None))
    listing = {run["id"]: run for run in local.get("/api/runs").json()["runs"]}
    assert listing["broken"]["error"] and "corrupt" in listing["broken"]["error"]
    assert local.get("/api/runs").json()["default"] == "good"
    response = local.get("/api/info", params={"run": "broken"})
    assert response.status_code == 409 and "cannot be explored" in detail(response)


def test_array_runs_cannot_be_explored_and_say_why(tmp_path):
    from vaekit.api import train

    x = np.random.default_rng(0).random((64, 4, 4)).astype(np.float32)
    train(x, model="ae", arch="mlp", hidden=[8], latent_dim=2, epochs=1, device="cpu", out=tmp_path / "arrays")
    local = TestClient(create_app(RunRegistry(tmp_path / "arrays"), allowed_hosts=None))
    response = local.get("/api/info")
    assert response.status_code == 409 and "in-memory arrays" in detail(response)


def test_concurrent_requests_agree_with_sequential_ones(registry):
    """8 clients at once on a real server: no errors, and every answer is the one a lone client gets."""
    import httpx

    rng = np.random.default_rng(5)
    codes = [rng.standard_normal((3, 3)).tolist() for _ in range(12)]
    with serving(create_app(registry)) as url:
        with httpx.Client(base_url=url) as lone:
            expected = [lone.post("/api/decode", json={"run": "digits-vae", "z": z}).json() for z in codes]

        def hammer(worker: int):
            with httpx.Client(base_url=url) as session:
                answers = []
                for round_ in range(3):
                    for i in range(worker % 4, len(codes), 4):
                        response = session.post("/api/decode", json={"run": "digits-vae", "z": codes[i]})
                        answers.append((i, response.status_code, response.json()))
                    session.post("/api/sample", json={"run": "digits-ae", "n": 4, "seed": round_})
                return answers

        with ThreadPoolExecutor(8) as pool:
            results = [answer for answers in pool.map(hammer, range(8)) for answer in answers]
    assert all(status == 200 for _, status, _ in results)
    assert all(body == expected[i] for i, _, body in results)


# -- the command ----------------------------------------------------------------------------------
def test_serve_command_prints_the_address_and_serves(runs_root):
    import subprocess
    import sys

    import httpx

    process = subprocess.Popen([sys.executable, "-m", "vaekit", "serve", str(runs_root), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("vaekit explorer: http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[2]
        assert "2 runs: digits-ae, digits-vae" in line
        info = httpx.get(url + "api/info", params={"run": "digits-vae"}, timeout=30).json()
        assert info["latent_dim"] == 3
    finally:
        process.terminate()
        rest, errors = process.communicate(timeout=20)
    assert '"GET /api/info?run=digits-vae HTTP/1.1" 200' in rest + errors        # requests are logged


@pytest.mark.parametrize("args, words", [
    (["/nonexistent/runs"], "is not a folder"),
    (["{empty}"], "no vaekit runs in"),
    (["{runs}", "--port", "70000"], "--port must be between 0 and 65535"),
    (["{runs}", "--max-points", "0"], "--max-points must be at least 1"),
])
def test_serve_command_refuses_bad_arguments_in_one_line(tmp_path, runs_root, args, words):
    args = [a.format(empty=tmp_path, runs=runs_root) for a in args]
    result = run_cli("serve", *args, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("vaekit: error: ") and words in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_serve_command_reports_a_busy_port(runs_root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = run_cli("serve", str(runs_root / "digits-ae"), "--port", str(taken.getsockname()[1]), timeout=120)
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1:" in result.stderr and "--port" in result.stderr
