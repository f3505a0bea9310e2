"""Every registered model works in the explorer: each endpoint answers a run of each model kind.

Tiny one-epoch runs on the bundled digits; this checks the explorer's use of the model interface
(encode, decode, sample_prior, the conditional and discrete models' defaults), not image quality.
"""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import quick_config

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from vaekit.models import MODELS  # noqa: E402
from vaekit.serve import RunRegistry, create_app  # noqa: E402

LATENT = 4


@pytest.fixture(scope="module")
def client(tmp_path_factory, digits_dataset):
    from vaekit.training.trainer import train

    root = tmp_path_factory.mktemp("model-runs")
    for name in MODELS:
        extra = {"code_dim": 2} if name == "vq-vae" else {}
        train(quick_config(model=name, latent_dim=LATENT, epochs=1, **extra), digits_dataset, root / name)
    return TestClient(create_app(RunRegistry(root), allowed_hosts=None))


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(MODELS))
def test_every_endpoint_serves_every_model(client, name):
    runs = {run["id"]: run for run in client.get("/api/runs").json()["runs"]}
    assert runs[name]["error"] is None
    info = client.get("/api/info", params={"run": name})
    assert info.status_code == 200 and info.json()["latent_dim"] == LATENT
    points = client.get("/api/map", params={"run": name})
    assert points.status_code == 200
    answers = {
        "decode": client.post("/api/decode", json={"run": name, "z": [[0.1] * LATENT, [-0.5] * LATENT]}),
        "sample": client.post("/api/sample", json={"run": name, "n": 3}),
        "interpolate": client.post("/api/interpolate", json={"run": name, "start": [0.0] * LATENT,
                                                             "end": [1.0] * LATENT, "steps": 5}),
        "attribute": client.post("/api/attribute", json={"run": name, "plus": "1", "minus": "7"}),
        "encode": client.post("/api/encode", data={"run": name}, files={"file": ("x.png", _png(), "image/png")}),
    }
    for endpoint, answer in answers.items():
        assert answer.status_code == 200, (endpoint, answer.text)
    assert len(answers["decode"].json()["images"]) == 2
    assert all(url.startswith("data:image/png;base64,") for url in answers["decode"].json()["images"])
    assert len(answers["sample"].json()["images"]) == 3
    assert len(answers["encode"].json()["mean"]) == LATENT
