"""Gateway hardening: optional bearer token, CORS (closed unless asked for), security headers,
and a last-resort handler so no response ever carries a traceback.

Environment (read once, in :func:`SecurityConfig.from_env`):

=====================  ==========================================================  =========
SCCDM_API_TOKEN        when set, every route except the open ones below answers      (unset)
                       401 unless the request has ``Authorization: Bearer <token>``
SCCDM_CORS_ORIGINS     comma-separated origins allowed to call the API from a        (unset:
                       browser page served elsewhere; ``*`` = any                     no CORS)
=====================  ==========================================================  =========

Open without a token: /healthz and /readyz (orchestrators probe them), and the web page
itself (``/`` and ``/static/...``: it holds no data; its API calls send the token the
user types into it). /docs, /openapi.json, /metrics and /v1/* need the token.

Upload limits (SCCDM_MAX_UPLOAD_MB, SCCDM_MAX_PIXELS) are enforced in app.py / uploads.py.
"""
from __future__ import annotations

import hmac
import logging
import os
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import document_errors

OPEN_PATHS = ("/healthz", "/readyz", "/", "/favicon.ico")
OPEN_PREFIXES = ("/static/",)

# the page loads only its own files; data: / blob: for the images the API returns as base64
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")

log = logging.getLogger("sccdm.gateway")


@dataclass
class SecurityConfig:
    token: str = ""
    cors_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, env=None) -> "SecurityConfig":
        env = os.environ if env is None else env
        origins = [o.strip() for o in env.get("SCCDM_CORS_ORIGINS", "").split(",") if o.strip()]
        return cls(token=env.get("SCCDM_API_TOKEN", "").strip(), cors_origins=origins)


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def token_ok(header: str, token: str) -> bool:
    """``Authorization`` header value vs the configured token, in constant time."""
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # compare_digest on bytes: time depends on the length only, not on where the strings differ
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


class BearerAuth:
    """Pure ASGI middleware (so it also guards routes mounted outside FastAPI's router)."""

    def __init__(self, app: ASGIApp, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http" or scope.get("method") == "OPTIONS" or is_open(scope.get("path", "")):
            # OPTIONS: CORS preflights carry no credentials by design; they reveal nothing
            return await self.app(scope, receive, send)
        auth = ""
        for k, v in scope.get("headers", ()):
            if k == b"authorization":
                auth = v.decode("latin-1")
                break
        if not auth or not token_ok(auth, self.token):
            msg = ("missing bearer token: send `Authorization: Bearer <token>` (SCCDM_API_TOKEN is set)" if not auth
                   else "invalid bearer token")
            resp = JSONResponse({"detail": msg}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            return await resp(scope, receive, send)
        return await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        page = is_open(scope.get("path", "")) and scope.get("path") not in ("/healthz", "/readyz")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY")]
                if page:
                    headers.append((b"content-security-policy", PAGE_CSP.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, sec: SecurityConfig | None = None) -> SecurityConfig:
    """Add the handlers and middleware to ``app`` (call after all routes are added)."""
    sec = sec or SecurityConfig.from_env()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # the traceback goes to the log, the client gets a message without internals
        log.error("unhandled error", exc_info=exc, extra={"fields": {"path": request.url.path}})
        return JSONResponse({"detail": "internal error in the gateway; the operator can find it in the gateway log"},
                            status_code=500)

    # order: the last added runs first, so CORS answers preflights before auth, headers wrap everything
    if sec.token:
        app.add_middleware(BearerAuth, token=sec.token)
    if sec.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=sec.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "Accept"],
                           expose_headers=["X-SCCDM-Seed", "X-SCCDM-Channel-Uses"], max_age=600)
    app.add_middleware(SecurityHeaders)
    document_errors(app, auth=bool(sec.token))
    app.state.security = sec
    return sec
