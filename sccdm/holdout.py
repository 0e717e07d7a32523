"""Held-out checks during training: PSNR on images the run never trains on, and the prior-swap cost.

Training loss says how well a model fits its batches; these numbers say whether it
is still getting better where it matters (the convergence rule of the baseline is
read off them) and, for the refiner, whether the diffusion prior carries image
information: ``prior_swap_db`` is how much PSNR the restorer loses when every
image gets the next image's prior (zero means the prior is ignored).

Every call uses the same images, SNRs and channel draws (a fresh generator with a
fixed seed), so successive values are comparable.
"""
from __future__ import annotations

import torch

from .channels import ChannelConfig
from .data import center_crops, image_to_tensor, load_photo_folder
from .metrics import psnr
from .pipeline import transmit_train

__all__ = ["HOLDOUT_SNRS", "holdout_metrics", "holdout_photos"]

HOLDOUT_SNRS = (1.0, 7.0, 13.0)


def _psnr(x_hat: torch.Tensor, x: torch.Tensor) -> float:
    return float(psnr(x_hat.float().clamp(0, 1), x).mean())


def holdout_photos(folder, crop: int, limit: int) -> torch.Tensor:
    """Centre crop x crop crops of the first ``limit`` photos under ``folder`` with both sides >= crop:
    float [N, 3, crop, crop]. Fixed crops, so successive held-out values compare."""
    return image_to_tensor(center_crops(load_photo_folder(folder, min_side=crop, limit=limit), crop))


@torch.no_grad()
def holdout_metrics(stage: str, model: torch.nn.Module, images: torch.Tensor, channel: str,
                    codec: torch.nn.Module | None = None, batch: int = 500, seed: int = 1234,
                    amp: torch.dtype | None = None, fading: str = "block") -> dict:
    """images: float [N, 3, H, W] on the model's device. Returns mean PSNRs (dB) over HOLDOUT_SNRS.
    fading: of a ``rayleigh`` channel, ``block`` or ``fast``.

    codec / deepjscc: ``{"val_psnr_db"}``; refine1: NSF, refined with the teacher's prior and
    with a swapped prior; refine2 (and the served path): NSF, refined with the diffusion prior,
    and with swapped priors.
    """
    was_training = model.training
    model.eval()
    dev = images.device
    kind = "rayleigh" if channel == "rayleigh" else "awgn"
    cfg = ChannelConfig(kind=kind, fading=fading if kind == "rayleigh" else "block", csi="mmse")
    sums: dict[str, float] = {}
    n = 0
    gen = torch.Generator(device=dev).manual_seed(seed)
    for snr in HOLDOUT_SNRS:
        for i in range(0, len(images), batch):
            x = images[i:i + batch]
            s = torch.full((x.shape[0],), snr, device=dev)
            with torch.autocast(dev.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                if stage in ("codec", "deepjscc"):
                    row = {"val_psnr_db": _psnr(transmit_train(model, x, s, cfg, gen), x)}
                    # a rate-adaptive codec: every smaller rate too (val_psnr_db stays the full rate's)
                    for c in getattr(model.cfg, "rates", ())[:-1]:
                        row[f"val_psnr_c{c}_db"] = _psnr(transmit_train(model, x, s, cfg, gen, channels=c), x)
                else:
                    s_hat = transmit_train(codec, x, s, cfg, gen).float().clamp(0, 1)
                    if stage == "refine1":
                        z = model.teacher_prior(x, s_hat)
                    else:
                        zs = torch.randn(x.shape[0], model.cfg.prior_dim, generator=gen, device=dev)
                        z = model.student_prior(s_hat, z_start=zs, snr_db=s)
                    row = {"val_nsf_db": _psnr(s_hat, x),
                           "val_psnr_db": _psnr(model.restorer(s_hat, z), x),
                           "val_swap_db": _psnr(model.restorer(s_hat, z.roll(1, dims=0)), x)}
            w = x.shape[0]
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v * w
            n += w
    model.train(was_training)
    out = {k: round(v / n, 4) for k, v in sums.items()}
    if "val_swap_db" in out:
        out["prior_swap_db"] = round(out["val_psnr_db"] - out.pop("val_swap_db"), 4)
        out["refine_gain_db"] = round(out["val_psnr_db"] - out["val_nsf_db"], 4)
    return out
