"""Held-out numbers of any refiner on any codec, the same crops, SNRs and draws as ``sccdm train --val``.

    python scripts/holdout_refiner.py --codec runs/photo-rayleigh-codec --refiner sccdm/zoo/weights/X \
        --stem refiner --channel rayleigh --data data/photos/test/cbsd68 --crop 128 --val 24

Prints one JSON line (val_nsf_db, val_psnr_db, prior_swap_db, refine_gain_db), so a shipped refiner
can be compared with a training run's log before it is replaced.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sccdm.holdout import holdout_metrics, holdout_photos  # noqa: E402
from sccdm.weights import load_model_dir  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", required=True, help="folder with model.safetensors + config.json (or --codec-stem)")
    p.add_argument("--codec-stem", default="model")
    p.add_argument("--refiner", required=True, help="run folder (model.*) or zoo folder (--stem refiner)")
    p.add_argument("--stem", default="model")
    p.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"])
    p.add_argument("--data", required=True, help="folder of test photos")
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--val", type=int, default=24)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = load_model_dir(a.codec, stem=a.codec_stem).float().eval()
    refiner = load_model_dir(a.refiner, stem=a.stem).float().eval()
    out = holdout_metrics("refine2", refiner, holdout_photos(a.data, a.crop, a.val), a.channel, codec)
    print(json.dumps({"refiner": a.refiner, "codec": a.codec, "channel": a.channel, **out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
