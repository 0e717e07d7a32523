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

One deadline (``SCCDM_ZMQ_TIMEOUT_MS``) covers sending and receiving, whatever
the far end does. The receive loop ends when the burst is complete - its full
length from its first active block, then quiet blocks (:class:`BurstGate`) -,
when a source that only answers bursts has gone quiet, or at the deadline. A
source that never stops (an SDR delivering zeros or noise between bursts,
``flowgraph.py --stream-rate``) works: only the burst and a margin around it
go to the receiver.

Errors: :class:`sccdm.link.LinkTimeout` when the flowgraph takes or returns
nothing in time, or streams without any burst until the deadline, :class:`sccdm.link.NoBurstError` when samples came back but
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
QUIET_S = 0.1       # a source that only answers bursts is done when it stays silent this long
BLOCK = 2048        # gate block: power known to ~2 % (1/sqrt(BLOCK)), so a 1 dB rise above the floor shows
GATE_RATIO = 1.17   # active block: above 1.17 x the quietest block (noise blocks stay within ~1.12 x of it)
TAIL_BLOCKS = 2     # quiet blocks after the burst that say it ended (FLUSH = 2 blocks of silence follow it)
MAX_KEEP = 1 << 22  # samples kept while waiting for a burst in an endless stream (32 MiB)


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

    def _drain(self, pull, until: float) -> int:
        """Drop what the flowgraph queued before this transmission (bounded in time: a streaming source
        never runs dry, so 'until nothing is left' could last forever)."""
        n = 0
        stop = min(until, time.monotonic() + 0.05)
        while time.monotonic() < stop and pull.poll(0):
            n += len(pull.recv(zmq.NOBLOCK))
        return n

    def _send(self, push, tx: np.ndarray, deadline: float) -> None:
        for i in range(0, len(tx), CHUNK):
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                break
            # every send may wait only for what is left of the one deadline, not a fresh timeout each
            push.setsockopt(zmq.SNDTIMEO, left_ms)
            try:
                push.send(tx[i:i + CHUNK].tobytes(), copy=True)
                continue
            except zmq.Again:
                pass
            break
        else:
            return
        raise LinkTimeout(f"zmq: no flowgraph took samples from {self.tx} within {self.timeout_ms} ms "
                          "(is deploy/gnuradio/flowgraph.py running and pointed at it?)")

    def channel_stream(self, plan, cfg, generator) -> np.ndarray:
        with self._lock:
            deadline = time.monotonic() + self.timeout_ms / 1000.0
            push, pull = self._sockets()
            self._drain(pull, deadline)  # stale output of an earlier transmission, or a radio's idle stream
            tx = np.concatenate([plan.samples, np.zeros(FLUSH, dtype=np.complex64)]).astype("<c8")
            self._send(push, tx, deadline)
            gate = BurstGate(len(plan.samples), self.session.cfg.max_eps)
            # the flowgraph returns about len(tx) / epsilon samples
            need = int(len(tx) * (1 - 2 * self.session.cfg.max_eps)) - 512
            timed_out = False
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                # never wait past the deadline, whatever the source does
                if not pull.poll(max(1, int(min(left, QUIET_S) * 1000))):
                    if gate.got >= need and (gate.got <= 2 * len(tx) or gate.seen_burst()):
                        break  # a source that only answers bursts went quiet after ours (a streaming one may pause)
                    continue
                gate.add(np.frombuffer(pull.recv(), dtype="<c8"))
                if gate.done():
                    break
            return self._result(gate, timed_out)

    def _result(self, gate: "BurstGate", timed_out: bool) -> np.ndarray:
        if gate.got == 0:
            raise LinkTimeout(f"zmq: no samples came back from {self.rx} within {self.timeout_ms} ms "
                              "(is the flowgraph's push sink bound there?)")
        if timed_out and gate.streaming() and not gate.seen_burst():
            # a radio that streams noise but carried no burst: nothing for the receiver to search
            raise LinkTimeout(f"zmq: {gate.got} samples streamed from {self.rx} in {self.timeout_ms} ms "
                              f"but no burst rose above the noise floor (floor {gate.floor():.3g} per sample)")
        return gate.samples()


class BurstGate:
    """Where a burst sits in a stream that may never stop (an SDR's idle noise or zeros).

    The stream is cut into BLOCK-sample blocks; a block is active when its mean power exceeds
    GATE_RATIO x the quietest block seen (the noise floor). A burst is seen once active blocks
    span most of the transmission; it is complete once TAIL_BLOCKS blocks follow the later of its
    last active block and the burst's full length from its first one. Memory is
    bounded: blocks long before any activity are dropped. Samples: complex64.
    """

    def __init__(self, n_tx: int, max_eps: float):
        self.n_tx = int(n_tx)
        self.min_span = int(0.8 * n_tx * (1 - 2 * max_eps))
        # blocks the burst itself covers: its length at the slowest clock, starting anywhere in a block
        self.burst_blocks = -(-int(n_tx * (1 + 2 * max_eps)) // BLOCK) + 1
        self.blocks: list[np.ndarray] = []
        self.power: list[float] = []
        self.carry = np.zeros(0, dtype=np.complex64)
        self.got = 0

    def add(self, x: np.ndarray) -> None:
        self.got += len(x)
        x = np.concatenate([self.carry, x.astype(np.complex64)])
        n = len(x) // BLOCK * BLOCK
        for i in range(0, n, BLOCK):
            b = x[i:i + BLOCK]
            self.blocks.append(b)
            self.power.append(float(np.mean(np.abs(b) ** 2)))
        self.carry = x[n:]
        self._bound()

    def _bound(self) -> None:
        keep = max(4 * self.n_tx, MAX_KEEP) // BLOCK
        if len(self.blocks) > keep and not self._active()[:len(self.blocks) - keep].any():
            cut = len(self.blocks) - keep
            del self.blocks[:cut], self.power[:cut]

    def floor(self) -> float:
        return min(self.power) if self.power else 0.0

    def _active(self) -> np.ndarray:
        p = np.asarray(self.power)
        return p > GATE_RATIO * self.floor() + 1e-20

    def streaming(self) -> bool:
        """Quiet blocks seen: the source delivers more than our burst."""
        return bool(len(self.power)) and not self._active().all()

    def _span(self) -> tuple[int, int] | None:
        act = np.flatnonzero(self._active())
        if len(act) == 0 or (act[-1] - act[0] + 1) * BLOCK < self.min_span:
            return None
        return int(act[0]), int(act[-1])

    def seen_burst(self) -> bool:
        return self._span() is not None

    def _extent(self) -> tuple[int, int] | None:
        """First and last block the burst may cover: the active span widened to the burst's own length.

        Power alone cannot say where a burst ends: blocks inside it look quiet in a fade, and at high SNR
        the frame structure alone swings block power by more than GATE_RATIO. Cutting at the active span
        lost the tail of bursts (3 of 32 frames through GNU Radio's fading_model, 9 to 11 of 64 on AWGN).
        """
        span = self._span()
        if span is None:
            return None
        first, last = span
        return max(0, min(first, last - self.burst_blocks + 1)), max(last, first + self.burst_blocks - 1)

    def done(self) -> bool:
        ext = self._extent()
        return ext is not None and len(self.power) - 1 - ext[1] >= TAIL_BLOCKS

    def samples(self) -> np.ndarray:
        """The burst with a margin of quiet blocks around it (everything if no burst stood out)."""
        ext = self._extent()
        blocks = self.blocks + [self.carry]
        if ext is not None and self.streaming():
            blocks = blocks[max(0, ext[0] - TAIL_BLOCKS):ext[1] + TAIL_BLOCKS + 1]
        return np.concatenate(blocks).astype(np.complex64)


register("zmq", ZmqBackend)
