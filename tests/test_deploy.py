"""Containers of the networked testbed: Dockerfile, compose, Kubernetes, health probe, Docker SDK runner.

No Docker engine or cluster exists where these run, so:
* the YAML/Dockerfile files are parsed and cross-checked against the code they
  name (service entry points, ports, environment variables, COPY sources);
* the health probe runs against a real gRPC health server and a real HTTP server;
* sccdm.deploy.docker_stack runs against a fake Docker Engine: an HTTP server on a unix
  socket that implements the few Engine API endpoints it uses, keeps their state
  (images, networks, containers, health) and records every request, so the tests
  check what the Docker SDK actually sends. It does not prove a real engine
  builds or runs the images (see deploy/README.md).
"""
from __future__ import annotations

import importlib.util
import io
import json
import re
import shlex
import socketserver
import tarfile
import threading
import time
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")
docker = pytest.importorskip("docker")

from sccdm import healthcheck  # noqa: E402
from sccdm.deploy import docker_stack  # noqa: E402
from sccdm.serving import config as svc_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("transmitter", "channel", "receiver", "gateway")
GRPC = ("transmitter", "channel", "receiver")


# ====================================================================== fake Docker Engine

class FakeEngine:
    """State and request log of a fake Docker Engine (API 1.45).

    health: container name -> list of health states reported by successive
    inspections after start (the last one sticks); exit_on_start: names whose
    container exits right after start; fail_build: targets whose build errors.
    """

    API = "1.45"

    def __init__(self):
        self.lock = threading.Lock()
        self.calls: list[tuple[str, str, dict, object]] = []
        self.images: dict[str, dict] = {}
        self.networks: dict[str, dict] = {}
        self.containers: dict[str, dict] = {}
        self.build_contexts: dict[str, list[str]] = {}
        self.health: dict[str, list[str]] = {}
        self.exit_on_start: set[str] = set()
        self.fail_build: set[str] = set()
        self._n = 0

    def new_id(self) -> str:
        self._n += 1
        return f"{self._n:064x}"

    def find(self, table: dict, ref: str):
        for k, v in table.items():
            if k == ref or k.startswith(ref) or v.get("Name", "").lstrip("/") == ref:
                return k, v
        return None, None

    def calls_to(self, method: str, pattern: str) -> list:
        return [c for c in self.calls if c[0] == method and re.fullmatch(pattern, c[1])]


def _label_match(labels: dict, filters: dict) -> bool:
    for want in filters.get("label", []):
        k, _, v = want.partition("=")
        if k not in labels or (v and labels[k] != v):
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    engine: FakeEngine

    def log_message(self, *a):  # unix-socket peers have no address to log
        pass

    def _send(self, code: int, body=None, ctype="application/json"):
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_chunked(self, parts: list[bytes]):
        """A streamed answer (build progress), chunked as the real engine sends it."""
        self.protocol_version = "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        for part in parts:
            self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self, method: str):
        url = urllib.parse.urlsplit(self.path)
        path = re.sub(r"^/v[0-9.]+", "", url.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        raw = self._body()
        body = raw
        if raw and self.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw)
        e = self.engine
        with e.lock:
            e.calls.append((method, path, q, body if not isinstance(body, bytes) else len(body)))
            return self._dispatch(e, method, path, q, body)

    def _dispatch(self, e: FakeEngine, method, path, q, body):
        if path == "/_ping":
            return self._send(200, b"OK", "text/plain")
        if path == "/version":
            return self._send(200, {"ApiVersion": e.API, "MinAPIVersion": "1.24", "Version": "27.0.0-fake"})
        if method == "POST" and path == "/build":
            names = tarfile.open(fileobj=io.BytesIO(body)).getnames()
            target, tag = q.get("target", ""), q.get("t", "")
            e.build_contexts[tag] = names
            if q.get("dockerfile", "Dockerfile") not in names:
                lines = [{"error": f"Cannot locate specified Dockerfile: {q.get('dockerfile')}"}]
            elif target in e.fail_build:
                lines = [{"stream": "Step 1/9 : FROM python\n"}, {"error": "The command '/bin/sh -c pip' returned a non-zero code: 1"}]
            else:
                iid = "sha256:" + e.new_id()
                e.images[tag] = {"Id": iid, "RepoTags": [tag], "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "x"]}},
                                 "Labels": json.loads(q.get("labels", "{}"))}
                lines = [{"stream": f"Step 1/9 : FROM python (target {target})\n"}, {"aux": {"ID": iid}},
                         {"stream": f"Successfully tagged {tag}\n"}]
            return self._send_chunked([json.dumps(x).encode() + b"\r\n" for x in lines])
        m = re.fullmatch(r"/images/(.+)/json", path)
        if m and method == "GET":
            name = urllib.parse.unquote(m.group(1))
            img = e.images.get(name)
            return self._send(200, img) if img else self._send(404, {"message": f"No such image: {name}"})
        if path == "/networks/create" and method == "POST":
            if any(n["Name"] == body["Name"] for n in e.networks.values()):
                return self._send(409, {"message": f"network with name {body['Name']} already exists"})
            nid = e.new_id()
            e.networks[nid] = {"Id": nid, "Name": body["Name"], "Driver": body.get("Driver", "bridge"),
                               "Internal": bool(body.get("Internal")), "Labels": body.get("Labels") or {},
                               "Containers": {}}
            return self._send(201, {"Id": nid, "Warning": ""})
        if path == "/networks" and method == "GET":
            flt = json.loads(q.get("filters", "{}"))
            return self._send(200, [n for n in e.networks.values() if _label_match(n["Labels"], flt)])
        m = re.fullmatch(r"/networks/([^/]+)(/connect)?", path)
        if m:
            nid, net = e.find(e.networks, m.group(1))
            if net is None:
                return self._send(404, {"message": "network not found"})
            if method == "GET":
                return self._send(200, net)
            if method == "POST" and m.group(2):
                cid, c = e.find(e.containers, body["Container"])
                net["Containers"][cid] = {"Aliases": (body.get("EndpointConfig") or {}).get("Aliases")}
                c["NetworkSettings"]["Networks"][net["Name"]] = body.get("EndpointConfig") or {}
                return self._send(200, b"")
            if method == "DELETE":
                if net["Containers"]:
                    return self._send(403, {"message": f"error while removing network: network {net['Name']} "
                                                      "has active endpoints"})
                del e.networks[nid]
                return self._send(204)
        if path == "/containers/create" and method == "POST":
            name = q.get("name")
            if any(c["Name"] == "/" + name for c in e.containers.values()):
                return self._send(409, {"message": f'Conflict. The container name "/{name}" is already in use'})
            image = e.images.get(body["Image"])
            if image is None and "/" in body["Image"] and not body["Image"].startswith("sccdm"):
                image = {"Config": {}}  # a foreign image without HEALTHCHECK (e.g. a radio channel)
            if image is None:
                return self._send(404, {"message": f"No such image: {body['Image']}"})
            cid = e.new_id()
            nets = {}
            for net_name, ep in ((body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}).items():
                _, net = e.find(e.networks, net_name)
                if net is None:
                    return self._send(404, {"message": f"network {net_name} not found"})
                net["Containers"][cid] = {"Aliases": (ep or {}).get("Aliases")}
                nets[net_name] = ep or {}
            e.containers[cid] = {"Id": cid, "Name": "/" + name, "Image": body["Image"], "Config": {
                "Image": body["Image"], "Env": body.get("Env") or [], "Labels": body.get("Labels") or {},
                "Hostname": body.get("Hostname"), "Tty": False, "Healthcheck": body.get("Healthcheck")},
                "HostConfig": body.get("HostConfig") or {}, "NetworkSettings": {"Networks": nets},
                "State": {"Status": "created", "Running": False, "ExitCode": 0},
                "_healthcheck": bool(body.get("Healthcheck") or image.get("Config", {}).get("Healthcheck")),
                "_inspections": 0}
            return self._send(201, {"Id": cid, "Warnings": []})
        if path == "/containers/json" and method == "GET":
            flt = json.loads(q.get("filters", "{}"))
            return self._send(200, [{"Id": c["Id"], "Names": [c["Name"]], "Labels": c["Config"]["Labels"]}
                                    for c in e.containers.values() if _label_match(c["Config"]["Labels"], flt)])
        m = re.fullmatch(r"/containers/([^/]+)(?:/(json|start|stop|logs))?", path)
        if m:
            cid, c = e.find(e.containers, m.group(1))
            if c is None:
                return self._send(404, {"message": f"No such container: {m.group(1)}"})
            op, name = m.group(2), c["Name"].lstrip("/")
            if op == "json":
                st = c["State"]
                if st["Status"] == "running" and c["_healthcheck"]:
                    seq = e.health.get(name, ["healthy"])
                    st["Health"] = {"Status": seq[min(c["_inspections"], len(seq) - 1)]}
                    c["_inspections"] += 1
                return self._send(200, {k: v for k, v in c.items() if not k.startswith("_")})
            if op == "start":
                c["State"].update(Status="running", Running=True)
                c["NetworkSettings"]["Ports"] = {  # port 0 / "" = the engine picks one
                    port: [{"HostIp": b.get("HostIp", ""), "HostPort": b.get("HostPort") not in (None, "", "0")
                            and b["HostPort"] or str(32768 + e._n)} for b in binds]
                    for port, binds in (c["HostConfig"].get("PortBindings") or {}).items()}
                if c["_healthcheck"]:
                    c["State"]["Health"] = {"Status": "starting"}
                if name in e.exit_on_start:
                    c["State"].update(Status="exited", Running=False, ExitCode=1)
                return self._send(204)
            if op == "stop":
                c["State"].update(Status="exited", Running=False)
                return self._send(204)
            if op == "logs":
                text = f"{name}: loading model\n{name}: start-up failed\n".encode()
                return self._send(200, b"\x01\x00\x00\x00" + len(text).to_bytes(4, "big") + text,
                                  "application/vnd.docker.raw-stream")
            if method == "DELETE":
                if c["State"]["Running"] and q.get("force") not in ("True", "true", "1"):
                    return self._send(409, {"message": "cannot remove a running container; stop it first"})
                for net in e.networks.values():
                    net["Containers"].pop(cid, None)
                del e.containers[cid]
                return self._send(204)
        return self._send(404, {"message": f"fake engine: no route {method} {path}"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")


@pytest.fixture
def engine(tmp_path, monkeypatch):
    """A fake Docker Engine on a unix socket, with DOCKER_HOST pointing at it."""
    eng = FakeEngine()
    handler = type("H", (_Handler,), {"engine": eng})
    import tempfile
    sock = Path(tempfile.mkdtemp(prefix="fakedocker-", dir="/tmp")) / "docker.sock"  # short: AF_UNIX paths <= 107 bytes
    class Server(socketserver.ThreadingUnixStreamServer):
        def handle_error(self, request, client_address):  # a client that hung up mid-stream is no news
            import sys
            if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                super().handle_error(request, client_address)

    server = Server(str(sock), handler)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    for var in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    yield eng
    server.shutdown()
    server.server_close()
    sock.unlink(missing_ok=True)
    sock.parent.rmdir()


def _cfg(**kw) -> docker_stack.StackConfig:
    kw.setdefault("poll_s", 0.01)
    kw.setdefault("health_timeout_s", 10)
    return docker_stack.StackConfig(**kw)


def _env(container: dict) -> dict:
    return dict(x.split("=", 1) for x in container["Config"]["Env"])


def _by_name(engine: FakeEngine) -> dict:
    return {c["Name"].lstrip("/"): c for c in engine.containers.values()}


# ====================================================================== docker_stack against the fake engine

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


# ====================================================================== the files themselves

DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_CPU = ROOT / "docker-compose.cpu.yml"
K8S = ROOT / "deploy/k8s"
# compose-file interpolation knobs (${VAR:-default}): read by Compose, never by the code
COMPOSE_ONLY = {"SCCDM_TAG", "SCCDM_TORCH_INDEX_URL", "SCCDM_PUBLISH_ADDR", "SCCDM_GATEWAY_PORT"}


class Reset:
    """Compose's ``!reset`` tag: remove the value from the merged model."""


class ComposeLoader(yaml.SafeLoader):
    pass


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())


def load_compose(path: Path) -> dict:
    return yaml.load(path.read_text(), Loader=ComposeLoader)


def compose_merge(base, over):
    """Compose's merge rules (mappings merge, sequences append, ``!reset`` removes)."""
    if isinstance(over, Reset):
        return None
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            merged = compose_merge(base.get(k), v) if k in base else (None if isinstance(v, Reset) else v)
            if merged is None and isinstance(v, Reset):
                out.pop(k, None)
            else:
                out[k] = merged
        return out
    if isinstance(base, list) and isinstance(over, list):
        return base + [x for x in over if x not in base]
    return over


_INTERP = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value) -> str:
    """Compose's ${VAR:-default} with an empty shell environment."""
    return _INTERP.sub(lambda m: m.group(2) or "", str(value))


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """{stage name: [(instruction, arguments)]}, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages, cur = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
            cur = m.group(2) or f"stage{len(stages)}"
            stages[cur] = [("FROM", m.group(1))]
        elif cur is not None:
            stages[cur].append((instr, rest.strip()))
        else:
            stages.setdefault("_global", []).append((instr, rest.strip()))
    return stages


def _dockerfile_env(stage) -> dict:
    env = {}
    for instr, rest in stage:
        if instr == "ENV":
            for k, v in re.findall(r"(\w+)=(\S+)", rest):
                env[k] = v
    return env


def code_env_vars() -> set[str]:
    """SCCDM_* names the services' code mentions (what they can read), excluding the deploy modules."""
    names = set()
    for pkg in ("sccdm", *SERVICES):
        for f in (ROOT / pkg).rglob("*.py"):
            if f.name in ("docker_stack.py", "healthcheck.py"):
                continue
            names |= set(re.findall(r"SCCDM_[A-Z0-9_]*[A-Z0-9]", f.read_text()))
    return names


def test_dockerfile_has_a_target_per_service_matching_the_code():
    stages = dockerfile_stages()
    runtime = dict(stages["runtime"])
    assert re.fullmatch(r"(\d+):\1", runtime["USER"]) and runtime["USER"] != "0:0"  # numeric, non-root
    for svc in SERVICES:
        st = stages[svc]
        assert st[0] == ("FROM", "runtime")
        env = _dockerfile_env(st)
        assert int(env["SCCDM_PORT"]) == svc_config.DEFAULT_PORTS[svc]
        exposed = {int(p) for instr, rest in st if instr == "EXPOSE" for p in rest.split()}
        want = {svc_config.DEFAULT_PORTS[svc]} | ({svc_config.DEFAULT_METRICS_PORTS[svc]} if svc in GRPC else set())
        assert exposed == want
        if svc in GRPC:
            assert int(env["SCCDM_METRICS_PORT"]) == svc_config.DEFAULT_METRICS_PORTS[svc]
        cmd = json.loads(dict(st)["CMD"])
        assert cmd == ["python", "-m", svc] and importlib.util.find_spec(f"{svc}.__main__") is not None
        hc = dict(st)["HEALTHCHECK"]
        probe = shlex.split(hc.split(" CMD ", 1)[1])
        assert probe[:3] == ["python", "-m", "sccdm.healthcheck"]
        target = probe[3]
        assert target == ("http://127.0.0.1:${SCCDM_PORT}/readyz" if svc == "gateway" else "127.0.0.1:${SCCDM_PORT}")


def test_dockerfile_build_stage_copies_what_exists_and_pins_versions():
    stages = dockerfile_stages()
    base = dict(stages["_global"])["ARG"]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", base)
    build = stages["build"]
    copies = [rest.split() for instr, rest in build if instr == "COPY"]
    assert copies, "the build stage copies the project"
    for args in copies:
        assert not any(a.startswith("--") for a in args)  # no --link etc: classic builder
        for src in args[:-1]:
            assert (ROOT / src).exists(), f"COPY source {src} does not exist"
    copied = {a[0] for a in copies}
    assert {"pyproject.toml", "sccdm", *SERVICES} <= copied
    # every package pyproject installs is copied
    pyproject = (ROOT / "pyproject.toml").read_text()
    include = re.search(r"include\s*=\s*\[([^\]]*)\]", pyproject).group(1)
    for pat in re.findall(r'"([\w]+)\*"', include):
        assert pat in copied, f"pyproject packages {pat}* but the Dockerfile does not COPY it"
    torch_pin = re.search(r'"torch==([^"]+)"', pyproject).group(1)
    args = dict(a.split("=", 1) for instr, a in build if instr == "ARG" and "=" in a)
    assert args["TORCH_VERSION"] == torch_pin
    assert args["TORCH_INDEX_URL"] == docker_stack.CPU_TORCH_INDEX
    code = "\n".join(ln for ln in DOCKERFILE.read_text().splitlines() if not ln.lstrip().startswith("#"))
    assert "--mount" not in code and "<<" not in code  # BuildKit-only syntax breaks docker-py builds
    # the step that lists the dependencies, run on the real pyproject.toml: valid requirements, torch pinned
    import subprocess
    import sys
    from packaging.requirements import Requirement
    req_step = next(r for i, r in build if i == "RUN" and "tomllib" in r)
    cmd = req_step.split(" > /tmp/requirements.txt")[0].replace("/src/pyproject.toml", str(ROOT / "pyproject.toml"))
    out = subprocess.run(cmd.replace("python -c", f"{shlex.quote(sys.executable)} -c", 1), shell=True,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    reqs = [Requirement(line) for line in out.stdout.split()]
    names = {r.name.lower() for r in reqs}
    assert {"torch", "grpcio", "grpcio-health-checking", "fastapi", "uvicorn", "pyzmq", "docker"} <= names
    assert str(next(r for r in reqs if r.name == "torch").specifier) == f"=={torch_pin}"


def test_dockerignore_keeps_the_context_small_but_complete():
    from docker.utils.build import exclude_paths
    pats = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    files = exclude_paths(str(ROOT), pats, dockerfile="deploy/docker/Dockerfile")
    tops = {f.split("/")[0] for f in files}
    assert tops <= {"pyproject.toml", "sccdm", *SERVICES, "deploy", ".dockerignore"}
    assert {"pyproject.toml", "sccdm", *SERVICES} <= tops
    assert "deploy/docker/Dockerfile" in files
    assert "sccdm/zoo/registry.json" in files and any(f.endswith(".safetensors") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    for svc in SERVICES:
        assert f"{svc}/__main__.py" in files


def test_compose_services_ports_health_and_env_match_the_code():
    c = load_compose(COMPOSE)
    svcs = c["services"]
    assert {s for s in svcs if "profiles" not in svcs[s]} == set(SERVICES)
    assert c["networks"]["backend"]["internal"] is True
    names = code_env_vars()
    for s in SERVICES:
        d = svcs[s]
        assert d["build"]["target"] == s and (ROOT / d["build"]["dockerfile"]).exists()
        assert d["build"]["context"] == "."
        assert interpolate(d["image"]) == f"sccdm/{s}:0.1.0"
        env = {k: interpolate(v) for k, v in d["environment"].items()}
        for k in env:
            assert k in names, f"compose sets {k} for {s} but no code reads it"
        cfg = svc_config.ServiceConfig.from_env(s, env)  # the values parse as the service would
        assert cfg.port == svc_config.DEFAULT_PORTS[s]
        assert cfg.metrics_port == svc_config.DEFAULT_METRICS_PORTS.get(s, 0)
        expected_probe = ["CMD", "python", "-m", "sccdm.healthcheck",
                          f"http://127.0.0.1:{cfg.port}/readyz" if s == "gateway" else f"127.0.0.1:{cfg.port}"]
        assert d["healthcheck"]["test"] == expected_probe
        assert d["init"] is True
        if s in GRPC:
            assert {int(p) for p in d["expose"]} == {cfg.port, cfg.metrics_port} | ({5555} if s == "channel" else set())
            assert d["networks"] == ["backend"] and "ports" not in d
        gpu = (((d.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        if s in ("transmitter", "receiver"):
            assert gpu == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
        else:
            assert not gpu
    gw = svcs["gateway"]
    assert set(gw["networks"]) == {"backend", "frontend"}
    assert [interpolate(p) for p in gw["ports"]] == ["127.0.0.1:8000:8000"]
    assert gw["depends_on"] == {s: {"condition": "service_healthy"} for s in GRPC}
    env = gw["environment"]
    for key, s in (("SCCDM_TX_ADDR", "transmitter"), ("SCCDM_CHANNEL_ADDR", "channel"), ("SCCDM_RX_ADDR", "receiver")):
        assert env[key] == f"{s}:{svcs[s]['environment']['SCCDM_PORT']}"


def test_compose_cpu_override_drops_gpus():
    merged = compose_merge(load_compose(COMPOSE), load_compose(COMPOSE_CPU))
    for s in ("transmitter", "receiver"):
        d = merged["services"][s]
        assert not d["deploy"]["resources"]["reservations"].get("devices")
        assert d["environment"]["SCCDM_DEVICE"] == "cpu"
        assert interpolate(d["build"]["args"]["TORCH_INDEX_URL"]) == docker_stack.CPU_TORCH_INDEX
        assert d["build"]["target"] == s  # the override keeps the rest of the build
        assert interpolate(d["image"]) == f"sccdm/{s}:0.1.0-cpu"
        assert d["environment"]["SCCDM_PORT"] == str(svc_config.DEFAULT_PORTS[s])
    base = load_compose(COMPOSE)["services"]
    assert merged["services"]["gateway"] == base["gateway"] and merged["services"]["channel"] == base["channel"]


def _k8s_docs(folder: Path) -> list[dict]:
    docs = []
    for f in sorted(folder.glob("*.yaml")):
        if f.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return docs


def test_k8s_deployments_services_and_probes_match_the_code():
    docs = _k8s_docs(K8S / "base")
    kust = yaml.safe_load((K8S / "base/kustomization.yaml").read_text())
    for r in kust["resources"]:
        assert (K8S / "base" / r).exists()
    assert {f.name for f in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"} == set(kust["resources"])
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert set(deps) == set(services) == set(SERVICES)
    names = code_env_vars()
    uid = int(dict(dockerfile_stages()["runtime"])["USER"].split(":")[0])
    for s in SERVICES:
        spec = deps[s]["spec"]
        pod = spec["template"]["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        assert services[s]["spec"]["selector"] == spec["selector"]["matchLabels"]
        assert pod["securityContext"]["runAsUser"] == uid and pod["securityContext"]["runAsNonRoot"] is True
        (ctr,) = pod["containers"]
        assert ctr["image"] == f"sccdm/{s}:0.1.0" and ctr["command"] == ["python", "-m", s]
        env = dict(config["data"])
        env.update({e["name"]: e["value"] for e in ctr["env"]})
        for k in env:
            assert k in names or k == "HOME", f"k8s sets {k} for {s} but no code reads it"
        cfg = svc_config.ServiceConfig.from_env(s, env)
        ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
        svc_ports = {p["name"]: p for p in services[s]["spec"]["ports"]}
        gpu = ctr["resources"].get("limits", {}).get("nvidia.com/gpu")
        assert gpu == (1 if s in ("transmitter", "receiver") else None)
        if s in GRPC:
            assert ports == {"grpc": cfg.port, "metrics": cfg.metrics_port}
            assert cfg.port == svc_config.DEFAULT_PORTS[s] and cfg.metrics_port == svc_config.DEFAULT_METRICS_PORTS[s]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert ctr[probe]["grpc"]["port"] == cfg.port and ctr[probe]["grpc"].get("service", "") == ""
            assert svc_ports["grpc"]["port"] == cfg.port and svc_ports["grpc"]["targetPort"] == "grpc"
            assert services[s]["spec"]["clusterIP"] == "None"  # headless: gRPC clients see every replica
        else:
            assert ports == {"http": cfg.port == 8000 and 8000}
            assert ctr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
            assert ctr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
            for key, target in (("SCCDM_TX_ADDR", "transmitter"), ("SCCDM_CHANNEL_ADDR", "channel"),
                                ("SCCDM_RX_ADDR", "receiver")):
                assert env[key] == f"dns:///{target}:{svc_config.DEFAULT_PORTS[target]}"
                assert any(p["port"] == svc_config.DEFAULT_PORTS[target] for p in services[target]["spec"]["ports"])
    assert deps["channel"]["spec"]["replicas"] >= 2 and deps["gateway"]["spec"]["replicas"] >= 2


def _kubectl() -> str:
    import shutil
    import subprocess
    exe = shutil.which("kubectl")
    if exe is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    try:
        subprocess.run([exe, "kustomize", "--help"], capture_output=True, timeout=20, check=True)
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"kubectl kustomize does not run here: {e}")
    return exe


@pytest.mark.parametrize("overlay", ["", "cpu"])
def test_kustomize_renders_gpu_and_cpu_variants(overlay):
    import subprocess
    exe = _kubectl()
    out = subprocess.run([exe, "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    deps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deps) == set(SERVICES)
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "sccdm"
    for s in ("transmitter", "receiver"):
        (ctr,) = deps[s]["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in ctr["env"]}
        if overlay == "cpu":
            assert "nvidia.com/gpu" not in ctr["resources"]["limits"] and env["SCCDM_DEVICE"] == "cpu"
            assert ctr["image"] == f"sccdm/{s}:0.1.0-cpu" and deps[s]["spec"]["replicas"] == 2
        else:
            assert ctr["resources"]["limits"]["nvidia.com/gpu"] == 1 and env["SCCDM_DEVICE"] == "auto"
            assert ctr["image"] == f"sccdm/{s}:0.1.0"
        assert len(ctr["env"]) == len(env)  # the patch merged by name, no duplicate SCCDM_DEVICE


def _flowgraph_env_vars() -> set[str]:
    text = (ROOT / "deploy/gnuradio/flowgraph.py").read_text()
    return {"SCCDM_GR_" + n for n in re.findall(r'_env\("(\w+)"', text)}


def _zmq_endpoint(addr: str) -> tuple[str, int]:
    m = re.fullmatch(r"tcp://([^:]+):(\d+)", addr)
    assert m, addr
    return m.group(1), int(m.group(2))


def _check_radio_wiring(channel_env: dict, radio_env: dict) -> None:
    """channel binds SCCDM_ZMQ_TX, the flowgraph connects to it; the flowgraph binds its sink, channel connects."""
    assert channel_env["SCCDM_CHANNEL_BACKEND"] == "zmq" or channel_env["SCCDM_CHANNEL_BACKEND"].startswith("${")
    host, tx_port = _zmq_endpoint(channel_env["SCCDM_ZMQ_TX"])
    assert host == "0.0.0.0"
    assert _zmq_endpoint(radio_env["SCCDM_GR_TX"]) == ("channel", tx_port)
    host, rx_port = _zmq_endpoint(radio_env["SCCDM_GR_RX"])
    assert host == "0.0.0.0"
    assert _zmq_endpoint(channel_env["SCCDM_ZMQ_RX"]) == ("gnuradio", rx_port)


def test_compose_radio_profile_wires_channel_and_flowgraph():
    svcs = load_compose(COMPOSE)["services"]
    gr, ch = svcs["gnuradio"], svcs["channel"]
    assert gr["profiles"] == ["radio"] and (ROOT / gr["build"]["context"] / "Dockerfile").exists()
    assert set(gr["environment"]) <= _flowgraph_env_vars()
    for k in ("SCCDM_ZMQ_TX", "SCCDM_ZMQ_RX"):
        assert k in code_env_vars()
    channel_env = {k: interpolate(v) for k, v in ch["environment"].items()}
    channel_env["SCCDM_CHANNEL_BACKEND"] = "zmq"  # what `SCCDM_CHANNEL_BACKEND=zmq docker compose --profile radio up` gives
    _check_radio_wiring(channel_env, {k: interpolate(v) for k, v in gr["environment"].items()})
    assert ch["depends_on"]["gnuradio"] == {"condition": "service_healthy", "required": False}
    assert gr["healthcheck"]["test"][-1].endswith("('127.0.0.1', 5556), 2).close()")
    assert gr["networks"] == ["backend"] and "ports" not in gr
    assert "5555" in ch["expose"]


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


# ====================================================================== the health probe, for real

def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthcheck_grpc_follows_the_health_service():
    import grpc
    from concurrent import futures
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        target = f"127.0.0.1:{port}"
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert healthcheck.check(target) == (False, "NOT_SERVING")
        assert healthcheck.main([target]) == 1
        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        assert healthcheck.check(target) == (True, "SERVING")
        assert healthcheck.main([target]) == 0
        ok, status = healthcheck.check(target, service="sccdm.v1.Nothing")
        assert not ok and status.startswith("NOT_FOUND")
    finally:
        server.stop(0)
    t0 = time.monotonic()
    ok, status = healthcheck.check(f"127.0.0.1:{_free_port()}", timeout=1.0)
    assert not ok and status.startswith("UNAVAILABLE") and time.monotonic() - t0 < 5


def test_healthcheck_starts_without_torch():
    """It runs every 10 s in every container: it must not pull in torch (seconds of start-up)."""
    import subprocess
    import sys
    code = "import sys, sccdm.healthcheck as h; h.check('127.0.0.1:1', timeout=0.2); print(sorted(m for m in ('torch', 'numpy', 'fastapi') if m in sys.modules))"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


def test_healthcheck_http_needs_a_2xx():
    from http.server import HTTPServer

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            code = 200 if self.path == "/readyz" else 503
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = HTTPServer(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    th.start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}"
        assert healthcheck.check(f"{base}/readyz") == (True, "HTTP 200")
        assert healthcheck.check(f"{base}/other") == (False, "HTTP 503")
    finally:
        srv.shutdown()
        srv.server_close()
    ok, status = healthcheck.check(f"http://127.0.0.1:{_free_port()}/readyz", timeout=1.0)
    assert not ok and status.startswith("unreachable")


def test_container_commands_run_as_the_images_run_them(tmp_path):
    """`python -m channel` and `python -m gateway` with the Dockerfile's environment, probed by the HEALTHCHECK command.

    The channel comes up SERVING and exits 0 on SIGTERM (what `docker stop` sends);
    the gateway is alive (/healthz) but not ready (/readyz) while transmitter and
    receiver are missing, which is what keeps compose's depends_on honest.
    """
    import os
    import signal
    import subprocess
    import sys

    stages = dockerfile_stages()
    base_env = {k: v for k, v in _dockerfile_env(stages["runtime"]).items() if k.startswith("SCCDM_")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCCDM_")}
    ch_port, gw_port = _free_port(), _free_port()
    ch_env = {**env, **base_env, **_dockerfile_env(stages["channel"]), "SCCDM_HOST": "127.0.0.1",
              "SCCDM_PORT": str(ch_port), "SCCDM_METRICS_PORT": "0", "SCCDM_DEVICE": "cpu"}
    gw_env = {**env, **base_env, **_dockerfile_env(stages["gateway"]), "SCCDM_HOST": "127.0.0.1",
              "SCCDM_PORT": str(gw_port), "SCCDM_DEVICE": "cpu", "SCCDM_CHANNEL_ADDR": f"127.0.0.1:{ch_port}",
              "SCCDM_TX_ADDR": f"127.0.0.1:{_free_port()}", "SCCDM_RX_ADDR": f"127.0.0.1:{_free_port()}"}
    assert ch_env["SCCDM_CHANNEL_BACKEND"] == "emulated"

    # cwd: the repository (an editable install made before the service packages existed maps only sccdm)
    def probe(target, env):
        return subprocess.run([sys.executable, "-m", "sccdm.healthcheck", target], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=30)

    def cmd(stage):
        return json.loads(dict(stages[stage])["CMD"])

    py = lambda argv: [sys.executable] + argv[1:]  # the image's `python` is the venv's
    logs = {n: open(tmp_path / f"{n}.log", "w") for n in ("channel", "gateway")}
    ch = subprocess.Popen(py(cmd("channel")), env=ch_env, cwd=ROOT, stdout=logs["channel"], stderr=subprocess.STDOUT)
    gw = subprocess.Popen(py(cmd("gateway")), env=gw_env, cwd=ROOT, stdout=logs["gateway"], stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300  # generous: a loaded 2-core CI box starts torch slowly
        # poll in-process (cheap); then run the exact HEALTHCHECK command once per verdict
        while time.monotonic() < deadline and ch.poll() is None and not healthcheck.check(f"127.0.0.1:{ch_port}")[0]:
            time.sleep(0.3)
        res = probe(f"127.0.0.1:{ch_port}", env)
        assert res.returncode == 0 and "SERVING" in res.stdout, (res.stdout, (tmp_path / "channel.log").read_text())
        while (time.monotonic() < deadline and gw.poll() is None
               and not healthcheck.check(f"http://127.0.0.1:{gw_port}/healthz")[0]):
            time.sleep(0.3)
        assert healthcheck.check(f"http://127.0.0.1:{gw_port}/healthz") == (True, "HTTP 200"), \
            (tmp_path / "gateway.log").read_text()
        ready = probe(f"http://127.0.0.1:{gw_port}/readyz", env)
        assert ready.returncode == 1 and "HTTP 503" in ready.stdout, (tmp_path / "gateway.log").read_text()
        ch.send_signal(signal.SIGTERM)
        assert ch.wait(30) == 0
        assert not healthcheck.check(f"127.0.0.1:{ch_port}", timeout=1.0)[0]
        gw.send_signal(signal.SIGTERM)
        assert gw.wait(30) == 0
    finally:
        for p in (ch, gw):
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs.values():
            f.close()


def test_the_image_install_carries_the_model_weights(tmp_path):
    """Build the wheel `pip install /src` builds in the image, from the exact Docker build context.

    The services load their weights from the installed package (sccdm.zoo), so the
    wheel must carry registry.json and every file it names; the Dockerfile's build
    step fails on the same condition, here it is caught without an engine.
    """
    import posixpath
    import shutil
    import subprocess
    import sys
    import zipfile
    from docker.utils.build import exclude_paths

    pats = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]
    src = tmp_path / "src"
    for rel in exclude_paths(str(ROOT), pats, dockerfile="deploy/docker/Dockerfile"):
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path / "dist"
    out.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    res = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for svc in SERVICES:
        assert f"{svc}/__main__.py" in names
    assert {"sccdm/healthcheck.py", "sccdm/rpc/sccdm_pb2.py", "sccdm/rpc/sccdm_pb2_grpc.py"} <= names
    static = ROOT / "gateway/static"  # the gateway's web page, where it has one
    if static.is_dir():
        for f in static.rglob("*"):
            if f.is_file():
                assert str(f.relative_to(ROOT)) in names, f"the image would lack {f.relative_to(ROOT)}"
    registry = json.loads((ROOT / "sccdm/zoo/registry.json").read_text())
    # a part may name another entry's file ("../sc-cdm-cpu-rate/refiner.safetensors": shared, not copied)
    needed = {"sccdm/zoo/registry.json"} | {posixpath.normpath(f"sccdm/zoo/weights/{model}/{spec[key]}")
                                            for model, e in registry.items() for spec in e["parts"].values()
                                            for key in ("file", "config")}
    missing = sorted(needed - names)
    assert not missing, (f"the installed package (and so every image) lacks {missing}: "
                         "pyproject.toml [tool.setuptools.package-data] must include "
                         '"zoo/registry.json" and "zoo/weights/*/*"')
    # the image build's own check (last RUN of the build stage), on the unpacked wheel alone
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    check = next(r for i, r in dockerfile_stages()["build"] if i == "RUN" and "sccdm.zoo" in r)
    import os
    env = {**os.environ, "PYTHONPATH": str(site), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    res = subprocess.run(["sh", "-c", check.replace("cd / ", f"cd {shlex.quote(str(tmp_path))} ")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "zoo ok:" in res.stdout, res.stdout + res.stderr[-3000:]
    probe = ("import sccdm, transmitter, gateway; "
             f"assert all(m.__file__.startswith({str(site)!r}) for m in (sccdm, transmitter, gateway))")
    assert subprocess.run([sys.executable, "-c", probe], env=env, cwd=tmp_path, timeout=120).returncode == 0


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


# ====================================================================== a real engine, where there is one
#
# .ci/run calls deploy/engine.sh first (installs and starts dockerd, the compose plugin, a
# local base image); these skip only when no engine answers, and say why.

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
