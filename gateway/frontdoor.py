"""The gateway's front door: one pure ASGI middleware around every HTTP request.

* **Body limit while streaming.** Content-Length is checked first, but a chunked
  upload has none, so the bytes are also counted as they arrive and the request
  is answered 413 as soon as the count passes the limit: at most ``max_body``
  bytes (plus one read) are ever taken in, whatever the transfer encoding.
* **Stalled uploads.** A body that pauses longer than ``body_timeout_s`` gets 408.
* **Client disconnect cancels the work.** Once the body is read, a watcher waits
  for ``http.disconnect``; if the client goes before the answer is sent, the
  handler task is cancelled (its gRPC calls with it, so the backends' batchers
  drop the request) and the request is counted and logged as 499, never as 200.
* **Accounting.** Every request is timed into the Prometheus histogram and logged
  (status, ms, body bytes), except the probe routes.

A pure ASGI middleware rather than ``@app.middleware("http")``: Starlette's
BaseHTTPMiddleware runs the handler in its own task and hides the disconnect.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

from sccdm.serving import metrics

CLIENT_CLOSED = 499  # nginx's code for "client closed request"
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
log = logging.getLogger("sccdm.gateway")


class _Refused(Exception):
    """Raised into the handler when the upload passes the limit or stalls (its answer is then replaced)."""


class _Cycle:
    """What one request did: bytes read, status sent, whether the client left."""

    def __init__(self):
        self.body_bytes, self.status = 0, 0
        self.refusal: tuple[int, str] | None = None
        self.left = self.body_done = self.started = self.finished = False
        self.body_read = asyncio.Event()


def _json_response(status: int, detail: str) -> tuple[dict, dict]:
    body = json.dumps({"detail": detail}).encode()
    return ({"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]},
            {"type": "http.response.body", "body": body})


class FrontDoor:
    """``app.add_middleware(FrontDoor, max_body=..., limit_text=...)``; max_body in bytes."""

    def __init__(self, app, max_body: int, limit_text: str = "", body_timeout_s: float = 30.0):
        self.app, self.max_body, self.body_timeout_s = app, int(max_body), float(body_timeout_s)
        self.too_large = (413, f"upload is larger than {limit_text or f'{max_body} bytes'}")
        self.stalled = (408, f"the upload stalled: no bytes for {self.body_timeout_s:g} s (SCCDM_BODY_TIMEOUT_S)")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, cyc = time.perf_counter(), _Cycle()
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            cyc.refusal = self.too_large  # refused before a byte of the body is read
            await self._refuse(send, cyc)
        else:
            await self._serve(scope, receive, send, cyc)
        self._account(scope, cyc, time.perf_counter() - t0)

    async def _serve(self, scope, receive, send, cyc: _Cycle):
        gone = asyncio.Event()

        async def app_receive():
            if cyc.body_done:  # the watcher owns the real receive now
                await gone.wait()
                return {"type": "http.disconnect"}
            try:
                msg = await asyncio.wait_for(receive(), self.body_timeout_s)
            except asyncio.TimeoutError:
                cyc.refusal = self.stalled
                raise _Refused(self.stalled[1]) from None
            if msg["type"] == "http.request":
                cyc.body_bytes += len(msg.get("body", b""))
                if cyc.body_bytes > self.max_body:
                    cyc.refusal = self.too_large
                    raise _Refused(self.too_large[1])
                if not msg.get("more_body", False):
                    cyc.body_done = True
                    cyc.body_read.set()
            elif msg["type"] == "http.disconnect":
                cyc.left = not cyc.finished
                gone.set()
            return msg

        async def app_send(msg):
            if cyc.refusal:
                return  # the handler's answer to a truncated body is replaced by the 413 / 408
            if msg["type"] == "http.response.start":
                cyc.started, cyc.status = True, msg["status"]
            elif msg["type"] == "http.response.body" and not msg.get("more_body", False):
                cyc.finished = True  # from here on a disconnect is the normal end, not a client leaving
            await send(msg)

        task = asyncio.ensure_future(self.app(scope, app_receive, app_send))
        watcher = asyncio.ensure_future(self._watch(receive, cyc, gone, task))
        try:
            await task
        except _Refused:
            pass
        except asyncio.CancelledError:
            if not cyc.left:
                raise
        finally:
            watcher.cancel()
        if cyc.refusal and not cyc.started:
            await self._refuse(send, cyc)

    @staticmethod
    async def _watch(receive, cyc: _Cycle, gone: asyncio.Event, task: asyncio.Task):
        await cyc.body_read.wait()  # until then the handler reads through app_receive
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                gone.set()
                if not cyc.finished:
                    cyc.left = True
                    task.cancel()
                return

    @staticmethod
    async def _refuse(send, cyc: _Cycle):
        start, body = _json_response(*cyc.refusal)
        cyc.status = cyc.refusal[0]
        await send(start)
        await send(body)

    @staticmethod
    def _account(scope, cyc: _Cycle, seconds: float):
        status = CLIENT_CLOSED if cyc.left else (cyc.status or 500)  # left: gone before the answer was complete
        route = scope.get("route")
        metrics.observe("gateway", getattr(route, "path", "unmatched"), str(status), seconds)
        path = scope.get("path", "")
        if path in QUIET_PATHS:
            return
        f = {"method": scope.get("method"), "path": path, "status": status, "ms": round(seconds * 1000, 1),
             "body_bytes": cyc.body_bytes}
        if status == CLIENT_CLOSED:
            log.info("client closed the request before the answer; its backend calls were cancelled",
                        extra={"fields": f})
        else:
            log.info("request", extra={"fields": f})
