"""Does the refiner's prior matter? NSF, served refinement, swapped priors and the teacher's oracle prior per SNR.

    python benchmarks/prior_ablation.py --model sc-cdm-paper-awgn --model sc-cdm-cpu --limit 500 \
        --out benchmarks/results/prior_ablation

For each model and SNR (same images and channel draws for all rows; :mod:`sccdm.prior_ablation`):
PSNR of NSF (decoder output), of the refinement with the served prior (student + T = 4 reverse
diffusion steps), the same with every image given its neighbour's prior (``swap cost``), and with
the teacher's prior (it sees the original: the ceiling of what a prior can add) and its swap, and with
the mean of the other images' teacher priors in the batch (what a prior that knows only the SNR gives).
Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sccdm import zoo  # noqa: E402
from sccdm.data import image_to_tensor, load_split  # noqa: E402
from sccdm.holdout import holdout_photos  # noqa: E402
from sccdm.prior_ablation import prior_ablation  # noqa: E402


def _images(data: str | None, limit: int, crop: int | None) -> torch.Tensor:
    if not crop:
        return image_to_tensor(load_split(data, "test", limit))
    return holdout_photos(data, crop, limit)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", required=True)
    p.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"])
    p.add_argument("--snr", type=float, nargs="+", default=[0, 3, 6, 9, 12, 15])
    p.add_argument("--limit", type=int, default=500)
    p.add_argument("--data", default=None, help="CIFAR-style set (default) or, with --crop, a folder of photos")
    p.add_argument("--crop", type=int, default=None, help="photos: centre CROPxCROP crops (Kodak: 256)")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/results/prior_ablation")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    x = _images(a.data, a.limit, a.crop)
    t0 = time.time()
    rows = []
    for name in a.model:
        m = zoo.load(name)
        for snr in a.snr:
            r = prior_ablation(m, x, a.channel, snr, batch=a.batch)
            r["sha256"] = {k: v["sha256"] for k, v in zoo.entry(name)["parts"].items()}
            rows.append(r)
            print(json.dumps({k: r[k] for k in ("model", "snr_db", "nsf", "served", "swap_cost_db",
                                                 "teacher_swap_cost_db", "refine_gain_db", "over_mean_prior_db")}), flush=True)
    meta = {"command": "python benchmarks/prior_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": round(time.time() - t0, 1),
            "images": (f"first {len(x)} CIFAR-10 test images (JPEG copy)" if not a.crop else
                       f"centre {a.crop}x{a.crop} crops of the first {len(x)} images of {a.data}"), "channel": a.channel}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = ["# Prior ablation: is the refinement the paper's prior, or a post-filter?", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}; {meta['date']}; {meta['wall_s']} s; "
             f"{meta['images']}, {a.channel.upper()}", "",
             "| model | SNR dB | NSF | served prior | gain | served swapped | swap cost | teacher prior (oracle) "
             "| teacher swap cost | SNR-mean teacher prior | served minus it | prior spread |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['snr_db']:g} | {r['nsf']:.2f} | {r['served']:.2f} | {r['refine_gain_db']:+.2f} | "
                     f"{r['served_swapped']:.2f} | {r['swap_cost_db']:.3f} | {r['teacher']:.2f} | "
                     f"{r['teacher_swap_cost_db']:.3f} | {r['teacher_mean']:.2f} | {r['over_mean_prior_db']:+.3f} | "
                     f"{r['z_spread']:.3f} |")
    lines += ["", "PSNR in dB. Swap: every image restored with the next image's prior. Teacher: N1-S1's prior, "
              "which sees the original image (not available at a receiver). SNR-mean teacher prior: every image restored "
              "with the mean of the teacher priors of the other images in its batch (knows the SNR, nothing about the "
              "image); "
              "served minus it is what the served prior adds beyond the SNR. Prior spread: mean across-image std of "
              "the served prior over its mean magnitude.", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
