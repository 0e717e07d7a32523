"""Operational routes: /healthz (the process is alive), /readyz (all three backends SERVING), /metrics."""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sccdm.serving import metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the gateway process answers")
async def healthz():
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: 200 when transmitter, channel and receiver all report SERVING, else 503",
            responses={503: {"description": "a backend is not SERVING (the body says which)"}})
async def readyz(request: Request):
    status = await request.app.state.backends.check()
    ready = all(v == "SERVING" for v in status.values())
    return JSONResponse({"ready": ready, "backends": status}, status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics of the gateway", response_class=PlainTextResponse)
async def prometheus():
    body, ctype = metrics.exposition()
    return Response(body, media_type=ctype)
