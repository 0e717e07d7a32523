"""Issue 12's delay spread of 15 samples: the receiver must come close to what a linear equaliser with perfect
channel knowledge can do on it (the channel's own cost, against AWGN, is not the link's to remove).

benchmarks/results/csi-delay15.md (n 128): PSNR cost against AWGN at 10 / 20 dB 2.11 / 0.69 dB, of which the
perfect-CSI linear bound is 1.57 / 0.57 dB - the issue's 0.5 dB goal is out of reach of a linear receiver
on this profile; what is asserted here is the link's distance from that bound.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link import LinkConfig
from sccdm.link.pulse import rrc_taps


def _taps(rng):
    """4 paths at 0/5/10/15 samples, -3 dB per 5 samples, uniform random phases, unit energy (csi.py's delay15)."""
    t = np.zeros(16, dtype=np.complex128)
    for d in (0, 5, 10, 15):
        t[d] = 10 ** (-0.6 * d / 20) * np.exp(2j * np.pi * rng.random())
    return t / np.linalg.norm(t)


def _bound_db(taps, snr_db, cfg):
    """Unbiased SINR (dB) of an unbounded symbol-spaced MMSE equaliser knowing the channel, best sampling phase."""
    rrc = rrc_taps(cfg.sps, cfg.rolloff, cfg.span)
    p = np.convolve(np.convolve(rrc, taps), rrc)
    s = 10 ** (snr_db / 10)
    return max(10 * np.log10(1 / np.mean(1 / (1 + s * np.abs(np.fft.fft(p[ph::cfg.sps], 1024)) ** 2)) - 1)
               for ph in range(cfg.sps))


def _frames(snr_db, n=12):
    cfg, rng = LinkConfig(), np.random.default_rng(7)
    gap, eps = [], []
    for i in range(n):
        taps = _taps(rng)
        g = torch.Generator().manual_seed(i)
        z = (torch.complex(torch.randn(1, 256, generator=g), torch.randn(1, 256, generator=g)) * 0.7071
             ).to(torch.complex64)
        res = EmulatedLinkBackend(cfg, cfo=1e-4, taps=taps).transmit(
            z, ChannelConfig(kind="awgn", snr_db=snr_db), torch.Generator().manual_seed(100 + i))
        assert res.extras["frames_received"] == 1
        sinr = -10 * np.log10(((res.y - z).abs() ** 2).mean().item())
        gap.append(sinr - _bound_db(taps, snr_db, cfg))
        eps.append(res.extras["eps"][0])
    return np.array(gap), np.array(eps)


# measured on these 12 draws: mean / worst gap to the bound -0.88 / -3.17 dB at 20 dB, -0.48 / -2.97 at 10 dB
# (the receiver before: -3.34 / -6.23 and -0.93 / -3.13). The worst frames report 1.5 to 2 dB more SNR than
# their data get (not the clock, DC/IQ or the tap count: open)
@pytest.mark.parametrize("snr_db, mean_gap, worst_gap", [(20.0, -1.2, -3.5), (10.0, -0.7, -3.3)])
def test_fifteen_sample_spread_near_the_linear_bound(snr_db, mean_gap, worst_gap):
    gap, eps = _frames(snr_db)
    assert np.abs(eps).max() < 1.5e-4, eps                   # the clock offset is 0
    assert gap.mean() > mean_gap and gap.min() > worst_gap, gap.round(2)


def test_clock_offset_not_fooled_by_two_equal_paths():
    """Two paths of equal strength 4 samples apart: the preamble's and the postamble's correlation peaks
    each pick one, and a different one over a 3500-sample frame read as a 1000 ppm clock offset (4 of 16
    frames before, the data then at 2.5 dB SINR); the aligned profiles see the whole channel move."""
    taps = np.zeros(5, dtype=np.complex128)
    taps[0], taps[4] = 1.0, 0.95j
    taps /= np.linalg.norm(taps)
    g = torch.Generator().manual_seed(0)
    z = (torch.complex(torch.randn(16, 256, generator=g), torch.randn(16, 256, generator=g)) * 0.7071
         ).to(torch.complex64)
    res = EmulatedLinkBackend(LinkConfig(), cfo=1e-4, taps=taps).transmit(
        z, ChannelConfig(kind="awgn", snr_db=15), torch.Generator().manual_seed(1))
    assert res.extras["frames_received"] == 16
    assert np.abs(res.extras["eps"]).max() < 1.5e-4, res.extras["eps"]      # measured 44 ppm at most
    assert -10 * np.log10(((res.y - z).abs() ** 2).mean().item()) > 7.5      # measured 8.49 dB
