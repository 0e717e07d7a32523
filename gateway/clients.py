"""gRPC clients of the three services, one channel each, created inside the running event loop."""
from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc as pbg
from sccdm.serving.config import GRPC_SERVICE_NAMES, ServiceConfig
from sccdm.serving.tls import TLSFiles, aio_channel

from .errors import GatewayError, from_grpc

STAGES = ("transmitter", "channel", "receiver")


def channel_options(cfg: ServiceConfig) -> list:
    n = cfg.max_message_bytes
    return [("grpc.max_send_message_length", n), ("grpc.max_receive_message_length", n),
            # a restarted backend is found again within a second, not after gRPC's default 2-minute backoff
            ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            # with several replicas behind a headless Service (dns:///name:port), spread the calls
            ("grpc.lb_policy_name", "round_robin")]


class Backends:
    """Stubs + health stubs of transmitter, channel, receiver; :meth:`call` maps gRPC errors to HTTP."""

    def __init__(self, cfg: ServiceConfig, tls: TLSFiles | None = None):
        self.cfg = cfg
        self.tls = TLSFiles.from_env() if tls is None else tls
        self.addrs = {"transmitter": cfg.tx_addr, "channel": cfg.channel_addr, "receiver": cfg.rx_addr}
        opts = channel_options(cfg)
        self.channels = {k: aio_channel(a, opts, self.tls) for k, a in self.addrs.items()}
        self.transmitter = pbg.TransmitterStub(self.channels["transmitter"])
        self.channel = pbg.ChannelStub(self.channels["channel"])
        self.receiver = pbg.ReceiverStub(self.channels["receiver"])
        self.health = {k: health_pb2_grpc.HealthStub(c) for k, c in self.channels.items()}

    async def close(self):
        await asyncio.gather(*(c.close() for c in self.channels.values()), return_exceptions=True)

    async def call(self, stage: str, method, request, deadline: float):
        """Call ``method(request)`` with the time left until ``deadline`` (time.monotonic())."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise GatewayError(504, f"request deadline passed before the {stage} stage (SCCDM_REQUEST_TIMEOUT_S)",
                               stage=stage)
        try:
            return await method(request, timeout=left)
        except grpc.RpcError as e:
            raise from_grpc(stage, e) from None

    async def check(self, timeout: float = 1.0) -> dict[str, str]:
        """Health of each backend: "SERVING", "NOT_SERVING", or "UNREACHABLE (...)"."""

        async def one(name):
            try:
                r = await self.health[name].Check(health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAMES[name]),
                                                  timeout=timeout)
                return health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
            except grpc.RpcError as e:
                return f"UNREACHABLE ({e.code().name})"

        res = await asyncio.gather(*(one(n) for n in STAGES))
        return dict(zip(STAGES, res))

    async def models(self, timeout: float = 5.0) -> pb.ModelList:
        return await self.call("transmitter", self.transmitter.ListModels, pb.ListModelsRequest(),
                               time.monotonic() + timeout)
