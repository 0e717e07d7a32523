"""The gateway's gRPC clients retry UNAVAILABLE (issue 11), against a real gRPC server on loopback that
answers UNAVAILABLE a given number of times: gRPC's retry policy alone (ready wait 0) absorbs a few; the
gateway's own bounded wait absorbs a longer outage and gives up with a 503 when the wait runs out;
other errors are not repeated."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from gateway.clients import Backends, service_config
from gateway.errors import GatewayError
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc as pbg
from sccdm.serving.config import ServiceConfig
from sccdm.serving.tls import TLSFiles


class Flaky(pbg.TransmitterServicer):
    def __init__(self, failures: int, code=grpc.StatusCode.UNAVAILABLE):
        self.failures, self.code, self.calls = failures, code, 0

    async def Encode(self, request, context):
        self.calls += 1
        if self.calls <= self.failures:
            await context.abort(self.code, f"flaky ({self.calls})")
        return pb.SymbolFrame()


async def _call(failures: int, ready_wait_s: float, code=grpc.StatusCode.UNAVAILABLE):
    server = grpc.aio.server()
    flaky = Flaky(failures, code)
    pbg.add_TransmitterServicer_to_server(flaky, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    addr = f"127.0.0.1:{port}"
    cfg = ServiceConfig.from_env("gateway", {"SCCDM_TX_ADDR": addr, "SCCDM_CHANNEL_ADDR": addr, "SCCDM_RX_ADDR": addr})
    b = Backends(cfg, TLSFiles.from_env({}))
    b.ready_wait_s = ready_wait_s
    t0 = time.monotonic()
    try:
        r = await b.call("transmitter", b.transmitter.Encode, pb.EncodeRequest(), time.monotonic() + 20)
        return r, flaky.calls, time.monotonic() - t0
    except GatewayError as e:
        return e, flaky.calls, time.monotonic() - t0
    finally:
        await b.close()
        await server.stop(None)


def test_service_config_retries_only_unavailable_of_the_sccdm_services():
    import json
    c = json.loads(service_config())
    names = {n["service"] for n in c["methodConfig"][0]["name"]}
    assert names == {"sccdm.v1.Transmitter", "sccdm.v1.Channel", "sccdm.v1.Receiver"}
    assert c["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_grpc_retry_policy_absorbs_a_few_unavailable():
    r, calls, _ = asyncio.run(_call(failures=3, ready_wait_s=0))
    assert isinstance(r, pb.SymbolFrame) and calls == 4


def test_ready_wait_absorbs_a_longer_outage_then_gives_up():
    r, calls, _ = asyncio.run(_call(failures=8, ready_wait_s=5))   # more than gRPC's 5 attempts
    assert isinstance(r, pb.SymbolFrame) and calls == 9
    # down for good: gRPC's retries stop when the retry budget is spent, the gateway's at the ready wait
    err, calls, dt = asyncio.run(_call(failures=10 ** 6, ready_wait_s=3.0))
    assert isinstance(err, GatewayError) and err.status == 503 and "unavailable" in err.detail
    assert calls > 5 and 2.5 < dt < 5, (calls, dt)


@pytest.mark.parametrize("code", [grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED])
def test_other_errors_are_not_repeated(code):
    err, calls, _ = asyncio.run(_call(failures=1, ready_wait_s=5, code=code))
    assert isinstance(err, GatewayError) and calls == 1
