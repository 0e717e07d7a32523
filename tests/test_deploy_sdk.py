"""sccdm.deploy.docker_stack (`sccdm stack up --docker`) against a fake Docker Engine.

The fake (tests/fake_docker_engine.py) is an HTTP server on a unix socket that
implements the Engine API endpoints docker_stack uses, keeps their state (images,
networks, containers, health) and records every request, so these tests check what
the Docker SDK actually sends: builds, networks, containers, the wait for health,
failures tearing everything down, swap, the radio flowgraph, the CLI. They do not
prove a real engine builds or runs the images (tests/test_deploy.py does, where there
is one).
"""
from __future__ import annotations

import json
import threading
import time
import types

import pytest

pytest.importorskip("yaml")
pytest.importorskip("docker")

from fake_docker_engine import FakeEngine, serve  # noqa: E402
from sccdm.deploy import docker_stack  # noqa: E402
from sccdm.serving import config as svc_config  # noqa: E402
from test_deploy_files import (COMPOSE, GRPC, SERVICES, _check_radio_wiring, _flowgraph_env_vars,  # noqa: E402
                               interpolate, load_compose)


@pytest.fixture
def engine(tmp_path, monkeypatch):
    """A fake Docker Engine on a unix socket, with DOCKER_HOST pointing at it."""
    with serve() as (eng, sock):
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
        for var in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
            monkeypatch.delenv(var, raising=False)
        yield eng


def _cfg(**kw) -> docker_stack.StackConfig:
    kw.setdefault("poll_s", 0.01)
    kw.setdefault("health_timeout_s", 10)
    return docker_stack.StackConfig(**kw)


def _env(container: dict) -> dict:
    return dict(x.split("=", 1) for x in container["Config"]["Env"])


def _by_name(engine: FakeEngine) -> dict:
    return {c["Name"].lstrip("/"): c for c in engine.containers.values()}


def test_start_builds_networks_containers_and_waits_for_health(engine):
    engine.health = {"sccdm-transmitter": ["starting", "starting", "healthy"],
                     "sccdm-receiver": ["starting"] * 4 + ["healthy"]}
    stack = docker_stack.start(docker_stack.connect(), _cfg(model="sc-cdm-cpu", port=18080))

    # one build per service, from the shared Dockerfile, each its own target and tag, CPU torch
    builds = engine.calls_to("POST", "/build")
    assert [b[2]["target"] for b in builds] == list(SERVICES)
    for b in builds:
        assert b[2]["dockerfile"] == docker_stack.DOCKERFILE
        assert b[2]["t"] == f"sccdm/{b[2]['target']}:local"
        assert json.loads(b[2]["buildargs"])["TORCH_INDEX_URL"] == docker_stack.CPU_TORCH_INDEX
    # the context docker-py sent follows .dockerignore: what the Dockerfile COPYs, not .venv / data / runs
    names = engine.build_contexts["sccdm/transmitter:local"]
    assert "pyproject.toml" in names and "deploy/docker/Dockerfile" in names
    assert any(n.startswith("sccdm/zoo/weights/") for n in names)
    assert not [n for n in names if n.split("/")[0] in (".venv", "data", "runs", ".git", "tests")]
    assert not [n for n in names if "__pycache__" in n]

    nets = {n["Name"]: n for n in engine.networks.values()}
    assert nets["sccdm-backend"]["Internal"] is True and nets["sccdm-frontend"]["Internal"] is False

    cs = _by_name(engine)
    assert set(cs) == {f"sccdm-{s}" for s in SERVICES}
    for s in SERVICES:
        c = cs[f"sccdm-{s}"]
        env = _env(c)
        assert c["State"]["Status"] == "running" and c["HostConfig"]["Init"] is True
        assert env["SCCDM_PORT"] == str(svc_config.DEFAULT_PORTS[s]) and env["SCCDM_MODEL"] == "sc-cdm-cpu"
        assert c["NetworkSettings"]["Networks"]["sccdm-backend"]["Aliases"] == [s]
        assert "DeviceRequests" not in c["HostConfig"] or not c["HostConfig"]["DeviceRequests"]
    gw = cs["sccdm-gateway"]
    assert _env(gw)["SCCDM_TX_ADDR"] == "transmitter:50051"
    assert _env(gw)["SCCDM_CHANNEL_ADDR"] == "channel:50052" and _env(gw)["SCCDM_RX_ADDR"] == "receiver:50053"
    assert gw["HostConfig"]["PortBindings"] == {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}
    assert "sccdm-frontend" in gw["NetworkSettings"]["Networks"]
    # only the gateway is published or on the frontend network
    for s in GRPC:
        assert not cs[f"sccdm-{s}"]["HostConfig"].get("PortBindings")
        assert set(cs[f"sccdm-{s}"]["NetworkSettings"]["Networks"]) == {"sccdm-backend"}

    # the gateway started only after the receiver had reported healthy (its 5th inspection)
    order = [(c[0], c[1]) for c in engine.calls]
    rx_id, gw_id = cs["sccdm-receiver"]["Id"], gw["Id"]
    rx_inspections = [i for i, c in enumerate(order) if c == ("GET", f"/containers/{rx_id}/json")]
    gw_start = order.index(("POST", f"/containers/{gw_id}/start"))
    assert len(rx_inspections) >= 5 and rx_inspections[4] < gw_start

    stack.teardown()
    assert engine.containers == {} and engine.networks == {}


def test_gpus_request_nvidia_devices_for_tx_rx_only(engine):
    cuda = "https://download.pytorch.org/whl/cu128"
    stack = docker_stack.start(docker_stack.connect(), _cfg(gpus=True, torch_index_url=cuda))
    args = {b[2]["target"]: json.loads(b[2]["buildargs"])["TORCH_INDEX_URL"] for b in engine.calls_to("POST", "/build")}
    assert args == {"transmitter": cuda, "receiver": cuda, "channel": docker_stack.CPU_TORCH_INDEX,
                    "gateway": docker_stack.CPU_TORCH_INDEX}
    cs = _by_name(engine)
    for s in SERVICES:
        req = cs[f"sccdm-{s}"]["HostConfig"].get("DeviceRequests") or []
        if s in ("transmitter", "receiver"):
            assert req == [{"Driver": "", "Count": -1, "DeviceIDs": [], "Capabilities": [["gpu"]], "Options": {}}]
            assert _env(cs[f"sccdm-{s}"])["SCCDM_DEVICE"] == "auto"
        else:
            assert req == [] and _env(cs[f"sccdm-{s}"])["SCCDM_DEVICE"] == "cpu"
    stack.teardown()


def test_failed_service_reports_its_logs_and_removes_everything(engine):
    engine.exit_on_start = {"sccdm-receiver"}
    with pytest.raises(docker_stack.StackError, match=r"sccdm-receiver stopped \(exit code 1\)(.|\n)*start-up failed"):
        docker_stack.start(docker_stack.connect(), _cfg())
    assert engine.containers == {} and engine.networks == {}
    assert not engine.calls_to("POST", r"/containers/[0-9a-f]+/start")[3:]  # the gateway never started


def test_unhealthy_and_timeout_are_errors(engine):
    engine.health = {"sccdm-channel": ["starting", "unhealthy"]}
    with pytest.raises(docker_stack.StackError, match="sccdm-channel is unhealthy"):
        docker_stack.start(docker_stack.connect(), _cfg())
    assert engine.containers == {}
    engine.health = {"sccdm-transmitter": ["starting"]}
    t0 = time.monotonic()
    with pytest.raises(docker_stack.StackError, match="transmitter not healthy after"):
        docker_stack.start(docker_stack.connect(), _cfg(health_timeout_s=0.3, build=False))
    assert time.monotonic() - t0 < 5 and engine.containers == {} and engine.networks == {}


def test_build_error_and_missing_images_are_clear(engine):
    engine.fail_build = {"channel"}
    with pytest.raises(docker_stack.StackError, match="building sccdm/channel:local failed: .*non-zero code"):
        docker_stack.start(docker_stack.connect(), _cfg())
    assert engine.containers == {} and engine.networks == {}
    with pytest.raises(docker_stack.StackError, match=r"image sccdm/\w+:nope does not exist"):
        docker_stack.start(docker_stack.connect(), _cfg(build=False, tag="nope"))


def test_leftovers_of_a_killed_run_are_removed_first(engine):
    client = docker_stack.connect()
    docker_stack.start(client, _cfg())  # never torn down, as after kill -9
    first = set(engine.containers)
    stack = docker_stack.start(client, _cfg(build=False))
    assert len(engine.containers) == 4 and not first & set(engine.containers)
    assert len(engine.networks) == 2
    stack.teardown()
    assert engine.containers == {} and engine.networks == {}


def test_swap_replaces_one_service_keeping_its_network_name(engine):
    stack = docker_stack.start(docker_stack.connect(), _cfg())
    old_id = stack.containers["channel"].id
    radio_env = {"SCCDM_CHANNEL_BACKEND": "zmq", "SCCDM_ZMQ_TX": "tcp://gnuradio:5555"}
    new = stack.swap("channel", "example/radio-channel:1", radio_env)
    assert old_id not in engine.containers
    c = engine.containers[new.id]
    assert c["Image"] == "example/radio-channel:1" and c["Name"] == "/sccdm-channel"
    env = _env(c)
    assert env["SCCDM_CHANNEL_BACKEND"] == "zmq" and env["SCCDM_PORT"] == "50052"
    assert c["NetworkSettings"]["Networks"]["sccdm-backend"]["Aliases"] == ["channel"]
    assert c["State"]["Status"] == "running"
    with pytest.raises(docker_stack.StackError, match="no running 'modem' container"):
        stack.swap("modem", "x/y:1")
    stack.teardown()
    assert engine.containers == {} and engine.networks == {}


def _run_in_thread(fn):
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("rc", fn()))
    th.start()
    return th, result


def _wait_running(engine, n=4, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.lock:
            if len([c for c in engine.containers.values() if c["State"]["Status"] == "running"]) >= n:
                return
        time.sleep(0.02)
    raise AssertionError("the fake engine never saw the containers running")


def test_up_runs_until_stopped_then_tears_down(engine, capsys):
    # as `sccdm stack up --docker` hands them over: its own options parsed, ours left in args.extra
    args = types.SimpleNamespace(
        port=0, host="127.0.0.1", model=None, max_batch=32, max_wait_ms=None, ready_timeout=30, docker=True,
        extra=["--docker-tag", "t1", "--docker-poll", "0.01", "--docker-env", "SCCDM_LOG_LEVEL=DEBUG",
               "--docker-env", "channel:SCCDM_CHANNEL_BACKEND=emulated_link"])
    stop = threading.Event()
    th, result = _run_in_thread(lambda: docker_stack.up(args, stop=stop))
    _wait_running(engine)
    deadline = time.monotonic() + 10
    out = ""
    while time.monotonic() < deadline and "Ctrl-C" not in out:
        out += capsys.readouterr().out
        time.sleep(0.02)
    with engine.lock:
        cs = _by_name(engine)
        assert all(_env(c)["SCCDM_LOG_LEVEL"] == "DEBUG" for c in cs.values())
        assert all(_env(c)["SCCDM_MODEL"] == "sc-cdm-cpu" for c in cs.values())
        assert _env(cs["sccdm-transmitter"])["SCCDM_MAX_BATCH"] == "32"
        assert _env(cs["sccdm-receiver"])["SCCDM_MAX_BATCH"] == "32"
        assert "SCCDM_MAX_BATCH" not in _env(cs["sccdm-channel"])
        assert _env(cs["sccdm-channel"])["SCCDM_CHANNEL_BACKEND"] == "emulated_link"
        assert "SCCDM_CHANNEL_BACKEND" not in _env(cs["sccdm-transmitter"])
        assert cs["sccdm-transmitter"]["Image"] == "sccdm/transmitter:t1"
        published = cs["sccdm-gateway"]["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostPort"]
    # port 0: the engine picked one, and that is the URL printed
    assert published != "0" and f"http://127.0.0.1:{published}" in out
    stop.set()
    th.join(20)
    assert result["rc"] == 0 and engine.containers == {} and engine.networks == {}


def test_sccdm_stack_up_docker_runs_through_the_cli_and_notices_a_crash(engine, capsys):
    from sccdm import stack as sccdm_stack
    th, result = _run_in_thread(lambda: sccdm_stack.main(
        ["up", "--docker", "--port", "18082", "--docker-poll", "0.01", "--docker-tag", "cli"]))
    _wait_running(engine)
    with engine.lock:
        cs = _by_name(engine)
        assert cs["sccdm-gateway"]["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"] == "18082"
        assert cs["sccdm-channel"]["Image"] == "sccdm/channel:cli"
        cs["sccdm-channel"]["State"].update(Status="exited", Running=False, ExitCode=137)
    th.join(20)
    assert not th.is_alive() and result["rc"] == 1
    assert "sccdm-channel stopped" in capsys.readouterr().err
    assert engine.containers == {} and engine.networks == {}


def test_unknown_docker_option_is_an_error(engine, capsys):
    stop = threading.Event()
    stop.set()  # should it start anyway, return at once
    rc = docker_stack.up(types.SimpleNamespace(port=8000, model=None, extra=["--docker-gpu"]), stop=stop)
    assert rc == 1 and "unrecognised arguments: --docker-gpu" in capsys.readouterr().err  # no abbreviations
    assert not engine.calls_to("POST", "/build")


def test_up_without_engine_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    rc = docker_stack.up(types.SimpleNamespace(port=8000, model="sc-cdm-cpu"))
    assert rc == 1 and "no Docker engine reachable" in capsys.readouterr().err


def test_gpus_default_to_the_cuda_torch_index():
    cfg = docker_stack.config_from_args(types.SimpleNamespace(docker_gpus=True))
    assert cfg.gpus and cfg.torch_index_url == docker_stack.CUDA_TORCH_INDEX
    compose_tx = load_compose(COMPOSE)["services"]["transmitter"]["build"]["args"]["TORCH_INDEX_URL"]
    assert interpolate(compose_tx) == docker_stack.CUDA_TORCH_INDEX
    assert docker_stack.config_from_args(types.SimpleNamespace()).torch_index_url == docker_stack.CPU_TORCH_INDEX


def test_bad_docker_env_is_rejected():
    with pytest.raises(docker_stack.StackError, match="expected KEY=VALUE"):
        docker_stack.config_from_args(types.SimpleNamespace(docker_env=["NOVALUE"]))
    with pytest.raises(docker_stack.StackError, match="unknown service 'modem'"):
        docker_stack.config_from_args(types.SimpleNamespace(docker_env=["modem:A=1"]))


def test_radio_stack_adds_the_flowgraph_container(engine):
    stack = docker_stack.start(docker_stack.connect(), _cfg(radio=True, env={"SCCDM_GR_SNR_DB": "7"}))
    names = engine.build_contexts["sccdm/gnuradio:local"]
    assert "Dockerfile" in names and "flowgraph.py" in names
    cs = _by_name(engine)
    assert set(cs) == {f"sccdm-{s}" for s in SERVICES} | {"sccdm-gnuradio"}
    gr, ch = cs["sccdm-gnuradio"], cs["sccdm-channel"]
    _check_radio_wiring(_env(ch), _env(gr))
    assert _env(gr)["SCCDM_GR_SNR_DB"] == "7" and set(_env(gr)) <= _flowgraph_env_vars() | {"SCCDM_GR_SNR_DB"}
    assert gr["Config"]["Healthcheck"]["Test"][:2] == ["CMD", "/usr/bin/python3"]
    assert gr["NetworkSettings"]["Networks"]["sccdm-backend"]["Aliases"] == ["gnuradio"]
    assert "gnuradio" in stack.endpoints()
    stack.teardown()
    assert engine.containers == {} and engine.networks == {}


def test_use_radio_swaps_a_running_channel_onto_the_flowgraph(engine):
    engine.images["sccdm/gnuradio:local"] = {"Id": "sha256:gr", "Config": {}}  # built earlier, no HEALTHCHECK
    stack = docker_stack.start(docker_stack.connect(), _cfg())
    old_channel = stack.containers["channel"].id
    assert _env(engine.containers[old_channel]).get("SCCDM_CHANNEL_BACKEND") is None
    stack.use_radio(env={"SCCDM_GR_SNR_DB": "10"})
    cs = _by_name(engine)
    assert old_channel not in engine.containers and cs["sccdm-channel"]["Image"] == "sccdm/channel:local"
    _check_radio_wiring(_env(cs["sccdm-channel"]), _env(cs["sccdm-gnuradio"]))
    assert _env(cs["sccdm-gnuradio"])["SCCDM_GR_SNR_DB"] == "10"
    assert cs["sccdm-gnuradio"]["Config"]["Healthcheck"]  # the socket probe, since the image has none
    with pytest.raises(docker_stack.StackError, match="already runs"):
        stack.use_radio()
    stack.teardown()
    assert engine.containers == {} and engine.networks == {}
