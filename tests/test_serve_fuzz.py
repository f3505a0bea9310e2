"""An API fuzzer for the explorer (issue 14): schemathesis generates requests for every operation in
/openapi.json, valid ones and deliberately invalid ones, and sends them to the app in this process.

The property: no request gets a 5xx, and every refusal is the explorer's one-line ``{"detail": ...}``.
Bounded (25 examples per operation, no deadline) so it costs seconds.
"""
from __future__ import annotations

import pytest

from tiny_runs import tiny_runs

pytestmark = pytest.mark.slow       # about 10 s on an idle 2-core machine (~250 requests, two runs opened)

schemathesis = pytest.importorskip("schemathesis")
pytest.importorskip("fastapi")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from vaekit.serve import RunRegistry, create_app  # noqa: E402


@pytest.fixture(scope="module")
def api_schema():
    app = create_app(RunRegistry(tiny_runs()), allowed_hosts=None)      # a VAE and an AE (tests/tiny_runs.py)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# Every operation of /openapi.json (test_the_fuzzed_operations_are_all_of_them keeps this list whole).
# Each gets its own test, with valid and deliberately invalid requests; schemathesis's pytest plugin
# (from_fixture) is not used, as it does not work with the pytest installed here.
OPERATIONS = [("GET", "/api/runs"), ("GET", "/api/info"), ("GET", "/api/map"), ("GET", "/api/test-images/{index}"),
              ("POST", "/api/decode"), ("POST", "/api/encode"), ("POST", "/api/interpolate"),
              ("POST", "/api/sample"), ("POST", "/api/attribute")]


def test_the_fuzzed_operations_are_all_of_them(api_schema):
    found = {(operation.ok().method.upper(), operation.ok().path) for operation in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_no_request_makes_the_explorer_fail(api_schema, method, path):
    operation = api_schema[path][method]
    strategy = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                         operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def answered_without_failing(case):
        response = case.call()
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"detail"} and isinstance(body["detail"], str), body
            assert "\n" not in body["detail"] and "Traceback" not in body["detail"]

    answered_without_failing()
