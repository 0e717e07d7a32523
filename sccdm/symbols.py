"""Real latents <-> power-normalised complex channel symbols.

Conventions (docs/conventions.md): a latent of ``n_real`` real values per image
becomes ``k = n_real / 2`` complex symbols; each image is normalised on its own
so that ``(1/k) * sum |z|^2 = P`` (P = 1 by default). CBR = k / (H * W * 3).
"""
from __future__ import annotations

import math

import torch

__all__ = [
    "power_normalize", "latent_to_symbols", "symbols_to_latent",
    "num_symbols", "cbr", "measured_power", "LatentGeometry",
]

NOMINAL_SIDE = 1024  # a side every codec here tiles without padding


def power_normalize(z: torch.Tensor, power: float = 1.0, eps: float = 1e-12) -> torch.Tensor:
    """Scale each image's symbols to average power ``power``.

    z: complex tensor [B, k] (or real [B, ...]); returns the same shape and dtype.
    """
    flat = z.reshape(z.shape[0], -1)
    p = flat.abs().pow(2).mean(dim=1, keepdim=True)
    flat = flat * torch.sqrt(power / (p + eps))
    return flat.reshape(z.shape)


def measured_power(z: torch.Tensor) -> torch.Tensor:
    """Average power per image: float tensor [B]."""
    return z.reshape(z.shape[0], -1).abs().pow(2).mean(dim=1)


def latent_to_symbols(latent: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """latent: float32 [B, C, h, w] with C*h*w even -> complex64 [B, C*h*w/2], power-normalised.

    The first half of the flattened latent is the in-phase part, the second the
    quadrature part, so the mapping is a pure reshape (no information mixed).
    """
    b = latent.shape[0]
    flat = latent.reshape(b, -1).float()
    if flat.shape[1] % 2:
        raise ValueError(f"latent has {flat.shape[1]} reals per image; need an even number")
    k = flat.shape[1] // 2
    z = torch.complex(flat[:, :k], flat[:, k:])
    return power_normalize(z, power)


def symbols_to_latent(z: torch.Tensor, latent_shape: tuple[int, int, int]) -> torch.Tensor:
    """complex [B, k] -> float32 [B, C, h, w] (inverse of :func:`latent_to_symbols` up to scale)."""
    c, h, w = latent_shape
    if 2 * z.shape[1] != c * h * w:
        raise ValueError(f"{z.shape[1]} symbols do not fill a latent of shape {latent_shape}")
    flat = torch.cat([z.real, z.imag], dim=1).float()
    return flat.reshape(z.shape[0], c, h, w)


def num_symbols(latent_shape: tuple[int, int, int]) -> int:
    """Complex channel uses k for one image with this latent shape (C, h, w)."""
    c, h, w = latent_shape
    return c * h * w // 2


def cbr(k: int, height: int, width: int, channels: int = 3) -> float:
    """Channel bandwidth ratio k / n, n = H * W * channels source values."""
    return k / float(height * width * channels)


class LatentGeometry:
    """Mixin for codec configs that define ``latent_shape(H, W) -> (C, h, w)``: k and CBR follow from it."""

    def latent_shape(self, height: int, width: int) -> tuple[int, int, int]:
        raise NotImplementedError

    def num_symbols(self, height: int, width: int, channels: int | None = None) -> int:
        """Complex channel uses k for one H x W image, sending ``channels`` latent channels (default all)."""
        c, h, w = self.latent_shape(height, width)
        return num_symbols((channels or c, h, w))

    def cbr(self, height: int, width: int) -> float:
        """k / (H * W * 3) for one H x W image (padding included in k)."""
        return cbr(self.num_symbols(height, width), height, width)

    def nominal_cbr(self, channels: int | None = None) -> float:
        """The CBR of an image that needs no padding, sending ``channels`` latent channels (default all)."""
        c, h, w = self.latent_shape(NOMINAL_SIDE, NOMINAL_SIDE)
        return (channels or c) * h * w / 2 / (3 * NOMINAL_SIDE ** 2)

    def channels_for_cbr(self, cbr_wanted: float) -> int:
        """The latent channel count (one of ``rates`` if the codec has them) whose nominal CBR is nearest
        to ``cbr_wanted`` on a log scale. ValueError for a fixed-rate codec and another CBR (> 10 % off)."""
        full = self.latent_shape(NOMINAL_SIDE, NOMINAL_SIDE)[0]
        options = tuple(getattr(self, "rates", ()) or (full,))
        best = min(options, key=lambda c: abs(math.log(self.nominal_cbr(c) / cbr_wanted)))
        if len(options) == 1 and abs(math.log(self.nominal_cbr(best) / cbr_wanted)) > math.log(1.1):
            raise ValueError(f"this codec sends only CBR {self.nominal_cbr(best):.4g} "
                             f"(1/{1 / self.nominal_cbr(best):.0f})")
        return best
