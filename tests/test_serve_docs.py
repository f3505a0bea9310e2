"""The explorer's /docs page works offline: made on the server from the OpenAPI schema, nothing from a CDN."""
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
