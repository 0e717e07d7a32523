"""Server lifecycle in one process: NOT_SERVING until load() finishes, SERVING after, graceful stop on SIGTERM."""
import asyncio
import logging
import os
import signal
import threading

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sccdm.serving.config import ServiceConfig
from sccdm.serving.server import Service, _serve
from sccdm.stack import free_ports


class SlowService(Service):
    name = "transmitter"
    release = threading.Event()

    def load(self):
        assert self.release.wait(30), "test never released the load step"


def test_not_serving_until_loaded_then_graceful_sigterm():
    port = free_ports(1)[0]
    cfg = ServiceConfig(service="transmitter", host="127.0.0.1", port=port, metrics_port=0, device="cpu")
    log = logging.getLogger("sccdm.test-lifecycle")  # no setup_logging: it would rewire pytest's root logger
    SlowService.release.clear()

    async def status(stub, name):
        r = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=2)
        return r.status

    async def main():
        server = asyncio.ensure_future(_serve(cfg, log, SlowService, lambda svc, srv: None))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for _ in range(100):
                try:
                    first = await status(stub, "sccdm.v1.Transmitter")
                    break
                except grpc.RpcError:
                    await asyncio.sleep(0.05)
            assert first == health_pb2.HealthCheckResponse.NOT_SERVING
            assert await status(stub, "") == health_pb2.HealthCheckResponse.NOT_SERVING
            SlowService.release.set()
            for _ in range(100):
                if await status(stub, "sccdm.v1.Transmitter") == health_pb2.HealthCheckResponse.SERVING:
                    break
                await asyncio.sleep(0.05)
            assert await status(stub, "") == health_pb2.HealthCheckResponse.SERVING
            os.kill(os.getpid(), signal.SIGTERM)     # handled by the server's loop signal handler
            rc = await asyncio.wait_for(server, 20)
        return rc

    old = signal.getsignal(signal.SIGTERM)
    try:
        assert asyncio.run(main()) == 0
    finally:
        signal.signal(signal.SIGTERM, old)
