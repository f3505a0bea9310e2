"""The explorer's /docs page works offline (made on the server from the OpenAPI schema, nothing from a CDN), and
its run card says which numbers are nats and with which K."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from vaekit.serve import RunRegistry, create_app  # noqa: E402

RUN = Path(__file__).parent / "data" / "runs-v0" / "vae"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("docs") / "vae"
    shutil.copytree(RUN, folder)
    return TestClient(create_app(RunRegistry(folder)), base_url="http://127.0.0.1:8000")


def test_docs_page_lists_every_endpoint_without_fetching_anything(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<script" not in page
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', page)            # no CDN, no other host
    assert "default-src 'none'" in response.headers["content-security-policy"]
    schema = client.get("/openapi.json").json()
    for path, methods in schema["paths"].items():
        for method in methods:
            assert f'<span class="method {method}">{method.upper()}</span> <code>{path}</code>' in page
    assert "<code>DecodeRequest</code>" in page and 'href="/openapi.json"' in page
    assert client.get("/redoc").status_code == 404                          # ReDoc would load from a CDN too


def test_run_card_numbers_carry_their_k_and_whether_they_are_nats(tmp_path):
    """The explorer's run card labels the NLL with its K and an MSE autoencoder's terms as losses:
    /api/info hands the page both."""
    for name, proper in (("vae", True), ("ae", False)):
        folder = tmp_path / name
        shutil.copytree(RUN.parent / name, folder)
        info = TestClient(create_app(RunRegistry(folder)), base_url="http://127.0.0.1:8000").get("/api/info").json()
        evaluation = info["evaluation"]
        assert bool(evaluation["proper_likelihood"]) is proper
        assert (evaluation.get("iw_samples") is not None) is proper
    panels = (Path(__import__("vaekit").__file__).parent / "serve" / "static" / "panels.js").read_text()
    assert "test NLL (nats)" not in panels and "K = ${e.iw_samples}" in panels
