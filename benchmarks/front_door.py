"""Front-door benchmark of the gateway (issue 11's goals), on its own stack with the default limits:

    python benchmarks/front_door.py                       # writes benchmarks/results/front_door.{json,md}
    python benchmarks/front_door.py --big 1024 --idle 300 # quicker

1. **Chunked upload**: a 60 MB multipart body with no Content-Length; answer, time, and the bytes
   the gateway read (its log's ``body_bytes``). Goal: 413 after reading at most the limit.
2. **Small beside large**: 32x32 requests while one ``--big`` x ``--big`` photo (refined) computes,
   against the same 32x32 requests on an idle stack (ratio), and the receiver's peak RSS.
   Goal: every 32x32 answer within 5 s.
3. **Idle connections**: ``--idle`` sockets opened and left silent, then 32x32 requests from new
   clients. Goal: all answered 200 (no lock-out); the idle sockets are closed by the header timeout.
4. **Field flood**: 100 text fields of 1 MB (over the upload limit in total): the answer and the
   gateway's RSS growth.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import shlex
import socket
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
RESULTS = REPO / "benchmarks" / "results"

from load import machine, test_images  # noqa: E402  (benchmarks/load.py: one definition of each)


def _png(side: int) -> bytes:
    from PIL import Image
    from skimage import data
    b = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC).save(b, "PNG")
    return b.getvalue()


def _send(url: str, data: bytes, timeout: float = 60, **form) -> tuple[int, float]:
    t0 = time.monotonic()
    r = httpx.post(f"{url}/v1/transmit", files={"image": ("a.png", data, "image/png")},
                   data={"seed": "1", **form}, timeout=timeout)
    return r.status_code, time.monotonic() - t0


def _lat(rows: list[tuple[int, float]]) -> dict:
    s = [t for _, t in rows]
    return {"n": len(rows), "ok": sum(c == 200 for c, _ in rows), "p50_s": statistics.median(s), "max_s": max(s),
            "codes": sorted({c for c, _ in rows})}


def chunked_upload(stack, mb: int = 60) -> dict:
    def body():
        yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
        for _ in range((mb << 20) // 65536):
            yield b"\0" * 65536

    t0 = time.monotonic()
    r = httpx.post(f"{stack.gateway_url}/v1/transmit", content=body(), timeout=60,
                   headers={"content-type": "multipart/form-data; boundary=b"})
    took = time.monotonic() - t0
    read = [int(x) for x in re.findall(r'"status": 413, "ms": [\d.]+, "body_bytes": (\d+)',
                                       stack.log_path("gateway").read_text())]
    from gateway.app import FORM_FIELDS_BYTES
    limit = int(stack.cfg_upload_mb * 2**20) + FORM_FIELDS_BYTES   # the image plus the form fields
    return {"sent_mb": mb, "status": r.status_code, "seconds": took, "bytes_read": max(read) if read else None,
            "limit_bytes": limit, "pass": r.status_code == 413 and bool(read) and max(read) <= limit + (1 << 20)}


def small_beside_large(stack, big: int, n: int) -> dict:
    smalls = test_images(n, 32)
    idle = [_send(stack.gateway_url, p) for p in smalls]
    rx = psutil.Process(stack.procs["receiver"].pid)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault("big", _send(stack.gateway_url, _png(big), timeout=900,
                                                                     timeout_s="600")))
    th.start()
    time.sleep(3.0)   # encode done, receiver decoding the large one
    beside = [_send(stack.gateway_url, p) for p in smalls]
    th.join()
    peak = _peak_rss_mb(rx)
    a, b = _lat(idle), _lat(beside)
    return {"big_side": big, "big_status": out["big"][0], "big_seconds": out["big"][1], "idle": a, "beside": b,
            "p50_ratio_beside_vs_idle": b["p50_s"] / a["p50_s"], "receiver_peak_rss_mb": peak,
            "pass": b["ok"] == n and b["max_s"] < 5}


def _peak_rss_mb(proc: psutil.Process) -> float | None:
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024
    except (OSError, AttributeError):
        return None


def idle_connections(stack, n_idle: int, n: int) -> dict:
    port = stack.ports["gateway"]
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n_idle)]
    try:
        rows = [_send(stack.gateway_url, p, timeout=30) for p in test_images(n, 32)]
        time.sleep(11)   # the default header timeout is 10 s
        closed = sum(_is_closed(s) for s in socks)
    finally:
        for s in socks:
            s.close()
    lat = _lat(rows)
    return {"idle_sockets": n_idle, "new_clients": lat, "idle_closed_after_11s": closed,
            "pass": lat["ok"] == n and lat["max_s"] < 5}


def _is_closed(s: socket.socket) -> bool:
    s.settimeout(0.01)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def field_flood(stack) -> dict:
    gw = psutil.Process(stack.procs["gateway"].pid)
    before = gw.memory_info().rss / 2**20
    r = httpx.post(f"{stack.gateway_url}/v1/transmit", data={f"f{i}": "x" * (1 << 20) for i in range(100)},
                   files={"image": ("a.png", b"x", "image/png")}, timeout=60)
    after = gw.memory_info().rss / 2**20
    return {"status": r.status_code, "detail": r.json().get("detail"), "gateway_rss_growth_mb": after - before,
            "pass": r.status_code in (400, 413) and after - before < 50}


def write(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    c, s, i, f = res["chunked_upload"], res["small_beside_large"], res["idle_connections"], res["field_flood"]
    md = [f"# Gateway front door ({res['date']})", "", f"`{res['command']}`", "",
          f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores; stack: CPU, SCCDM_THREADS="
          f"{res['threads']}, default limits.", "",
          "| check | measured | goal | pass |", "|---|---|---|---|",
          f"| {c['sent_mb']} MB chunked upload | HTTP {c['status']} after {c['seconds']:.2f} s, "
          f"{c['bytes_read']} bytes read (limit {c['limit_bytes']}) | 413 after at most the limit | {c['pass']} |",
          f"| 32x32 beside a {s['big_side']}x{s['big_side']} photo | p50 {s['beside']['p50_s']:.3f} s, max "
          f"{s['beside']['max_s']:.3f} s ({s['beside']['ok']}/{s['beside']['n']} ok); idle p50 "
          f"{s['idle']['p50_s']:.3f} s, ratio {s['p50_ratio_beside_vs_idle']:.2f} | every answer < 5 s | {s['pass']} |",
          f"| {i['idle_sockets']} idle connections | new clients {i['new_clients']['ok']}/{i['new_clients']['n']} ok, "
          f"max {i['new_clients']['max_s']:.3f} s; {i['idle_closed_after_11s']} idle closed after 11 s | no lock-out "
          f"| {i['pass']} |",
          f"| 100 fields x 1 MB | HTTP {f['status']} ({f['detail']}); gateway RSS +{f['gateway_rss_growth_mb']:.1f} MB "
          f"| 4xx, bounded memory | {f['pass']} |", "",
          f"The {s['big_side']}x{s['big_side']} request: HTTP {s['big_status']} in {s['big_seconds']:.1f} s; receiver "
          f"peak RSS {s['receiver_peak_rss_mb']:.0f} MB (VmHWM, whole run).", ""]
    out.with_suffix(".md").write_text("\n".join(md))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big", type=int, default=2048, help="side of the large photo")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections to open")
    ap.add_argument("--n", type=int, default=20, help="32x32 requests per measurement")
    ap.add_argument("--threads", type=int, default=1, help="SCCDM_THREADS of the services")
    ap.add_argument("--out", type=Path, default=RESULTS / "front_door")
    a = ap.parse_args(argv)
    from sccdm.stack import Stack

    env = {"SCCDM_DEVICE": "cpu", "SCCDM_THREADS": str(a.threads), "SCCDM_MAX_PIXELS": str(max(a.big, 2048) ** 2)}
    res = {"command": "python " + " ".join(shlex.quote(x) for x in ["benchmarks/front_door.py", *(argv or sys.argv[1:])]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "threads": a.threads}
    with Stack(env=env) as stack:
        stack.cfg_upload_mb = 16.0   # the default SCCDM_MAX_UPLOAD_MB
        steps = [("chunked_upload", lambda: chunked_upload(stack)),
                 ("field_flood", lambda: field_flood(stack)),
                 ("idle_connections", lambda: idle_connections(stack, a.idle, a.n)),
                 ("small_beside_large", lambda: small_beside_large(stack, a.big, a.n))]
        for i, (name, fn) in enumerate(steps, 1):
            t0 = time.monotonic()
            res[name] = fn()
            print(f"[{i}/{len(steps)}] {name}: pass={res[name]['pass']} ({time.monotonic() - t0:.0f} s)", flush=True)
    write(res, a.out)
    print(a.out.with_suffix(".md").read_text())
    return 0 if all(res[k]["pass"] for k, _ in steps) else 1


if __name__ == "__main__":
    raise SystemExit(main())
