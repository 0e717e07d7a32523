"""The FastAPI application: ``create_app()``.

Routes: /v1/* (api.py), /healthz, /readyz, /metrics (ops.py), /docs and /openapi.json,
the web page at / and /static (page.py); bearer token, CORS and headers (security.py).
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

import logging

from sccdm.serving import metrics
from sccdm.serving.config import ServiceConfig

from . import api, ops, page, security
from .clients import Backends
from .errors import GatewayError, gateway_error_handler


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path"))
        parts.append(f"{loc}: {e.get('msg')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"


def create_app(cfg: ServiceConfig | None = None, sec: security.SecurityConfig | None = None) -> FastAPI:
    """cfg: service settings (default: from the environment); sec: token / CORS (default: from the environment)."""
    cfg = cfg or ServiceConfig.from_env("gateway")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.backends = Backends(cfg)
        metrics.READY.labels("gateway").set(1)
        try:
            yield
        finally:
            metrics.READY.labels("gateway").set(0)
            await app.state.backends.close()

    app = FastAPI(title="SC-CDM gateway", version="1.0",
                  description="Send an image through the SC-CDM link: Swin JSCC transmitter -> channel -> "
                              "receiver with compact diffusion refinement, as gRPC services.",
                  lifespan=lifespan)
    app.state.cfg = cfg
    app.include_router(api.router)
    app.include_router(ops.router)
    app.add_exception_handler(GatewayError, gateway_error_handler)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc), "errors": jsonable(exc.errors())}, status_code=422)

    log = logging.getLogger("sccdm.gateway")
    max_body = int(cfg.max_upload_mb * 2**20) + 64 * 1024  # the image plus the form fields

    @app.middleware("http")
    async def _count(request: Request, call_next):
        t0 = time.perf_counter()
        length = request.headers.get("content-length", "")
        if request.method == "POST" and length.isdigit() and int(length) > max_body:
            # refused before the multipart body is read at all
            resp = JSONResponse({"detail": f"upload is larger than {cfg.max_upload_mb:g} MiB (SCCDM_MAX_UPLOAD_MB)"},
                                status_code=413)
        else:
            resp = await call_next(request)
        route = request.scope.get("route")
        ms = (time.perf_counter() - t0) * 1000
        metrics.observe("gateway", getattr(route, "path", "unmatched"), str(resp.status_code), ms / 1000)
        if request.url.path not in ("/healthz", "/readyz", "/metrics"):
            log.info("request", extra={"fields": {"method": request.method, "path": request.url.path,
                                                  "status": resp.status_code, "ms": round(ms, 1)}})
        return resp

    page.install(app)
    security.install(app, sec)
    return app


def jsonable(errors) -> list:
    from fastapi.encoders import jsonable_encoder
    try:
        return jsonable_encoder(errors)
    except Exception:  # noqa: BLE001 - ctx may hold exceptions
        return [{"loc": e.get("loc"), "msg": e.get("msg")} for e in errors]
