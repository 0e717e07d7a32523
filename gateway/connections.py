"""Connection limits uvicorn does not have: a header timeout and a connection cap that evicts idle sockets.

uvicorn's keep-alive timer is cancelled by any byte, so a client trickling one
header byte every few seconds (or never sending a request at all) holds its
socket forever; enough of them exhaust the file-descriptor limit and lock every
client out. :class:`GuardedH11` closes a connection that has not completed its
request headers within ``header_timeout_s`` (counted from connect and from the
end of each answer), and keeps at most ``max_connections`` open: when a new one
would pass the cap, the oldest *idle* connection (no request in progress) is
closed to make room; only when every connection is busy is the new one refused
with a 503. Request bodies have their own idle timeout in :mod:`gateway.frontdoor`.

:func:`raise_open_file_limit` lifts the soft RLIMIT_NOFILE to the hard limit so
the cap, not the kernel, is what bounds the sockets.
"""
from __future__ import annotations

import resource
import time

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_BODY = b'{"detail": "the gateway has too many open connections (SCCDM_MAX_CONNECTIONS); retry"}'
_REFUSED = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"retry-after: 1\r\ncontent-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY)


def raise_open_file_limit() -> int:
    """Soft RLIMIT_NOFILE := hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


def guarded_protocol(max_connections: int, header_timeout_s: float) -> type:
    """An H11Protocol subclass with these limits, for ``uvicorn.Config(http=...)``."""
    return type("GuardedH11", (GuardedH11,), {"max_connections": int(max_connections),
                                               "header_timeout_s": float(header_timeout_s)})


class GuardedH11(H11Protocol):
    max_connections = 1000
    header_timeout_s = 10.0

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._born = time.monotonic()
        self._header_timer = None
        self._arm_header_timer()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def idle(self) -> bool:
        """No request in progress: before the first one's headers, or between answers."""
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.idle():
            self.close_quietly()

    def close_quietly(self) -> None:
        if self.transport.is_closing():
            return
        try:
            self.conn.send(h11.ConnectionClosed())
        except h11.LocalProtocolError:
            pass
        self.transport.close()

    def _make_room(self) -> None:
        others = [c for c in self.connections if c is not self and isinstance(c, GuardedH11)
                  and not c.transport.is_closing() and c.idle()]
        if others:
            min(others, key=lambda c: c._born).close_quietly()
        else:  # every connection is working on a request: refuse the newcomer, cheaply
            self._cancel_header_timer()
            self.transport.write(_REFUSED)
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if not self.idle():
            self._cancel_header_timer()  # headers complete: the request's own deadlines apply now

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)
