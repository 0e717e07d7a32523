"""Receiver front-end impairments: DC offset and IQ imbalance (model and correction).

A direct-conversion receiver adds, after the channel and its noise,

* a DC offset (LO leakage): ``r + dc``;
* IQ imbalance (gain / phase mismatch of the I and Q branches), GNU Radio's
  ``channels.iqbal_gen`` receiver model: ``Re' = a (Re cos p + Im sin p)``,
  ``Im' = Im`` with ``a = 10^(mag_db / 20)``, i.e. ``r' = mu r + nu conj(r)``.

Correction in the receiver (:class:`sccdm.link.modem.Receiver`):

Blind estimates do not work on this signal: the stream's mean is not the DC
(the coded header of mostly-zero fields is BPSK with a mean of its own) and a
circularity estimate of the image is biased (the header is BPSK, and the SC-CDM
latent symbols are themselves improper: |E z^2| / E|z|^2 about 0.08 per CIFAR
image, up to 0.28). So both are estimated data-aided, per frame, at symbol
rate, by one widely-linear least-squares fit on the known symbols
(:func:`frontend_ls`); the DC is subtracted, and the image of the known
symbols plus soft estimates of the data (:func:`remove_image`).
"""
from __future__ import annotations

import numpy as np

from .estimate import _regressors

__all__ = ["add_dc", "iq_imbalance", "frontend_ls", "image_significant", "remove_image"]


def add_dc(x: np.ndarray, dc: complex) -> np.ndarray:
    """x: complex [n] -> x + dc (same dtype)."""
    return (x + np.asarray(dc, dtype=x.dtype)).astype(x.dtype)


def iq_imbalance(x: np.ndarray, mag_db: float, phase_deg: float) -> np.ndarray:
    """iqbal_gen's receiver model on x: complex [n] -> complex [n] (same dtype)."""
    if not (np.isfinite(mag_db) and np.isfinite(phase_deg)) or abs(phase_deg) >= 90:
        raise ValueError(f"IQ imbalance needs finite mag_db and |phase_deg| < 90, got {mag_db}, {phase_deg}")
    p = np.deg2rad(phase_deg)
    re = 10 ** (mag_db / 20) * (x.real * np.cos(p) + x.imag * np.sin(p))
    return (re + 1j * x.imag).astype(x.dtype)


def _image_rows(x: np.ndarray, rows: np.ndarray, d: int, rot: np.ndarray) -> np.ndarray:
    """Regressors of the image term: conj(x) through 2d+1 taps, turned by rot (complex [n])."""
    return _regressors(np.conj(x), rows, d) * rot[rows, None]


def frontend_ls(r: np.ndarray, x: np.ndarray, rows: np.ndarray, d: int, rot: np.ndarray | None,
                dc_turn: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, complex, float]:
    """Widely-linear LS with a DC term on the known rows:

        r[n] = (g * x)[n] + rot[n] (g2 * conj x)[n] + dc dc_turn[n] + e[n]

    r: complex [n] symbol-rate samples; x: complex [<= n] known symbols (0 where
    unknown); rows: int [m]; rot / dc_turn: complex [n] or None (term left out):
    the turns the image and the DC took when the receiver removed the CFO.
    Returns (g complex [2d+1], g2 complex [2d+1] or [0], dc, sigma^2 of the residual).
    """
    cols = [_regressors(x, rows, d)]
    if rot is not None:
        cols.append(_image_rows(x, rows, d, rot))
    if dc_turn is not None:
        cols.append(dc_turn[rows, None])
    a = np.concatenate(cols, axis=1)
    coef, *_ = np.linalg.lstsq(a, r[rows], rcond=None)
    res = r[rows] - a @ coef
    dof = max(len(rows) - a.shape[1], 1)
    nt = 2 * d + 1
    g2 = coef[nt:2 * nt] if rot is not None else np.zeros(0, dtype=coef.dtype)
    dc = complex(coef[-1]) if dc_turn is not None else 0j
    return coef[:nt], g2, dc, float(np.sum(np.abs(res) ** 2) / dof)


def image_significant(g2: np.ndarray, noise_var: float, n_rows: int, factor: float = 4.0) -> bool:
    """Is the image above what LS noise alone gives (about (2d+1) sigma^2 / m of tap energy)?
    Subtracting a noise-only estimate would add noise, so small images are left alone."""
    return float(np.sum(np.abs(g2) ** 2)) > factor * len(g2) * noise_var / max(n_rows, 1)


def remove_image(r: np.ndarray, x_hat: np.ndarray, g2: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """r minus the image of x_hat (complex [<= n]: known symbols, and estimates where data are).

    The estimates' own errors enter only through |nu|^2 (about -22 dB for 1 dB / 5 deg), so
    soft MMSE estimates of the analog data symbols are good enough.
    """
    d = (len(g2) - 1) // 2
    rows = np.arange(len(r))
    return r - _image_rows(x_hat, rows, d, rot) @ g2
