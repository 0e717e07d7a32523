"""``emulated_link``: the emulated channel with the real link layer and ESTIMATED CSI.

Symbols are framed and pulse-shaped (:mod:`sccdm.link`), the sample stream goes
through AWGN or Rayleigh block fading (one h ~ CN(0, 1) per frame, i.e. per
image with the default one image per frame), an optional carrier frequency
offset and sample-clock offset, and the receiver finds the bursts, synchronises,
estimates the channel and the SNR. Compare with ``emulated`` (genie CSI) for
the cost of realism.

``doppler`` (fD * Ts, cycles per sample; env ``SCCDM_LINK_DOPPLER``): with
``kind="rayleigh"``, continuous flat Rayleigh fading over the whole sample stream
instead of one draw per frame - a sum of sinusoids (:mod:`sccdm.link.fading`,
GNU Radio's ``fading_model``), so the gain moves within a frame. The channel's
true gain at each data symbol comes back in ``extras["true_h"]`` (complex64
[B, k], numpy; a genie reference on the same fades) and ``true_snr_db`` is the
mean |h|^2 SNR over each image's symbols.

Receiver front-end impairments, after the noise (:mod:`sccdm.link.frontend`):
``dc`` (complex DC offset) and ``iq_mag_db`` / ``iq_phase_deg`` (IQ imbalance,
GNU Radio's iqbal_gen receiver model).

Environment: ``SCCDM_LINK_CFO`` (cycles per sample, default 0),
``SCCDM_LINK_EPS_PPM`` (clock offset in ppm, default 0), ``SCCDM_LINK_DC``,
``SCCDM_LINK_IQ_MAG_DB``, ``SCCDM_LINK_IQ_PHASE_DEG``, ``SCCDM_LINK_DOPPLER`` (default 0), and every
``SCCDM_LINK_<FIELD>`` of :class:`sccdm.link.LinkConfig` (e.g. SCCDM_LINK_SPS,
SCCDM_LINK_IMAGES_PER_FRAME).
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from . import register
from ..link.backend import LinkBackend
from ..link.fading import sos_fading
from ..link.framing import LinkConfig, layout
from ..link.frontend import add_dc, iq_imbalance
from ..link.pulse import frac_interp, rrc_taps

__all__ = ["EmulatedLinkBackend"]


def _env_float(name: str, default: float) -> float:
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"{name}={v!r} is not a number") from None


def _cn(n: int, generator) -> np.ndarray:
    t = torch.randn(2, n, generator=generator, dtype=torch.float64).numpy()
    return (t[0] + 1j * t[1]) * math.sqrt(0.5)


class EmulatedLinkBackend(LinkBackend):
    name = "emulated_link"

    def __init__(self, link: LinkConfig | None = None, cfo: float | None = None, eps_ppm: float | None = None,
                 dc: complex | None = None, iq_mag_db: float | None = None, iq_phase_deg: float | None = None,
                 taps=None, doppler: float | None = None):
        super().__init__(link)
        self.doppler = _env_float("SCCDM_LINK_DOPPLER", 0.0) if doppler is None else float(doppler)
        if not math.isfinite(self.doppler) or not 0 <= self.doppler < 0.05:
            raise ValueError(f"doppler (fD*Ts per sample) must be in [0, 0.05), got {self.doppler}")
        # static multipath, sample-spaced complex taps (as channel_model's taps); None: a single path
        self.taps = None if taps is None else np.asarray(taps, dtype=np.complex128).reshape(-1)
        if self.taps is not None and (len(self.taps) == 0 or not np.all(np.isfinite(self.taps))
                                      or not np.any(self.taps)):
            raise ValueError(f"taps must be a non-empty, finite, non-zero complex sequence, got {taps!r}")
        try:
            self.dc = complex(os.environ.get("SCCDM_LINK_DC", "0") if dc is None else dc)
        except ValueError:
            raise ValueError(f"SCCDM_LINK_DC={os.environ.get('SCCDM_LINK_DC')!r} is not a complex number") from None
        self.iq = (_env_float("SCCDM_LINK_IQ_MAG_DB", 0.0) if iq_mag_db is None else float(iq_mag_db),
                   _env_float("SCCDM_LINK_IQ_PHASE_DEG", 0.0) if iq_phase_deg is None else float(iq_phase_deg))
        if not np.isfinite(self.dc) or abs(self.iq[1]) >= 90 or not np.all(np.isfinite(self.iq)):
            raise ValueError(f"front-end impairments out of range: dc={self.dc}, iq={self.iq} (|phase| < 90 deg)")
        self.cfo = _env_float("SCCDM_LINK_CFO", 0.0) if cfo is None else float(cfo)
        self.eps = 1e-6 * (_env_float("SCCDM_LINK_EPS_PPM", 0.0) if eps_ppm is None else float(eps_ppm))
        if abs(self.cfo) > 0.5 / (self.session.cfg.zc_len * self.session.cfg.sps):
            raise ValueError(f"CFO {self.cfo} is outside what the preamble can resolve")
        if abs(self.eps) > self.session.cfg.max_eps:
            raise ValueError(f"clock offset {self.eps:g} exceeds max_eps {self.session.cfg.max_eps:g}")

    def check(self, cfg) -> None:
        cfg.validate()
        if cfg.kind == "rayleigh" and (cfg.fading != "block" or cfg.block_size):
            raise ValueError("the link backends fade per frame: use fading='block' with block_size=0 "
                             f"(got fading={cfg.fading!r}, block_size={cfg.block_size})")
        if self.doppler and cfg.kind != "rayleigh":
            raise ValueError(f"doppler={self.doppler:g} needs kind='rayleigh', got {cfg.kind!r}")

    def transmit(self, symbols, cfg, generator=None, meta=None):
        """As :meth:`LinkBackend.transmit`; extras["true_snr_db"] holds the channel's real per-image SNR
        (|h|^2 SNR), known only because this channel is emulated - for evaluating the estimates; with
        doppler, extras["true_h"] the gain at every data symbol (complex64 [B, k])."""
        self.check(cfg)
        plan = self.session.plan(symbols, meta)
        rx, gains = self._channel(plan, cfg, generator)
        res = self.finish(rx, plan, cfg, generator)
        if gains.ndim == 2:                      # doppler: the gain per data symbol
            gains = plan.to_images(gains)
            power = np.mean(np.abs(gains) ** 2, axis=1)
            res.extras["true_h"] = gains.astype(np.complex64)
        else:
            power = np.empty(plan.rows)
            for (i0, n), gv in zip(plan.frames, gains):
                power[i0:i0 + n] = abs(gv) ** 2
            power = power.reshape(plan.batch, plan.segments).mean(axis=1)
        true = float(cfg.snr_db) + 10 * np.log10(np.maximum(power, 1e-12))
        res.extras["true_snr_db"] = [round(float(v), 4) for v in true]
        return res

    def _data_samples(self, plan, lead: int) -> np.ndarray:
        """Sample index (in the channel's stream) of the pulse peak of every data symbol: int64 [rows, row_k]
        (the frames' rows: see :class:`sccdm.link.session.TxPlan`)."""
        c = self.session.cfg
        delay = (len(rrc_taps(c.sps, c.rolloff, c.span)) - 1) // 2 if c.sps > 1 else 0
        out = np.empty((plan.rows, plan.row_k), dtype=np.int64)
        for (i0, n), s in zip(plan.frames, plan.starts):
            idx = layout(c, n * plan.row_k).data_idx
            out[i0:i0 + n] = (lead + s + delay + idx * c.sps).reshape(n, plan.row_k)
        return out

    def channel_stream(self, plan, cfg, generator) -> np.ndarray:
        return self._channel(plan, cfg, generator)[0]

    def _channel(self, plan, cfg, generator) -> tuple[np.ndarray, np.ndarray]:
        """-> (rx samples complex64 [n], the complex gain of each frame complex [n_frames], or with
        doppler the gain at each data symbol complex [B, k])."""
        x = plan.samples.astype(np.complex128)
        sps = self.session.cfg.sps
        lead = int(torch.randint(0, 8 * sps, (1,), generator=generator))
        x = np.concatenate([np.zeros(lead), x])
        hs = np.ones(len(plan.starts), dtype=np.complex128)
        if cfg.kind == "rayleigh" and self.doppler:
            fade = sos_fading(len(x), self.doppler, generator)
            x = x * fade
            hs = fade[self._data_samples(plan, lead)]
        elif cfg.kind == "rayleigh":
            hs = _cn(len(plan.starts), generator)
            bounds = [lead + s for s in plan.starts] + [len(x)]
            for i, hv in enumerate(hs):
                x[bounds[i]:bounds[i + 1]] *= hv
        if self.taps is not None:
            x = np.convolve(x, self.taps)
        if self.eps and sps > 1:
            n_out = int(len(x) / (1 + self.eps))
            x = frac_interp(x, np.arange(n_out) * (1 + self.eps))
        if self.cfo:
            phi0 = float(torch.rand(1, generator=generator)) * 2 * math.pi
            x = x * np.exp(1j * (2 * math.pi * self.cfo * np.arange(len(x)) + phi0))
        nv = 10.0 ** (-float(cfg.snr_db) / 10.0)
        x = x + math.sqrt(nv) * _cn(len(x), generator)
        if any(self.iq):
            x = iq_imbalance(x, *self.iq)
        if self.dc:
            x = add_dc(x, self.dc)
        return x.astype(np.complex64), hs


register("emulated_link", EmulatedLinkBackend)
