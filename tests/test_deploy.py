"""The networked testbed's containers on a real Docker engine (markers `docker`, `slow`).

.ci/run calls deploy/engine.sh first (installs and starts dockerd, the compose plugin, a
local base image); these tests skip only when no engine answers, and say why.

* `docker compose build` + `up --wait` of the CPU stack (project sccdmci): all four
  healthy and hardened, an image through the gateway equal to the in-process pipeline
  bit for bit; a SIGKILLed container restarted by its restart policy; `compose down`
  leaving nothing behind.
* The same build, start, request and teardown through sccdm.deploy.docker_stack (the
  Docker SDK, what `sccdm stack up --docker` runs).
* `docker compose config` of the GPU and CPU files and the radio profile (needs the
  compose plugin, not an engine; not docker-marked).

tests/test_deploy_radio.py uses the helpers here and runs after this file, whose
compose build leaves the service images cached. Without an engine: test_deploy_files.py
(the files, parsed and cross-checked; the health probe) and test_deploy_sdk.py
(docker_stack against a fake engine).
"""
from __future__ import annotations

import io
import json
import time
import types

import pytest

pytest.importorskip("yaml")
pytest.importorskip("docker")

from sccdm import healthcheck  # noqa: E402
from sccdm.deploy import docker_stack  # noqa: E402
from test_deploy_files import COMPOSE, COMPOSE_CPU, GRPC, ROOT, SERVICES, _free_port  # noqa: E402

ENGINE_ENV = ROOT / "deploy/docker/engine.env"
PROJECT = "sccdmci"  # compose project of these tests: containers sccdmci-<service>-1


def _engine_settings() -> dict:
    """The build settings deploy/engine.sh found for this host (base image, torch source)."""
    out = {}
    if ENGINE_ENV.exists():
        for line in ENGINE_ENV.read_text().splitlines():
            k, eq, v = line.partition("=")
            if eq and not k.startswith("#"):
                out[k.strip()] = v.strip()
    return out


def _engine_client():
    try:
        return docker_stack.connect()
    except docker_stack.StackError as e:
        pytest.skip(f"{e} (CI starts one with `bash deploy/engine.sh`; it failed or was not run)")


def _compose_cmd(*args, project=PROJECT, profiles=()) -> list[str]:
    prof = [x for p in profiles for x in ("--profile", p)]
    return ["docker", "compose", "-p", project, "-f", str(COMPOSE), "-f", str(COMPOSE_CPU), *prof, *args]


def _compose(*args, timeout=900, check=True, env=None, project=PROJECT, profiles=()):
    import os
    import subprocess
    full_env = {**os.environ, **_engine_settings(), **(env or {})}
    res = subprocess.run(_compose_cmd(*args, project=project, profiles=profiles), cwd=ROOT, env=full_env,
                         capture_output=True, text=True, timeout=timeout)
    if check and res.returncode != 0:
        raise AssertionError(f"docker compose {' '.join(args)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n"
                             f"{res.stderr[-6000:]}")
    return res


def _gateway_ready(url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if healthcheck.check(f"{url}/readyz", timeout=2.0)[0]:
            return True
        time.sleep(0.2)
    return False


def _compose_client():
    """The engine's client, or a skip where `docker compose` is missing."""
    import shutil
    import subprocess
    client = _engine_client()
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                        timeout=30).returncode != 0:
        pytest.skip("no `docker compose` plugin (CI installs it with `bash deploy/engine.sh`)")
    return client


@pytest.fixture(scope="module")
def compose_stack():
    """`docker compose up --build --wait` of the CPU stack on a free port; `down` afterwards."""
    client = _compose_client()
    port = _free_port()
    env = {"SCCDM_GATEWAY_PORT": str(port)}
    _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=120)  # leftovers of a killed run
    t0 = time.monotonic()
    _compose("build", env=env, timeout=1200)
    t_build = time.monotonic() - t0
    t0 = time.monotonic()
    try:
        _compose("up", "--wait", "--wait-timeout", "600", env=env, timeout=700)
    except AssertionError:
        logs = _compose("logs", "--tail", "40", env=env, check=False, timeout=60)
        _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=120)
        raise AssertionError(f"compose up --wait failed; logs:\n{logs.stdout[-6000:]}") from None
    t_up = time.monotonic() - t0
    print(f"\n[docker] compose build {t_build:.0f} s, up --wait {t_up:.0f} s", flush=True)
    info = types.SimpleNamespace(client=client, url=f"http://127.0.0.1:{port}", env=env, t_build=t_build, t_up=t_up)
    yield info
    _compose("down", "-v", "--remove-orphans", env=env, check=False, timeout=300)


def _send_and_compare(url: str, seed: int = 5):
    """POST an image through the gateway; the report must equal the in-process pipeline bit for bit."""
    import base64

    import numpy as np
    import torch
    from sccdm import pipeline, zoo
    from sccdm.channels import ChannelConfig
    from sccdm.data import decode_image_bytes, image_to_tensor
    from sccdm.metrics import psnr
    from sccdm.send import transmit
    from sccdm.serving import convert

    rng = np.random.default_rng(seed)
    arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    __import__("PIL.Image", fromlist=["Image"]).fromarray(arr).save(buf, format="PNG")
    data = buf.getvalue()
    rep = transmit(url, data, "x.png", snr_db=7.5, seed=seed, refine=True, timeout_s=120)
    x = image_to_tensor(decode_image_bytes(data))[None]
    model = zoo.load("sc-cdm-cpu", device="cpu")
    ref = pipeline.simulate(model, x, ChannelConfig("awgn", 7.5), torch.Generator().manual_seed(seed), refine=True,
                            refine_generator=torch.Generator().manual_seed(seed))
    assert rep["psnr_db"] == float(psnr(ref["x_hat"], x)[0])
    assert base64.b64decode(rep["image"]) == convert.png_bytes(ref["x_hat"])[0]
    assert base64.b64decode(rep["s_hat"]["image"]) == convert.png_bytes(ref["s_hat"])[0]
    assert rep["channel_uses"] == ref["frame"].symbols.shape[1]
    return rep


def _containers(client, project=PROJECT):
    return {c.labels.get("com.docker.compose.service"): c
            for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})}


@pytest.mark.docker
@pytest.mark.slow
def test_compose_up_wait_serves_bit_exact_and_hardened(compose_stack):
    """`up --wait` brought all four healthy; an image through the gateway equals the in-process pipeline."""
    cs = _containers(compose_stack.client)
    assert set(cs) == set(SERVICES)
    for svc, c in cs.items():
        c.reload()
        assert c.attrs["State"]["Health"]["Status"] == "healthy", svc
        assert c.attrs["Config"]["User"] == "10001:10001"
        assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        if svc in GRPC:  # nothing but the gateway is reachable from the host
            assert not any(c.attrs["NetworkSettings"]["Ports"].values())
    _send_and_compare(compose_stack.url)


@pytest.mark.docker
@pytest.mark.slow
def test_compose_sigkilled_container_comes_back_by_its_restart_policy(compose_stack):
    """SIGKILL the transmitter's process tree (as the OOM killer would): Docker restarts it, the stack serves again."""
    import os
    import signal
    c = _containers(compose_stack.client)["transmitter"]
    c.reload()
    restarts, pid = c.attrs["RestartCount"], c.attrs["State"]["Pid"]
    assert pid > 0
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)  # from the host: `docker kill` would count as a manual stop, not a crash
    deadline = t0 + 180
    while time.monotonic() < deadline:
        c.reload()
        if c.attrs["RestartCount"] > restarts and c.attrs["State"]["Running"]:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"transmitter not restarted: {c.attrs['State']}")
    t_restart = time.monotonic() - t0
    assert c.attrs["State"]["Pid"] != pid
    assert _gateway_ready(compose_stack.url, t0 + 180), "the gateway never became ready again"
    rep = None
    while time.monotonic() < t0 + 180:
        try:
            rep = _send_and_compare(compose_stack.url, seed=6)
            break
        except RuntimeError:  # the gateway's channel to the new container may need one more try
            time.sleep(0.2)
    t_serving = time.monotonic() - t0
    print(f"\n[docker] transmitter restarted in {t_restart:.1f} s, serving again after {t_serving:.1f} s",
          flush=True)
    assert rep is not None
    assert t_serving < 120


@pytest.mark.docker
@pytest.mark.slow
def test_compose_down_leaves_nothing_behind(compose_stack):
    client = compose_stack.client
    _compose("down", "-v", "--remove-orphans", env=compose_stack.env, timeout=300)
    flt = {"label": f"com.docker.compose.project={PROJECT}"}
    assert not client.containers.list(all=True, filters=flt)
    assert not client.networks.list(filters=flt)
    assert not client.volumes.list(filters=flt)


@pytest.mark.docker
@pytest.mark.slow
def test_real_engine_builds_runs_and_serves_an_image():
    """`sccdm stack up --docker`'s path: build the four images with the Docker SDK, start, send an image, tear down."""
    client = _engine_client()
    settings = _engine_settings()
    build_args = {k: settings[v] for k, v in (("PYTHON_IMAGE", "SCCDM_PYTHON_IMAGE"),
                                              ("TORCH_INDEX_URL", "SCCDM_CPU_TORCH_INDEX_URL")) if settings.get(v)}
    cfg = docker_stack.StackConfig(prefix="sccdmtest", tag="test", port=0, health_timeout_s=900, poll_s=1.0,
                                   build_args=build_args)
    stack = docker_stack.start(client, cfg)
    try:
        _send_and_compare(stack.gateway_url(), seed=7)
        for svc in GRPC:  # nothing but the gateway is reachable from the host
            c = stack.containers[svc]
            c.reload()
            assert not any(c.attrs["NetworkSettings"]["Ports"].get(p) for p in c.attrs["NetworkSettings"]["Ports"])
            assert c.attrs["Config"]["User"] == "10001:10001"
    finally:
        stack.teardown()
    assert not client.containers.list(all=True, filters={"label": f"{docker_stack.LABEL}=sccdmtest"})
    assert not client.networks.list(filters={"label": f"{docker_stack.LABEL}=sccdmtest"})


# ====================================================================== the compose files, as the real tool reads them

def _compose_config(*args: str) -> dict:
    import shutil
    import subprocess
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        pytest.skip("no docker compose plugin (bash deploy/engine.sh installs it)")
    r = subprocess.run(["docker", "compose", *args, "config", "--format", "json"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_compose_config_gpu_cpu_and_radio_profiles():
    # the default file reserves the GPU for the model services only
    gpu = _compose_config("-f", "docker-compose.yml")["services"]
    assert set(gpu) == {"transmitter", "channel", "receiver", "gateway"}
    for svc in ("transmitter", "receiver"):
        (dev,) = gpu[svc]["deploy"]["resources"]["reservations"]["devices"]
        assert dev["driver"] == "nvidia" and dev["capabilities"] == ["gpu"], (svc, dev)
    for svc in ("channel", "gateway"):
        assert not gpu[svc].get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices"), svc
    # the CPU override removes the reservation (compose's !reset) and tags its own images; radio adds GNU Radio
    cpu = _compose_config("-f", "docker-compose.yml", "-f", "docker-compose.cpu.yml", "--profile", "radio")["services"]
    assert "gnuradio" in cpu
    for svc in ("transmitter", "receiver"):
        assert not cpu[svc]["deploy"]["resources"]["reservations"].get("devices"), svc
        assert cpu[svc]["image"].endswith("-cpu") and cpu[svc]["environment"]["SCCDM_DEVICE"] == "cpu"
