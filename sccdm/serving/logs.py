"""Structured logging: one JSON object per line on stderr.

>>> log = setup_logging("receiver", "INFO")
>>> log.info("decoded", extra={"fields": {"batch": 4, "ms": 12.5}})
{"ts": "2026-...Z", "level": "INFO", "service": "receiver", "msg": "decoded", "batch": 4, "ms": 12.5}
"""
from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        out = {"ts": ts, "level": record.levelname, "service": self.service, "logger": record.name,
               "msg": record.getMessage()}
        out.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class RepeatFilter(logging.Filter):
    """Let one WARNING-or-worse record with the same logger and message template through per ``every_s``;
    the next one that passes says how many were suppressed. Why: under a flood (a client opening sockets
    until the file limit, asyncio logging every failed accept) the log must not fill the disk."""

    def __init__(self, every_s: float = 10.0):
        super().__init__()
        self.every_s = every_s
        self._last: dict[tuple, float] = {}
        self._dropped: dict[tuple, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        key = (record.name, str(record.msg), str((getattr(record, "fields", None) or {}).get("error", "")))
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.every_s:
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        self._last[key] = now
        n = self._dropped.pop(key, 0)
        if n:
            record.fields = {**(getattr(record, "fields", None) or {}), "suppressed_repeats": n}
        return True


def setup_logging(service: str, level: str = "INFO") -> logging.Logger:
    """Route the root logger (and uvicorn's) through :class:`JsonFormatter`, repeated warnings and errors
    rate-limited (:class:`RepeatFilter`); return the service's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    return logging.getLogger(f"sccdm.{service}")


def fields(**kw) -> dict:
    """``log.info(msg, extra=fields(a=1))``: structured fields for :class:`JsonFormatter`."""
    return {"fields": kw}
