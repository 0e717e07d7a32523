"""A fake Docker Engine for the tests of sccdm.deploy.docker_stack (tests/test_deploy_sdk.py).

An HTTP server on a unix socket that implements the few Engine API (1.45) endpoints
docker_stack uses: ping and version, build, image inspect, networks (create, list,
inspect, connect, remove) and containers (create, list, inspect, start, stop, logs,
remove). It keeps their state (images, networks, containers, health) and records
every request, so the tests check what the Docker SDK actually sends. It does not
prove a real engine builds or runs the images (tests/test_deploy.py does, where
there is one).

Standard library only; `serve()` runs one on a fresh socket.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import socketserver
import sys
import tarfile
import tempfile
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Iterator


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
    """One request to the fake engine (the subclass serve() makes sets `engine`).

    Each resource method answers the requests it recognises and returns True (what
    _send and _send_chunked return), or returns False to let the next one try.
    """

    protocol_version = "HTTP/1.0"
    engine: FakeEngine

    def log_message(self, *a):  # unix-socket peers have no address to log
        pass

    def _send(self, code: int, body=None, ctype="application/json") -> bool:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return True

    def _send_chunked(self, parts: list[bytes]) -> bool:
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
        return True

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
        for resource in (self._system, self._build, self._image, self._networks, self._network,
                         self._container_create, self._container_list, self._container):
            if resource(e, method, path, q, body):
                return
        self._send(404, {"message": f"fake engine: no route {method} {path}"})

    # ------------------------------------------------------------------ resources

    def _system(self, e: FakeEngine, method, path, q, body) -> bool:
        """/_ping and /version (any method)."""
        if path == "/_ping":
            return self._send(200, b"OK", "text/plain")
        if path == "/version":
            return self._send(200, {"ApiVersion": e.API, "MinAPIVersion": "1.24", "Version": "27.0.0-fake"})
        return False

    def _build(self, e: FakeEngine, method, path, q, body) -> bool:
        """POST /build: a tar context; tags an image unless the Dockerfile is missing or the target fails."""
        if not (method == "POST" and path == "/build"):
            return False
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

    def _image(self, e: FakeEngine, method, path, q, body) -> bool:
        """GET /images/<name>/json."""
        m = re.fullmatch(r"/images/(.+)/json", path)
        if not (m and method == "GET"):
            return False
        name = urllib.parse.unquote(m.group(1))
        img = e.images.get(name)
        return self._send(200, img) if img else self._send(404, {"message": f"No such image: {name}"})

    def _networks(self, e: FakeEngine, method, path, q, body) -> bool:
        """POST /networks/create, GET /networks (label filters)."""
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
        return False

    def _network(self, e: FakeEngine, method, path, q, body) -> bool:
        """GET / DELETE /networks/<id or name>, POST /networks/<id or name>/connect."""
        m = re.fullmatch(r"/networks/([^/]+)(/connect)?", path)
        if not m:
            return False
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
        return False

    def _container_create(self, e: FakeEngine, method, path, q, body) -> bool:
        """POST /containers/create?name=...: the image must exist (or be foreign), so must its networks."""
        if not (path == "/containers/create" and method == "POST"):
            return False
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

    def _container_list(self, e: FakeEngine, method, path, q, body) -> bool:
        """GET /containers/json (label filters)."""
        if not (path == "/containers/json" and method == "GET"):
            return False
        flt = json.loads(q.get("filters", "{}"))
        return self._send(200, [{"Id": c["Id"], "Names": [c["Name"]], "Labels": c["Config"]["Labels"]}
                                for c in e.containers.values() if _label_match(c["Config"]["Labels"], flt)])

    def _container(self, e: FakeEngine, method, path, q, body) -> bool:
        """/containers/<id or name>/json, /start, /stop, /logs, and DELETE /containers/<id or name>."""
        m = re.fullmatch(r"/containers/([^/]+)(?:/(json|start|stop|logs))?", path)
        if not m:
            return False
        cid, c = e.find(e.containers, m.group(1))
        if c is None:
            return self._send(404, {"message": f"No such container: {m.group(1)}"})
        op, name = m.group(2), c["Name"].lstrip("/")
        if op == "json":
            return self._container_inspect(e, c, name)
        if op == "start":
            return self._container_start(e, c, name)
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
        return False

    def _container_inspect(self, e: FakeEngine, c: dict, name: str) -> bool:
        """A running container with a health check reports the next state of e.health[name]."""
        st = c["State"]
        if st["Status"] == "running" and c["_healthcheck"]:
            seq = e.health.get(name, ["healthy"])
            st["Health"] = {"Status": seq[min(c["_inspections"], len(seq) - 1)]}
            c["_inspections"] += 1
        return self._send(200, {k: v for k, v in c.items() if not k.startswith("_")})

    def _container_start(self, e: FakeEngine, c: dict, name: str) -> bool:
        """Running, with its ports published; exits at once if its name is in e.exit_on_start."""
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

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up mid-stream is no news
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve() -> Iterator[tuple[FakeEngine, Path]]:
    """A FakeEngine served on a fresh unix socket under /tmp: yields (engine, socket path)."""
    eng = FakeEngine()
    handler = type("H", (_Handler,), {"engine": eng})
    sock = Path(tempfile.mkdtemp(prefix="fakedocker-", dir="/tmp")) / "docker.sock"  # short: AF_UNIX paths <= 107 bytes
    server = _Server(str(sock), handler)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield eng, sock
    finally:
        server.shutdown()
        server.server_close()
        sock.unlink(missing_ok=True)
        sock.parent.rmdir()
