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

    def __init__(self, status: int, detail: str, **extra):
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


def from_grpc(stage: str, err: grpc.RpcError) -> GatewayError:
    code = err.code()
    status = GRPC_TO_HTTP.get(code, 502)
    msg = err.details() or code.name
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
    return JSONResponse({"detail": exc.detail, **exc.extra}, status_code=exc.status)
