"""``zmq``: the link's sample stream through an external flowgraph over ZeroMQ.

The backend frames the symbols (:mod:`sccdm.link`), PUSHes the complex64
samples to the flowgraph (GNU Radio's ``deploy/gnuradio/flowgraph.py``, or a
real radio behind it), PULLs the flowgraph's output stream and runs the
receiver side on it: burst detection, timing, CFO, clock offset, channel and
SNR estimation. The flowgraph owns the channel, so ``ChannelConfig.snr_db`` does
not set anything here; ``kind`` and ``csi`` still say how the receiver will
equalise (``awgn`` -> unit-gain symbols and no h).

Environment:

* ``SCCDM_ZMQ_TX`` - address this backend BINDS its PUSH socket on; the
  flowgraph's pull_source connects to it (default ``tcp://127.0.0.1:5555``).
* ``SCCDM_ZMQ_RX`` - address of the flowgraph's push_sink (it binds); this
  backend CONNECTS its PULL socket there (default ``tcp://127.0.0.1:5556``).
* ``SCCDM_ZMQ_TIMEOUT_MS`` - how long to wait for the flowgraph to take and to
  return samples (default 5000).
* ``SCCDM_LINK_<FIELD>`` - the link parameters (:class:`sccdm.link.LinkConfig`).

Errors: :class:`sccdm.link.LinkTimeout` when the flowgraph takes or returns
nothing in time, :class:`sccdm.link.NoBurstError` when samples came back but
no frame was found in them (both :class:`sccdm.link.LinkError`).
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np
import zmq

from . import register
from ..link.backend import LinkBackend
from ..link.framing import LinkConfig
from ..link.session import LinkTimeout

__all__ = ["ZmqBackend"]

CHUNK = 8192        # samples per ZMQ message
FLUSH = 4096        # extra silence pushed after a transmission so every filter in the flowgraph drains


class ZmqBackend(LinkBackend):
    name = "zmq"
    raise_on_no_burst = True

    def __init__(self, tx: str | None = None, rx: str | None = None, timeout_ms: int | None = None,
                 link: LinkConfig | None = None):
        super().__init__(link)
        self.tx = tx or os.environ.get("SCCDM_ZMQ_TX", "tcp://127.0.0.1:5555")
        self.rx = rx or os.environ.get("SCCDM_ZMQ_RX", "tcp://127.0.0.1:5556")
        raw = os.environ.get("SCCDM_ZMQ_TIMEOUT_MS", "5000") if timeout_ms is None else timeout_ms
        try:
            self.timeout_ms = int(raw)
        except ValueError:
            raise ValueError(f"SCCDM_ZMQ_TIMEOUT_MS={raw!r} is not an integer") from None
        if self.timeout_ms <= 0:
            raise ValueError(f"SCCDM_ZMQ_TIMEOUT_MS must be > 0, got {self.timeout_ms}")
        self._ctx = None
        self._push = self._pull = None
        self._lock = threading.Lock()

    def _sockets(self):
        if self._ctx is None:
            self._ctx = zmq.Context()
            self._push = self._ctx.socket(zmq.PUSH)
            self._push.setsockopt(zmq.LINGER, 0)
            self._push.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
            self._push.bind(self.tx)
            self._pull = self._ctx.socket(zmq.PULL)
            self._pull.setsockopt(zmq.LINGER, 0)
            self._pull.connect(self.rx)
        return self._push, self._pull

    def close(self) -> None:
        with self._lock:
            if self._ctx is not None:
                self._push.close(0)
                self._pull.close(0)
                self._ctx.term()
                self._ctx = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _drain(self, pull) -> int:
        n = 0
        while pull.poll(0):
            n += len(pull.recv(zmq.NOBLOCK))
        return n

    def channel_stream(self, plan, cfg, generator) -> np.ndarray:
        with self._lock:
            push, pull = self._sockets()
            self._drain(pull)  # stale output of an earlier, interrupted transmission
            tx = np.concatenate([plan.samples, np.zeros(FLUSH, dtype=np.complex64)]).astype("<c8")
            for i in range(0, len(tx), CHUNK):
                try:
                    push.send(tx[i:i + CHUNK].tobytes(), copy=True)
                except zmq.Again:
                    raise LinkTimeout(f"zmq: no flowgraph took samples from {self.tx} within {self.timeout_ms} ms "
                                      "(is deploy/gnuradio/flowgraph.py running and pointed at it?)") from None
            # the flowgraph returns about len(tx) / epsilon samples; wait for nearly all, then until quiet
            need = int(len(tx) * (1 - 2 * self.session.cfg.max_eps)) - 512
            parts, got = [], 0
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            while True:
                left = deadline - time.monotonic()
                wait_ms = 100 if got >= need else max(0, int(left * 1000))
                if (got < need and left <= 0) or not pull.poll(wait_ms):
                    break
                msg = pull.recv()
                parts.append(np.frombuffer(msg, dtype="<c8"))
                got += len(parts[-1])
            if got == 0:
                raise LinkTimeout(f"zmq: no samples came back from {self.rx} within {self.timeout_ms} ms "
                                  "(is the flowgraph's push sink bound there?)")
            return np.concatenate(parts).astype(np.complex64)


register("zmq", ZmqBackend)
