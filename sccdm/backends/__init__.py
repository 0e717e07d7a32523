"""Channel-service backends: what sits between the transmitter's symbols and the receiver.

Every backend takes power-normalised symbols and returns what a receiver gets:
the received symbols, the channel state information it may use (genie or
estimated), and the noise variance it should assume. The gRPC channel service
picks one by name (env ``SCCDM_CHANNEL_BACKEND``); all share one API so a real
radio link plugs in where the emulator was.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import torch

from ..channels import ChannelConfig, apply_channel

__all__ = ["ChannelResult", "ChannelBackend", "EmulatedBackend", "register", "get_backend", "BACKENDS",
           "transmit_at_power", "IMAGE_STATUSES", "image_status", "all_lost"]

# What happened to each image of a batch (ReceivedFrame.image_status, DecodeResponse.image_status):
# ok - every symbol arrived; erased - some symbols were lost (erasure channel), the rest arrived;
# lost - none arrived (a radio frame that was never decoded): the decoder's output is a guess from nothing.
IMAGE_STATUSES = ("ok", "erased", "lost")


def image_status(mask: torch.Tensor | None, batch: int) -> list[str]:
    """mask: bool [B, k] (True = arrived) or None (nothing lost) -> one of IMAGE_STATUSES per image."""
    if mask is None:
        return ["ok"] * batch
    if mask.dim() != 2 or mask.shape[0] != batch:
        raise ValueError(f"mask must be bool [B={batch}, k], got {list(mask.shape)}")
    arrived = mask.bool().sum(dim=1)
    return ["lost" if int(a) == 0 else "erased" if int(a) < mask.shape[1] else "ok" for a in arrived]


@dataclass
class ChannelResult:
    """What the receiver gets for a batch.

    y: complex64 [B, k] received symbols (0 where erased); h: complex64 [B, k] or
    None, the CSI the receiver may equalise with; noise_var: float32 [B], sigma^2
    per complex symbol the receiver should assume; snr_db: float32 [B], the SNR the
    receiver knows or estimated; csi_source: "genie", "estimated" or "none";
    mask: bool [B, k] or None, symbols known to be lost; extras: backend facts
    (overhead symbols, CFO estimate, ...), JSON-serialisable.
    """

    y: torch.Tensor
    h: torch.Tensor | None
    noise_var: torch.Tensor
    snr_db: torch.Tensor
    csi_source: str = "genie"
    mask: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)


class ChannelBackend(Protocol):
    name: str

    def transmit(self, symbols: torch.Tensor, cfg: ChannelConfig, generator: torch.Generator | None) -> ChannelResult:
        """symbols: complex64 [B, k], power-normalised per image."""
        ...


class EmulatedBackend:
    """The channel models of :mod:`sccdm.channels` with genie CSI."""

    name = "emulated"

    def transmit(self, symbols, cfg, generator):
        out = apply_channel(symbols, cfg, generator)
        snr = torch.full((symbols.shape[0],), float(cfg.snr_db))
        h = out.h if cfg.kind != "awgn" and cfg.csi != "none" else None
        return ChannelResult(y=out.y, h=h, noise_var=out.noise_var, snr_db=snr,
                             csi_source="genie" if h is not None else "none", mask=out.mask)


BACKENDS: dict[str, Callable[[], ChannelBackend]] = {"emulated": EmulatedBackend}


def transmit_at_power(backend: ChannelBackend, symbols: torch.Tensor, cfg: ChannelConfig,
                      generator: torch.Generator | None, power: float = 1.0) -> ChannelResult:
    """Send symbols normalised to average power ``power`` per image through ``backend``.

    SNR is relative to the transmit power (SNR = P / sigma^2), so the noise variance must be
    P / 10^(snr_db / 10). Backends work at unit power; the symbols are scaled to it and the answer
    back: y = sqrt(P) (h z / sqrt(P) + n) = h z + n' with n' of variance P * sigma_1^2, the CSI h and
    the erasures unchanged, the SNR unchanged. P = 1 calls the backend as it is, bit for bit.
    """
    if power == 1.0:
        return backend.transmit(symbols, cfg, generator)
    g = math.sqrt(power)
    res = backend.transmit(symbols / g, cfg, generator)
    return dataclasses.replace(res, y=res.y * g, noise_var=res.noise_var * power)


def all_lost(symbols: torch.Tensor, backend: str, why: str) -> "ChannelResult":
    """The result of a transmission of which nothing arrived (symbols: complex [B, k]): y = 0, every
    symbol masked, unit noise variance, every image "lost" and ``extras["link_status"]`` saying why."""
    b, k = symbols.shape
    return ChannelResult(y=torch.zeros(b, k, dtype=torch.complex64), h=None, noise_var=torch.ones(b),
                         snr_db=torch.zeros(b), csi_source="none", mask=torch.zeros(b, k, dtype=torch.bool),
                         extras={"link": backend, "lost_images": list(range(b)), "image_status": ["lost"] * b,
                                 "link_status": why, "frames_received": 0})


def register(name: str, factory: Callable[[], ChannelBackend]) -> None:
    BACKENDS[name] = factory


def get_backend(name: str) -> ChannelBackend:
    if name not in BACKENDS:
        # backends with heavy dependencies register on import
        import importlib
        try:
            importlib.import_module(f"sccdm.backends.{name}")
        except ImportError:
            pass
    if name not in BACKENDS:
        raise ValueError(f"unknown channel backend {name!r}; known: {sorted(BACKENDS)}")
    return BACKENDS[name]()
