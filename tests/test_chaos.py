"""Chaos (issue 11): the supervised stack survives SIGKILL of each of its processes under load, and a
SIGKILLed ``sccdm stack up`` takes its children with it.

The first test runs its own supervised stack (a failure here leaves the session's stack alone); it kills
transmitter, channel, receiver and gateway in turn while three clients keep sending 32x32 images with a
15 s deadline, and asserts: serving again within 10 s with no manual step, no request past its
deadline, every request sent after the restart answered 200, and - when a backend came back within the
gateway's ready wait - no request failed at all."""
from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from conftest_stack import STACK_ENV, started_stack

from sccdm.chaos import Load, kill_and_wait, summary
from sccdm.stack import ALL, REPO, Stack, StackError, port_busy
from sccdm.supervisor import Backoff, Supervisor

SERVING_AGAIN_S = 10.0
DEADLINE_S = 15.0
READY_WAIT_S = 8.0  # the gateway's default SCCDM_BACKEND_READY_WAIT_S


@pytest.fixture(scope="module")
def supervised_stack(tmp_path_factory):
    yield from started_stack(STACK_ENV, tmp_path_factory.mktemp("chaos-logs"), 300, "supervised stack",
                             supervise=True)


def test_sigkill_each_service_under_load(supervised_stack, make_png):
    stack = supervised_stack
    data, _ = make_png(32, 32)
    before = dict(stack.restarts)
    load = Load(stack.gateway_url, data, clients=3, deadline_s=DEADLINE_S).start()
    windows = []
    try:
        load.wait_ok(3, time.monotonic(), 60)
        for name in ALL:
            t_kill, back_s = kill_and_wait(stack, name, timeout=30)
            t_back = t_kill + back_s
            load.wait_ok(2 * load.clients, t_back + 1.0, 30)   # keep the load on after the restart
            windows.append((name, t_kill, back_s, t_back, time.monotonic() - 0.5))
    finally:
        load.stop()
    statuses = [o.status for o in load.log]
    assert all(o.dt < DEADLINE_S + 2 for o in load.log), max(o.dt for o in load.log)
    assert "ReadTimeout" not in statuses
    for name, t_kill, back_s, t_back, t_end in windows:
        s = summary(load.log, t_kill, t_back, t_end)
        assert back_s < SERVING_AGAIN_S, (name, back_s)
        assert s["after"] >= 2 * load.clients and s["failed_after"] == 0, (name, s)
        if name != "gateway" and back_s < READY_WAIT_S - 1:
            # the gateway waited for the restarted backend and retried: the restart cost no request
            assert s["failed_during"] == 0, (name, back_s, s)
    assert {n: stack.restarts[n] - before.get(n, 0) for n in ALL} == {n: 1 for n in ALL}
    assert not stack.dead()


class _Procs:
    """The part of Stack the Supervisor uses, over cheap processes."""

    def __init__(self, argv):
        self.argv, self.procs = argv, {}

    def start_service(self, name):
        self.procs[name] = subprocess.Popen(self.argv)
        return self.procs[name]


def test_supervisor_restarts_with_backoff_and_counts():
    quick = _Procs(["true"])  # dies at once: a crash loop (a cheap one, so that timing holds on a busy machine)
    quick.start_service("a")
    events = []
    sup = Supervisor(quick, ["a"], poll_s=0.02, backoff=lambda: Backoff(0.1, 0.4, stable_s=60),
                     on_event=events.append)
    sup.start()
    try:
        time.sleep(3.0)
    finally:
        sup.stop()
    delays = [float(m.group(1)) for e in events if (m := re.search(r"restarting in ([\d.]+) s", e))]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.4], events       # doubling, capped
    assert 4 <= sup.restarts["a"] <= 10, sup.restarts  # 0.1 + 0.2 + 0.4 x 6 = 2.7 s of delays
    assert Backoff(0.1, 0.4, stable_s=1).after_exit(5.0) == 0.1  # stayed up: back to the start


def test_stale_port_is_reported_with_its_pid():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(StackError) as e:
            Stack(gateway_port=port).start()
    assert f"port {port}" in str(e.value) and f"pid {os.getpid()}" in str(e.value), str(e.value)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not reaped yet
    except OSError:
        return False


class _Lines:
    """A child's output lines, read by a thread, so that waiting for one can time out."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._q: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self._q.put(x) for x in stream], daemon=True).start()

    def until(self, pattern: str, timeout: float) -> re.Match:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._q.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} in {timeout:g} s:\n{self.text}") from None
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.slow
def test_stack_up_restarts_a_dead_child_and_dies_with_its_children(tmp_path):
    """`sccdm stack up`: SIGKILL of the channel -> restarted, counted, the rest untouched; then SIGKILL of
    `stack up` itself -> every child (the restarted one too) gone and every port free within 10 s."""
    p = subprocess.Popen([sys.executable, "-m", "sccdm.cli", "stack", "up", "--port", "0", "--log-dir",
                          str(tmp_path / "logs")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env={**os.environ, "SCCDM_DEVICE": "cpu"})
    out, pids, ports = _Lines(p.stdout), [], []
    try:
        out.until(r"^serving;", 240)
        pids = [int(x) for x in re.findall(r"\[pid (\d+),", out.text)]
        ports = [int(x) for x in re.findall(r"(?:grpc |http://)[\w.\[\]]*:(\d+)", out.text)]
        assert len(pids) == 4 and len(set(ports)) >= 4, out.text
        channel = int(re.search(r"channel .*\[pid (\d+),", out.text).group(1))
        os.kill(channel, signal.SIGKILL)
        pids.append(int(out.until(r"channel restarted \(restart 1, pid (\d+)\)", 30).group(1)))
        p.send_signal(signal.SIGUSR1)   # the status: the channel counted once, the others untouched
        out.until(r"^channel .*restarts 1\]", 10)
        assert all(_alive(pid) for pid in pids if pid != channel), out.text
    finally:
        p.kill()  # no SIGTERM: `stack up` gets no chance to stop anything itself
        p.wait(10)
    try:
        end = time.monotonic() + 10
        while any(map(_alive, pids)) or any(port_busy("127.0.0.1", port) for port in ports):
            assert time.monotonic() < end, ([pid for pid in pids if _alive(pid)], out.text)
            time.sleep(0.1)
    finally:
        _kill_all(pids)  # should the test fail, it leaves no process behind either
