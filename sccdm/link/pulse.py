"""Pulse shaping: root-raised-cosine filters, oversampling and fractional-delay interpolation.

Convention: every transmitted symbol carries unit energy whatever the
oversampling, i.e. the RRC taps have unit energy (``sum g^2 = 1``). Then noise of
variance sigma^2 per complex SAMPLE gives SNR = 1 / sigma^2 per SYMBOL after the
matched filter, the same SNR definition as :mod:`sccdm.channels`; for GNU Radio's
``channel_model`` that is ``noise_voltage = 10 ** (-SNR_dB / 20)``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["rrc_taps", "shape", "matched_filter", "frac_interp"]


def rrc_taps(sps: int, rolloff: float = 0.35, span: int = 10) -> np.ndarray:
    """Root-raised-cosine taps, float64 [span * sps + 1], unit energy."""
    if sps < 1:
        raise ValueError(f"sps must be >= 1, got {sps}")
    if sps == 1:
        return np.ones(1)
    if not 0.0 < rolloff <= 1.0:
        raise ValueError(f"rolloff must be in (0, 1], got {rolloff}")
    t = np.arange(-span * sps // 2, span * sps // 2 + 1) / sps
    b = rolloff
    h = np.empty_like(t)
    for i, ti in enumerate(t):
        if abs(ti) < 1e-12:
            h[i] = 1.0 - b + 4 * b / np.pi
        elif abs(abs(4 * b * ti) - 1.0) < 1e-9:
            h[i] = b / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * b)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * b)))
        else:
            h[i] = (np.sin(np.pi * ti * (1 - b)) + 4 * b * ti * np.cos(np.pi * ti * (1 + b))) / (
                np.pi * ti * (1 - (4 * b * ti) ** 2))
    return h / np.sqrt(np.sum(h ** 2))


def shape(symbols: np.ndarray, sps: int, taps: np.ndarray) -> np.ndarray:
    """symbols: complex [n] -> samples complex [n * sps + len(taps) - 1] (upsample, then RRC)."""
    if sps == 1:
        return symbols.astype(np.complex128)
    up = np.zeros(len(symbols) * sps, dtype=np.complex128)
    up[::sps] = symbols
    return np.convolve(up, taps)


def matched_filter(samples: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """samples: complex [n] -> complex [n] (causal: output n sees inputs n - len(taps) + 1 .. n)."""
    if len(taps) == 1:
        return samples.astype(np.complex128)
    from scipy.signal import oaconvolve
    return oaconvolve(samples, taps[::-1])[: len(samples)]


def frac_interp(x: np.ndarray, t: np.ndarray, half: int = 8) -> np.ndarray:
    """Band-limited (Hann-windowed sinc) interpolation of x: complex [n] at times t: float [m] -> complex [m].

    Samples outside x count as 0. Accurate for signals oversampled >= 2x, which
    the matched-filter output is.
    """
    t = np.asarray(t, dtype=np.float64)
    n0 = np.floor(t).astype(np.int64)
    offs = np.arange(-half + 1, half + 1)
    idx = n0[:, None] + offs[None, :]
    d = t[:, None] - idx
    w = np.sinc(d) * (0.5 + 0.5 * np.cos(np.pi * d / (half + 0.5)))
    ok = (idx >= 0) & (idx < len(x))
    vals = np.where(ok, x[np.clip(idx, 0, len(x) - 1)], 0)
    return np.sum(vals * w, axis=1)
