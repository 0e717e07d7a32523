"""Restart dead child processes with backoff, and make children die with their parent.

:class:`Supervisor` is a thread that polls the children of a :class:`sccdm.stack.Stack` (any object
with ``procs`` and ``start_service(name)``) and starts again the ones that exited. The delay before a
restart doubles from ``initial`` to ``maximum`` while a service keeps dying soon after its start (a
crash loop must not eat the CPU the other services serve with), and goes back to ``initial`` once the
service has stayed up ``stable_s`` seconds. It does not wait for readiness: the gateway waits for a
backend's channel itself, and the other services keep serving meanwhile.

:func:`die_with_parent` is a ``preexec_fn``: the child asks the kernel (PR_SET_PDEATHSIG) for SIGKILL
when its parent goes, so a SIGKILLed ``sccdm stack up`` leaves no orphan holding the ports.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger("sccdm.supervisor")

PR_SET_PDEATHSIG = 1
# resolved once in the parent: nothing is looked up (no locks, no imports) between fork and exec
_prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(parent_pid: int | None = None) -> Callable[[], None]:
    """A preexec_fn: SIGKILL this child when the parent (thread) that started it exits (Linux only)."""
    parent = os.getpid() if parent_pid is None else parent_pid

    def preexec():
        if _prctl is not None:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect: nobody would kill us
            os._exit(1)
    return preexec


# PR_SET_PDEATHSIG fires when the forking *thread* exits, not the process. Children are therefore
# forked by this one thread, which lives until the interpreter exits: a restart made by the Supervisor
# thread (which stops before the stack does) must not take its child down with it.
_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sccdm-spawn")


def popen_tied(args, **kwargs) -> subprocess.Popen:
    """subprocess.Popen whose child gets SIGKILL when this process dies (however it dies)."""
    return _SPAWNER.submit(subprocess.Popen, args, preexec_fn=die_with_parent(), **kwargs).result()


@dataclass
class Backoff:
    """Delay before the next start of one service: doubles on quick deaths, resets after a stable run."""
    initial: float = 0.5
    maximum: float = 10.0
    stable_s: float = 30.0
    delay: float = field(default=0.0, init=False)

    def after_exit(self, uptime_s: float) -> float:
        """The delay before restarting a process that ran ``uptime_s`` seconds."""
        if uptime_s >= self.stable_s or self.delay == 0.0:
            self.delay = self.initial
        else:
            self.delay = min(self.maximum, self.delay * 2)
        return self.delay


@dataclass
class _Child:
    backoff: Backoff
    started: float = field(default_factory=time.monotonic)
    restart_at: float | None = None   # set while the service is dead and waiting for its restart
    restarts: int = 0


class Supervisor(threading.Thread):
    """Polls ``stack.procs`` every ``poll_s`` and restarts what died. ``stop()`` before stopping the stack."""

    def __init__(self, stack, names, poll_s: float = 0.2, backoff: Callable[[], Backoff] = Backoff,
                 on_event: Callable[[str], None] | None = None):
        super().__init__(name="sccdm-supervisor", daemon=True)
        self.stack, self.poll_s = stack, poll_s
        self.children = {n: _Child(backoff()) for n in names}
        self.on_event = on_event or (lambda msg: log.warning(msg))
        self._stop_event = threading.Event()
        self.lock = threading.Lock()  # the stack's stop and this thread's restarts must not interleave

    @property
    def restarts(self) -> dict[str, int]:
        return {n: c.restarts for n, c in self.children.items()}

    def stop(self) -> None:
        self._stop_event.set()
        with self.lock:  # a restart under way finishes first; none starts after this
            pass
        if self.is_alive() and threading.current_thread() is not self:
            self.join(5)

    def run(self) -> None:
        while not self._stop_event.wait(self.poll_s):
            with self.lock:
                if self._stop_event.is_set():
                    return
                for name, child in self.children.items():
                    self._check(name, child, time.monotonic())

    def _check(self, name: str, child: _Child, now: float) -> None:
        p = self.stack.procs.get(name)
        if p is None or p.poll() is None:
            return
        if child.restart_at is None:  # just noticed the death
            delay = child.backoff.after_exit(now - child.started)
            child.restart_at = now + delay
            self.on_event(f"{name} exited (code {p.returncode}) after {now - child.started:.1f} s; "
                          f"restarting in {delay:g} s")
            return
        if now < child.restart_at:
            return
        try:
            self.stack.start_service(name)
        except OSError as e:  # e.g. out of processes: try again after the next backoff step
            child.restart_at = now + child.backoff.after_exit(0.0)
            self.on_event(f"{name} could not be started again: {e}")
            return
        child.restarts += 1
        child.started, child.restart_at = now, None
        self.on_event(f"{name} restarted (restart {child.restarts}, pid {self.stack.procs[name].pid})")
