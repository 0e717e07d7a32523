"""``sccdm stack up``: run transmitter, channel, receiver and gateway as local processes.

    sccdm stack up                      # gateway on :8000, services on free loopback ports
    sccdm stack up --port 0 --demo      # any free port; send the astronaut through at 10 dB
    sccdm stack up --docker ...         # the same with containers (sccdm.deploy.docker_stack)

The services listen on 127.0.0.1 (``--host`` to change), each on a free port, and
log JSON lines to ``--log-dir`` (a temporary folder by default). The command
waits until every service reports SERVING over gRPC health and the gateway's
/readyz answers 200, prints where everything listens, and then serves until
Ctrl-C / SIGTERM, when it stops all four (each gets SIGTERM, then SIGKILL after
10 s). It can run in the background: ``sccdm send`` waits for /readyz itself.

While it serves, a service that dies is started again (sccdm.supervisor: backoff 0.5 s doubling to
10 s, back to 0.5 s after 30 s up) and the others keep serving; every restart is printed and counted
(``Stack.describe()``). The children get SIGKILL from the kernel if ``stack up`` itself dies, so a
killed stack leaves no process holding its ports; a port that is still taken is reported with the
PIDs holding it.

:class:`Stack` is the same thing as a Python object (used by the tests and benchmarks).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .ports import describe_holders
from .send import run_demo
from .supervisor import Supervisor, popen_tied

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("transmitter", "channel", "receiver")
ALL = SERVICES + ("gateway",)


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that are free now (all sockets held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_busy(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return False
        except OSError:
            return True


class StackError(RuntimeError):
    pass


class Stack:
    """Four processes on loopback ports. ``with Stack() as s: s.gateway_url ...``

    gateway_port: 0 = a free one; env: extra environment for every process
    (SCCDM_MAX_BATCH, ...); log_dir: where ``<service>.log`` files go.
    """

    def __init__(self, gateway_port: int = 0, host: str = "127.0.0.1", model: str | None = None,
                 env: dict | None = None, log_dir: str | Path | None = None, metrics: bool = True,
                 python: str = sys.executable, supervise: bool = False):
        self.host, self.python = host, python
        n = 2 * len(SERVICES) + (0 if gateway_port else 1)
        ports = free_ports(n, host)
        self.ports = {s: ports[i] for i, s in enumerate(SERVICES)}
        self.metrics_ports = {s: (ports[len(SERVICES) + i] if metrics else 0) for i, s in enumerate(SERVICES)}
        self.ports["gateway"] = gateway_port or ports[-1]
        self.env = dict(env or {})
        if model:
            self.env["SCCDM_MODEL"] = model
        if log_dir is None:  # kept after stop, so a failed run can be read
            log_dir = tempfile.mkdtemp(prefix="sccdm-stack-")
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.supervise = supervise
        self.supervisor: Supervisor | None = None

    # ------------------------------------------------------------ addresses
    def addr(self, name: str) -> str:
        return f"{self.host}:{self.ports[name]}"

    @property
    def gateway_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.ports['gateway']}"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def log_tail(self, name: str, n: int = 30) -> str:
        p = self.log_path(name)
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:]) if p.exists() else "(no log)"

    # ------------------------------------------------------------ processes
    def _env(self, name: str) -> dict:
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        env["SCCDM_HOST"] = self.host
        env["SCCDM_PORT"] = str(self.ports[name])
        if name == "gateway":
            env["SCCDM_TX_ADDR"] = self.addr("transmitter")
            env["SCCDM_CHANNEL_ADDR"] = self.addr("channel")
            env["SCCDM_RX_ADDR"] = self.addr("receiver")
        else:
            env["SCCDM_METRICS_PORT"] = str(self.metrics_ports[name])
        return env

    def start_service(self, name: str) -> subprocess.Popen:
        if name in self.procs and self.procs[name].poll() is None:
            return self.procs[name]
        log = open(self.log_path(name), "ab")
        # own session: a terminal's Ctrl-C reaches only `stack up`, which then stops the children in order;
        # tied: the kernel kills the child if this process dies without stopping it (SIGKILL, OOM)
        p = popen_tied([self.python, "-m", name], cwd=str(REPO), env=self._env(name), stdout=log,
                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.procs[name] = p
        return p

    def stop_service(self, name: str, timeout: float = 10.0) -> int | None:
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        p.send_signal(signal.SIGTERM)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def wait_service(self, name: str, timeout: float = 180.0) -> None:
        """Until gRPC health says SERVING (services) or /readyz says 200 (gateway)."""
        end = time.monotonic() + timeout
        while True:
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                raise StackError(f"{name} exited (code {None if p is None else p.returncode}) before it was ready; "
                                 f"its log {self.log_path(name)} ends:\n{self.log_tail(name)}")
            if (self._gateway_ready() if name == "gateway" else self._serving(name)):
                return
            if time.monotonic() > end:
                raise StackError(f"{name} not ready after {timeout:g} s; its log ends:\n{self.log_tail(name)}")
            time.sleep(0.25)

    def _serving(self, name: str) -> bool:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        from .serving.config import GRPC_SERVICE_NAMES
        from .serving.tls import TLSFiles, sync_channel
        tls = TLSFiles.from_env({**os.environ, **self.env})  # the services' TLS settings, if any
        with sync_channel(self.addr(name), None, tls) as ch:
            try:
                r = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=GRPC_SERVICE_NAMES[name]), timeout=1.0)
                return r.status == health_pb2.HealthCheckResponse.SERVING
            except grpc.RpcError:
                return False

    def _gateway_ready(self) -> bool:
        import httpx
        try:
            return httpx.get(f"{self.gateway_url}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def check_ports(self) -> None:
        """StackError naming the PIDs that hold any of the stack's ports (a stale stack, typically)."""
        busy = [(n, p) for n, p in self.ports.items() if port_busy(self.host, p)]
        if busy:
            what = "; ".join(f"{n} port {p} on {self.host} is in use{describe_holders(p)}" for n, p in busy)
            raise StackError(f"{what}. Stop that process (a stale `sccdm stack up`?) or pass --port N "
                             f"(--port 0 for any free port)")

    def start(self, timeout: float = 240.0) -> "Stack":
        self.check_ports()
        try:
            for name in ALL:
                self.start_service(name)
            for name in ALL:
                self.wait_service(name, timeout)
        except BaseException:
            self.stop()
            raise
        if self.supervise:
            self.start_supervising()
        return self

    def start_supervising(self, on_event=None, **kwargs) -> Supervisor:
        """Restart dead services from now on (a thread; :meth:`stop` ends it before the services)."""
        if self.supervisor is None or not self.supervisor.is_alive():
            self.supervisor = Supervisor(self, ALL, on_event=on_event or self._log_event, **kwargs)
            self.supervisor.start()
        return self.supervisor

    def stop_supervising(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()

    def _log_event(self, msg: str) -> None:
        print(f"sccdm stack: {msg}", file=sys.stderr, flush=True)

    @property
    def restarts(self) -> dict[str, int]:
        return self.supervisor.restarts if self.supervisor else {n: 0 for n in ALL}

    def restart_service(self, name: str, timeout: float = 180.0) -> None:
        self.stop_service(name)
        self.start_service(name)
        self.wait_service(name, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_supervising()  # first, or it would start again what is being stopped
        # gateway first so nothing new comes in, then the three services together
        self.stop_service("gateway", timeout)
        live = [self.procs[n] for n in SERVICES if n in self.procs and self.procs[n].poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for p in live:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def dead(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is not None]

    def _status(self, name: str) -> str:
        p = self.procs.get(name)
        state = "not started" if p is None else (f"pid {p.pid}" if p.poll() is None else f"exited {p.returncode}")
        return f"   [{state}, restarts {self.restarts.get(name, 0)}]"

    def describe(self) -> str:
        lines = [f"gateway      {self.gateway_url}   (docs {self.gateway_url}/docs, metrics {self.gateway_url}/metrics)"
                 + self._status("gateway")]
        for s in SERVICES:
            m = self.metrics_ports[s]
            lines.append(f"{s:<12} grpc {self.addr(s)}" + (f"   metrics http://{self.host}:{m}/metrics" if m else "")
                         + self._status(s))
        lines.append(f"logs         {self.log_dir}")
        return "\n".join(lines)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _stack_from_args(args) -> Stack:
    env = {}
    if args.max_batch is not None:
        env["SCCDM_MAX_BATCH"] = str(args.max_batch)
    if args.max_wait_ms is not None:
        env["SCCDM_MAX_WAIT_MS"] = str(args.max_wait_ms)
    return Stack(gateway_port=args.port, host=args.host, model=args.model, env=env, log_dir=args.log_dir,
                 supervise=True)


def _serve(stack: Stack) -> None:
    """Until a signal: the Supervisor restarts dead services; a restart is no reason to stop the rest."""
    # SIGUSR1 prints the status (pids, restart counts) without stopping anything
    signal.signal(signal.SIGUSR1, lambda *_: print(stack.describe(), flush=True))
    print("serving; Ctrl-C stops everything (SIGUSR1 prints the status)", flush=True)
    while True:
        time.sleep(1.0)


def up(args) -> int:
    if args.docker:
        from .deploy import docker_stack  # needs the Docker SDK: imported only when asked for
        return int(docker_stack.up(args) or 0)
    stack = _stack_from_args(args)

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    rc = 0
    try:
        print(f"starting transmitter, channel, receiver, gateway (logs in {stack.log_dir}) ...", flush=True)
        t0 = time.monotonic()
        try:
            stack.start(timeout=args.ready_timeout)
        except StackError as e:
            print(f"sccdm stack up: {e}", file=sys.stderr)
            return 1
        print(f"ready in {time.monotonic() - t0:.1f} s\n{stack.describe()}", flush=True)
        if args.demo:
            rc = run_demo(stack.gateway_url, out=args.demo_out)
            if args.exit_after_demo:
                return rc
        _serve(stack)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping ...", flush=True)
        stack.stop()
        print(f"stopped (restarts: {stack.restarts})", flush=True)
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sccdm stack", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start the four services and serve until Ctrl-C")
    u.add_argument("--port", type=int, default=8000, help="gateway port (default 8000; 0 = any free port)")
    u.add_argument("--host", default="127.0.0.1", help="bind address of all four (default 127.0.0.1)")
    u.add_argument("--model", default=None, help="zoo model (default sc-cdm-cpu)")
    u.add_argument("--log-dir", default=None, help="folder for the JSON logs (default: a temporary folder)")
    u.add_argument("--max-batch", type=int, default=None, help="SCCDM_MAX_BATCH of transmitter and receiver")
    u.add_argument("--max-wait-ms", type=float, default=None, help="SCCDM_MAX_WAIT_MS")
    u.add_argument("--ready-timeout", type=float, default=240.0, help="seconds to wait for readiness")
    u.add_argument("--demo", action="store_true", help="when ready, send the astronaut through at 10 dB")
    u.add_argument("--demo-out", default="sccdm-demo.png", help="where --demo saves the received image")
    u.add_argument("--exit-after-demo", action="store_true", help="stop after the demo instead of serving")
    u.add_argument("--docker", action="store_true", help="run the services as containers (sccdm.deploy.docker_stack)")
    args, rest = ap.parse_known_args(argv)
    if rest and not getattr(args, "docker", False):
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    args.extra = rest
    if args.exit_after_demo:
        args.demo = True
    return up(args)


if __name__ == "__main__":
    raise SystemExit(main())
