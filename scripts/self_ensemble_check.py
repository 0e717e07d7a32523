"""Would a geometric self-ensemble of the restorer pay? Gain over NSF of 1, 2, 4 and 8 restorer passes.

    python scripts/self_ensemble_check.py runs/s33/shipped --codec runs/photo-served-codec --snr 0 10

On centre crops of held-out photos (default: 24 CBSD68 256 px crops, AWGN), one served prior per image (student +
diffusion from S_hat, as the receiver computes it); pass j restores the j-th flip/transpose of S_hat and is
transformed back; the first n passes are averaged. Prints one JSON line per SNR. Not served: see the zoo README.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sccdm.channels import ChannelConfig  # noqa: E402
from sccdm.holdout import holdout_photos  # noqa: E402
from sccdm.metrics import psnr  # noqa: E402
from sccdm.pipeline import SCCDM, simulate  # noqa: E402
from sccdm.weights import load_model_dir  # noqa: E402


def _forward(t: torch.Tensor, j: int) -> torch.Tensor:
    """The j-th of the 8 symmetries of the square (j: bit 2 transpose, bit 0 flip W, bit 1 flip H)."""
    if j & 4:
        t = t.transpose(-1, -2)
    if j & 1:
        t = t.flip(-1)
    if j & 2:
        t = t.flip(-2)
    return t


def _inverse(t: torch.Tensor, j: int) -> torch.Tensor:
    if j & 2:
        t = t.flip(-2)
    if j & 1:
        t = t.flip(-1)
    if j & 4:
        t = t.transpose(-1, -2)
    return t


@torch.no_grad()
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("refiner", help="run folder (model.safetensors + config.json)")
    p.add_argument("--codec", required=True)
    p.add_argument("--data", default="data/photos/test/cbsd68")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--limit", type=int, default=24)
    p.add_argument("--snr", type=float, nargs="+", default=[0.0, 10.0])
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ref = load_model_dir(a.refiner).float().eval()
    model = SCCDM(load_model_dir(a.codec).float().eval(), ref, a.refiner)
    images = holdout_photos(a.data, a.crop, a.limit)
    for snr in a.snr:
        t0, sums = time.time(), dict.fromkeys(("nsf", 1, 2, 4, 8), 0.0)
        for i in range(0, len(images), 4):
            x = images[i:i + 4]
            link = simulate(model, x, ChannelConfig(kind="awgn", snr_db=snr), torch.Generator().manual_seed(i))
            s_hat, eff = link["s_hat"].clamp(0, 1), link["eff_snr_db"]
            z_start = torch.randn(x.shape[0], ref.cfg.prior_dim, generator=torch.Generator().manual_seed(i))
            prior = ref.student_prior(s_hat, z_start=z_start, snr_db=eff)
            outs = [_inverse(ref.restorer(_forward(s_hat, j), prior), j) for j in range(8)]
            sums["nsf"] += float(psnr(s_hat, x).sum())
            for n in (1, 2, 4, 8):
                sums[n] += float(psnr(torch.stack(outs[:n]).mean(0).clamp(0, 1), x).sum())
        n_img = len(images)
        gains = {f"x{n}": round((sums[n] - sums["nsf"]) / n_img, 4) for n in (1, 2, 4, 8)}
        print(json.dumps({"refiner": a.refiner, "snr_db": snr, "nsf": round(sums["nsf"] / n_img, 4), **gains,
                          "s": round(time.time() - t0)}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
