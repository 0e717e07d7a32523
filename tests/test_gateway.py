"""The HTTP gateway in front of the real services: routes, formats, readiness through a backend restart."""
import io
import time

import numpy as np
import pytest
from PIL import Image


def post(http, data, headers=None, **form):
    form.setdefault("seed", "1")
    return http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                     data={k: str(v) for k, v in form.items()}, headers=headers or {})


def test_healthz_and_readyz(http):
    assert http.get("/healthz").json() == {"status": "ok"}
    r = http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "backends": {"transmitter": "SERVING", "channel": "SERVING",
                                                    "receiver": "SERVING"}}


def test_models_lists_the_zoo(http):
    r = http.get("/v1/models").json()
    assert r["default"] == "sc-cdm-cpu"
    names = {m["name"]: m for m in r["models"]}
    assert names["sc-cdm-cpu"]["has_refiner"] and not names["deepjscc-cpu"]["has_refiner"]


def test_report_has_everything_the_page_shows(http, make_png):
    data, _ = make_png(40, 40)
    r = post(http, data, channel="rayleigh", snr_db=3, refine="true", erasure_prob=0.05, csi="zf", fading="fast")
    assert r.status_code == 200, r.text
    rep = r.json()
    for key in ("psnr_db", "ssim", "image", "s_hat", "channel_uses", "cbr", "timings_ms", "est_snr_db",
                "received_symbols"):
        assert key in rep, key
    assert rep["channel"] == {"kind": "rayleigh", "snr_db": 3.0, "fading": "fast", "block_size": 0, "csi": "zf",
                              "erasure_prob": 0.05}
    assert 0 < rep["erased_fraction"] < 0.2
    assert rep["csi_source"] == "genie" and rep["csi_mode"] == "zf"
    assert rep["image_status"] == "erased" and rep["link_status"] == ""
    for k in ("encode", "channel", "decode", "refine", "total"):
        assert rep["timings_ms"][k] >= 0
    img = Image.open(io.BytesIO(__import__("base64").b64decode(rep["s_hat"]["image"])))
    assert img.size == (40, 40)


def test_a_lost_image_is_marked_and_never_sent_as_a_png(http, make_png):
    """Every symbol erased: the report says "lost" (the outputs are a guess from nothing) and a client that
    asked for the PNG alone gets a 502 with the reason instead of that guess."""
    data, _ = make_png(32, 32)
    form = {"erasure_prob": "0.9999", "refine": "false"}
    for seed in range(1, 8):   # each seed erases all 256 symbols with probability 0.9999^256 = 0.97
        rep = post(http, data, seed=str(seed), **form).json()
        if rep["erased_fraction"] == 1.0:
            break
    assert rep["image_status"] == "lost", rep["erased_fraction"]
    assert post(http, data, seed="1", erasure_prob="0.0").json()["image_status"] == "ok"
    r = post(http, data, seed=str(seed), headers={"Accept": "image/png"}, **form)
    assert r.status_code == 502 and r.json()["image_status"] == "lost" and "lost" in r.json()["detail"]


def test_accept_png_returns_the_image(http, make_png):
    data, _ = make_png(33, 45)
    r = http.post("/v1/transmit", files={"image": ("x.png", data)}, data={"seed": "3", "refine": "false"},
                  headers={"Accept": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(r.content))).shape == (33, 45, 3)
    assert r.headers["x-sccdm-seed"] == "3"


def test_same_seed_same_result_and_no_seed_reports_one(http, make_png):
    data, _ = make_png(32, 32)
    a, b = post(http, data, seed=5).json(), post(http, data, seed=5).json()
    assert a["psnr_db"] == b["psnr_db"] and a["image"] == b["image"]
    r = http.post("/v1/transmit", files={"image": ("x.png", data)}).json()
    assert isinstance(r["seed"], int)


def test_openapi_docs_and_metrics(http, make_png):
    spec = http.get("/openapi.json").json()
    assert "/v1/transmit" in spec["paths"] and "/readyz" in spec["paths"]
    assert http.get("/docs").status_code == 200
    post(http, make_png(32, 32)[0])
    text = http.get("/metrics").text
    assert 'sccdm_requests_total{code="200",method="/v1/transmit",service="gateway"}' in text


def test_readyz_follows_a_backend_down_and_back(stack, http, make_png):
    data, _ = make_png(32, 32)
    stack.stop_service("channel")
    try:
        deadline = time.monotonic() + 15
        while http.get("/readyz").status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.2)
        r = http.get("/readyz")
        assert r.status_code == 503
        assert r.json()["backends"]["channel"].startswith("UNREACHABLE")
        assert r.json()["backends"]["transmitter"] == "SERVING"
        down = post(http, data)
        assert down.status_code == 503 and "channel" in down.json()["detail"]
    finally:
        stack.start_service("channel")
        stack.wait_service("channel", 120)
    deadline = time.monotonic() + 15
    while http.get("/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert http.get("/readyz").status_code == 200
    assert post(http, data).status_code == 200


@pytest.mark.slow
def test_cli_stack_up_in_background_then_send_then_sigterm(tmp_path, make_png, capsys):
    """What scripts/quickstart.sh does: `sccdm stack up &`, `sccdm send`, then stop it with SIGTERM."""
    import re
    import signal
    import socket
    import subprocess
    import sys

    from sccdm import send
    from sccdm.stack import REPO

    data, _ = make_png(32, 32)
    (tmp_path / "in.png").write_bytes(data)
    p = subprocess.Popen([sys.executable, "-m", "sccdm.cli", "stack", "up", "--port", "0", "--log-dir",
                          str(tmp_path / "logs")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        url, lines = None, []
        for line in p.stdout:
            lines.append(line)
            m = re.match(r"gateway\s+(http://\S+)", line)
            if m:
                url = m.group(1)
                break
        assert url, "".join(lines)
        rc = send.main([str(tmp_path / "in.png"), "--gateway", url, "--out", str(tmp_path / "out.png"),
                        "--snr", "10", "--channel", "rayleigh", "--seed", "2", "--wait", "60"])
        out = capsys.readouterr().out
        assert rc == 0 and "PSNR" in out and "channel uses" in out
        assert Image.open(tmp_path / "out.png").size == (32, 32)
    finally:
        p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=60)
    assert p.returncode == 0, rest
    assert "stopped" in rest
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.socket() as s:
        assert s.connect_ex((host, int(port))) != 0, "gateway still listening after stack stopped"


def test_send_passes_its_own_patience_as_the_deadline(gateway_url, make_png):
    """sccdm send / sccdm.send.transmit tell the gateway how long they will wait (timeout_s), so a large photo
    is not cut at the gateway's 25 s default while the client would have waited; above the gateway's limit: 422."""
    from sccdm.send import transmit
    data, _ = make_png(32, 32)
    assert transmit(gateway_url, data, timeout_s=60, seed=1)["psnr_db"] > 15
    with pytest.raises(RuntimeError, match="HTTP 422.*SCCDM_MAX_REQUEST_TIMEOUT_S"):
        transmit(gateway_url, data, timeout_s=601, seed=1)
