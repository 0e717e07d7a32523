"""The receiver's computation on a batch of requests, equal to :func:`sccdm.pipeline.simulate`'s tail.

Each request keeps its own equaliser inputs and its own diffusion seed: the noise
of request i is ``torch.randn((B_i, prior_dim), generator=manual_seed(seed_i))``,
exactly what ``model.refine(s_hat_i, generator)`` would draw for it alone. Batching
therefore changes no random draw; it can change float rounding in the last bits
(batched matrix products), which is why a request that runs alone (the usual case
at low load, and always with SCCDM_MAX_BATCH=1) is bit-identical to the in-process
pipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from sccdm import pipeline, tiling
from sccdm.channels import equalize, symbol_snr_db


@dataclass
class RxItem:
    model: str
    y: torch.Tensor               # complex64 [B, k] received symbols
    h: torch.Tensor | None        # complex64 [B, k] CSI or None
    noise_var: torch.Tensor       # float32 [B]
    mask: torch.Tensor | None     # bool [B, k] or None
    csi_mode: str
    latent_shape: tuple           # (C, h, w)
    image_size: tuple             # (H, W)
    refine: bool
    seed: int

    @property
    def key(self):
        return (self.model, self.latent_shape, self.image_size, self.refine)


def refine_batch(model, s_hat: torch.Tensor, items: list[RxItem], tile_pixels: int | None = None,
                 snr_db: torch.Tensor | None = None) -> torch.Tensor:
    """s_hat: float [B, 3, H, W] of all items -> refined float [B, 3, H, W], per-item seeded noise.

    Images above ``tile_pixels`` are refined in tiles (:mod:`sccdm.tiling`), with the same draws."""
    if len(items) == 1 and s_hat.device.type == "cpu":
        return tiling.refine(model, s_hat, generator=torch.Generator().manual_seed(items[0].seed),
                             tile_pixels=tile_pixels, snr_db=snr_db)
    dim = model.refiner.cfg.prior_dim
    noise = torch.cat([torch.randn((it.y.shape[0], dim), generator=torch.Generator().manual_seed(it.seed))
                       for it in items]).to(s_hat.device, s_hat.dtype)
    return tiling.refine(model, s_hat, z_start=noise, tile_pixels=tile_pixels, snr_db=snr_db)


@torch.no_grad()
def run_batch(model, items: list[RxItem], device, tile_pixels: int | None = None) -> list[dict]:
    """Items share model, latent shape, image size and refine flag. Returns per item
    ``{"x_hat", "s_hat": float [B_i, 3, H, W] (CPU), "eff_snr_db": float [B_i], "refine_ms"}``.
    tile_pixels: images above it are decoded and refined in tiles (default SCCDM_TILE_PIXELS)."""
    zs, effs, syms = [], [], []
    for it in items:
        h, nv = None if it.h is None else it.h.to(device), it.noise_var.to(device)
        mask = None if it.mask is None else it.mask.to(device)
        z, eff = equalize(it.y.to(device), h, nv, it.csi_mode, mask)
        zs.append(z)
        effs.append(eff)
        if pipeline.reads_csi_map(model):  # each symbol's SNR, from the frame's CSI and erasure mask
            syms.append(symbol_snr_db(h, nv, it.csi_mode, mask, k=z.shape[1]))
    z_hat, eff = torch.cat(zs), torch.cat(effs)
    out = pipeline.decode(model, z_hat, items[0].latent_shape, items[0].image_size, eff, refine=False,
                          tile_pixels=tile_pixels, symbol_snr=torch.cat(syms) if syms else None)
    s_hat = out["s_hat"]
    refine_ms = 0.0
    if items[0].refine:
        t0 = time.perf_counter()
        x_hat = refine_batch(model, s_hat, items, tile_pixels, snr_db=eff)
        refine_ms = (time.perf_counter() - t0) * 1000
    else:
        x_hat = s_hat
    res, i = [], 0
    s_hat, x_hat, eff = s_hat.cpu(), x_hat.cpu(), eff.cpu()
    for it in items:
        n = it.y.shape[0]
        res.append({"x_hat": x_hat[i:i + n], "s_hat": s_hat[i:i + n], "eff_snr_db": eff[i:i + n],
                    "refine_ms": refine_ms})
        i += n
    return res
