"""Who holds a listening TCP port: the PIDs and command lines, read from /proc (Linux).

Used by ``sccdm stack up`` so that "port in use" names the stale process to stop, instead of
leaving the operator to guess. Only processes this user may inspect are found (others' /proc/*/fd
is unreadable); elsewhere than Linux the lookups answer nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

LISTEN = "0A"  # TCP state code of a listening socket in /proc/net/tcp


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Socket inodes listening on ``port`` (IPv4 and IPv6, any address)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            lines = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == LISTEN and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def _cmdline(pid: int, proc: Path) -> str:
    try:
        # whitespace collapsed: a `python -c` script's newlines would break the one-line error message
        return " ".join((proc / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").split())
    except OSError:
        return "?"


def holders(port: int, proc: Path = Path("/proc")) -> dict[int, str]:
    """{pid: command line} of the processes with a socket listening on ``port``."""
    wanted = {f"socket:[{i}]" for i in listening_inodes(port, proc)}
    found: dict[int, str] = {}
    if not wanted:
        return found
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            fds = os.listdir(d / "fd")
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                if os.readlink(d / "fd" / fd) in wanted:
                    found[int(d.name)] = _cmdline(int(d.name), proc)
                    break
            except OSError:
                continue
    return found


def describe_holders(port: int) -> str:
    """" (held by pid 123: python -m gateway)" or "" when nobody visible holds it."""
    h = holders(port)
    if not h:
        return ""
    return " (held by " + ", ".join(f"pid {pid}: {cmd[:80]}" for pid, cmd in sorted(h.items())) + ")"
