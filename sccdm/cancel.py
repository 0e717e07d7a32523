"""Cooperative cancellation of long computations, per thread.

A server runs a batch on a worker thread; when every caller of that batch has
gone (client disconnected, deadline passed) the rest of the work is wasted. Long
loops (:func:`sccdm.tiling.tiled_map`, one model call per tile) call
:func:`raise_if_cancelled` between steps; the server installs the check with
:func:`checking`. Without a check installed nothing changes.

    with cancel.checking(lambda: all(f.done() for f in futures)):
        run_batch(items)            # raises Cancelled at the next tile once all callers left
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable

_local = threading.local()


class Cancelled(RuntimeError):
    """Every caller of this computation has gone; it was stopped between two steps."""


@contextmanager
def checking(is_cancelled: Callable[[], bool]):
    """Within the block, :func:`raise_if_cancelled` on this thread raises once ``is_cancelled()`` is true."""
    prev = getattr(_local, "check", None)
    _local.check = is_cancelled
    try:
        yield
    finally:
        _local.check = prev


def raise_if_cancelled() -> None:
    check = getattr(_local, "check", None)
    if check is not None and check():
        raise Cancelled("the computation was abandoned by every caller")
