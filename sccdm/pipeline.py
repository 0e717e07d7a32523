"""The whole link in one process: encode -> symbols -> channel -> equalise -> decode -> refine.

The services split exactly these functions across processes, so an image sent
through the gRPC stack and through :func:`simulate` with the same seed gives the
same symbols, bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from . import tiling
from .channels import ChannelConfig, ChannelOutput, apply_channel, equalize, symbol_snr_db
from .symbols import latent_to_symbols, symbols_to_latent

__all__ = ["SCCDM", "Frame", "encode", "decode", "simulate", "as_snr", "reads_csi_map", "snr_map"]


class SCCDM(nn.Module):
    """SC-CDM: a JSCC codec (Swin or DeepJSCC) plus an optional compact-diffusion refiner.

    ``forward(image, snr_db)`` runs the codec with a noiseless channel and returns a
    dict, like CompressAI models: ``{"latent", "s_hat", "x_hat"}``.
    """

    def __init__(self, codec: nn.Module, refiner: nn.Module | None = None, name: str = ""):
        super().__init__()
        self.codec, self.refiner, self.name = codec, refiner, name

    @property
    def cfg(self):
        return self.codec.cfg

    def encode(self, image: torch.Tensor, snr_db: torch.Tensor, channels: int | None = None) -> torch.Tensor:
        """channels: latent channels to send, for a rate-adaptive codec (``cfg.rates``); default all."""
        return _encode(self.codec, image, snr_db, channels)

    def decode(self, latent: torch.Tensor, snr_db: torch.Tensor, size=None, snr_map: torch.Tensor | None = None):
        """snr_map: float [B, C, h, w] per-value SNR in dB, for codecs that read it (``cfg.csi_map``)."""
        if snr_map is None:
            return self.codec.decode(latent, snr_db, size)
        return self.codec.decode(latent, snr_db, size, snr_map=snr_map)

    def refine(self, s_hat: torch.Tensor, generator: torch.Generator | None = None, snr_db=None) -> torch.Tensor:
        """snr_db: float or float [B], the SNR the decoder was given (read by ``snr_prior`` refiners)."""
        if self.refiner is None:
            raise ValueError(f"model {self.name!r} has no refinement module")
        return self.refiner(s_hat, generator=generator, snr_db=snr_db)

    def forward(self, image: torch.Tensor, snr_db: torch.Tensor) -> dict:
        latent = self.encode(image, snr_db)
        s_hat = self.decode(latent, snr_db, image.shape[-2:])
        x_hat = self.refine(s_hat, snr_db=snr_db) if self.refiner is not None else s_hat
        return {"latent": latent, "s_hat": s_hat, "x_hat": x_hat}


@dataclass
class Frame:
    """What the transmitter emits for a batch.

    symbols: complex64 [B, k], power-normalised per image; latent_shape: (C, h, w);
    image_size: (H, W) before padding; snr_db: float [B], the SNR the encoder assumed.
    """

    symbols: torch.Tensor
    latent_shape: tuple
    image_size: tuple
    snr_db: torch.Tensor


def _encode(model: nn.Module, images: torch.Tensor, snr: torch.Tensor, channels: int | None) -> torch.Tensor:
    if channels is None or channels == model.cfg.channels:
        return model.encode(images, snr)
    if not getattr(model.cfg, "rates", ()):
        raise ValueError(f"this codec is not rate-adaptive: it always sends {model.cfg.channels} latent channels")
    return model.encode(images, snr, channels)


def reads_csi_map(model: nn.Module) -> bool:
    """Whether the codec's decoder reads each symbol's SNR (``cfg.csi_map``), not only the image's."""
    return bool(getattr(model.cfg, "csi_map", False))


def snr_map(model: nn.Module, symbol_snr: torch.Tensor | None, latent_shape) -> torch.Tensor | None:
    """Per-symbol SNR float [B, k] dB -> the latent's layout float [B, C, h, w] (both values of a symbol
    get its SNR); None when the codec does not read it or there is none."""
    if symbol_snr is None or not reads_csi_map(model):
        return None
    s = symbol_snr.float()
    return symbols_to_latent(torch.complex(s, s), tuple(latent_shape))


def as_snr(snr_db, batch: int, device) -> torch.Tensor:
    """A scalar or a per-image sequence -> float32 [B]."""
    t = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return t.expand(batch).clone() if t.ndim == 0 else t.reshape(batch)


@torch.no_grad()
def encode(model: nn.Module, images: torch.Tensor, snr_db, power: float = 1.0, channels: int | None = None) -> Frame:
    """images: float [B, 3, H, W] in [0, 1]; snr_db: float or float [B]; channels: latent channels
    sent by a rate-adaptive codec (default all): k = channels * h * w / 2."""
    snr = as_snr(snr_db, images.shape[0], images.device)
    latent = _encode(model, images, snr, channels)
    return Frame(latent_to_symbols(latent, power), tuple(latent.shape[1:]), tuple(images.shape[-2:]), snr)


@torch.no_grad()
def decode(model: nn.Module, z_hat: torch.Tensor, latent_shape, image_size, snr_db, refine: bool = False,
           generator: torch.Generator | None = None, tile_pixels: int | None = None,
           symbol_snr: torch.Tensor | None = None) -> dict:
    """z_hat: complex [B, k] equalised symbols; snr_db: float [B] the decoder assumes; symbol_snr:
    float [B, k] each symbol's SNR in dB (:func:`sccdm.channels.symbol_snr_db`), read by ``csi_map`` codecs.

    Images of more than ``tile_pixels`` pixels (default: SCCDM_TILE_PIXELS, else 512 * 512;
    0 = never) are decoded and refined in overlapping tiles (:mod:`sccdm.tiling`) so memory
    stays bounded; smaller ones take the untiled path, bit for bit.
    Returns ``{"s_hat": decoder output, "x_hat": refined output (or s_hat)}``, float [B, 3, H, W].
    """
    snr = as_snr(snr_db, z_hat.shape[0], z_hat.device)
    s_hat = tiling.decode(model, symbols_to_latent(z_hat, tuple(latent_shape)), snr, tuple(image_size), tile_pixels,
                          snr_map=snr_map(model, symbol_snr, latent_shape))
    x_hat = tiling.refine(model, s_hat, generator=generator, tile_pixels=tile_pixels, snr_db=snr) if refine else s_hat
    return {"s_hat": s_hat, "x_hat": x_hat}


def transmit_train(model: nn.Module, images: torch.Tensor, snr_db: torch.Tensor, channel: ChannelConfig,
                   generator: torch.Generator | None, channels: int | None = None) -> torch.Tensor:
    """Differentiable link for training: returns the decoder output float [B, 3, H, W].

    The noise is drawn with plain torch ops (``noise="torch"``): same statistics as the
    Sionna block the services use, no Sionna needed on a training machine.
    """
    latent = _encode(model, images, snr_db, channels)
    z = latent_to_symbols(latent)
    out = apply_channel(z, channel, generator, snr_db=snr_db, noise="torch")
    csi = channel.csi if channel.kind != "awgn" else "none"
    z_hat, eff = equalize(out.y, out.h, out.noise_var, csi, out.mask)
    shape = tuple(latent.shape[1:])
    smap = snr_map(model, symbol_snr_db(out.h, out.noise_var, csi, out.mask) if reads_csi_map(model) else None, shape)
    lat = symbols_to_latent(z_hat, shape)
    size = tuple(images.shape[-2:])
    return model.decode(lat, eff, size) if smap is None else model.decode(lat, eff, size, snr_map=smap)


@torch.no_grad()
def simulate(model: nn.Module, images: torch.Tensor, channel: ChannelConfig, generator: torch.Generator | None = None,
             tx_snr_db=None, refine: bool = False, refine_generator: torch.Generator | None = None,
             tile_pixels: int | None = None, channels: int | None = None) -> dict:
    """Run the whole link in process.

    tx_snr_db: the SNR the encoder assumes (default: the channel's, i.e. no mismatch).
    tile_pixels: the receiver's tiling threshold (see :func:`decode`).
    channels: latent channels a rate-adaptive codec sends (see :func:`encode`).
    Returns a dict: ``frame`` (:class:`Frame`), ``rx`` (:class:`ChannelOutput`),
    ``eff_snr_db`` float [B], ``s_hat`` and ``x_hat`` float [B, 3, H, W].
    """
    frame = encode(model, images, channel.snr_db if tx_snr_db is None else tx_snr_db, channels=channels)
    rx: ChannelOutput = apply_channel(frame.symbols, channel, generator)
    csi = channel.csi if channel.kind != "awgn" else "none"
    z_hat, eff = equalize(rx.y, rx.h, rx.noise_var, csi, rx.mask)
    sym = symbol_snr_db(rx.h, rx.noise_var, csi, rx.mask) if reads_csi_map(model) else None
    out = decode(model, z_hat, frame.latent_shape, frame.image_size, eff, refine=refine, generator=refine_generator,
                 tile_pixels=tile_pixels, symbol_snr=sym)
    return {"frame": frame, "rx": rx, "eff_snr_db": eff, **out}
