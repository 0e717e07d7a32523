"""The FastAPI application: ``create_app()``.

Routes: /v1/* (api.py), /healthz, /readyz, /metrics (ops.py), /docs and /openapi.json,
the web page at / and /static (page.py); bearer token, CORS and headers (security.py).
"""
from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from sccdm.serving import metrics
from sccdm.serving.config import ServiceConfig

from . import api, ops, page, security
from .clients import Backends
from .errors import GatewayError, gateway_error_handler
from .frontdoor import FrontDoor

# /v1/transmit has 12 form fields and one file: a few more are tolerated, thousands are not
FORM_LIMITS = {"max_fields": 32, "max_files": 1, "max_part_size": 16 * 1024}
FORM_FIELDS_BYTES = 64 * 1024


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
                  lifespan=lifespan, form_limits=FORM_LIMITS)
    app.state.cfg = cfg
    app.include_router(api.router)
    app.include_router(ops.router)
    app.add_exception_handler(GatewayError, gateway_error_handler)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc), "errors": jsonable(exc.errors())}, status_code=422)

    # the image plus the form fields; counted while streaming, whatever the transfer encoding
    max_body = int(cfg.max_upload_mb * 2**20) + FORM_FIELDS_BYTES
    app.add_middleware(FrontDoor, max_body=max_body, limit_text=f"{cfg.max_upload_mb:g} MiB (SCCDM_MAX_UPLOAD_MB)",
                       body_timeout_s=cfg.body_timeout_s)

    page.install(app)
    security.install(app, sec)
    return app


def jsonable(errors) -> list:
    from fastapi.encoders import jsonable_encoder
    try:
        return jsonable_encoder(errors)
    except Exception:  # noqa: BLE001 - ctx may hold exceptions
        return [{"loc": e.get("loc"), "msg": e.get("msg")} for e in errors]
