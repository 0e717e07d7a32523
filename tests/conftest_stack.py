"""Pytest plugin: the real networked stack, started once per test session.

Register it from tests/conftest.py with ``pytest_plugins = ["conftest_stack"]``
(or ``from conftest_stack import *``). Fixtures:

stack        sccdm.stack.Stack: transmitter, channel, receiver, gateway as processes on free
             loopback ports, CPU, small message / upload limits so oversize tests are cheap
gateway_url  "http://127.0.0.1:<port>"
http         an httpx.Client for the gateway
stubs        dict of gRPC stubs: transmitter, channel, receiver, health (per service)
ref_model    the in-process sc-cdm-cpu model, loaded exactly as the services load it
make_png     make_png(h, w, seed) -> (png bytes, uint8 [h, w, 3])
"""
from __future__ import annotations

import io

import numpy as np
import pytest

STACK_ENV = {
    "SCCDM_DEVICE": "cpu",            # in-process references run on CPU: same kernels, same bits
    "SCCDM_MAX_MESSAGE_MB": "4",
    "SCCDM_MAX_UPLOAD_MB": "2",
    "SCCDM_MAX_PIXELS": str(512 * 512),
    "SCCDM_REQUEST_TIMEOUT_S": "60",
    "SCCDM_LOG_LEVEL": "INFO",
}


def started_stack(env: dict, log_dir, timeout: float, what: str = "stack", **kwargs):
    """Generator for fixtures: start a real Stack on free ports, yield it, stop it afterwards."""
    from sccdm.stack import Stack, StackError

    s = Stack(gateway_port=0, env=env, log_dir=log_dir, **kwargs)
    try:
        s.start(timeout=timeout)
    except StackError as e:
        pytest.fail(f"the {what} did not start: {e}")
    yield s
    s.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    yield from started_stack(STACK_ENV, tmp_path_factory.mktemp("stack-logs"), 300)


@pytest.fixture(scope="session")
def gateway_url(stack):
    return stack.gateway_url


@pytest.fixture(scope="session")
def http(gateway_url):
    import httpx
    with httpx.Client(base_url=gateway_url, timeout=60) as c:
        yield c


@pytest.fixture(scope="session")
def stubs(stack):
    import grpc
    from grpc_health.v1 import health_pb2_grpc

    from sccdm.rpc import sccdm_pb2_grpc as g

    opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    chans = {n: grpc.insecure_channel(stack.addr(n), options=opts) for n in ("transmitter", "channel", "receiver")}
    yield {
        "transmitter": g.TransmitterStub(chans["transmitter"]),
        "channel": g.ChannelStub(chans["channel"]),
        "receiver": g.ReceiverStub(chans["receiver"]),
        "health": {n: health_pb2_grpc.HealthStub(c) for n, c in chans.items()},
        "channels": chans,
    }
    for c in chans.values():
        c.close()


@pytest.fixture(scope="session")
def ref_model():
    from sccdm import zoo
    return zoo.load("sc-cdm-cpu", device="cpu")


def png_of(arr: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def make_png():
    """Natural-looking test images: crops of scikit-image's astronaut (odd sizes exercise the padding)."""
    from skimage import data

    astro = data.astronaut()

    def make(h: int = 40, w: int = 48, seed: int = 0):
        rng = np.random.default_rng(seed)
        y, x = int(rng.integers(0, astro.shape[0] - h)), int(rng.integers(0, astro.shape[1] - w))
        arr = np.ascontiguousarray(astro[y:y + h, x:x + w])
        return png_of(arr), arr

    return make
