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
    import torch

    from sccdm import pipeline, zoo
    from sccdm.channels import ChannelConfig
    from sccdm.data import image_to_tensor
    from sccdm.stack import Stack

    def count(size, c):
        base = max(16, 4 * c) if size <= 64 else max(4, c)
        return max(c, int(base * args.scale))

    model = zoo.load("sc-cdm-cpu", device="cpu")
    cfg = ChannelConfig("awgn", 10.0)
    rows = []
    print("starting the stack ...", flush=True)
    with Stack(gateway_port=0, env={"SCCDM_DEVICE": "cpu", "SCCDM_LOG_LEVEL": "WARNING"}) as stack:
        client = httpx.Client(base_url=stack.gateway_url, timeout=600,
                              limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))

        def net(job):
            i, (png, _) = job
            r = client.post("/v1/transmit", files={"image": ("x.png", png, "image/png")},
                            data={"snr_db": "10", "seed": str(i), "refine": str(refine).lower()})
            r.raise_for_status()
            return r.json()["timings_ms"]["receiver_batch_requests"]

        def local_batched(job):
            i, pairs = job
            x = torch.cat([image_to_tensor(arr)[None] for _, arr in pairs])
            pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(i), refine=refine,
                              refine_generator=torch.Generator().manual_seed(i))
            return len(pairs)

        def local(job):
            i, (_, arr) = job
            x = image_to_tensor(arr)[None]
            pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(i), refine=refine,
                              refine_generator=torch.Generator().manual_seed(i))
            return 1

        for size in args.sizes:
            warm = list(enumerate(images(size, 4)))
            drive(net, warm, 2)
            drive(local, warm, 2)
            for c in args.clients:
                n = count(size, c)
                jobs = list(enumerate(images(size, n)))
                res = {}
                for mode, fn in (("networked", net), ("in-process", local)):
                    r = drive(fn, jobs, c)
                    batches = r.pop("extra")
                    row = {"size": size, "clients": c, "mode": mode, **{k: round(v, 3) if isinstance(v, float) else v
                                                                        for k, v in r.items()}}
                    if mode == "networked":
                        row["mean_receiver_batch"] = round(statistics.mean(batches), 2)
                    res[mode] = row
                    rows.append(row)
                    print(f"{size:>4}x{size:<4} clients {c:>3}  {mode:<10} {row['images_per_s']:8.2f} img/s  "
                          f"p50 {row['p50_ms']:8.1f} ms  p99 {row['p99_ms']:8.1f} ms  ({n} requests)", flush=True)
                # the in-process best case: the same images as batches of `c` in one call, one call at a time
                chunks = [(k, [p for _, p in jobs[k:k + c]]) for k in range(0, n, c)]
                r = drive(local_batched, chunks, 1)
                r.pop("extra")
                r["images_per_s"] = n / r["wall_s"]
                r["requests"] = n
                row = {"size": size, "clients": c, "mode": "in-process batched",
                       **{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}}
                rows.append(row)
                print(f"{size:>4}x{size:<4} clients {c:>3}  {'batched':<10} {row['images_per_s']:8.2f} img/s  "
                      f"per-call p50 {row['p50_ms']:8.1f} ms", flush=True)
                ratio = res["networked"]["images_per_s"] / res["in-process"]["images_per_s"]
                res["networked"]["ratio_vs_in_process"] = round(ratio, 3)
                res["networked"]["ratio_vs_batched"] = round(res["networked"]["images_per_s"] / row["images_per_s"], 3)
                print(f"{'':>10} ratio networked / in-process: {ratio:.2f}  networked / batched in-process: "
                      f"{res['networked']['ratio_vs_batched']:.2f}", flush=True)
        client.close()

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    report = {"command": "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT)
                                                   if Path(sys.argv[0]).is_absolute() else sys.argv[0])]
                                                 + (argv if argv is not None else sys.argv[1:])),
              "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "commit": commit,
              "machine": machine(), "refine": refine, "channel": "awgn 10 dB", "model": "sc-cdm-cpu",
              "note": args.note, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "serving.json").write_text(json.dumps(report, indent=2))
    md = ["# Serving benchmark: networked stack vs in-process pipeline", "",
          f"- command: `{report['command']}`", f"- date: {report['date']} (commit {commit})",
          f"- machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, torch "
          f"{report['machine']['torch']} ({report['machine']['torch_threads']} threads), no GPU; "
          f"load average at start {report['machine']['loadavg_at_start']}",
          f"- workload: sc-cdm-cpu, AWGN 10 dB, refinement {'on' if refine else 'off'}, one image per request, "
          f"crops of scikit-image's astronaut; networked = HTTP POST /v1/transmit through gateway -> transmitter -> "
          f"channel -> receiver (all on this machine); in-process = `sccdm.pipeline.simulate` per image from the "
          f"same number of client threads",
          ]
    if args.note:
        md.append(f"- note: {args.note}")
    md += ["- `in-process batched`: the same images as batches of `clients` images per `simulate` call, one call "
           "at a time (the in-process best case; its latency columns are per call)",
           "", "| size | clients | mode | requests | images/s | p50 ms | p99 ms | mean receiver batch | "
               "networked / in-process | networked / batched |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['size']}x{r['size']} | {r['clients']} | {r['mode']} | {r['requests']} | "
                  f"{r['images_per_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r.get('mean_receiver_batch', '')} | {r.get('ratio_vs_in_process', '')} | "
                  f"{r.get('ratio_vs_batched', '')} |")
    (args.out / "serving.md").write_text("\n".join(md) + "\n")
    print(f"wrote {args.out / 'serving.json'} and {args.out / 'serving.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
