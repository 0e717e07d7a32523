"""Schemathesis against the running gateway's own OpenAPI schema: generated valid and invalid
requests to every operation; no 5xx, and every answer matches the documented status codes,
content types and schemas. Bounded (FUZZ_EXAMPLES per operation and mode) to stay well under a minute."""
import os

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,  # noqa: E402
                                               response_schema_conformance, status_code_conformance)

FUZZ_EXAMPLES = int(os.environ.get("SCCDM_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def schema(gateway_url):
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")


def operations(schema):
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in ops} >= {"/v1/transmit", "/v1/models", "/healthz", "/readyz"}
    return ops


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_gateway_schema_fuzz(schema, gateway_url, http, mode):
    seen = {}
    for op in operations(schema):
        if mode == GenerationMode.NEGATIVE and op.path != "/v1/transmit":
            continue  # the other operations take no input, so there is nothing invalid to send
        checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            # schemathesis' own `requests` session: a shared keep-alive connection, 60 s per request
            resp = case.call_and_validate(base_url=gateway_url, checks=checks, timeout=60)
            seen.setdefault(op.label, set()).add(resp.status_code)
            assert "Traceback" not in resp.text

        run()
    assert seen, "no request was generated"
    if mode == GenerationMode.NEGATIVE:
        assert any(c >= 400 for c in seen.get("POST /v1/transmit", ())), seen
    # the gateway is still healthy after the fuzzing
    assert http.get("/readyz").status_code == 200


@pytest.mark.parametrize("refine", [True, False])
def test_real_reports_match_the_documented_schema(schema, gateway_url, make_png, refine):
    """Random bytes rarely make a valid image, so a real PNG checks the 200 schemas (TransmitReport, ...)."""
    png, _ = make_png(40, 36)
    ops = {op.label: op for op in operations(schema)}
    case = ops["POST /v1/transmit"].Case(body={"image": png, "seed": 3, "refine": refine, "channel": "rayleigh",
                                               "erasure_prob": 0.1}, media_type="multipart/form-data")
    resp = case.call_and_validate(base_url=gateway_url, checks=CHECKS, timeout=60)
    assert resp.status_code == 200 and resp.json()["width"] == 36 and ("s_hat" in resp.json()) == refine
    for label in ("GET /v1/models", "GET /readyz"):
        assert ops[label].Case().call_and_validate(base_url=gateway_url, checks=CHECKS, timeout=30).status_code == 200
