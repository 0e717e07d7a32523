"""The networked testbed as Docker containers, driven by the Docker SDK for Python.

``sccdm stack up --docker`` calls :func:`up`: build the four images from
``deploy/docker/Dockerfile`` (one target per service), create a private network,
start transmitter, channel and receiver, wait until the gRPC health service of each
says SERVING, then start the gateway, print the endpoints and keep running until
Ctrl-C (or SIGTERM), when every container and network it made is removed.

Networks: ``<prefix>-backend`` is ``internal`` (no route out of the host; the
images hold their weights, nothing needs the internet) and carries all gRPC
traffic, each service reachable by its own name (``transmitter:50051``, ...).
Only the gateway also joins ``<prefix>-frontend``, the one network with a
published port (``--docker-publish-host``:``--port`` -> 8000).

``--docker-radio`` adds the GNU Radio flowgraph (``deploy/gnuradio``) as a fifth
container, ``gnuradio``, and starts the channel with its ``zmq`` backend.

:meth:`Stack.swap` replaces one service's container by another image on the same
network name, e.g. the channel service by one of your own::

    stack = start(docker.from_env(), StackConfig(model="sc-cdm-cpu"))
    stack.swap("channel", "me/my-channel:1", {"SCCDM_CHANNEL_BACKEND": "sigmf"})
    stack.use_radio(env={"SCCDM_GR_SNR_DB": "10"})   # flowgraph + channel swapped to zmq, live

The engine is whatever ``DOCKER_HOST`` (or the default socket) points at.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..serving.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = "deploy/docker/Dockerfile"
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_TORCH_INDEX = "https://download.pytorch.org/whl/cu128"  # the compose file's default too
GRPC_SERVICES = ("transmitter", "channel", "receiver")
SERVICES = GRPC_SERVICES + ("gateway",)
GPU_SERVICES = ("transmitter", "receiver")
RADIO = "gnuradio"
RADIO_CONTEXT = "deploy/gnuradio"
# deploy/gnuradio/README.md: the channel's zmq backend BINDS its PUSH socket, the
# flowgraph connects to it; the flowgraph BINDS its push sink, the backend connects.
RADIO_CHANNEL_ENV = {"SCCDM_CHANNEL_BACKEND": "zmq", "SCCDM_ZMQ_TX": "tcp://0.0.0.0:5555",
                     "SCCDM_ZMQ_RX": f"tcp://{RADIO}:5556"}
RADIO_ENV = {"SCCDM_GR_TX": "tcp://channel:5555", "SCCDM_GR_RX": "tcp://0.0.0.0:5556"}
# The flowgraph image has no HEALTHCHECK: healthy once its push sink listens.
RADIO_HEALTHCHECK = {"test": ["CMD", "/usr/bin/python3", "-c",
                              "import socket; socket.create_connection(('127.0.0.1', 5556), 2).close()"],
                     "interval": 5_000_000_000, "timeout": 3_000_000_000, "retries": 3,
                     "start_period": 30_000_000_000}
LABEL = "org.sccdm.stack"

__all__ = ["StackConfig", "Stack", "StackError", "add_arguments", "config_from_args", "start", "up"]


class StackError(RuntimeError):
    """The stack could not be built or started; the message says what to do."""


@dataclass
class StackConfig:
    """What :func:`start` builds and runs.

    env: extra environment for every service (e.g. SCCDM_MAX_BATCH); service_env:
    per-service extras, applied after ``env``. build_args: build arguments of every image
    (PYTHON_IMAGE, TORCH_INDEX_URL for the CPU images, EXTRA_CA_CERTS; DEBIAN_IMAGE for
    the flowgraph), e.g. the ones deploy/engine.sh writes to deploy/docker/engine.env.
    """

    model: str = "sc-cdm-cpu"
    port: int = 8000
    publish_host: str = "127.0.0.1"
    prefix: str = "sccdm"
    tag: str = "local"
    build: bool = True
    gpus: bool = False
    radio: bool = False
    torch_index_url: str = CPU_TORCH_INDEX
    build_args: dict = field(default_factory=dict)
    health_timeout_s: float = 600.0
    poll_s: float = 1.0
    env: dict = field(default_factory=dict)
    service_env: dict = field(default_factory=dict)

    def image(self, service: str) -> str:
        return f"{self.prefix}/{service}:{self.tag}"

    def service_environment(self, service: str) -> dict:
        if service == RADIO:
            return {**RADIO_ENV, **self.env_for_radio(), **self.service_env.get(service, {})}
        if service not in SERVICES:  # another extra container: only what was asked for
            return dict(self.service_env.get(service, {}))
        env = {"SCCDM_HOST": "0.0.0.0", "SCCDM_PORT": str(DEFAULT_PORTS[service]), "SCCDM_MODEL": self.model,
               "SCCDM_DEVICE": "auto" if self.gpus and service in GPU_SERVICES else "cpu"}
        if service in DEFAULT_METRICS_PORTS:
            env["SCCDM_METRICS_PORT"] = str(DEFAULT_METRICS_PORTS[service])
        if service == "channel" and self.radio:
            env.update(RADIO_CHANNEL_ENV)
        if service == "gateway":
            env.update(SCCDM_TX_ADDR=f"transmitter:{DEFAULT_PORTS['transmitter']}",
                       SCCDM_CHANNEL_ADDR=f"channel:{DEFAULT_PORTS['channel']}",
                       SCCDM_RX_ADDR=f"receiver:{DEFAULT_PORTS['receiver']}")
        env.update(self.env)
        env.update(self.service_env.get(service, {}))
        return env

    def env_for_radio(self) -> dict:
        """SCCDM_GR_* of the common ``env`` (so --docker-env SCCDM_GR_SNR_DB=10 reaches the flowgraph)."""
        return {k: v for k, v in self.env.items() if k.startswith("SCCDM_GR_")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--docker-*`` options of ``sccdm stack up --docker`` (``--port``, ``--model`` are the stack's own)."""
    g = parser.add_argument_group("containers (--docker)")
    g.add_argument("--docker-tag", default="local", help="image tag to build and run (default: local)")
    g.add_argument("--docker-prefix", default="sccdm",
                   help="image repository prefix and container/network name prefix (default: sccdm)")
    g.add_argument("--docker-no-build", action="store_true", help="run existing images instead of building them")
    g.add_argument("--docker-gpus", action="store_true",
                   help="give transmitter and receiver all NVIDIA GPUs (needs the NVIDIA container toolkit) "
                        "and build them with --docker-torch-index")
    g.add_argument("--docker-radio", action="store_true",
                   help="run the channel over the GNU Radio flowgraph (deploy/gnuradio) via its zmq backend; "
                        "set the flowgraph with --docker-env gnuradio:SCCDM_GR_SNR_DB=10 etc.")
    g.add_argument("--docker-torch-index", default=None,
                   help=f"pip index of the transmitter's and receiver's torch with --docker-gpus "
                        f"(default: {CUDA_TORCH_INDEX}); without --docker-gpus every image uses {CPU_TORCH_INDEX}")
    g.add_argument("--docker-build-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="build argument of every image (repeatable), e.g. PYTHON_IMAGE=sccdm/python-base:bookworm "
                        "or TORCH_INDEX_URL=local (deploy/engine.sh prints this host's)")
    g.add_argument("--docker-publish-host", default=None,
                   help="host address the gateway port is published on (default: --host, else 127.0.0.1)")
    g.add_argument("--docker-env", action="append", default=[], metavar="[SERVICE:]KEY=VALUE",
                   help="extra environment, for every service or one (repeatable), e.g. SCCDM_MAX_BATCH=32 "
                        "or channel:SCCDM_CHANNEL_BACKEND=emulated_link")
    g.add_argument("--docker-health-timeout", type=float, default=None,
                   help="seconds to wait for the services to report SERVING (default: --ready-timeout, else 600)")
    g.add_argument("--docker-poll", type=float, default=1.0,
                   help="seconds between container health polls (default: 1)")


def _parse_env(items) -> tuple[dict, dict]:
    common, per = {}, {}
    for item in items or []:
        head, eq, value = item.partition("=")
        if not eq or not head:
            raise StackError(f"--docker-env {item!r}: expected KEY=VALUE or SERVICE:KEY=VALUE")
        service, colon, key = head.rpartition(":")
        if colon:
            if service not in SERVICES + (RADIO,):
                raise StackError(f"--docker-env {item!r}: unknown service {service!r}; "
                                 f"one of {', '.join(SERVICES + (RADIO,))}")
            per.setdefault(service, {})[key] = value
        else:
            common[key] = value
    return common, per


def _parse_build_args(items) -> dict:
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise StackError(f"--docker-build-arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _parse_extra(args) -> None:
    """Parse ``--docker-*`` options ``sccdm stack`` left unparsed (in ``args.extra``) into ``args``."""
    extra = list(getattr(args, "extra", None) or [])
    if not extra:
        return
    p = argparse.ArgumentParser(prog="sccdm stack up --docker", add_help=False, allow_abbrev=False)
    add_arguments(p)
    ns, unknown = p.parse_known_args(extra)
    if unknown:
        raise StackError(f"unrecognised arguments: {' '.join(unknown)} (the --docker-* options are: "
                         f"{', '.join(a.option_strings[0] for a in p._actions)})")
    for k, v in vars(ns).items():
        setattr(args, k, v)
    args.extra = []


def config_from_args(args) -> StackConfig:
    """A :class:`StackConfig` from the parsed ``sccdm stack up`` arguments (missing ones take defaults).

    Reads ``port``, ``model``, ``host`` (publish address), ``max_batch``, ``max_wait_ms``,
    ``ready_timeout`` of the stack's own parser and the ``docker_*`` options of
    :func:`add_arguments`, parsing them from ``args.extra`` when the caller left them there.
    """
    _parse_extra(args)
    get = lambda name, default: getattr(args, name, default) if getattr(args, name, None) is not None else default
    common, per = _parse_env(get("docker_env", []))
    for opt, var in (("max_batch", "SCCDM_MAX_BATCH"), ("max_wait_ms", "SCCDM_MAX_WAIT_MS")):
        if get(opt, None) is not None:
            for svc in GPU_SERVICES:  # the batching services
                per.setdefault(svc, {}).setdefault(var, str(get(opt, None)))
    gpus = bool(get("docker_gpus", False))
    return StackConfig(
        model=get("model", "sc-cdm-cpu"), port=int(get("port", 8000)),
        publish_host=get("docker_publish_host", get("host", "127.0.0.1")), prefix=get("docker_prefix", "sccdm"),
        tag=get("docker_tag", "local"), build=not get("docker_no_build", False), gpus=gpus,
        radio=bool(get("docker_radio", False)),
        torch_index_url=get("docker_torch_index", CUDA_TORCH_INDEX if gpus else CPU_TORCH_INDEX),
        build_args=_parse_build_args(get("docker_build_arg", [])),
        health_timeout_s=float(get("docker_health_timeout", get("ready_timeout", 600.0))),
        poll_s=float(get("docker_poll", 1.0)), env=common, service_env=per)


def _say(msg: str) -> None:
    print(f"[docker] {msg}", flush=True)


class Stack:
    """Containers and networks of one running stack; :meth:`teardown` removes them all."""

    def __init__(self, client, cfg: StackConfig):
        self.client, self.cfg = client, cfg
        self.backend = self.frontend = None
        self.containers: dict = {}

    # ------------------------------------------------------------ images
    def build_images(self, services=SERVICES) -> None:
        for svc in services:
            args = {"TORCH_INDEX_URL": CPU_TORCH_INDEX, **self.cfg.build_args}
            args.pop("DEBIAN_IMAGE", None)
            if self.cfg.gpus and svc in GPU_SERVICES:
                args["TORCH_INDEX_URL"] = self.cfg.torch_index_url
            _say(f"building {self.cfg.image(svc)} (target {svc} of {DOCKERFILE})")
            stream = self.client.api.build(path=str(ROOT), dockerfile=DOCKERFILE, target=svc, tag=self.cfg.image(svc),
                                           buildargs=args, rm=True, decode=True, labels={LABEL: self.cfg.prefix})
            self._follow_build(svc, self.cfg.image(svc), stream)
        if self.cfg.radio and RADIO not in services:
            self.build_radio_image()

    @staticmethod
    def _follow_build(name: str, image: str, stream) -> None:
        for chunk in stream:
            if "error" in chunk:
                raise StackError(f"building {image} failed: {chunk['error'].strip()}")
            line = chunk.get("stream", "").rstrip()
            if line:
                print(f"  {name}: {line}", flush=True)

    def build_radio_image(self) -> None:
        image = self.cfg.image(RADIO)
        _say(f"building {image} (from {RADIO_CONTEXT})")
        args = {k: v for k, v in self.cfg.build_args.items() if k == "DEBIAN_IMAGE"}
        stream = self.client.api.build(path=str(ROOT / RADIO_CONTEXT), tag=image, rm=True, decode=True,
                                       buildargs=args or None, labels={LABEL: self.cfg.prefix})
        self._follow_build(RADIO, image, stream)

    def check_images(self) -> None:
        import docker.errors
        for svc in SERVICES + ((RADIO,) if self.cfg.radio else ()):
            try:
                self.client.images.get(self.cfg.image(svc))
            except docker.errors.ImageNotFound:
                how = (f"docker build -t {self.cfg.image(svc)} {RADIO_CONTEXT}" if svc == RADIO else
                       f"docker build -f {DOCKERFILE} --target {svc} -t {self.cfg.image(svc)} .")
                raise StackError(f"image {self.cfg.image(svc)} does not exist; build it (drop --docker-no-build) "
                                 f"or: {how}") from None

    # ------------------------------------------------------------ networks
    def remove_leftovers(self) -> None:
        """Remove containers and networks a previous run of this prefix left behind (e.g. after a kill -9)."""
        flt = {"label": f"{LABEL}={self.cfg.prefix}"}
        for c in self.client.containers.list(all=True, filters=flt):
            _say(f"removing leftover container {c.name}")
            c.remove(force=True)
        for n in self.client.networks.list(filters=flt):
            _say(f"removing leftover network {n.name}")
            n.remove()

    def create_networks(self) -> None:
        labels = {LABEL: self.cfg.prefix}
        self.backend = self.client.networks.create(f"{self.cfg.prefix}-backend", driver="bridge", internal=True,
                                                   labels=labels)
        self.frontend = self.client.networks.create(f"{self.cfg.prefix}-frontend", driver="bridge", labels=labels)

    # ------------------------------------------------------------ containers
    def run_service(self, service: str, image: str | None = None, env: dict | None = None):
        """Create and start ``service``'s container from ``image`` (default: its built image)."""
        from docker.types import DeviceRequest

        kwargs = {}
        if self.cfg.gpus and service in GPU_SERVICES:
            kwargs["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        if service == "gateway":
            kwargs["ports"] = {f"{DEFAULT_PORTS['gateway']}/tcp": (self.cfg.publish_host, self.cfg.port)}
        if service == RADIO:
            kwargs["healthcheck"] = RADIO_HEALTHCHECK
        else:  # as docker-compose.yml's x-hardening
            kwargs.update(read_only=True, tmpfs={"/tmp": "size=64m,mode=1777"}, cap_drop=["ALL"],
                          security_opt=["no-new-privileges:true"])
        environment = self.cfg.service_environment(service)
        environment.update(env or {})
        name = f"{self.cfg.prefix}-{service}"
        container = self.client.containers.create(
            image or self.cfg.image(service), name=name, hostname=service, environment=environment,
            labels={LABEL: self.cfg.prefix, f"{LABEL}.service": service}, init=True, detach=True,
            network=self.backend.name,
            networking_config={self.backend.name: self.client.api.create_endpoint_config(aliases=[service])},
            **kwargs)
        self.containers[service] = container
        if service == "gateway":
            self.frontend.connect(container, aliases=[service])
        container.start()
        _say(f"started {name} ({image or self.cfg.image(service)})")
        return container

    def wait_healthy(self, services) -> None:
        """Poll Docker's health state (the images' HEALTHCHECK) until every service is healthy.

        A container whose image has no HEALTHCHECK counts as ready once running.
        Raises :class:`StackError` with the container's last log lines when one
        exits, turns unhealthy or the timeout passes.
        """
        pending = list(services)
        deadline = time.monotonic() + self.cfg.health_timeout_s
        last = {}
        while pending:
            for svc in list(pending):
                c = self.containers[svc]
                c.reload()
                state = c.attrs.get("State", {})
                health = (state.get("Health") or {}).get("Status")
                status = state.get("Status")
                if status in ("exited", "dead"):
                    raise StackError(f"{c.name} stopped (exit code {state.get('ExitCode')}) before it was healthy; "
                                     f"its last log lines:\n{self._tail(c)}")
                if health == "unhealthy":
                    raise StackError(f"{c.name} is unhealthy; its last log lines:\n{self._tail(c)}")
                if health == "healthy" or (health is None and status == "running"):
                    _say(f"{c.name} is healthy")
                    pending.remove(svc)
                elif last.get(svc) != health:
                    _say(f"{c.name}: {health or status}")
                last[svc] = health
            if pending:
                if time.monotonic() > deadline:
                    raise StackError(f"{', '.join(pending)} not healthy after {self.cfg.health_timeout_s:.0f} s "
                                     "(--docker-health-timeout)")
                time.sleep(self.cfg.poll_s)

    @staticmethod
    def _tail(container, n: int = 30) -> str:
        try:
            return container.logs(tail=n).decode(errors="replace").rstrip()
        except Exception as e:  # the logs are a courtesy; the error being reported matters more
            return f"(logs unavailable: {e})"

    def swap(self, service: str, image: str, env: dict | None = None, wait: bool = True):
        """Replace ``service``'s container by one from ``image`` with ``env`` added to its environment.

        The new container keeps the service's name on the backend network, so the
        gateway's next connection reaches it without reconfiguration.
        """
        if service not in self.containers:
            raise StackError(f"no running {service!r} container to swap; running: {', '.join(self.containers)}")
        old = self.containers.pop(service)
        _say(f"swapping {old.name} for {image}")
        old.stop(timeout=10)
        old.remove()
        new = self.run_service(service, image=image, env=env)
        if wait:
            self.wait_healthy([service])
        return new

    def gateway_url(self) -> str:
        """The published gateway URL; with ``port=0`` the port Docker picked."""
        port = self.cfg.port
        gw = self.containers.get("gateway")
        if gw is not None:
            gw.reload()
            bound = (gw.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{DEFAULT_PORTS['gateway']}/tcp")
            if bound:
                port = int(bound[0]["HostPort"])
        host = self.cfg.publish_host if self.cfg.publish_host not in ("0.0.0.0", "") else "127.0.0.1"
        return f"http://{host}:{port}"

    def use_radio(self, image: str | None = None, env: dict | None = None):
        """Put the GNU Radio flowgraph into a running stack: start it, then swap the channel to its zmq backend.

        ``image``: the flowgraph image (default ``<prefix>/gnuradio:<tag>``, which must
        exist); ``env``: its SCCDM_GR_* settings (e.g. ``{"SCCDM_GR_SNR_DB": "10"}``).
        """
        if RADIO in self.containers:
            raise StackError("the stack already runs the GNU Radio flowgraph")
        self.run_service(RADIO, image=image or self.cfg.image(RADIO), env=env)
        self.wait_healthy([RADIO])
        return self.swap("channel", self.cfg.image("channel"), RADIO_CHANNEL_ENV)

    def endpoints(self) -> dict:
        ep = {"gateway": self.gateway_url()}
        ep.update({s: f"{s}:{DEFAULT_PORTS[s]} (network {self.backend.name})" for s in GRPC_SERVICES})
        if RADIO in self.containers:
            ep[RADIO] = f"{RADIO}:5556 <- channel:5555 (ZeroMQ, network {self.backend.name})"
        return ep

    def check_running(self) -> None:
        for svc, c in self.containers.items():
            c.reload()
            if c.attrs.get("State", {}).get("Status") != "running":
                raise StackError(f"{c.name} stopped; its last log lines:\n{self._tail(c)}")

    def teardown(self) -> None:
        """Stop and remove every container, then the networks; safe to call twice."""
        for svc in reversed(list(self.containers)):
            c = self.containers.pop(svc)
            try:
                c.stop(timeout=10)
                c.remove()
                _say(f"removed {c.name}")
            except Exception as e:  # keep tearing down the rest
                _say(f"could not remove {c.name}: {e}")
        for attr in ("frontend", "backend"):
            net = getattr(self, attr)
            if net is not None:
                try:
                    net.remove()
                    _say(f"removed network {net.name}")
                except Exception as e:
                    _say(f"could not remove network {net.name}: {e}")
                setattr(self, attr, None)


def start(client, cfg: StackConfig) -> Stack:
    """Build (unless ``cfg.build`` is false), create the networks, start all four services healthy.

    On any failure everything already created is removed before the error propagates.
    """
    stack = Stack(client, cfg)
    if cfg.build:
        stack.build_images()
    else:
        stack.check_images()
    stack.remove_leftovers()
    try:
        stack.create_networks()
        first = GRPC_SERVICES + ((RADIO,) if cfg.radio else ())
        for svc in first:
            stack.run_service(svc)
        stack.wait_healthy(first)
        stack.run_service("gateway")
        stack.wait_healthy(["gateway"])
    except BaseException:
        stack.teardown()
        raise
    return stack


def connect():
    """A Docker client for ``DOCKER_HOST`` / the default socket, or :class:`StackError` saying why not."""
    import docker
    import docker.errors
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as e:
        raise StackError(f"no Docker engine reachable ({e}); start dockerd or set DOCKER_HOST") from None
    return client


def up(args, stop: threading.Event | None = None) -> int:
    """Run the stack until Ctrl-C / SIGTERM (or ``stop`` is set); 0 on a clean stop, 1 on failure.

    Ctrl-C or SIGTERM at any point, building and health waits included, removes
    whatever was already started.
    """
    stop = stop or threading.Event()
    old_term = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt
        old_term = signal.signal(signal.SIGTERM, on_term)
    stack = None
    rc = 0
    try:
        cfg = config_from_args(args)
        stack = start(connect(), cfg)
        print("SC-CDM stack (containers) is up:", flush=True)
        for name, where in stack.endpoints().items():
            print(f"  {name:12s} {where}", flush=True)
        if getattr(args, "demo", False):
            from ..send import run_demo
            rc = run_demo(stack.gateway_url(), out=getattr(args, "demo_out", "sccdm-demo.png"))
            if getattr(args, "exit_after_demo", False):
                return rc
        print("Ctrl-C to stop and remove the containers.", flush=True)
        while not stop.wait(cfg.poll_s):
            stack.check_running()
    except KeyboardInterrupt:
        print("stopping ...", flush=True)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 1
    finally:
        if stack is not None:
            stack.teardown()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return rc
