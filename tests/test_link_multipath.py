"""Delay spread (issue 12): the receiver sizes its channel model and equaliser from each frame's measured spread."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link import LinkConfig


def _five_paths(spacing=6):
    """5 sample-spaced paths `spacing` samples apart (24 samples = 6 symbols of spread at sps 4), unit energy."""
    rng = np.random.default_rng(1)
    taps = np.zeros(4 * spacing + 1, dtype=np.complex128)
    for i in range(5):
        taps[spacing * i] = (rng.normal() + 1j * rng.normal()) * np.exp(-i / 3)
    return taps / np.linalg.norm(taps)


def _run(link, taps):
    g = torch.Generator().manual_seed(0)
    z = (torch.complex(torch.randn(24, 256, generator=g), torch.randn(24, 256, generator=g)) * 0.7071
         ).to(torch.complex64)
    be = EmulatedLinkBackend(link, cfo=1e-4, taps=taps)
    res = be.transmit(z, ChannelConfig(kind="awgn", snr_db=10), torch.Generator().manual_seed(3))
    assert res.extras["frames_received"] == len(z)
    return -10 * np.log10(((res.y - z).abs() ** 2).mean().item()), res


def test_measured_delay_spread_grows_the_equaliser():
    fixed, _ = _run(LinkConfig(max_chan_taps=0), _five_paths())
    sized, res = _run(LinkConfig(), _five_paths())
    # +-3 symbols (chan_taps 7) cannot hold a 6-symbol spread centred anywhere but its middle
    assert sized > fixed + 0.25, (sized, fixed)
    assert min(res.extras["chan_taps"]) > 7, res.extras["chan_taps"]


def test_single_path_keeps_the_small_model():
    fixed, _ = _run(LinkConfig(max_chan_taps=0), None)
    sized, res = _run(LinkConfig(), None)
    assert abs(sized - fixed) < 0.05, (sized, fixed)
    assert set(res.extras["chan_taps"]) == {7}, res.extras["chan_taps"]


def test_bad_sizes_and_taps():
    with pytest.raises(ValueError, match="max_chan_taps"):
        LinkConfig(max_chan_taps=27).validate()
    with pytest.raises(ValueError, match="max_chan_taps"):
        LinkConfig(max_chan_taps=20).validate()
    with pytest.raises(ValueError, match="taps"):
        EmulatedLinkBackend(LinkConfig(), taps=[0, 0])
