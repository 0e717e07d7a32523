"""Chaos under load: SIGKILL one service of a running, supervised :class:`sccdm.stack.Stack` at a time.

Shared by tests/test_chaos.py (assertions) and benchmarks/chaos.py (figures). :class:`Load` runs a few
client threads that send a small image through the gateway with a request deadline (``timeout_s``) and
record every outcome; :func:`kill_and_wait` kills a service and measures how long the stack takes to
serve again, as a client would see it: a new process that answers gRPC health SERVING (or /readyz
for the gateway) and a gateway that is ready.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Outcome:
    t0: float          # monotonic start
    dt: float          # seconds until the answer (or the error)
    status: object     # HTTP status, or the exception's class name (connection refused while the gateway is down)
    detail: str = ""


@dataclass
class Load:
    """``clients`` threads posting ``image`` (PNG bytes) until :meth:`stop`; outcomes in ``log``."""
    url: str
    image: bytes
    clients: int = 3
    deadline_s: float = 15.0    # sent as timeout_s: the gateway's deadline for each request
    pause_s: float = 0.0        # between one client's requests: keeps the load bounded on small machines
    error_pause_s: float = 0.1  # after a failed request
    log: list = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(self.clients)]

    def start(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def _client(self, i: int) -> None:
        # the client waits longer than the deadline, so a request that hangs past it shows as a "ReadTimeout"
        with httpx.Client(base_url=self.url, timeout=self.deadline_s + 10) as c:
            n = 0
            while not self._stop.is_set():
                o = self._one(c, seed=1000 * i + n)
                self.log.append(o)
                n += 1
                # like a real client, back off a little after an error (refused while the gateway restarts)
                self._stop.wait(self.pause_s if o.status == 200 else max(self.pause_s, self.error_pause_s))

    def _one(self, c: httpx.Client, seed: int) -> Outcome:
        t0 = time.monotonic()
        try:
            r = c.post("/v1/transmit", files={"image": ("x.png", self.image, "image/png")},
                       data={"seed": str(seed), "refine": "false", "snr_db": "10", "timeout_s": str(self.deadline_s)})
            detail = "" if r.status_code == 200 else r.text[:200]
            return Outcome(t0, time.monotonic() - t0, r.status_code, detail)
        except httpx.HTTPError as e:
            return Outcome(t0, time.monotonic() - t0, type(e).__name__, str(e)[:200])

    def ok_since(self, t: float) -> int:
        return sum(1 for o in list(self.log) if o.t0 >= t and o.status == 200)

    def wait_ok(self, n: int, since: float, timeout: float) -> None:
        end = time.monotonic() + timeout
        while self.ok_since(since) < n:
            if time.monotonic() > end:
                raise TimeoutError(f"fewer than {n} successful requests in {timeout:g} s: {self.log[-5:]}")
            time.sleep(0.05)


def serving_again(stack, name: str, old_pid: int) -> bool:
    p = stack.procs.get(name)
    if p is None or p.pid == old_pid or p.poll() is not None:
        return False
    if name != "gateway" and not stack._serving(name):
        return False
    return stack._gateway_ready()


def kill_and_wait(stack, name: str, timeout: float = 30.0) -> tuple[float, float]:
    """SIGKILL ``name``; (t_kill, seconds until it serves again). Needs the stack's Supervisor running."""
    p = stack.procs[name]
    t_kill = time.monotonic()
    p.kill()
    p.wait(10)
    while not serving_again(stack, name, p.pid):
        if time.monotonic() - t_kill > timeout:
            raise TimeoutError(f"{name} not serving {timeout:g} s after SIGKILL; log ends:\n{stack.log_tail(name)}")
        time.sleep(0.05)
    return t_kill, time.monotonic() - t_kill


def summary(log: list, t_kill: float, t_back: float, t_end: float) -> dict:
    """Counts of a kill's window: requests started before the service was back, and after."""
    during = [o for o in log if t_kill - 1.0 <= o.t0 < t_back]  # in flight at the kill, or sent during the outage
    after = [o for o in log if t_back <= o.t0 < t_end]
    return {"during": len(during), "failed_during": sum(o.status != 200 for o in during),
            "after": len(after), "failed_after": sum(o.status != 200 for o in after),
            "max_request_s": round(max((o.dt for o in during + after), default=0.0), 3),
            "failures": sorted({f"{o.status}: {o.detail[:80]}" for o in during + after if o.status != 200})}
