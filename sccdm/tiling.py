"""Tiled decoding and refinement of large images, so receiver memory stays bounded (issue 10).

The Swin decoder and the refiner's U-Net hold several full-resolution feature maps at once
(the refiner of sc-cdm-cpu needs 1.3-1.7 kB per pixel: 0.44 GB at 512x512, 5.3 GB at
2048x2048, on top of the process's 0.25 GB). Above
``tile_pixels`` pixels (H * W) the receiver therefore runs them on overlapping tiles and
blends the tiles' outputs with raised-cosine ramps across each overlap; at or below it the
untiled calls run unchanged, bit for bit.

* Decoder: tiles are cut from the LATENT (float [B, C, h, w], h = H / ``cfg.downscale``: 8
  for the Swin codec, 4 for DeepJSCC), on the codec's window grid (``cfg.pad_multiple /
  cfg.downscale`` latent pixels, 4 for Swin), so every tile is a latent the decoder accepts
  and its attention windows coincide with those of the whole image. Neighbouring tiles
  overlap by at least ``DECODER_OVERLAP`` image pixels (16 latent pixels for Swin), and the
  pixels next to a tile's inner edge get no weight: at least ``DECODER_MARGIN`` (4 latent pixels), and at least
  the decoder's reach through its shifted windows (``cfg.decoder_reach``: 3 latent pixels for the ``cpu`` preset,
  7 for ``paper`` and ``cpu-deep``), so every output pixel comes from tiles that saw all of its context: the tiled
  decoder equals the untiled one up to float rounding.
* Refiner: the prior Z (student N1-S2 + the T-step diffusion, ``Refiner.student_prior``) is
  one vector per image; it is computed ONCE from the whole S_hat (the student pools its
  features over the image; it is small enough to see a 2048x2048 image) with the same random
  draw as the untiled path, and every tile is restored with that same Z. The restorer's tiles
  are cut from S_hat padded to a multiple of 8 (as the restorer pads it), on an 8-pixel grid,
  overlapping by at least ``REFINER_OVERLAP`` pixels (``REFINER_MARGIN`` unweighted at each
  inner edge). Its channel attention (DMTA) pools over whatever it is given, so tiles are not
  bit-exact, only close: about 55 dB from the untiled output (docs/tiling.md).

Tiles are at most ``floor(sqrt(tile_pixels))`` pixels on a side (so no model call sees more
pixels than the largest untiled image) and are spread evenly, which makes the overlaps as
wide as the tile count allows. ``tile_pixels`` comes from the argument, else the environment
variable ``SCCDM_TILE_PIXELS``, else ``DEFAULT_TILE_PIXELS`` (256 * 256); 0 turns tiling off.
"""
from __future__ import annotations

import math
import os
from typing import Callable

import torch
import torch.nn.functional as F

from . import cancel

__all__ = ["DEFAULT_TILE_PIXELS", "DECODER_OVERLAP", "REFINER_OVERLAP", "tile_pixels_from_env", "needs_tiling",
           "tile_starts", "tiled_map", "decoder_tiling", "refiner_tiling", "decode", "refine"]

DEFAULT_TILE_PIXELS = 256 * 256
DECODER_OVERLAP = 128   # image pixels (16 latent pixels for the Swin codec, 32 for DeepJSCC)
DECODER_MARGIN = 32     # at least this many image pixels next to a tile's inner edge get no weight (4 latent px for Swin)
REFINER_OVERLAP = 64    # image pixels
REFINER_MARGIN = 8
ENV = "SCCDM_TILE_PIXELS"


def tile_pixels_from_env(env=None) -> int:
    """SCCDM_TILE_PIXELS as an int (unset or empty: DEFAULT_TILE_PIXELS; 0: never tile)."""
    raw = (os.environ if env is None else env).get(ENV, "")
    if raw == "":
        return DEFAULT_TILE_PIXELS
    value = int(raw)
    if value < 0:
        raise ValueError(f"{ENV} must be >= 0, got {value}")
    return value


def _resolve(tile_pixels: int | None) -> int:
    return tile_pixels_from_env() if tile_pixels is None else int(tile_pixels)


def needs_tiling(height: int, width: int, tile_pixels: int | None = None) -> bool:
    """True when an H x W image is larger than ``tile_pixels`` (0 = never)."""
    t = _resolve(tile_pixels)
    return t > 0 and height * width > t


def tile_starts(length: int, tile: int, overlap: int, align: int = 1) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``range(length)``, spread evenly.

    Neighbours overlap by at least ``overlap`` (as far as ``align`` allows: starts are
    multiples of ``align``, except that the last tile ends at ``length``). ``tile >= length``
    gives one tile at 0.
    """
    if tile >= length:
        return [0]
    n = math.ceil((length - overlap) / max(1, tile - overlap))
    n = max(n, 2)
    last = length - tile
    starts = [int(round(k * last / (n - 1) / align)) * align for k in range(n - 1)] + [last]
    return sorted(set(min(s, last) for s in starts))


def _ramp(n: int, device) -> torch.Tensor:
    """Raised-cosine ramp float [n], rising from ~0 to ~1; ramp(n) + ramp(n).flip(0) == 1."""
    i = torch.arange(n, device=device, dtype=torch.float32)
    return 0.5 - 0.5 * torch.cos(math.pi * (i + 0.5) / n)


def _edge(n: int, margin: int, device) -> torch.Tensor:
    """Weights float [n] across an overlap of n output pixels, for the tile that ENTERS it: 0 on the first
    ``margin`` pixels (its edge, where it lacks context), a raised-cosine ramp, 1 on the last ``margin``.
    The tile that leaves the overlap gets the flipped weights; the two sum to 1."""
    margin = min(margin, n // 2)
    w = torch.ones(n, device=device)
    w[:margin] = 0
    if n - 2 * margin > 0:
        w[margin:n - margin] = _ramp(n - 2 * margin, device)
    return w


def _weights_1d(starts: list[int], k: int, tile: int, scale: int, margin: int, device) -> torch.Tensor:
    """Blend weights float [tile * scale] of tile ``k`` along one axis (ramps where it overlaps a neighbour)."""
    w = torch.ones(tile * scale, device=device)
    if k > 0:
        lead = (starts[k - 1] + tile - starts[k]) * scale
        if lead > 0:
            w[:lead] = torch.minimum(w[:lead], _edge(lead, margin * scale, device))
    if k + 1 < len(starts):
        trail = (starts[k] + tile - starts[k + 1]) * scale
        if trail > 0:
            w[-trail:] = torch.minimum(w[-trail:], _edge(trail, margin * scale, device).flip(0))
    return w


def tiled_map(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: tuple[int, int],
              overlap: tuple[int, int], scale: int = 1, align: int = 1, margin: int = 0) -> torch.Tensor:
    """Run ``fn`` on overlapping tiles of ``x`` and blend the results.

    x: float [B, C, h, w]; fn: float [B, C, th, tw] -> float [B, C', th * scale, tw * scale];
    tile / overlap: (rows, cols) in x's pixels; tile starts are multiples of ``align``.
    Returns float [B, C', h * scale, w * scale]: each output pixel is the weighted mean of the
    tiles covering it. In an overlap the weights are 0 within ``margin`` (x's pixels) of a tile's
    inner edge, then follow a raised-cosine ramp (sum 1); a pixel of a function that only looks
    ``margin`` pixels around it is therefore reproduced exactly (up to float rounding).
    Peak memory: one ``fn`` call on one tile, plus the output and a float [h * scale, w * scale] weight map.
    """
    h, w = x.shape[-2:]
    th, tw = min(tile[0], h), min(tile[1], w)
    ys, xs = tile_starts(h, th, overlap[0], align), tile_starts(w, tw, overlap[1], align)
    out = norm = None
    for i, y0 in enumerate(ys):
        wy = _weights_1d(ys, i, th, scale, margin, x.device)
        for j, x0 in enumerate(xs):
            cancel.raise_if_cancelled()  # a server stops a large image here once its caller has gone
            y = fn(x[..., y0:y0 + th, x0:x0 + tw])
            if out is None:
                out = torch.zeros(*y.shape[:2], h * scale, w * scale, dtype=y.dtype, device=y.device)
                norm = torch.zeros(h * scale, w * scale, dtype=torch.float32, device=y.device)
            wt = wy[:, None] * _weights_1d(xs, j, tw, scale, margin, x.device)[None, :]
            oy, ox = slice(y0 * scale, (y0 + th) * scale), slice(x0 * scale, (x0 + tw) * scale)
            out[..., oy, ox] += y * wt.to(y.dtype)
            norm[oy, ox] += wt
            del y
    if not bool((norm > 0).all()):   # cannot happen with margin <= overlap / 2 and evenly spread tiles
        raise RuntimeError("tiling left pixels without weight; use a smaller margin or larger tiles")
    return out.div_(norm.to(out.dtype))


def _side(tile_pixels: int, unit: int) -> int:
    """Largest tile side (a multiple of ``unit``, at least one unit) with side^2 <= tile_pixels."""
    return max(unit, math.isqrt(tile_pixels) // unit * unit)


def decoder_tiling(cfg, tile_pixels: int) -> dict | None:
    """Latent tiling of a codec config, in latent pixels: ``{"tile", "overlap", "margin", "align", "scale"}``;
    None if the codec does not say how its latent maps to pixels (``cfg.downscale``)."""
    scale = getattr(cfg, "downscale", None)
    if not scale:
        return None
    align = max(1, getattr(cfg, "pad_multiple", scale) // scale)   # Swin: the window, in latent pixels
    side = _side(tile_pixels, scale * align) // scale                # latent pixels, a multiple of align
    overlap = min(-(-DECODER_OVERLAP // (scale * align)) * align, side // 2 // align * align)
    # the Swin decoder's own reach (cfg.decoder_reach) when it says it; deeper decoders read further than the minimum
    margin = min(max(-(-DECODER_MARGIN // scale), getattr(cfg, "decoder_reach", 0)), overlap // 2)
    return {"tile": side, "overlap": overlap, "margin": margin, "align": align, "scale": scale}


def refiner_tiling(tile_pixels: int) -> dict:
    """Image-space tiling of the restorer, in pixels (8-pixel grid): ``{"tile", "overlap", "margin", "align"}``."""
    side = _side(tile_pixels, 8)
    overlap = min(REFINER_OVERLAP, side // 2 // 8 * 8)
    return {"tile": side, "overlap": overlap, "margin": min(REFINER_MARGIN, overlap // 2), "align": 8}


@torch.no_grad()
def decode(model, latent: torch.Tensor, snr_db: torch.Tensor, size: tuple[int, int],
           tile_pixels: int | None = None, snr_map: torch.Tensor | None = None) -> torch.Tensor:
    """``model.decode(latent, snr_db, size)``, tiled in latent space for images above ``tile_pixels``.

    latent: float [B, C, h, w]; snr_db: float [B]; size: (H, W); snr_map: float [B, C, h, w] per-value
    SNR (dB) for codecs that read it, tiled with the latent. Returns float [B, 3, H, W].
    """
    def dec(lat, sz=None):
        if snr_map is None:
            return model.decode(lat, snr_db, sz)
        c = lat.shape[1] // 2
        return model.decode(lat[:, :c], snr_db, sz, snr_map=lat[:, c:])

    x = latent if snr_map is None else torch.cat([latent, snr_map.to(latent.dtype)], dim=1)
    t = _resolve(tile_pixels)
    plan = decoder_tiling(model.cfg, t) if needs_tiling(size[0], size[1], t) else None
    if plan is None:
        return dec(x, size)
    tile, ov = plan["tile"], plan["overlap"]
    out = tiled_map(dec, x, (tile, tile), (ov, ov), scale=plan["scale"], align=plan["align"], margin=plan["margin"])
    return out[..., : size[0], : size[1]].contiguous()


@torch.no_grad()
def refine(model, s_hat: torch.Tensor, generator: torch.Generator | None = None,
           z_start: torch.Tensor | None = None, tile_pixels: int | None = None, snr_db=None) -> torch.Tensor:
    """The refiner on S_hat float [B, 3, H, W] -> float [B, 3, H, W] in [0, 1], tiled above ``tile_pixels``.

    Untiled: exactly ``model.refine(s_hat, generator, snr_db)`` (or ``model.refiner(s_hat, z_start=...)``
    when ``z_start`` float [B, prior_dim] is given). Tiled: the same prior Z from the whole S_hat
    (same random draw), then the restorer on overlapping tiles. snr_db: float [B], for ``snr_prior`` refiners.
    """
    refiner = getattr(model, "refiner", None)
    h, w = s_hat.shape[-2:]
    tiled = (needs_tiling(h, w, tile_pixels) and refiner is not None
             and hasattr(refiner, "student_prior") and hasattr(refiner, "restorer"))
    if not tiled:
        if z_start is None:
            return model.refine(s_hat, generator=generator, snr_db=snr_db)
        return refiner(s_hat, z_start=z_start, snr_db=snr_db)
    z = refiner.student_prior(s_hat, generator, z_start, snr_db)                 # float [B, prior_dim], one per image
    plan = refiner_tiling(_resolve(tile_pixels))
    x = F.pad(s_hat, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")      # what the restorer sees untiled
    tile, ov = plan["tile"], plan["overlap"]
    out = tiled_map(lambda t: refiner.restorer(t, z), x, (tile, tile), (ov, ov), align=plan["align"],
                    margin=plan["margin"])
    return out[..., :h, :w].clamp(0, 1)
