"""Per-SNR refinement of run-folder refiners on held-out photo crops, before one is published.

    python scripts/compare_refiners.py runs/s30/deep-r2 runs/s31/X --codec runs/photo-served-codec --snr 0 10

For each refiner and SNR (AWGN, or Rayleigh block fading with ``--channel rayleigh``), on centre crops of held-out photos (default: 24 CBSD68 256 px crops, not Kodak,
which decides nothing here): the gain over NSF of the served prior, of the teacher's (oracle) prior and of the
SNR-only prior (the mean of the other images' teacher priors; ``sccdm.prior_ablation``). Prints one JSON line each.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sccdm.holdout import holdout_photos  # noqa: E402
from sccdm.pipeline import SCCDM  # noqa: E402
from sccdm.prior_ablation import prior_ablation  # noqa: E402
from sccdm.weights import load_model_dir  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("refiners", nargs="+", help="run folders (model.safetensors + config.json)")
    p.add_argument("--codec", required=True, help="run folder of the codec the refiners were fitted on")
    p.add_argument("--data", default="data/photos/test/cbsd68")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0])
    p.add_argument("--channel", default="awgn", choices=("awgn", "rayleigh"),
                   help="rayleigh: block fading, MMSE equalisation, one draw per image (the same draws for every refiner)")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = load_model_dir(a.codec).float().eval()
    images = holdout_photos(a.data, a.crop, a.limit)
    for run in a.refiners:
        t0 = time.time()
        model = SCCDM(codec, load_model_dir(run).float().eval(), run)
        for snr in a.snr:
            r = prior_ablation(model, images, channel=a.channel, snr_db=snr, batch=4)
            gain = {k: round(r[k] - r["nsf"], 4) for k in ("served", "teacher", "teacher_mean")}
            print(json.dumps({"refiner": run, "channel": a.channel, "snr_db": snr, "nsf": r["nsf"], **gain, "s": round(time.time() - t0)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
