"""Time-varying flat Rayleigh fading (Doppler) for the emulated link: a sum of sinusoids.

Zheng and Xiao's model (IEEE Comm. Letters 2002), the one behind GNU Radio's
``channels.fading_model``: with M sinusoids, angles
``alpha_n = (2 pi n - pi + theta) / (4 M)`` and uniform phases ``phi_n``, ``psi_n``,

    h(t) = sqrt(1 / M) * sum_n [cos(w_d t cos alpha_n + phi_n) + j cos(w_d t sin alpha_n + psi_n)]

has E|h|^2 = 1 and, over realisations, E[h(t + tau) h*(t)] = J0(w_d tau) (Clarke's
spectrum), w_d = 2 pi fD Ts per sample. Each call draws theta, phi, psi from the
caller's generator, so one realisation covers a whole sample stream.
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["sos_fading"]


def sos_fading(n: int, fdts: float, generator: torch.Generator | None, n_sin: int = 16,
               t0: int = 0) -> np.ndarray:
    """Flat Rayleigh gain for samples t0 .. t0 + n - 1: complex128 [n], unit mean power.

    fdts: maximum Doppler frequency times the sample period (cycles per sample, >= 0; 0 gives a
    constant CN(0, 1)-like draw of the same model); n_sin: sinusoids per quadrature (M).
    """
    if n < 0 or not math.isfinite(fdts) or fdts < 0 or n_sin < 1:
        raise ValueError(f"need n >= 0, finite fdts >= 0 and n_sin >= 1, got {n}, {fdts}, {n_sin}")
    u = torch.rand(1 + 2 * n_sin, generator=generator, dtype=torch.float64).numpy()
    theta = (2 * u[0] - 1) * math.pi
    phi = (2 * u[1:1 + n_sin] - 1) * math.pi
    psi = (2 * u[1 + n_sin:] - 1) * math.pi
    alpha = (2 * math.pi * np.arange(1, n_sin + 1) - math.pi + theta) / (4 * n_sin)
    wd = 2 * math.pi * fdts
    t = np.arange(t0, t0 + n, dtype=np.float64)
    h = np.zeros(n, dtype=np.complex128)
    # one sinusoid at a time: [n] temporaries, not [n, n_sin] (streams of 10^6 samples)
    for a, p, s in zip(alpha, phi, psi):
        h += np.cos(wd * math.cos(a) * t + p) + 1j * np.cos(wd * math.sin(a) * t + s)
    return h / math.sqrt(n_sin)
