"""The networked testbed's deployment files, checked without a Docker engine or cluster.

* The Dockerfile, .dockerignore, compose files and Kubernetes manifests (and their
  kustomize overlays) are parsed and cross-checked against the code they name: service
  entry points, ports, environment variables, COPY sources, the radio profile's ZeroMQ
  wiring.
* The health probe (sccdm.healthcheck) runs against a real gRPC health server and a
  real HTTP server; the channel and gateway run with the images' CMD and environment.
* The wheel the image installs is built from the Docker build context and must carry
  the model weights.

The paths, the readers of these files (load_compose, interpolate, dockerfile_stages,
...) and _free_port are shared with test_deploy.py and test_deploy_sdk.py.
"""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
import threading
import time
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
    # a part may name another entry's file ("../sc-cdm-cpu/refiner.safetensors": shared, not copied)
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
