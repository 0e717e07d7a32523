"""gRPC clients of the three services, one channel each, created inside the running event loop.

A backend restart (``sccdm stack up`` or the orchestrator starts a killed service again) should cost no
request that arrives after it. Encode, Transmit and Decode carry their seed, so repeating one gives the
same answer, and two mechanisms repeat them:

* gRPC's own retry policy (service config): UNAVAILABLE is tried again up to 5 times with backoff, under
  a retry budget (retryThrottling) so that an outage does not multiply the load by five;
* a bounded wait for readiness: before a call, and once more after an UNAVAILABLE answer, the gateway
  waits up to SCCDM_BACKEND_READY_WAIT_S (default 8 s, never past the request's deadline) for the
  backend's channel to connect. This is wait_for_ready with a limit: a backend that is down for good still
  gets a 503 quickly instead of every request hanging until its deadline.
"""
from __future__ import annotations

import asyncio
import json
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc as pbg
from sccdm.serving.config import GRPC_SERVICE_NAMES, ServiceConfig
from sccdm.serving.tls import TLSFiles, aio_channel

from .errors import GatewayError, from_grpc

STAGES = ("transmitter", "channel", "receiver")


RETRY_POLICY = {"maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
                "retryableStatusCodes": ["UNAVAILABLE"]}
# a token per failed call, 0.2 back per success; retries stop while fewer than half the tokens are left
RETRY_BUDGET = {"maxTokens": 20, "tokenRatio": 0.2}
RETRY_PAUSE_S = 0.25  # between the gateway's own tries, after gRPC's retries (~1.5 s of backoff) gave up


def service_config() -> str:
    """Retries for the three sccdm services only: health checks must report what they see, at once."""
    names = [{"service": GRPC_SERVICE_NAMES[s]} for s in STAGES]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}],
                       "retryThrottling": RETRY_BUDGET})


def channel_options(cfg: ServiceConfig) -> list:
    n = cfg.max_message_bytes
    return [("grpc.max_send_message_length", n), ("grpc.max_receive_message_length", n),
            ("grpc.enable_retries", 1), ("grpc.service_config", service_config()),
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
        self.ready_wait_s = cfg.backend_ready_wait_s

    async def close(self):
        await asyncio.gather(*(c.close() for c in self.channels.values()), return_exceptions=True)

    async def call(self, stage: str, method, request, deadline: float):
        """Call ``method(request)`` with the time left until ``deadline`` (time.monotonic()).

        UNAVAILABLE (gRPC's own retries used up: the backend died mid-call, is restarting, or is up but
        still loading its model) is tried again, after the channel is connected, until the ready wait
        (SCCDM_BACKEND_READY_WAIT_S from the first attempt) or the deadline runs out."""
        ready_by = min(deadline, time.monotonic() + self.ready_wait_s)
        while True:
            if deadline - time.monotonic() <= 0:
                raise GatewayError(504, f"request deadline passed before the {stage} stage "
                                        f"(SCCDM_REQUEST_TIMEOUT_S)", stage=stage)
            # ready wait 0: no waiting at all, the call goes out and gRPC fails fast if it cannot connect
            if not await self._ready(stage, ready_by) and self.ready_wait_s > 0:
                raise GatewayError(503, f"the {stage} service is unavailable (not connected within "
                                        f"{self.ready_wait_s:g} s); check /readyz and retry",
                                   stage=stage, grpc_code="UNAVAILABLE")
            try:
                return await method(request, timeout=max(0.001, deadline - time.monotonic()))
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() + RETRY_PAUSE_S >= ready_by:
                    raise from_grpc(stage, e) from None
            await asyncio.sleep(RETRY_PAUSE_S)  # safe to repeat: every request carries its seed

    async def _ready(self, stage: str, until: float) -> bool:
        """Wait (until ``until``, monotonic) for the channel to be READY; False if it was not in time."""
        ch = self.channels[stage]
        if ch.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            return True
        try:
            await asyncio.wait_for(ch.channel_ready(), max(0.0, until - time.monotonic()))
            return True
        except asyncio.TimeoutError:
            return False

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
