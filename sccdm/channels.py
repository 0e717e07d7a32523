"""Channel models on complex symbols: AWGN, Rayleigh (block / fast), erasures, CSI modes.

Conventions (docs/conventions.md):

* ``SNR = P / sigma^2`` with ``sigma^2`` the noise variance per COMPLEX symbol
  (``sigma^2 / 2`` per real dimension) and P = 1 after power normalisation.
* Rayleigh: ``h ~ CN(0, 1)``; ``fading="block"`` draws one h per block of
  ``block_size`` symbols (default: the whole image), ``fading="fast"`` one per symbol.
* CSI modes at the receiver:
  ``"mmse"``  perfect CSI, MMSE equalisation ``conj(h) y / (|h|^2 + sigma^2)``;
              the decoder gets the effective SNR ``mean |h|^2 / sigma^2``.
  ``"zf"``    perfect CSI, zero forcing ``y / h``.
  ``"abs"``   the WITT / SwinJSCC convention: the channel is ``|h| z + n`` (phase
              assumed corrected) and the receiver divides by ``|h|``.
  ``"none"``  no equalisation (the received ``y`` is handed on as is).
* Erasures (the paper's masking matrix A): each symbol is lost with probability
  ``erasure_prob``; a lost symbol arrives as 0 and ``mask`` marks it.

The AWGN itself is Sionna's ``sionna.phy.channel.AWGN`` block, driven by the
caller's ``torch.Generator`` so every draw is reproducible. Training passes
``noise="torch"``: the same complex Gaussian drawn with plain torch ops, so the
training path needs no Sionna (GPU machines) and works under autocast and
``torch.compile``; a test checks both give the same statistics.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, asdict

import torch

__all__ = ["ChannelConfig", "ChannelOutput", "apply_channel", "equalize", "symbol_snr_db", "CHANNEL_KINDS",
           "FADING_KINDS", "CSI_MODES", "snr_db_to_noise_var"]

CHANNEL_KINDS = ("awgn", "rayleigh")
FADING_KINDS = ("block", "fast")
CSI_MODES = ("mmse", "zf", "abs", "none")
SNR_RANGE_DB = (-20.0, 40.0)


@dataclass
class ChannelConfig:
    """What the channel does to one transmission.

    kind: ``"awgn"`` or ``"rayleigh"``; snr_db: float, per complex symbol;
    fading: ``"block"`` or ``"fast"`` (Rayleigh only); block_size: symbols per
    fading block, 0 = one block per image; csi: one of :data:`CSI_MODES`;
    erasure_prob: probability in [0, 1) that a symbol is lost.
    """

    kind: str = "awgn"
    snr_db: float = 10.0
    fading: str = "block"
    block_size: int = 0
    csi: str = "mmse"
    erasure_prob: float = 0.0

    def validate(self) -> "ChannelConfig":
        if self.kind not in CHANNEL_KINDS:
            raise ValueError(f"unknown channel kind {self.kind!r}; expected one of {CHANNEL_KINDS}")
        if self.fading not in FADING_KINDS:
            raise ValueError(f"unknown fading {self.fading!r}; expected one of {FADING_KINDS}")
        if self.csi not in CSI_MODES:
            raise ValueError(f"unknown CSI mode {self.csi!r}; expected one of {CSI_MODES}")
        if not (isinstance(self.snr_db, (int, float)) and math.isfinite(self.snr_db)
                and SNR_RANGE_DB[0] <= self.snr_db <= SNR_RANGE_DB[1]):
            raise ValueError(f"snr_db must be a number in [{SNR_RANGE_DB[0]}, {SNR_RANGE_DB[1]}] dB,"
                             f" got {self.snr_db!r}")
        if not (math.isfinite(self.erasure_prob) and 0.0 <= self.erasure_prob < 1.0):
            raise ValueError(f"erasure_prob must be in [0, 1), got {self.erasure_prob!r}")
        if self.block_size < 0:
            raise ValueError(f"block_size must be >= 0, got {self.block_size}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ChannelOutput:
    """What comes out of :func:`apply_channel`.

    y: complex64 [B, k], received symbols (erased ones are 0).
    h: complex64 [B, k], the fading coefficient per symbol (ones for AWGN); for
       ``csi="abs"`` it is the real ``|h|`` the channel applied.
    noise_var: float32 [B], sigma^2 per complex symbol.
    mask: bool [B, k], True where the symbol arrived.
    """

    y: torch.Tensor
    h: torch.Tensor
    noise_var: torch.Tensor
    mask: torch.Tensor
    extras: dict = field(default_factory=dict)


def snr_db_to_noise_var(snr_db: torch.Tensor | float, power: float = 1.0) -> torch.Tensor:
    return power / torch.pow(10.0, torch.as_tensor(snr_db, dtype=torch.float32) / 10.0)


def _complex_normal(shape, generator, device) -> torch.Tensor:
    re = torch.randn(shape, generator=generator, device=device)
    im = torch.randn(shape, generator=generator, device=device)
    return torch.complex(re, im) * math.sqrt(0.5)


_AWGN_CACHE: dict = {}


def _awgn(x: torch.Tensor, noise_var: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Sionna's AWGN block with the caller's generator (Sionna otherwise uses a global RNG)."""
    from sionna.phy.channel import AWGN

    key = str(x.device)
    blk = _AWGN_CACHE.get(key)
    if blk is None:
        class _SeededAWGN(AWGN):
            gen = None

            @property
            def torch_rng(self):
                return self.gen if self.gen is not None else super().torch_rng

        blk = _AWGN_CACHE[key] = _SeededAWGN(device=key)
    blk.gen = generator
    return blk(x, noise_var.to(x.device))


def _fading(b: int, k: int, cfg: ChannelConfig, generator, device) -> torch.Tensor:
    if cfg.kind == "awgn":
        return torch.ones(b, k, dtype=torch.complex64, device=device)
    if cfg.fading == "fast":
        return _complex_normal((b, k), generator, device)
    bs = cfg.block_size or k
    n_blocks = -(-k // bs)
    h = _complex_normal((b, n_blocks), generator, device)
    return h.repeat_interleave(bs, dim=1)[:, :k]


NOISE_SOURCES = ("sionna", "torch")


def apply_channel(z: torch.Tensor, cfg: ChannelConfig, generator: torch.Generator | None = None,
                  snr_db: torch.Tensor | None = None, noise: str = "sionna") -> ChannelOutput:
    """Send symbols through the channel.

    z: complex64 [B, k], power-normalised. snr_db: optional float [B] overriding
    ``cfg.snr_db`` per image (so one batch can mix SNRs). generator: the random
    source for fading, erasures and noise (same generator, same draws). noise:
    ``"sionna"`` (the AWGN block) or ``"torch"`` (same distribution, plain torch).
    """
    if noise not in NOISE_SOURCES:
        raise ValueError(f"unknown noise source {noise!r}; expected one of {NOISE_SOURCES}")
    cfg.validate()
    b, k = z.shape
    dev = z.device
    snr = torch.full((b,), float(cfg.snr_db), device=dev) if snr_db is None else snr_db.to(dev).float()
    noise_var = snr_db_to_noise_var(snr).to(dev)
    h = _fading(b, k, cfg, generator, dev)
    if cfg.kind == "rayleigh" and cfg.csi == "abs":
        h = h.abs().to(torch.complex64)
    mask = torch.ones(b, k, dtype=torch.bool, device=dev)
    if cfg.erasure_prob > 0:
        mask = torch.rand(b, k, generator=generator, device=dev) >= cfg.erasure_prob
    if noise == "torch":
        y = h * z + _complex_normal((b, k), generator, dev) * noise_var.sqrt()[:, None]
    else:
        y = _awgn(h * z, noise_var, generator)
    y = torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=dev))
    return ChannelOutput(y=y, h=h, noise_var=noise_var, mask=mask)


def equalize(y: torch.Tensor, h: torch.Tensor | None, noise_var: torch.Tensor, csi: str = "mmse",
             mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Receiver-side equalisation.

    y, h: complex [B, k]; noise_var: float [B]. Returns (z_hat complex [B, k],
    effective SNR in dB float [B]) - the SNR the decoder should assume.
    """
    nv = noise_var.reshape(-1, 1).float()
    if h is None or csi == "none":
        z_hat, gain = y, torch.ones_like(y.real)
    elif csi == "mmse":
        z_hat = torch.conj(h) * y / (h.abs() ** 2 + nv)
        gain = h.abs() ** 2
    elif csi in ("zf", "abs"):
        safe = torch.where(h.abs() > 1e-6, h, torch.full_like(h, 1e-6))
        z_hat = y / safe
        gain = h.abs() ** 2
    else:
        raise ValueError(f"unknown CSI mode {csi!r}")
    if mask is not None:
        z_hat = torch.where(mask, z_hat, torch.zeros((), dtype=z_hat.dtype, device=z_hat.device))
    eff = gain.mean(dim=1) / nv.squeeze(1)
    return z_hat.to(torch.complex64), 10.0 * torch.log10(eff.clamp_min(1e-6))


ERASED_SNR_DB = -60.0  # what a lost symbol's SNR reads as (no information)


def symbol_snr_db(h: torch.Tensor | None, noise_var: torch.Tensor, csi: str = "mmse",
                  mask: torch.Tensor | None = None, k: int | None = None) -> torch.Tensor:
    """Each symbol's SNR after equalisation, float [B, k] dB: ``|h|^2 / sigma^2`` (``1 / sigma^2`` without
    CSI), :data:`ERASED_SNR_DB` where ``mask`` says the symbol was lost. The per-symbol counterpart of
    :func:`equalize`'s mean effective SNR, for decoders that read it (``SwinJSCCConfig.csi_map``).

    h: complex [B, k] or None (then ``k`` is required); noise_var: float [B]; mask: bool [B, k] or None.
    """
    nv = noise_var.reshape(-1, 1).float()
    if h is None or csi == "none":
        n = h.shape[1] if h is not None else (mask.shape[1] if mask is not None else k)
        if n is None:
            raise ValueError("symbol_snr_db needs h, mask or k for the number of symbols")
        gain = torch.ones(nv.shape[0], n, device=nv.device)
    else:
        gain = h.abs().float() ** 2
    db = 10.0 * torch.log10((gain / nv).clamp_min(10 ** (ERASED_SNR_DB / 10)))
    if mask is not None:
        db = torch.where(mask.to(db.device), db, torch.full_like(db, ERASED_SNR_DB))
    return db
