"""Chaos benchmark (issue 11): SIGKILL each process of a supervised stack in turn, under load.

    python benchmarks/chaos.py                  # writes benchmarks/results/chaos.{json,md}
    python benchmarks/chaos.py --rounds 3 --clients 8

On its own ``Stack(supervise=True)`` (CPU, SCCDM_THREADS=1), ``--clients`` threads send 32x32 images
through the gateway with a ``--deadline`` (timeout_s); transmitter, channel, receiver and gateway are
SIGKILLed in turn (``--rounds`` times). Per kill: seconds until the stack serves again (new process
SERVING over gRPC health, gateway /readyz 200: sccdm.chaos.kill_and_wait), requests sent while the
service was down or in flight at the kill and how many failed, requests sent after it was back and how
many failed, the longest request. It runs twice: with the gateway's bounded wait for a restarting
backend (SCCDM_BACKEND_READY_WAIT_S, default 8 s) and without it (0: gRPC's retry policy alone), so the
wait's effect is measured, not assumed. Goals: serving again within 10 s; nothing past its deadline;
every request after the restart answered 200.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
RESULTS = REPO / "benchmarks" / "results"

from load import machine, test_images  # noqa: E402  (benchmarks/load.py: one definition of each)


def one_kill(stack, load, name: str, settle_s: float) -> dict:
    from sccdm.chaos import kill_and_wait, summary
    t_kill, back_s = kill_and_wait(stack, name, timeout=60)
    time.sleep(settle_s)   # load after the restart, before the next kill
    s = summary(load.log, t_kill, t_kill + back_s, time.monotonic() - 1.0)
    return {"service": name, "serving_again_s": round(back_s, 2), **s}


def run_mode(ready_wait_s: float, a) -> dict:
    from sccdm.chaos import Load
    from sccdm.stack import ALL, Stack

    env = {"SCCDM_DEVICE": "cpu", "SCCDM_THREADS": "1", "SCCDM_LOG_LEVEL": "WARNING",
           "SCCDM_BACKEND_READY_WAIT_S": str(ready_wait_s)}
    kills = []
    with Stack(env=env, supervise=True) as stack:
        load = Load(stack.gateway_url, test_images(1, 32)[0], clients=a.clients, deadline_s=a.deadline).start()
        try:
            load.wait_ok(3, time.monotonic(), 60)
            for r in range(a.rounds):
                for name in ALL:
                    kills.append({"round": r + 1, **one_kill(stack, load, name, a.settle)})
                    print(f"  ready_wait {ready_wait_s:g} s: {kills[-1]}", flush=True)
        finally:
            load.stop()
        restarts = dict(stack.restarts)
    log = load.log
    return {"ready_wait_s": ready_wait_s, "kills": kills, "restarts": restarts, "requests": len(log),
            "failed": sum(o.status != 200 for o in log), "max_request_s": round(max(o.dt for o in log), 3),
            "pass": all(k["serving_again_s"] < 10 and k["failed_after"] == 0 for k in kills)
            and all(o.dt < a.deadline + 1 for o in log)}


def write(res: dict, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2))
    m = res["machine"]
    md = [f"# Chaos: SIGKILL under load ({res['date']})", "", f"`{res['command']}`", "",
          f"Machine: {m['cpu']}, {m['cores']} cores (shared); stack: CPU, SCCDM_THREADS=1, supervised "
          f"(`Stack(supervise=True)`, as `sccdm stack up`); {res['clients']} clients sending 32x32 images, "
          f"deadline {res['deadline_s']:g} s.", ""]
    for mode in res["modes"]:
        md += [f"## Gateway ready wait {mode['ready_wait_s']:g} s (SCCDM_BACKEND_READY_WAIT_S)", "",
               f"{mode['requests']} requests, {mode['failed']} failed, longest {mode['max_request_s']:.2f} s; "
               f"restarts {mode['restarts']}; goals met: {mode['pass']}", "",
               "| round | killed | serving again (s) | sent during / failed | sent after / failed | longest (s) |"
               " failures |", "|---|---|---|---|---|---|---|"]
        for k in mode["kills"]:
            md.append(f"| {k['round']} | {k['service']} | {k['serving_again_s']:.2f} | {k['during']} / "
                      f"{k['failed_during']} | {k['after']} / {k['failed_after']} | {k['max_request_s']:.2f} | "
                      f"{'; '.join(k['failures'])[:160]} |")
        md.append("")
    md += ["'During' counts requests sent from 1 s before the kill until the service served again (in flight "
           "at the kill, or sent during the outage); 'after', those sent after it was back, until shortly "
           "before the next kill.", ""]
    out.with_suffix(".md").write_text("\n".join(md))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="times each service is killed")
    ap.add_argument("--deadline", type=float, default=15.0, help="timeout_s of each request")
    ap.add_argument("--settle", type=float, default=4.0, help="seconds of load between a restart and the next kill")
    ap.add_argument("--modes", default="8,0", help="SCCDM_BACKEND_READY_WAIT_S values to run, comma-separated")
    ap.add_argument("--out", type=Path, default=RESULTS / "chaos")
    a = ap.parse_args(argv)
    res = {"command": "python " + " ".join(shlex.quote(x) for x in ["benchmarks/chaos.py", *(argv or sys.argv[1:])]),
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "clients": a.clients, "deadline_s": a.deadline, "modes": []}
    for w in (float(x) for x in a.modes.split(",")):
        res["modes"].append(run_mode(w, a))
    write(res, a.out)
    print(a.out.with_suffix(".md").read_text())
    return 0 if res["modes"][0]["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
