"""Run a call in a thread with a time limit: a loop that ignores its deadline fails the test instead of hanging it."""
from __future__ import annotations

import threading
import time


def run_bounded(fn, limit_s: float) -> tuple[dict, float]:
    """fn() in a daemon thread -> ({"value": ...} or {"error": exception}, seconds taken); fails if still running."""
    box = {}

    def body():
        try:
            box["value"] = fn()
        except BaseException as e:          # handed back to the test
            box["error"] = e

    th = threading.Thread(target=body, daemon=True)
    t0 = time.monotonic()
    th.start()
    th.join(limit_s)
    assert not th.is_alive(), f"still running after {limit_s} s: the receive loop ignores its deadline"
    return box, time.monotonic() - t0
