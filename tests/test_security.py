"""Gateway hardening: bearer token, CORS, limits, and no tracebacks in any answer.

A second gateway process with SCCDM_API_TOKEN and SCCDM_CORS_ORIGINS runs in front of the session
stack's real services; the session gateway (no token, no CORS) shows the defaults."""
from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

TOKEN = "t0k3n-for-tests-0123456789"
ALLOWED = "https://page.example.org"


@pytest.fixture(scope="module")
def secured(stack, tmp_path_factory):
    """URL of a gateway requiring TOKEN, CORS open to ALLOWED, sharing the stack's services."""
    from sccdm.stack import REPO, free_ports

    port = free_ports(1)[0]
    env = stack._env("gateway")
    env.update(SCCDM_PORT=str(port), SCCDM_API_TOKEN=TOKEN, SCCDM_CORS_ORIGINS=f"{ALLOWED}, https://other.example")
    log = tmp_path_factory.mktemp("secured") / "gateway.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "gateway"], cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert p.poll() is None and time.monotonic() < end, log.read_text()
            time.sleep(0.3)
        yield url
    finally:
        p.terminate()
        p.wait(30)


def bearer(tok=TOKEN):
    return {"Authorization": f"Bearer {tok}"}


def transmit(url, data, headers=None, **form):
    return httpx.post(f"{url}/v1/transmit", files={"image": ("x.png", data, "image/png")},
                      data={"seed": "1", "refine": "false", **form}, headers=headers or {}, timeout=60)


# ------------------------------------------------------------------ bearer token

@pytest.mark.parametrize("path", ["/v1/models", "/openapi.json", "/docs", "/metrics"])
def test_token_required(secured, path):
    for headers in ({}, bearer("wrong"), bearer(TOKEN + "x"), {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}):
        r = httpx.get(secured + path, headers=headers)
        assert r.status_code == 401, (path, headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["detail"]
    assert httpx.get(secured + path, headers=bearer()).status_code == 200


def test_transmit_with_and_without_token(secured, make_png):
    data, _ = make_png(32, 32)
    r = transmit(secured, data)
    assert r.status_code == 401 and "Authorization: Bearer" in r.json()["detail"]
    r = transmit(secured, data, headers=bearer())
    assert r.status_code == 200, r.text
    assert r.json()["width"] == 32


def test_open_routes_need_no_token(secured):
    assert httpx.get(secured + "/healthz").json() == {"status": "ok"}
    assert httpx.get(secured + "/readyz").status_code == 200
    page = httpx.get(secured + "/")
    assert page.status_code == 200 and 'id="token"' in page.text   # the page asks for the token
    assert httpx.get(secured + "/static/app.js").status_code == 200


def test_oversize_upload_refused_before_auth_reads_it(secured):
    big = b"\x89PNG" + b"\0" * (3 << 20)                      # over SCCDM_MAX_UPLOAD_MB=2
    assert transmit(secured, big).status_code == 401            # no token: refused before anything else
    r = transmit(secured, big, headers=bearer())
    assert r.status_code == 413 and "SCCDM_MAX_UPLOAD_MB" in r.json()["detail"]


def test_schema_documents_the_token(secured):
    spec = httpx.get(secured + "/openapi.json", headers=bearer()).json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "401" in spec["paths"]["/v1/transmit"]["post"]["responses"]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_token_compare_is_constant_time(monkeypatch):
    import gateway.security as sec

    calls = []
    real = sec.hmac.compare_digest
    monkeypatch.setattr(sec.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    assert sec.token_ok("Bearer abc", "abc") and not sec.token_ok("Bearer abd", "abc")
    assert not sec.token_ok("Bearer ", "abc") and not sec.token_ok("bearer ab\u00e9", "abc")
    assert len(calls) == 4 and all(isinstance(a, bytes) for a, _ in calls)


# ------------------------------------------------------------------ CORS

def preflight(url, origin):
    return httpx.options(url + "/v1/transmit", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                        "Access-Control-Request-Headers": "authorization"})


def test_cors_closed_by_default(gateway_url):
    r = preflight(gateway_url, ALLOWED)
    assert "access-control-allow-origin" not in r.headers
    r = httpx.get(gateway_url + "/v1/models", headers={"Origin": ALLOWED})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_cors_opened_for_listed_origins_only(secured):
    r = preflight(secured, ALLOWED)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ALLOWED
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = preflight(secured, "https://evil.example")
    assert r.headers.get("access-control-allow-origin") != "https://evil.example"
    r = httpx.get(secured + "/v1/models", headers={"Origin": ALLOWED, **bearer()})
    assert r.headers["access-control-allow-origin"] == ALLOWED


# ------------------------------------------------------------------ headers and no tracebacks

def test_security_headers(gateway_url):
    page = httpx.get(gateway_url + "/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    api = httpx.get(gateway_url + "/v1/models")
    assert api.headers["x-content-type-options"] == "nosniff" and api.headers["x-frame-options"] == "DENY"


BAD_REQUESTS = [
    ("POST", "/v1/transmit", {"content": b"--x\r\nbroken multipart", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}),
    ("POST", "/v1/transmit", {"content": b"{}", "headers": {"Content-Type": "application/json"}}),
    ("POST", "/v1/transmit", {"files": {"image": ("a.png", b"\x89PNG\r\n\x1a\n" + b"\xff" * 64)}}),
    ("POST", "/v1/transmit", {"files": {"image": ("a.png", b"GIF89a")}, "data": {"seed": "-1"}}),
    ("POST", "/v1/transmit", {"files": {"image": ("a.png", b"x")}, "data": {"snr_db": "1e999"}}),
    ("GET", "/v1/transmit", {}),
    ("GET", "/static/../gateway/app.py", {}),
    ("GET", "/static/%2e%2e/app.py", {}),
    ("GET", "/nope", {}),
]


@pytest.mark.parametrize("method,path,kw", BAD_REQUESTS)
def test_no_tracebacks_in_answers(gateway_url, method, path, kw):
    r = httpx.request(method, gateway_url + path, timeout=60, **kw)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text and "create_app" not in r.text
    if r.headers.get("content-type", "").startswith("application/json"):
        assert isinstance(r.json()["detail"], (str, list))


def test_unexpected_exception_becomes_a_plain_500():
    """A bug in a handler: the client sees a JSON message, the traceback stays in the log."""
    from fastapi.testclient import TestClient

    from gateway.app import create_app
    from gateway.security import SecurityConfig
    from sccdm.serving.config import ServiceConfig

    app = create_app(ServiceConfig.from_env("gateway", env={}), SecurityConfig())

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internal state /srv/keys")

    r = TestClient(app, raise_server_exceptions=False).get("/boom")  # no lifespan: the route needs no backends
    assert r.status_code == 500
    assert r.json() == {"detail": "internal error in the gateway; the operator can find it in the gateway log"}
    assert "secret" not in r.text and "Traceback" not in r.text
