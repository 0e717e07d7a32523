"""Receiver front-end impairments (issue 12): DC offset and IQ imbalance, estimated and removed per frame.

numpy-level: the emulated_link backend adds them after the noise (GNU Radio's iqbal_gen receiver model and a
constant); the GNU Radio versions are in tests/test_gnuradio.py (marked gnuradio).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link import LinkConfig
from sccdm.link.frontend import add_dc, iq_imbalance

MAG_DB, PHASE_DEG, DC = 1.0, 5.0, 0.2


def _symbols(b=8, k=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.complex(torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)) * 0.7071).to(torch.complex64)


def _mse_db(link: LinkConfig, snr_db=10.0, cfo=1e-4, **imp):
    """Symbol error of the link (dB, relative to unit-power symbols) and its result."""
    z = _symbols()
    be = EmulatedLinkBackend(link, cfo=cfo, **imp)
    res = be.transmit(z, ChannelConfig(kind="awgn", snr_db=snr_db), torch.Generator().manual_seed(3))
    assert res.extras["frames_received"] == len(z)
    return 10 * np.log10(((res.y - z).abs() ** 2).mean().item()), res


def _true_w(mag_db, phase_deg):
    """r' = mu r + nu conj(r) for the iqbal model -> nu / conj(mu), the image coefficient the receiver removes."""
    e1 = iq_imbalance(np.array([1 + 0j]), mag_db, phase_deg)[0]
    ej = iq_imbalance(np.array([1j]), mag_db, phase_deg)[0]
    mu, nu = (e1 - 1j * ej) / 2, (e1 + 1j * ej) / 2
    return nu / np.conj(mu)


@pytest.mark.parametrize("cfo", [0.0, 1e-4])
def test_dc_and_iq_cost_nothing_once_corrected(cfo):
    clean, _ = _mse_db(LinkConfig(), cfo=cfo)
    off, _ = _mse_db(LinkConfig(dc_remove=False, iq_correct=False), cfo=cfo, dc=DC, iq_mag_db=MAG_DB,
                     iq_phase_deg=PHASE_DEG)
    fixed, res = _mse_db(LinkConfig(), cfo=cfo, dc=DC, iq_mag_db=MAG_DB, iq_phase_deg=PHASE_DEG)
    assert off > clean + 2.0, (off, clean)         # uncorrected: the DC alone costs about 4 dB at 10 dB SNR
    assert fixed < clean + 0.15, (fixed, clean)
    # per-frame SNR estimates have an rms error of ~0.21 dB (benchmarks/results/csi-frontend.md): 3 sigma each
    # of 8 frames; a broken correction is off by 4 dB (uncorrected DC above)
    assert torch.all((res.snr_db - 10).abs() < 0.7), res.snr_db


def test_front_end_estimates_match_the_impairment():
    """The receiver's raw-stream DC and image coefficient are what was applied (at 30 dB, one transmission)."""
    z = _symbols(4)
    be = EmulatedLinkBackend(LinkConfig(), cfo=1e-4, dc=0.1 - 0.15j, iq_mag_db=MAG_DB, iq_phase_deg=PHASE_DEG)
    plan = be.session.plan(z)
    rx = be.channel_stream(plan, ChannelConfig(kind="awgn", snr_db=30), torch.Generator().manual_seed(1))
    dem = be.session.demodulate(rx)
    assert len(dem.frames) == 4
    assert abs(dem.dc - (0.1 - 0.15j)) < 0.01, dem.dc
    # the DC rides on the imbalanced stream: what the receiver must remove first is the DC itself
    w = _true_w(MAG_DB, PHASE_DEG)
    assert abs(dem.iq_w - w) < 0.1 * abs(w), (dem.iq_w, w)


def test_clean_link_untouched():
    """Without impairments the front-end stage changes nothing measurable (no second pass, no noise added)."""
    z = _symbols(4)
    be = EmulatedLinkBackend(LinkConfig(), cfo=1e-4)
    plan = be.session.plan(z)
    rx = be.channel_stream(plan, ChannelConfig(kind="awgn", snr_db=10), torch.Generator().manual_seed(2))
    dem = be.session.demodulate(rx)
    assert dem.dc == 0 and dem.iq_w == 0
    on, _ = _mse_db(LinkConfig())
    off, _ = _mse_db(LinkConfig(dc_remove=False, iq_correct=False))
    assert abs(on - off) < 0.05, (on, off)


def test_impairment_models_and_bad_input():
    x = np.array([1 + 0j, 1j, 0.5 - 0.5j], dtype=np.complex64)
    y = iq_imbalance(x, 0.0, 0.0)
    assert np.allclose(y, x) and y.dtype == np.complex64
    y = iq_imbalance(x, 20 * np.log10(2), 0.0)           # 6 dB: the I branch doubles, Q unchanged
    assert np.allclose(y, [2, 1j, 1 - 0.5j])
    assert np.allclose(add_dc(x, 0.2j), x + 0.2j)
    with pytest.raises(ValueError, match="phase"):
        iq_imbalance(x, 1.0, 90.0)
    with pytest.raises(ValueError, match="complex"):
        EmulatedLinkBackend(LinkConfig(), dc="a lot")
    with pytest.raises(ValueError, match="out of range"):
        EmulatedLinkBackend(LinkConfig(), iq_phase_deg=95)
