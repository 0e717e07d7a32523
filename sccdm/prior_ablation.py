"""Does the refiner's diffusion prior carry image information? The ablation of REFERENCE section 4.

For one model, channel and SNR, on the same images and channel draws:

* ``nsf``: the decoder output (no refinement);
* ``served``: refined with the prior the receiver uses (N1-S2 + T reverse diffusion steps);
* ``served_swapped``: the same priors given to the wrong images (rolled by one);
* ``teacher`` / ``teacher_swapped``: refined with N1-S1's prior (it sees the original:
  an oracle, the ceiling of what a prior can add) and the rolled version;
* ``teacher_mean``: every image given the mean of the teacher's priors of the OTHER images in
  its batch (same SNR): a prior that knows the SNR and nothing about this image. A served prior
  no better than this carries no image information, whatever its swap cost;
* ``z_spread``: how much the served prior varies across images relative to its size
  (mean over dimensions of the across-image std, over the mean magnitude).

``swap_cost_db = served - served_swapped``: zero means the restorer ignores its prior and
"SC-CDM vs NSF" measures a post-filter, not the diffusion. Used by ``sccdm eval``'s
callers, ``benchmarks/prior_ablation.py`` and the test that guards the shipped weights.
"""
from __future__ import annotations

import torch

from .channels import ChannelConfig
from .metrics import psnr
from .pipeline import SCCDM, simulate

__all__ = ["prior_ablation"]


def _others_mean(z: torch.Tensor) -> torch.Tensor:
    """float [B, D], B >= 2 -> float [B, D]: row i is the mean of the other rows (leave-one-out)."""
    return (z.sum(0, keepdim=True) - z) / (z.shape[0] - 1)


@torch.no_grad()
def prior_ablation(model: SCCDM, images: torch.Tensor, channel: str = "awgn", snr_db: float = 9.0,
                   seed: int = 0, batch: int = 100) -> dict:
    """images: float [N, 3, H, W] in [0, 1]. Returns mean PSNRs (dB), swap costs and ``z_spread``."""
    if model.refiner is None:
        raise ValueError(f"model {model.name!r} has no refiner to ablate")
    r = model.refiner
    cfg = ChannelConfig(kind=channel, snr_db=snr_db)
    keys = ("nsf", "served", "served_swapped", "teacher", "teacher_swapped", "teacher_mean")
    sums = dict.fromkeys(keys, 0.0)
    zs, n_mean = [], 0
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        g = torch.Generator().manual_seed(seed * 100003 + i)
        link = simulate(model, x, cfg, g)
        s_hat, eff = link["s_hat"].clamp(0, 1), link["eff_snr_db"]
        zg = torch.Generator().manual_seed(seed * 100019 + i)
        z_start = torch.randn(x.shape[0], r.cfg.prior_dim, generator=zg)
        z_served = r.student_prior(s_hat, z_start=z_start, snr_db=eff)
        z_teacher = r.teacher_prior(x, s_hat)
        outs = {"nsf": s_hat,
                "served": r.restorer(s_hat, z_served), "served_swapped": r.restorer(s_hat, z_served.roll(1, 0)),
                "teacher": r.restorer(s_hat, z_teacher), "teacher_swapped": r.restorer(s_hat, z_teacher.roll(1, 0))}
        if x.shape[0] >= 2:  # a one-image batch (the last one) has no other images to average
            outs["teacher_mean"] = r.restorer(s_hat, _others_mean(z_teacher))
            n_mean += x.shape[0]
        for k, o in outs.items():
            sums[k] += float(psnr(o.clamp(0, 1), x).sum())
        zs.append(z_served)
    n = len(images)
    res = {k: round(v / n, 4) for k, v in sums.items() if k != "teacher_mean"}
    res["teacher_mean"] = round(sums["teacher_mean"] / n_mean, 4) if n_mean else float("nan")
    z = torch.cat(zs)
    res["z_spread"] = round(float(z.std(0).mean() / z.abs().mean().clamp_min(1e-12)), 4)
    res["swap_cost_db"] = round(res["served"] - res["served_swapped"], 4)
    res["teacher_swap_cost_db"] = round(res["teacher"] - res["teacher_swapped"], 4)
    res["refine_gain_db"] = round(res["served"] - res["nsf"], 4)
    res["over_mean_prior_db"] = round(res["served"] - res["teacher_mean"], 4)
    res.update({"model": model.name, "channel": channel, "snr_db": snr_db, "n_images": n})
    return res
