"""Synchronisation on the sample stream: burst detection, timing, CFO, clock offset.

* Detection: the Schmidl-Cox metric of the repeated Zadoff-Chu preamble on the
  matched-filter output, ``|sum r*[n] r[n+L]|^2 / (E1 E2)`` over (reps-1)
  repeats, insensitive to CFO and to the channel gain; each region above the
  threshold gives one candidate at its peak. Its phase is the coarse CFO.
* Confirmation and timing: the normalised cross-correlation with the known
  preamble + training at every sample near the candidate; below the confirm
  threshold the candidate is dropped (noise never gets near it); a parabola
  through the three best samples gives fractional timing.
* Clock offset: the postamble (a copy of the training) arrives
  ``(1 + eps) * distance`` later than the training; the receiver measures eps and
  resamples the frame with band-limited interpolation.
"""
from __future__ import annotations

import numpy as np

from .pulse import frac_interp

__all__ = ["schmidl_cox", "find_candidates", "correlate", "peak_time", "derotate"]


def _window_sum(x: np.ndarray, w: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(x)])
    return c[w:] - c[:-w]


def schmidl_cox(mf: np.ndarray, lag: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """mf: complex [n] -> (metric float [n - lag - window + 1] in [0, 1], correlation P complex [same])."""
    if len(mf) < lag + window:
        return np.zeros(0), np.zeros(0, dtype=np.complex128)
    prod = mf[:-lag].conj() * mf[lag:]
    p = _window_sum(prod, window)
    e = np.abs(mf) ** 2
    e1 = _window_sum(e[:-lag], window)
    e2 = _window_sum(e[lag:], window)
    m = np.abs(p) ** 2 / np.maximum(e1 * e2, 1e-30)
    return m, p


def find_candidates(metric: np.ndarray, threshold: float, min_gap: int) -> list[int]:
    """Peaks of each region where metric > threshold (regions closer than min_gap merge): list of indices."""
    above = np.flatnonzero(metric > threshold)
    if len(above) == 0:
        return []
    splits = np.flatnonzero(np.diff(above) > min_gap) + 1
    return [int(g[np.argmax(metric[g])]) for g in np.split(above, splits)]


def correlate(mf: np.ndarray, ref: np.ndarray, sps: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of ref (complex [m] symbols) with mf sampled every sps from each start (int [s]).

    Returns (corr complex [s], rho float [s]) with rho the normalised squared
    correlation in [0, 1].
    """
    idx = starts[:, None] + sps * np.arange(len(ref))[None, :]
    ok = (idx >= 0) & (idx < len(mf))
    seg = np.where(ok, mf[np.clip(idx, 0, len(mf) - 1)], 0)
    corr = seg @ ref.conj()
    energy = np.sum(np.abs(seg) ** 2, axis=1) * np.sum(np.abs(ref) ** 2)
    return corr, np.abs(corr) ** 2 / np.maximum(energy, 1e-30)


def peak_time(mf: np.ndarray, ref: np.ndarray, sps: int, lo: int, hi: int) -> tuple[float, float, complex]:
    """Best start time of ref in mf within [lo, hi] (integer search, parabolic fractional refinement).

    Same numbers as :func:`correlate` over ``arange(lo, hi + 1)``, computed with FFTs.
    Returns (time float, rho at the peak, correlation at the peak).
    """
    from scipy.signal import correlate as xcorr

    n_ref = (len(ref) - 1) * sps + 1
    a, b = lo, hi + n_ref
    seg = np.zeros(b - a, dtype=np.complex128)
    s0, s1 = max(a, 0), min(b, len(mf))
    if s1 > s0:
        seg[s0 - a:s1 - a] = mf[s0:s1]
    ref_up = np.zeros(n_ref, dtype=np.complex128)
    ref_up[::sps] = ref
    corr = xcorr(seg, ref_up, mode="valid", method="fft")
    comb = np.zeros(n_ref)
    comb[::sps] = 1.0
    energy = np.maximum(xcorr(np.abs(seg) ** 2, comb, mode="valid", method="fft"), 0) * np.sum(np.abs(ref) ** 2)
    rho = np.abs(corr) ** 2 / np.maximum(energy, 1e-30)
    i = int(np.argmax(np.abs(corr)))
    t = float(lo + i)
    if sps > 1 and 0 < i < len(corr) - 1:
        y0, y1, y2 = np.abs(corr[i - 1:i + 2])
        den = y0 - 2 * y1 + y2
        if den < 0:
            t += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return t, float(min(rho[i], 1.0)), complex(corr[i])


def profile_delay(mf: np.ndarray, ref1: np.ndarray, t1: int, ref2: np.ndarray, t2: int, sps: int, half: int,
                  span: int) -> tuple[float, float]:
    """How many samples later than t2 the channel seen by ref2 lies, against the channel seen by ref1 at t1.

    The correlation profiles of ref1 over t1 +- half and of ref2 over t2 +- (half + span) samples
    (integers) are aligned: the shift (|.| <= span, parabolic refinement) that maximises the magnitude of
    their complex inner product. With multipath each profile holds every path, and the peak of either
    alone can sit on a different path of similar strength (a jump of the path spacing, thousands of
    ppm over a frame); the whole profile moves with the clock. A single path gives the peak's
    alignment as before. Returns (shift in samples, rho of ref2 at its best start: see :func:`correlate`).
    """
    c1, _ = correlate(mf, ref1, sps, t1 + np.arange(-half, half + 1))
    c2, rho2 = correlate(mf, ref2, sps, t2 + np.arange(-half - span, half + span + 1))
    m = np.array([abs(np.vdot(c1, c2[j:j + 2 * half + 1])) for j in range(2 * span + 1)])
    i = int(np.argmax(m))
    d = float(i - span)
    if 0 < i < len(m) - 1:
        y0, y1, y2 = m[i - 1:i + 2]
        den = y0 - 2 * y1 + y2
        if den < 0:
            d += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5))
    return d, float(rho2.max())


def derotate(x: np.ndarray, f: float, n0: int = 0) -> np.ndarray:
    """Remove a frequency offset f (cycles per sample): x[n] * exp(-j 2 pi f (n0 + n))."""
    return x * np.exp(-2j * np.pi * f * (n0 + np.arange(len(x))))


def sample_symbols(mf: np.ndarray, t0: float, step: float, idx: np.ndarray) -> np.ndarray:
    """Symbol-rate samples mf(t0 + i * step) for i in idx (int [m]): complex [m]."""
    return frac_interp(mf, t0 + step * idx.astype(np.float64))
