"""The compose `radio` profile against a real Docker engine (issue 13): the GNU Radio container is built from
deploy/gnuradio/Dockerfile, the channel service sends framed samples through its flowgraph over ZeroMQ
(SCCDM_CHANNEL_BACKEND=zmq), and an image comes back through the gateway decoded with estimated CSI.

Runs after tests/test_deploy.py, whose compose build leaves the four service images cached."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
import test_deploy
from test_deploy import _gateway_ready
from test_deploy_files import _free_port

PROJECT = "sccdmradio"
GR_SNR_DB = 15.0


def _compose(*args, env: dict, timeout: float = 900, check: bool = True):
    return test_deploy._compose(*args, env=env, timeout=timeout, check=check, project=PROJECT, profiles=("radio",))


@pytest.fixture(scope="module")
def radio_stack():
    client = test_deploy._compose_client()
    port = _free_port()
    env = {"SCCDM_GATEWAY_PORT": str(port), "SCCDM_CHANNEL_BACKEND": "zmq", "SCCDM_GR_SNR_DB": str(GR_SNR_DB)}
    _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=120)
    t0 = time.monotonic()
    try:
        _compose("up", "--build", "--wait", "--wait-timeout", "600", env=env, timeout=1200)
    except AssertionError:
        logs = _compose("logs", "--tail", "40", env=env, check=False, timeout=60)
        _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=120)
        raise AssertionError(f"radio compose up --wait failed; logs:\n{logs.stdout[-6000:]}") from None
    print(f"\n[docker] radio profile build + up --wait {time.monotonic() - t0:.0f} s", flush=True)
    yield {"client": client, "url": f"http://127.0.0.1:{port}", "env": env}
    _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=300)


@pytest.mark.docker
@pytest.mark.slow
def test_radio_profile_sends_an_image_through_gnuradio(radio_stack):
    import httpx
    from PIL import Image
    from skimage import data

    c = {ctr.labels.get("com.docker.compose.service"): ctr for ctr in radio_stack["client"].containers.list(
        filters={"label": f"com.docker.compose.project={PROJECT}"})}
    assert set(c) == {"transmitter", "channel", "receiver", "gateway", "gnuradio"}
    gr = c["gnuradio"]
    gr.reload()
    assert gr.attrs["State"]["Health"]["Status"] == "healthy" and gr.attrs["Config"]["User"] == "10001"
    assert _gateway_ready(radio_stack["url"], time.monotonic() + 60)

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(data.astronaut()[100:132, 200:232])).save(buf, "PNG")
    r = httpx.post(f"{radio_stack['url']}/v1/transmit", files={"image": ("a.png", buf.getvalue(), "image/png")},
                   data={"snr_db": str(GR_SNR_DB), "seed": "3", "refine": "false"}, timeout=120)
    assert r.status_code == 200, r.text
    rep = r.json()
    # the channel really went through the flowgraph: the receiver estimated CSI and SNR from the samples
    assert rep["backend"] == "zmq" and rep["csi_source"] == "estimated"
    assert abs(rep["est_snr_db"] - GR_SNR_DB) < 3.0, rep["est_snr_db"]
    assert rep["psnr_db"] > 20.0, rep["psnr_db"]
