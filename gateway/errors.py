"""Errors the gateway answers with: every one is JSON ``{"detail": "...", ...}`` and a 4xx/5xx, never a traceback."""
from __future__ import annotations

import grpc
from fastapi import Request
from fastapi.responses import JSONResponse

# gRPC status of a backend -> HTTP status of the gateway
GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.OUT_OF_RANGE: 422,
    grpc.StatusCode.FAILED_PRECONDITION: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 413,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


class GatewayError(Exception):
    """An answer other than success: HTTP status + a message a person can act on."""

    def __init__(self, status: int, detail: str, headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.detail, self.extra, self.headers = status, detail, extra, headers or {}


def _retry_after(err: grpc.RpcError) -> str | None:
    try:
        trailers = err.trailing_metadata() or ()
    except Exception:  # noqa: BLE001 - errors raised before the call started carry none
        return None
    return next((str(v) for k, v in trailers if k == "retry-after"), None)


def from_grpc(stage: str, err: grpc.RpcError) -> GatewayError:
    code = err.code()
    status = GRPC_TO_HTTP.get(code, 502)
    msg = err.details() or code.name
    retry = _retry_after(err) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if retry is not None:  # a full queue, not a too-large request: the client should come back later
        return GatewayError(503, f"{stage}: {msg}", headers={"Retry-After": retry}, stage=stage,
                            grpc_code=code.name, retry_after_s=int(retry))
    if code == grpc.StatusCode.UNAVAILABLE:
        msg = f"the {stage} service is unavailable ({msg}); check /readyz and retry"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        msg = f"the {stage} service did not answer within the deadline (SCCDM_REQUEST_TIMEOUT_S)"
    elif status == 502:
        msg = f"the {stage} service failed: {msg}"
    else:
        msg = f"{stage}: {msg}"
    return GatewayError(status, msg, stage=stage, grpc_code=code.name)


async def gateway_error_handler(request: Request, exc: GatewayError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status, headers=exc.headers)


ERROR_SCHEMA = {
    "title": "Error", "type": "object", "required": ["detail"],
    "properties": {"detail": {"type": "string", "description": "what went wrong, for a person"},
                   "stage": {"type": "string", "description": "the backend stage that failed, if one did"},
                   "grpc_code": {"type": "string"}},
    "additionalProperties": True,
}


def document_errors(app, auth: bool = False) -> None:
    """Make /openapi.json describe the errors the gateway really sends: ``{"detail": "..."}`` for every
    4xx/5xx (FastAPI would document its list-shaped validation error), plus 401 when a token is required."""
    from fastapi.openapi.utils import get_openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = spec.setdefault("components", {})
        schemas = comps.setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        if auth:
            comps["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, ops in spec.get("paths", {}).items():
            for op in ops.values():
                responses = op.setdefault("responses", {})
                for code, r in responses.items():
                    if code[0] in "45" and path != "/readyz":  # /readyz's 503 is its own report
                        r["content"] = ref
                if auth and path not in ("/healthz", "/readyz"):
                    op["security"] = [{"bearer": []}]
                    responses["401"] = {"description": "missing or wrong bearer token", "content": ref}
        from .schemas import add_to
        add_to(spec)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi
