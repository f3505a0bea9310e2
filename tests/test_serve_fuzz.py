"""An API fuzzer for the explorer (issue 14): schemathesis generates requests for every operation in
/openapi.json, valid ones and deliberately invalid ones, and sends them to the app in this process.

The property: no request gets a 5xx, and every refusal is the explorer's one-line ``{"detail": ...}``.
Bounded (a few dozen examples per operation, no deadline) so it costs seconds.
"""
from __future__ import annotations

import pytest

from conftest import quick_config

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, settings  # noqa: E402

from vaekit.serve import RunRegistry, create_app  # noqa: E402


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory, digits_dataset):
    from vaekit.training.trainer import train

    root = tmp_path_factory.mktemp("fuzzed")
    train(quick_config(model="vae", latent_dim=2, hidden=[16], epochs=1), digits_dataset, root / "digits-vae")
    train(quick_config(model="ae", latent_dim=3, hidden=[16], epochs=1), digits_dataset, root / "digits-ae")
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(RunRegistry(root), allowed_hosts=None))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_explorer_fail(case):
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"detail"} and isinstance(body["detail"], str), body
        assert "\n" not in body["detail"] and "Traceback" not in body["detail"]
