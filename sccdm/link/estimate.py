"""Channel and SNR estimation at symbol rate: LS taps, MMSE equaliser, pilot tracking.

Model for the symbol-rate samples r of one frame (after timing and CFO correction)::

    r[n] = sum_{l=-D..D} g[l] x[n - l] + e[n],   e ~ CN(0, sigma^2)

``g`` absorbs the flat gain, multipath, residual fractional timing and the
pulse-shaping residue; D = (chan_taps - 1) / 2.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ls_channel", "mmse_equalizer", "equalize_fir", "snr_from_repeat", "cfo_from_halves",
           "track_pilots", "lin_db", "smooth_gain", "block_gains", "GAIN_WIDTHS"]


def lin_db(x):
    return 10.0 * np.log10(np.maximum(np.asarray(x, dtype=np.float64), 1e-12))


def _regressors(x: np.ndarray, rows: np.ndarray, d: int) -> np.ndarray:
    """x: complex [n] known symbols (0 outside) -> complex [len(rows), 2d+1], column l+d holds x[n - l]."""
    lags = np.arange(-d, d + 1)
    idx = rows[:, None] - lags[None, :]
    ok = (idx >= 0) & (idx < len(x))
    return np.where(ok, x[np.clip(idx, 0, len(x) - 1)], 0)


def ls_channel(r: np.ndarray, x: np.ndarray, rows: np.ndarray, d: int) -> tuple[np.ndarray, float, int]:
    """Least-squares taps from known symbols.

    r: complex [n] received; x: complex [n] transmitted (known where ``rows``
    and their neighbours lie; 0 before the frame); rows: int [m] equations used.
    Returns (g complex [2d+1], sigma^2 unbiased residual variance, degrees of freedom).
    """
    a = _regressors(x, rows, d)
    g, *_ = np.linalg.lstsq(a, r[rows], rcond=None)
    res = r[rows] - a @ g
    dof = max(len(rows) - (2 * d + 1), 1)
    return g, float(np.sum(np.abs(res) ** 2) / dof), dof


def mmse_equalizer(g: np.ndarray, noise_var: float, n_taps: int) -> tuple[np.ndarray, float]:
    """Linear MMSE FIR for taps g: complex [2d+1] -> (w complex [n_taps], beta).

    The output ``u[n] = w^H [r[n-q] .. r[n+q]]`` estimates x[n] as ``beta x[n] + e``
    with unbiased SINR = beta / (1 - beta).
    """
    d = (len(g) - 1) // 2
    q = (n_taps - 1) // 2
    cols = np.arange(-(q + d), q + d + 1)
    rows = np.arange(-q, q + 1)
    lag = rows[:, None] - cols[None, :]
    hmat = np.where(np.abs(lag) <= d, g[np.clip(lag + d, 0, 2 * d)], 0)
    e0 = hmat[:, q + d]
    cov = hmat @ hmat.conj().T + max(noise_var, 1e-12) * np.eye(n_taps)
    w = np.linalg.solve(cov, e0)
    beta = float(np.real(np.vdot(w, e0)))
    return w, min(max(beta, 1e-9), 1 - 1e-9)


def equalize_fir(r: np.ndarray, w: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """u[p] = w^H r[p-q .. p+q] for p in positions: complex [len(positions)] (r outside = 0)."""
    q = (len(w) - 1) // 2
    full = np.convolve(r, w.conj()[::-1])
    return full[positions + q]


def snr_from_repeat(r1: np.ndarray, r2: np.ndarray) -> tuple[float, float]:
    """Two received copies of one training block (complex [n] each) -> (SNR linear, noise variance).

    The noise is half the power of their difference, the signal the power of
    their mean less the noise that remains in it (DeepWiVe's estimator).
    """
    nv = float(np.mean(np.abs(r1 - r2) ** 2) / 2)
    ps = float(np.mean(np.abs((r1 + r2) / 2) ** 2) - nv / 2)
    return max(ps, 1e-12) / max(nv, 1e-12), nv


def cfo_from_halves(r: np.ndarray, x: np.ndarray, rows: np.ndarray, d: int) -> float:
    """Residual frequency offset in radians per symbol, from LS taps of the two halves of ``rows``."""
    h = len(rows) // 2
    g1, _, _ = ls_channel(r, x, rows[:h], d)
    g2, _, _ = ls_channel(r, x, rows[h:], d)
    gap = float(np.mean(rows[h:]) - np.mean(rows[:h]))
    return float(np.angle(np.vdot(g1, g2))) / gap


def track_pilots(v: np.ndarray, pilots: np.ndarray, pilot_pos: np.ndarray, block: np.ndarray,
                 positions: np.ndarray, sinr: float, window: int = 3,
                 anchor: tuple[float, float] | None = None) -> np.ndarray:
    """Complex gain over the frame from pilot blocks.

    v: complex [n] equalised, unit-gain symbols; pilots: complex [p] known
    values at pilot_pos (int [p]) with block numbers block (int [p]); positions:
    int [m] where the gain is wanted; anchor: (centre, weight) of the region the
    equaliser was trained on, where the gain is 1 by construction. Each block
    gives one gain; between block centres the gain is a complex straight line
    fitted (weighted by symbols) to the ``window`` blocks on each side, so it
    follows residual CFO and slow fading while averaging the noise of short
    blocks. sinr: the equaliser's SINR (linear), which sets the noise of a
    block's gain; the fitted deviation from 1 is shrunk by the share of the
    blocks' spread that noise does not explain (empirical Bayes), so at low SNR,
    where a few pilots say little, tracking adds no noise. Returns complex [m].
    """
    nb = int(block.max()) + 1
    gains = [np.mean(v[pilot_pos[block == b]] * pilots[block == b].conj()) for b in range(nb)]
    centres = [float(np.mean(pilot_pos[block == b])) for b in range(nb)]
    weights = [float(np.sum(block == b)) for b in range(nb)]
    if anchor is not None:
        gains, centres, weights = [1.0 + 0j] + gains, [anchor[0]] + centres, [anchor[1]] + weights
    gains, centres, weights = np.asarray(gains), np.asarray(centres), np.asarray(weights)
    n = len(centres)
    out = np.empty(len(positions), dtype=np.complex128)
    seg = np.clip(np.searchsorted(centres, positions) - 1, 0, max(n - 2, 0))
    for s in np.unique(seg):
        lo, hi = max(0, s - window + 1), min(n, s + window + 1)
        c, gsel, wt = centres[lo:hi], gains[lo:hi], np.sqrt(weights[lo:hi])
        sel = seg == s
        if len(c) == 1:
            out[sel] = gsel[0]
            continue
        mid = float(np.average(c, weights=wt ** 2))
        a = np.stack([np.ones_like(c), c - mid], axis=1) * wt[:, None]
        coef, *_ = np.linalg.lstsq(a, gsel * wt, rcond=None)
        out[sel] = coef[0] + coef[1] * (positions[sel] - mid)
    pil = np.asarray(weights[1:] if anchor is not None else weights)
    g_p = gains[1:] if anchor is not None else gains
    var_b = 1.0 / (pil * max(sinr, 1e-6))
    from scipy.stats import gamma
    # each |g_b - 1|^2 / var_b is Exp(1) under "nothing to track": a chi-square test first
    if np.sum(np.abs(g_p - 1) ** 2 / var_b) < gamma.ppf(0.99, len(g_p)):
        return np.ones(len(positions), dtype=np.complex128)
    dev = max(float(np.mean(np.abs(g_p - 1) ** 2 - var_b)), 0.0)
    var_fit = float(np.mean(var_b)) * 2.0 / min(2 * window, n)
    k = dev / (dev + var_fit) if dev > 0 else 0.0
    return 1.0 + k * (out - 1.0)


# widths (symbols) of the gain smoother's kernel, tried by cross-validation; inf = one straight line
GAIN_WIDTHS = (8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, np.inf)


def _local_linear(t_obs: np.ndarray, g_obs: np.ndarray, n_obs: np.ndarray, t_out: np.ndarray, width: float,
                  leave_out: bool = False) -> np.ndarray:
    """Gaussian-kernel local-linear fit of g_obs (complex [m], weights n_obs [m], at t_obs [m]) at t_out [p].

    leave_out: t_out is t_obs and each point is predicted without itself (cross-validation).
    Returns complex [p]; where the local line is ill-posed (one point in reach) the local mean.
    Works in chunks of outputs so a long frame (thousands of pilot blocks) stays within memory.
    """
    if len(t_out) > _CHUNK:
        return np.concatenate([_local_linear_rows(t_obs, g_obs, n_obs, t_out, width, leave_out, i)
                               for i in range(0, len(t_out), _CHUNK)])
    return _local_linear_rows(t_obs, g_obs, n_obs, t_out, width, leave_out, 0)


_CHUNK = 1024


def _local_linear_rows(t_obs, g_obs, n_obs, t_out, width, leave_out, i0):
    """Rows i0 .. i0 + _CHUNK of :func:`_local_linear` (leave_out drops observation i from row i)."""
    t_out = t_out[i0:i0 + _CHUNK]
    d = t_obs[None, :] - t_out[:, None]                          # [p, m]
    w = n_obs[None, :] * (np.exp(-0.5 * (d / width) ** 2) if np.isfinite(width) else np.ones_like(d))
    if leave_out:
        rows = np.arange(len(t_out))
        w[rows, i0 + rows] = 0.0
    s0, s1, s2 = w.sum(1), (w * d).sum(1), (w * d * d).sum(1)
    t0, t1 = w @ g_obs, (w * d) @ g_obs
    det = s0 * s2 - s1 ** 2
    ok = det > 1e-9 * np.maximum(s0 * s2, 1e-30)
    line = (s2 * t0 - s1 * t1) / np.where(ok, det, 1.0)
    mean = t0 / np.maximum(s0, 1e-30)
    return np.where(ok, line, mean)


def smooth_gain(t_obs: np.ndarray, g_obs: np.ndarray, n_obs: np.ndarray, t_out: np.ndarray,
                widths=GAIN_WIDTHS, sinr: float | None = None, floor_share: float = 0.01) -> tuple[np.ndarray, float]:
    """The channel's complex gain over a frame from noisy block measurements, smoothed as much as it allows.

    t_obs: float [m] block centres (symbols); g_obs: complex [m] block gains (mean of v x*); n_obs:
    float [m] known symbols per block (their weights: a block's noise variance is 1 / (n SINR));
    t_out: float [p] where the gain is wanted. The kernel width is the one of ``widths`` that best
    predicts each block from the others (leave-one-out cross-validation): a still channel picks the
    widest (a straight line through all), a fading one as narrow as its coherence time and the
    noise allow - the measured variation chooses the window. Between a grid of fitted points the
    gain is interpolated linearly. sinr (linear, of v): when given, the blocks must first depart
    from one straight line by more than their noise (chi-square, 1 %), so noise alone never buys
    a narrow window; with sinr the blocks are weighted by 1 / (1 / (n SINR) + floor_share mean |g|^2),
    the floor standing for a still channel's model error (-20 dB) and capping a long run's weight.
    Returns (complex [p], chosen width; inf = no variation seen).
    """
    t_obs, n_obs = np.asarray(t_obs, dtype=np.float64), np.asarray(n_obs, dtype=np.float64)
    g_obs = np.asarray(g_obs, dtype=np.complex128)
    best, best_w = np.inf, widths[-1]
    moving = len(t_obs) >= 4
    if moving and sinr is not None:
        from scipy.stats import gamma
        line = _local_linear(t_obs, g_obs, n_obs, t_obs, np.inf)
        # the floor: what a still channel's blocks may depart from a line beside the noise (a DC, an
        # IQ image, the pulse's residue), and at high SNR it keeps a 16-symbol run from outweighing
        # a 2-symbol pilot block that sits where the gain is
        floor = floor_share * float(np.mean(np.abs(g_obs) ** 2))
        n_obs = 1.0 / (1.0 / (n_obs * max(sinr, 1e-6)) + floor)
        # |g_b - line_b|^2 / var_b is Exp(1) per block when only noise and the floor depart from the line
        moving = float(np.sum(n_obs * np.abs(g_obs - line) ** 2)) > gamma.ppf(0.99, len(t_obs) - 2)
    if moving:
        for w in widths:
            err = float(np.sum(n_obs * np.abs(g_obs - _local_linear(t_obs, g_obs, n_obs, t_obs, w, True)) ** 2))
            if err < best * (1 - 1e-9):
                best, best_w = err, w
    grid = np.unique(np.concatenate([t_obs, np.linspace(min(t_obs.min(), t_out.min()),
                                                        max(t_obs.max(), t_out.max()), 64)]))
    if np.isfinite(best_w):
        grid = np.unique(np.concatenate([grid, np.arange(grid[0], grid[-1], max(best_w / 4, 1.0))]))
    fit = _local_linear(t_obs, g_obs, n_obs, grid, best_w)
    return np.interp(t_out, grid, fit.real) + 1j * np.interp(t_out, grid, fit.imag), float(best_w)


def block_gains(v: np.ndarray, x: np.ndarray, pos: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split known positions pos (int [n], sorted) into runs of at most ``size`` adjacent symbols.

    v: complex equalised unit-gain symbols; x: complex known symbols (same indexing).
    Returns (centres float [m], gains complex [m] = mean v x* over each run, symbols per run float [m]).
    """
    pos = np.asarray(pos, dtype=np.int64)
    if len(pos) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.complex128), np.zeros(0)
    breaks = np.flatnonzero(np.diff(pos) != 1) + 1
    cs, gs, ns = [], [], []
    for run in np.split(pos, breaks):
        for k in range(0, len(run), size):
            p = run[k:k + size]
            # a short tail joins its run's previous block rather than standing alone, noisier
            if k and len(p) < size // 2:
                p = run[k - size:k + len(p)]
                cs.pop(), gs.pop(), ns.pop()
            cs.append(float(np.mean(p)))
            gs.append(np.mean(v[p] * np.conj(x[p])))
            ns.append(float(len(p)))
    return np.asarray(cs), np.asarray(gs), np.asarray(ns)
