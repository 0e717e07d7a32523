"""CNN DeepJSCC baseline (Bourtsoulatze et al., 2019).

Encoder: conv 5x5 with 16 (stride 2), 32 (stride 2), 32, 32, c filters, PReLU
after each; decoder mirrors it with transposed convs and a sigmoid. The latent is
H/4 x W/4 x c reals: c = 8 gives CBR 1/12 on any image whose sides divide by 4.
No SNR input: it is trained over the same SNR range as SC-CDM.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict

import torch
import torch.nn as nn

from ..symbols import LatentGeometry

from .swin import pad_to_multiple

__all__ = ["DeepJSCCConfig", "DeepJSCC", "DEEPJSCC_PRESETS"]


@dataclass
class DeepJSCCConfig(LatentGeometry):
    channels: int = 8          # c, bottleneck filters
    width: int = 32            # filters of the inner layers (16 for the first)

    downscale = 4

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        return (self.channels, -(-height // 4), -(-width // 4))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DeepJSCCConfig":
        return cls(**d)


def _conv(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=stride, padding=2), nn.PReLU(cout))


def _deconv(cin, cout, stride, act=True):
    layer = nn.ConvTranspose2d(cin, cout, 5, stride=stride, padding=2, output_padding=stride - 1)
    return nn.Sequential(layer, nn.PReLU(cout)) if act else layer


class DeepJSCC(nn.Module):
    """image float [B, 3, H, W] -> latent float [B, c, H/4, W/4] -> image. ``snr_db`` is accepted and ignored."""

    def __init__(self, cfg: DeepJSCCConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.encoder = nn.Sequential(_conv(3, 16, 2), _conv(16, w, 2), _conv(w, w, 1), _conv(w, w, 1),
                                     _conv(w, cfg.channels, 1))
        self.decoder = nn.Sequential(_deconv(cfg.channels, w, 1), _deconv(w, w, 1), _deconv(w, w, 1),
                                     _deconv(w, 16, 2), _deconv(16, 3, 2, act=False))

    def encode(self, image: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        x, _ = pad_to_multiple(image, 4)
        return self.encoder(x * 2 - 1)

    def decode(self, latent: torch.Tensor, snr_db: torch.Tensor | None = None,
               size: tuple[int, int] | None = None) -> torch.Tensor:
        out = torch.sigmoid(self.decoder(latent))
        return out if size is None else out[..., : size[0], : size[1]]


DEEPJSCC_PRESETS = {
    "paper": DeepJSCCConfig(channels=8, width=32),
    "cpu": DeepJSCCConfig(channels=8, width=32),
}
