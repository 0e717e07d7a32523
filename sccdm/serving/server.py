"""The life of one gRPC service process.

* grpc.aio server with the message-size limit (SCCDM_MAX_MESSAGE_MB) both ways;
* the standard health service under "" and the service's full name, NOT_SERVING
  until :meth:`Service.load` (the model) has finished, NOT_SERVING again on shutdown;
* server reflection, v1 and v1alpha (:mod:`.reflection`);
* Prometheus metrics on SCCDM_METRICS_PORT;
* SIGTERM / SIGINT: stop accepting, finish in-flight requests (grace period), exit 0.

Handlers are wrapped by :func:`rpc` so that every request is counted and timed,
invalid input becomes INVALID_ARGUMENT (a reply known in advance to be too large
RESOURCE_EXHAUSTED; a full queue RESOURCE_EXHAUSTED with a ``retry-after``
trailer in seconds), a service still loading UNAVAILABLE, and
an unexpected exception INTERNAL with a logged traceback (never a dead process).
"""
from __future__ import annotations

import asyncio
import functools
import signal
import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import metrics, reflection
from .batcher import Overloaded
from .config import MODEL_SERVICES, ConfigError, ServiceConfig, resolve_device
from .convert import InvalidInput, TooLarge
from .logs import fields, setup_logging
from .tls import TLSFiles

GRACE_S = 5.0


class NotReady(RuntimeError):
    """The model is still loading (answered with UNAVAILABLE)."""


def grpc_options(cfg: ServiceConfig) -> list:
    n = cfg.max_message_bytes
    return [("grpc.max_send_message_length", n), ("grpc.max_receive_message_length", n),
            ("grpc.so_reuseport", 0)]


class Service:
    """Base of the three servicers: config, logger, readiness, and the blocking load step."""

    name = ""

    def __init__(self, cfg: ServiceConfig, log):
        self.cfg, self.log = cfg, log
        self.device = resolve_device(cfg.device)
        self.ready = False

    def load(self) -> None:
        """Blocking start-up work (load weights, warm up); runs on a worker thread."""

    def require_ready(self):
        if not self.ready:
            raise NotReady(f"{self.name} is still loading its model; retry in a few seconds")

    async def close(self):
        """Release resources (batchers) at shutdown."""


RETRY_AFTER_KEY = "retry-after"  # trailing metadata of an overload refusal: seconds, as HTTP's Retry-After


def _classify(e: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(e, Overloaded):  # the request was fine; the queue is full (retry-after in the trailers)
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(e)
    if isinstance(e, TooLarge):  # the code gRPC itself gives an oversize message, so clients handle one code
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(e)
    if isinstance(e, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    if isinstance(e, NotReady):
        return grpc.StatusCode.UNAVAILABLE, str(e)
    from ..link.session import LinkError
    if isinstance(e, LinkError):  # radio timeout / no burst found: the link is down, the request was fine
        return grpc.StatusCode.UNAVAILABLE, f"radio link: {e}"
    if isinstance(e, ValueError):  # library validation (ChannelConfig.validate, symbols_to_latent, ...)
        return grpc.StatusCode.INVALID_ARGUMENT, str(e)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(e).__name__}: {e}); see the service log"


def _trailers(e: BaseException) -> tuple:
    return ((RETRY_AFTER_KEY, str(e.retry_after_s)),) if isinstance(e, Overloaded) else ()


def rpc(method: str):
    """Decorate a unary handler ``async def f(self, request, context) -> response``."""

    def deco(fn):
        @functools.wraps(fn)
        async def wrapper(self, request, context):
            t0 = time.perf_counter()
            try:
                resp = await fn(self, request, context)
            except asyncio.CancelledError:
                metrics.observe(self.name, method, "CANCELLED", time.perf_counter() - t0)
                raise
            except Exception as e:  # noqa: BLE001 - every failure gets a status, none kills the server
                code, msg = _classify(e)
                metrics.observe(self.name, method, code.name, time.perf_counter() - t0)
                log = self.log.exception if code == grpc.StatusCode.INTERNAL else self.log.info
                log("request failed", extra=fields(method=method, code=code.name, error=msg))
                await context.abort(code, msg, _trailers(e))
            metrics.observe(self.name, method, "OK", time.perf_counter() - t0)
            return resp
        wrapper.__wrapped_impl__ = fn
        return wrapper

    return deco


STREAM_WINDOW = 64


def stream(method: str, unary):
    """A bidirectional-stream handler from a unary one: requests run concurrently (at most
    STREAM_WINDOW in flight, so a fast sender cannot pile up memory), answers keep request order."""

    async def handler(self, request_iterator, context):
        pending: asyncio.Queue = asyncio.Queue(maxsize=STREAM_WINDOW)
        impl = getattr(type(self), unary).__wrapped_impl__

        async def feed():
            async for req in request_iterator:
                await pending.put(asyncio.ensure_future(impl(self, req, context)))
            await pending.put(None)

        feeder = asyncio.ensure_future(feed())
        t0 = time.perf_counter()
        i = 0
        try:
            while True:
                task = await pending.get()
                if task is None:
                    break
                try:
                    resp = await task
                except Exception as e:  # noqa: BLE001
                    code, msg = _classify(e)
                    metrics.observe(self.name, method, code.name, time.perf_counter() - t0)
                    await context.abort(code, f"request #{i} of the stream: {msg}", _trailers(e))
                i += 1
                yield resp
            metrics.observe(self.name, method, "OK", time.perf_counter() - t0)
        finally:
            feeder.cancel()
            while not pending.empty():
                t = pending.get_nowait()
                if t is not None:
                    t.cancel()

    return handler


def run(service: str, make_service, add_to_server) -> int:
    """Entry point of ``python -m <service>``: read env, serve until SIGTERM/SIGINT. Returns the exit code."""
    try:
        cfg = ServiceConfig.from_env(service)
        if service in MODEL_SERVICES:
            from .. import zoo
            cfg.check_models(zoo.names())
        tls = TLSFiles.from_env()
    except ConfigError as e:
        print(f"{service}: configuration error: {e}", flush=True)
        return 2
    log = setup_logging(service, cfg.log_level)
    try:
        return asyncio.run(_serve(cfg, log, make_service, add_to_server, tls))
    except KeyboardInterrupt:
        return 0


async def _serve(cfg: ServiceConfig, log, make_service, add_to_server, tls: TLSFiles | None = None) -> int:
    if cfg.threads:
        import torch
        torch.set_num_threads(cfg.threads)
    svc: Service = make_service(cfg, log)
    server = grpc.aio.server(options=grpc_options(cfg))
    add_to_server(svc, server)
    health_svc = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_svc, server)
    names = ("", cfg.grpc_service_name)
    for n in names:
        await health_svc.set(n, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable((cfg.grpc_service_name, health.SERVICE_NAME), server)
    addr = f"{cfg.host}:{cfg.port}"
    try:
        creds = tls.server_credentials() if tls is not None else None
        port = server.add_secure_port(addr, creds) if creds is not None else server.add_insecure_port(addr)
    except RuntimeError as e:
        log.error("cannot bind", extra=fields(addr=addr, error=str(e)))
        return 1
    await server.start()
    metrics_srv = None
    try:
        metrics_srv = metrics.serve_metrics(cfg.metrics_port, cfg.host)
    except OSError as e:
        log.warning("metrics port unavailable; metrics off", extra=fields(port=cfg.metrics_port, error=str(e)))
    log.info("listening", extra=fields(addr=f"{cfg.host}:{port}", metrics_port=cfg.metrics_port,
                                       device=svc.device, model=cfg.model, photo_model=cfg.photo_model,
                                       photo_min_side=cfg.photo_min_side,
                                       tls=("mutual" if tls.ca else "server") if tls and tls.server_enabled else "off",
                                       max_batch=cfg.max_batch,
                                       max_wait_ms=cfg.max_wait_ms, max_message_mb=cfg.max_message_mb))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async def load():
        t0 = time.perf_counter()
        await loop.run_in_executor(None, svc.load)
        svc.ready = True
        for n in names:
            await health_svc.set(n, health_pb2.HealthCheckResponse.SERVING)
        metrics.READY.labels(svc.name).set(1)
        log.info("serving", extra=fields(load_s=round(time.perf_counter() - t0, 2)))

    loader = asyncio.ensure_future(load())
    stop_wait = asyncio.ensure_future(stop.wait())
    await asyncio.wait({loader, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    rc = 0
    if loader.done() and loader.exception() is not None:
        log.error("start-up failed", exc_info=loader.exception())
        rc = 1
    elif loader.done():
        await stop_wait
    log.info("shutting down", extra=fields(grace_s=GRACE_S))
    metrics.READY.labels(svc.name).set(0)
    await health_svc.enter_graceful_shutdown()
    await server.stop(GRACE_S)
    loader.cancel()
    await svc.close()
    if metrics_srv is not None:
        try:
            metrics_srv[0].shutdown()
        except Exception:  # noqa: BLE001
            pass
    log.info("stopped")
    return rc
