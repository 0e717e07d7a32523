"""Throughput and latency of the networked stack against the same pipeline in one process.

    python benchmarks/serving.py                       # 32x32 and 256x256, 1 / 8 / 32 clients
    python benchmarks/serving.py --sizes 32 --clients 1 8 --scale 0.5

For each image size and number of concurrent clients it sends the same images
(crops of scikit-image's astronaut, AWGN 10 dB, refinement on, one seed per
request) through

* ``networked``: HTTP POST /v1/transmit to a gateway started here with
  ``sccdm.stack.Stack`` (transmitter, channel, receiver, gateway as processes on
  loopback ports; dynamic batching with the default SCCDM_MAX_BATCH / SCCDM_MAX_WAIT_MS);
* ``in-process``: ``sccdm.pipeline.simulate`` on one image per call, called by the
  same number of client threads in this process (the model loaded once).

and reports images/s and p50 / p99 latency per request, plus the ratio
networked / in-process. Writes benchmarks/results/serving.json and serving.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
MODEL = "sc-cdm-cpu"  # both paths run it (the networked requests name it)


def images(size: int, n: int) -> list[tuple[bytes, np.ndarray]]:
    from PIL import Image
    from skimage import data
    astro = data.astronaut()
    rng = np.random.default_rng(size)
    out = []
    for _ in range(n):
        y, x = rng.integers(0, 512 - size + 1, 2)
        arr = np.ascontiguousarray(astro[y:y + size, x:x + size])
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append((buf.getvalue(), arr))
    return out


def pct(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q / 100 * (len(v) - 1)))))]


def drive(fn, jobs: list, clients: int) -> dict:
    """Run fn(job) for every job from `clients` threads; returns throughput and latency stats."""
    lat, extra = [], []
    lock = threading.Lock()

    def one(job):
        t0 = time.perf_counter()
        r = fn(job)
        dt_ = time.perf_counter() - t0
        with lock:
            lat.append(dt_)
            extra.append(r)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as ex:
        list(ex.map(one, jobs))
    wall = time.perf_counter() - t0
    return {"requests": len(jobs), "wall_s": wall, "images_per_s": len(jobs) / wall,
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "extra": extra}


def machine() -> dict:
    import torch
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform(),
            "loadavg_at_start": load}


def _rounded(size: int, c: int, mode: str, r: dict) -> dict:
    return {"size": size, "clients": c, "mode": mode, **{k: round(v, 3) if isinstance(v, float) else v
                                                        for k, v in r.items()}}


class _Workers:
    """The three ways one request (or one batch) is served: through the gateway, and in this process."""

    def __init__(self, client, model, cfg, refine: bool):
        self.client, self.model, self.cfg, self.refine = client, model, cfg, refine

    def net(self, job):
        i, (png, _) = job
        # named: the gateway would otherwise pick the photo model for the 256 px crops, and the in-process rows
        # run MODEL
        r = self.client.post("/v1/transmit", files={"image": ("x.png", png, "image/png")},
                             data={"snr_db": "10", "seed": str(i), "refine": str(self.refine).lower(),
                                   "model": MODEL})
        r.raise_for_status()
        assert r.json()["model"] == MODEL, r.json()["model"]
        return r.json()["timings_ms"]["receiver_batch_requests"]

    def _simulate(self, i: int, arrs) -> int:
        import torch

        from sccdm import pipeline
        from sccdm.data import image_to_tensor
        x = torch.cat([image_to_tensor(a)[None] for a in arrs])
        pipeline.simulate(self.model, x, self.cfg, torch.Generator().manual_seed(i), refine=self.refine,
                          refine_generator=torch.Generator().manual_seed(i))
        return len(arrs)

    def local(self, job):
        i, (_, arr) = job
        return self._simulate(i, [arr])

    def local_batched(self, job):
        i, pairs = job
        return self._simulate(i, [arr for _, arr in pairs])


def _measure(w: _Workers, size: int, c: int, n: int) -> list[dict]:
    """Networked, in-process and in-process batched rows for one size and client count."""
    jobs = list(enumerate(images(size, n)))
    res, rows = {}, []
    for mode, fn in (("networked", w.net), ("in-process", w.local)):
        r = drive(fn, jobs, c)
        batches = r.pop("extra")
        row = _rounded(size, c, mode, r)
        if mode == "networked":
            row["mean_receiver_batch"] = round(statistics.mean(batches), 2)
        res[mode] = row
        rows.append(row)
        print(f"{size:>4}x{size:<4} clients {c:>3}  {mode:<10} {row['images_per_s']:8.2f} img/s  "
              f"p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  ({n} requests)", flush=True)
    # the in-process best case: the same images as batches of `c` in one call, one call at a time
    chunks = [(k, [p for _, p in jobs[k:k + c]]) for k in range(0, n, c)]
    r = drive(w.local_batched, chunks, 1)
    r.pop("extra")
    r["images_per_s"], r["requests"] = n / r["wall_s"], n
    row = _rounded(size, c, "in-process batched", r)
    rows.append(row)
    print(f"{size:>4}x{size:<4} clients {c:>3}  {'batched':<10} {row['images_per_s']:8.2f} img/s  "
          f"per-call p50 {row['p50_ms']:8.1f} ms", flush=True)
    net = res["networked"]
    net["ratio_vs_in_process"] = round(net["images_per_s"] / res["in-process"]["images_per_s"], 3)
    net["ratio_vs_batched"] = round(net["images_per_s"] / row["images_per_s"], 3)
    print(f"{'':>10} ratio networked / in-process: {net['ratio_vs_in_process']:.2f}  networked / batched "
          f"in-process: {net['ratio_vs_batched']:.2f}", flush=True)
    return rows


def _markdown(report: dict, refine: bool) -> str:
    m = report["machine"]
    md = ["# Serving benchmark: networked stack vs in-process pipeline", "",
          f"- command: `{report['command']}`", f"- date: {report['date']} (commit {report['commit']})",
          f"- machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['torch_threads']} threads), no GPU; "
          f"load average at start {m['loadavg_at_start']}",
          f"- workload: {MODEL} (named in every request), AWGN 10 dB, refinement {'on' if refine else 'off'}, "
          f"one image per request, crops of scikit-image's astronaut; networked = HTTP POST /v1/transmit through "
          f"gateway -> transmitter -> channel -> receiver (all on this machine); in-process = "
          f"`sccdm.pipeline.simulate` per image from the same number of client threads",
          ]
    if report["note"]:
        md.append(f"- note: {report['note']}")
    md += ["- `in-process batched`: the same images as batches of `clients` images per `simulate` call, one call "
           "at a time (the in-process best case; its latency columns are per call)",
           "", "| size | clients | mode | requests | images/s | p50 ms | p99 ms | mean receiver batch | "
               "networked / in-process | networked / batched |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        md.append(f"| {r['size']}x{r['size']} | {r['clients']} | {r['mode']} | {r['requests']} | "
                  f"{r['images_per_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r.get('mean_receiver_batch', '')} | {r.get('ratio_vs_in_process', '')} | "
                  f"{r.get('ratio_vs_batched', '')} |")
    return "\n".join(md) + "\n"


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 256])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    ap.add_argument("--no-refine", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", default="", help="free text for the Markdown (e.g. what else ran)")
    args = ap.parse_args(argv)
    refine = not args.no_refine

    import httpx

    from sccdm import zoo
    from sccdm.channels import ChannelConfig
    from sccdm.stack import Stack

    def count(size, c):
        base = max(16, 4 * c) if size <= 64 else max(4, c)
        return max(c, int(base * args.scale))

    rows = []
    print("starting the stack ...", flush=True)
    with Stack(gateway_port=0, env={"SCCDM_DEVICE": "cpu", "SCCDM_LOG_LEVEL": "WARNING"}) as stack:
        client = httpx.Client(base_url=stack.gateway_url, timeout=600,
                              limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
        w = _Workers(client, zoo.load(MODEL, device="cpu"), ChannelConfig("awgn", 10.0), refine)
        for size in args.sizes:
            warm = list(enumerate(images(size, 4)))
            drive(w.net, warm, 2)
            drive(w.local, warm, 2)
            for c in args.clients:
                rows += _measure(w, size, c, count(size, c))
        client.close()

    script = str(Path(sys.argv[0]).relative_to(ROOT) if Path(sys.argv[0]).is_absolute() else sys.argv[0])
    report = {"command": "python " + " ".join([script] + (argv if argv is not None else sys.argv[1:])),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "commit": _commit(),
              "machine": machine(), "refine": refine, "channel": "awgn 10 dB", "model": MODEL,
              "note": args.note, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(report, indent=2))
    (args.out / "serving.md").write_text(_markdown(report, refine))
    print(f"wrote {args.out / 'serving.json'} and {args.out / 'serving.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
