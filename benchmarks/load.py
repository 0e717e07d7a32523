"""Load benchmark of the gateway: N requests from C concurrent clients (httpx async) through
gateway -> transmitter -> channel -> receiver, after a warm-up at the same concurrency.

    python benchmarks/load.py                                   # 5000 requests, 32 clients, own stack
    python benchmarks/load.py --requests 500 --concurrency 8 --url http://127.0.0.1:8000 --pids 1,2,3,4
    python benchmarks/load.py --kill receiver --kill-at 0.5 --out benchmarks/results/load_restart

Records throughput, latency p50/p90/p99/max, the count of each HTTP status (and timeouts),
and the RSS of each service process before and after the measured run (psutil). Pass criteria:
every request answered 200 (no timeout, no 5xx) and every process's RSS after within 10 % of before.
With ``--kill SERVICE`` (own stack only, supervised as ``sccdm stack up`` runs it) that service is
SIGKILLed when ``--kill-at`` of the measured requests are done; the supervisor restarts it and the
gateway's retries carry the requests in flight. Also checked: the gateway's own count of /v1/transmit
answers per status (its /metrics) equals what the clients saw, so nothing is counted wrongly.
Writes benchmarks/results/load.json and load.md; exit code 1 when a criterion fails.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results"


def test_images(n: int, size: int) -> list[bytes]:
    """n different PNG crops (size x size) of scikit-image's astronaut."""
    from PIL import Image
    from skimage import data

    astro = data.astronaut()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        y, x = (int(v) for v in rng.integers(0, astro.shape[0] - size, 2))
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(astro[y:y + size, x:x + size])).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def rss_mb(pids: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in pids.items():
        try:
            out[name] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            out[name] = float("nan")
    return out


async def drive(url: str, n: int, clients: int, images: list[bytes], form: dict, timeout: float, label: str,
                pids: dict[str, int], token: str = "", at_done: tuple | None = None) -> dict:
    """at_done: (count, fn): fn() is called (once) by the monitor when ``count`` requests are done."""
    lat, status = [], Counter()
    peak = rss_mb(pids)
    next_i = 0
    done = 0
    t0 = time.perf_counter()
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def worker(client):
        nonlocal next_i, done
        while next_i < n:
            i = next_i
            next_i += 1
            t = time.perf_counter()
            try:
                r = await client.post("/v1/transmit", files={"image": ("x.png", images[i % len(images)])},
                                      data={**form, "seed": str(i)}, headers=headers)
                status[str(r.status_code)] += 1
            except httpx.TimeoutException:
                status["timeout"] += 1
            except httpx.HTTPError as e:
                status[f"error:{type(e).__name__}"] += 1
            lat.append((time.perf_counter() - t) * 1000)
            done += 1

    async def monitor():
        nonlocal at_done
        last = 0
        while done < n:
            await asyncio.sleep(0.2 if at_done else 1.0)
            if at_done and done >= at_done[0]:
                print(f"  {label}: {at_done[1]()} after {done} requests", flush=True)
                at_done = None
            for k, v in rss_mb(pids).items():
                peak[k] = max(peak[k], v)
            if done - last >= max(1, n // 10) or done == n:
                el = time.perf_counter() - t0
                print(f"  {label}: {done}/{n} in {el:.0f} s ({done / el:.1f} req/s), status {dict(status)}", flush=True)
                last = done

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as client:
        mon = asyncio.ensure_future(monitor())
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        mon.cancel()
    wall = time.perf_counter() - t0
    a = np.array(lat)
    return {"requests": n, "clients": clients, "wall_s": wall, "throughput_rps": n / wall,
            "p50_ms": float(np.percentile(a, 50)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()), "mean_ms": float(a.mean()),
            "status": dict(status), "peak_rss_mb": peak}


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_avg_start": list(os.getloadavg()), "commit": commit}


def gateway_counts(url: str) -> Counter:
    """The gateway's /v1/transmit answers per status, from its Prometheus /metrics."""
    out = Counter()
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("sccdm_requests_total{") and 'method="/v1/transmit"' in line and 'service="gateway"' in line:
            code = line.split('code="', 1)[1].split('"', 1)[0]
            out[code] += int(float(line.rsplit(" ", 1)[1]))
    return out


def killer(stack, name: str):
    """fn for drive(at_done=...): SIGKILL ``name`` (the supervisor starts it again)."""
    import signal

    def kill() -> str:
        pid = stack.procs[name].pid
        os.kill(pid, signal.SIGKILL)
        return f"SIGKILLed {name} (pid {pid})"
    return kill


def markdown(res: dict) -> str:
    m, meas = res["machine"], res["measured"]
    lines = [
        "# Gateway load benchmark", "",
        f"- command: `{res['command']}`",
        f"- date: {res['date']} (commit {m['commit']})",
        f"- machine: {m['cpu']}, {m['cores']} cores, no GPU; load average at start {m['load_avg_start']}, "
        f"at end {res['load_avg_end']}",
        f"- workload: {res['config']['size']}x{res['config']['size']} PNG crops of scikit-image's astronaut, "
        f"model {res['config']['model'] or '(default)'}, {res['config']['channel']} {res['config']['snr_db']} dB, "
        f"refine {res['config']['refine']}; warm-up {res['warmup']['requests']} requests first",
        f"- services: SCCDM_THREADS={res['config']['threads']}, SCCDM_MAX_BATCH={res['config']['max_batch']}",
        *([f"- fault: the {res['config']['kill']} SIGKILLed after {res['config']['kill_at']:.0%} of the measured "
           f"requests; the supervisor (as in `sccdm stack up`) restarts it"] if res["config"].get("kill") else []),
        "",
        "| phase | requests | clients | req/s | p50 ms | p90 ms | p99 ms | max ms | status counts |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in (("warm-up", res["warmup"]), ("measured", meas)):
        lines.append(f"| {name} | {r['requests']} | {r['clients']} | {r['throughput_rps']:.1f} | {r['p50_ms']:.0f} | "
                     f"{r['p90_ms']:.0f} | {r['p99_ms']:.0f} | {r['max_ms']:.0f} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(r['status'].items()))} |")
    lines += ["", "| process | RSS before MB | RSS after MB | change | peak MB |", "|---|---|---|---|---|"]
    for k in res["rss_before_mb"]:
        b, a = res["rss_before_mb"][k], res["rss_after_mb"][k]
        lines.append(f"| {k} | {b:.0f} | {a:.0f} | {100 * (a - b) / b:+.1f} % | {meas['peak_rss_mb'][k]:.0f} |")
    lines += ["", "## Criteria", ""]
    for k, v in res["criteria"].items():
        lines.append(f"- {k}: {'PASS' if v['pass'] else 'FAIL'} ({v['detail']})")
    if res.get("note"):
        lines += ["", "## Note", "", res["note"]]
    return "\n".join(lines) + "\n"


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--warmup", type=int, default=300, help="requests before the measurement (same concurrency)")
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--model", default="", help="zoo model (default: the services' default)")
    ap.add_argument("--refine", choices=["true", "false"], default="true")
    ap.add_argument("--channel", default="awgn")
    ap.add_argument("--snr", type=float, default=10.0)
    ap.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, s")
    ap.add_argument("--url", default="", help="an existing gateway (default: start a stack here)")
    ap.add_argument("--pids", default="", help="with --url: transmitter,channel,receiver,gateway pids for RSS")
    ap.add_argument("--threads", type=int, default=1, help="SCCDM_THREADS of the stack started here")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--token", default=os.environ.get("SCCDM_API_TOKEN", ""))
    ap.add_argument("--rss-tolerance", type=float, default=0.10)
    ap.add_argument("--kill", choices=["transmitter", "channel", "receiver"], default=None,
                    help="SIGKILL this service during the measured run (own, supervised stack only)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of the measured requests done at the kill")
    ap.add_argument("--out", default=str(RESULTS / "load"), help="output path without extension")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    if args.kill and args.url:
        ap.error("--kill needs the stack this script starts (no --url)")
    return args


def own_stack(args):
    from sccdm.stack import Stack
    env = {"SCCDM_DEVICE": "cpu", "SCCDM_THREADS": str(args.threads), "SCCDM_MAX_BATCH": str(args.max_batch),
           "SCCDM_LOG_LEVEL": "WARNING", "OMP_NUM_THREADS": str(max(1, args.threads))}
    stack = Stack(gateway_port=0, env=env, supervise=bool(args.kill))
    print(f"starting the stack (logs in {stack.log_dir}) ...", flush=True)
    stack.start(timeout=300)
    return stack


def run(args, url: str, pids: dict, stack) -> dict:
    """Warm-up, then the measured run (with the kill, if asked); RSS and the gateway's counts around it."""
    images = test_images(16, args.size)
    form = {"refine": args.refine, "channel": args.channel, "snr_db": str(args.snr)}
    if args.model:
        form["model"] = args.model
    print(f"warm-up: {args.warmup} requests at {args.concurrency} clients", flush=True)
    warm = asyncio.run(drive(url, args.warmup, args.concurrency, images, form, args.timeout, "warm-up", pids,
                             args.token))
    time.sleep(2.0)
    before, counted0 = rss_mb(pids), gateway_counts(url)
    print(f"measuring: {args.requests} requests at {args.concurrency} clients; RSS before "
          f"{ {k: round(v) for k, v in before.items()} } MB", flush=True)
    at = (int(args.kill_at * args.requests), killer(stack, args.kill)) if args.kill else None
    meas = asyncio.run(drive(url, args.requests, args.concurrency, images, form, args.timeout, "measured", pids,
                             args.token, at_done=at))
    time.sleep(2.0)
    if stack:  # a restarted service has a new pid
        pids = {n: p.pid for n, p in stack.procs.items()}
    counted = gateway_counts(url) - counted0
    return {"warm": warm, "meas": meas, "before": before, "after": rss_mb(pids), "counted": dict(counted),
            "dead": stack.dead() if stack else [], "restarts": dict(stack.restarts) if stack else {}}


def criteria(args, r: dict) -> dict:
    meas, before, after = r["meas"], r["before"], r["after"]
    ok200 = meas["status"].get("200", 0)
    growth = {k: (after[k] - before[k]) / before[k] for k in before}
    seen = {k: v for k, v in meas["status"].items() if k[0].isdigit()}
    return {
        "every request answered 200": {"pass": ok200 == args.requests,
                                       "detail": f"{ok200}/{args.requests} answered 200; statuses {meas['status']}"},
        "no timeouts, no 5xx": {"pass": not any(k == "timeout" or k.startswith(("5", "error")) for k in meas["status"]),
                                "detail": f"client timeout {args.timeout:g} s"},
        f"RSS after within {args.rss_tolerance:.0%} of before": {
            "pass": bool(before) and all(abs(g) <= args.rss_tolerance for g in growth.values()),
            "detail": ", ".join(f"{k} {100 * g:+.1f} %" for k, g in growth.items()) or "no pids given"},
        "no service process died": {"pass": not r["dead"], "detail": ", ".join(r["dead"]) or "all alive"},
        "the gateway counted what the clients saw": {
            "pass": r["counted"] == seen, "detail": f"gateway /metrics {r['counted']}, clients {seen}"},
    }


def main(argv=None) -> int:
    args = parse(argv)
    mach = machine()  # load average before anything of ours runs
    stack = None
    if args.url:
        url = args.url
        names = ("transmitter", "channel", "receiver", "gateway")
        pids = {n: int(p) for n, p in zip(names, args.pids.split(","))} if args.pids else {}
    else:
        stack = own_stack(args)
        url = stack.gateway_url
        pids = {n: p.pid for n, p in stack.procs.items()}
    try:
        r = run(args, url, pids, stack)
    finally:
        if stack:
            stack.stop()
    crit = criteria(args, r)
    if args.kill:
        crit[f"{args.kill} restarted by the supervisor"] = {"pass": r["restarts"].get(args.kill, 0) >= 1,
                                                           "detail": f"restarts {r['restarts']}"}
    res = {"command": "python " + " ".join(shlex.quote(a) for a in [sys.argv[0]] + (argv or sys.argv[1:])),
           "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": mach,
           "load_avg_end": [round(x, 2) for x in os.getloadavg()],
           "config": {"size": args.size, "model": args.model, "refine": args.refine, "channel": args.channel,
                      "snr_db": args.snr, "threads": args.threads, "max_batch": args.max_batch,
                      "own_stack": stack is not None, "kill": args.kill, "kill_at": args.kill_at},
           "warmup": r["warm"], "measured": r["meas"], "rss_before_mb": r["before"], "rss_after_mb": r["after"],
           "rss_growth": {k: (r["after"][k] - r["before"][k]) / r["before"][k] for k in r["before"]},
           "gateway_counted": r["counted"], "criteria": crit, "note": args.note}
    res["machine"]["load_avg_start"] = [round(x, 2) for x in res["machine"]["load_avg_start"]]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    out.with_suffix(".md").write_text(md)
    print("\n" + md)
    return 0 if all(c["pass"] for c in crit.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
