"""The header's two copies (issue 12: time diversity within the 15 % overhead budget).

The default header is sent twice in QPSK: the first copy after training 1, the second after 1024 data
symbols, so a fade over one copy of a long frame leaves the other; the receiver adds both copies' soft
bits and also tries each alone. Those long frames carry the rate-1/2 code (the overhead goals); a frame
shorter than 1024 data symbols carries the rate-1/3 code, its copies back to back after training 2.
"""
from __future__ import annotations

import numpy as np
import torch

from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link import Header, LinkConfig, Receiver, layout, modulate
from sccdm.link.pulse import rrc_taps


def _cn(n, rng):
    return (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(2)


def test_second_copy_lies_at_one_of_two_places_and_every_symbol_is_used_once():
    cfg = LinkConfig()
    after_t2 = layout(cfg, 0).header_idx[183:]
    at_split = layout(cfg, 1024).header_idx[122:]
    for n in (1, 256, 1023, 1024, 1025, 4096, 65536):
        lay = layout(cfg, n)
        n_h = 366 if n < 1024 else 244           # rate 1/3 or 1/2, two QPSK copies
        assert len(lay.header_idx) == n_h and len(np.unique(lay.header_idx)) == n_h
        second = lay.header_idx[n_h // 2:]
        if n < 1024:
            assert np.array_equal(second, after_t2) and second[0] > lay.train2.stop
        else:
            assert np.array_equal(second, at_split)
            assert np.sum(lay.data_idx < second[0]) == 1024      # after exactly 1024 data symbols
        used = np.concatenate([np.arange(lay.train2.stop)[lay.pre], np.arange(lay.train1.start, lay.train1.stop),
                               np.arange(lay.train2.start, lay.train2.stop), np.arange(lay.post.start, lay.post.stop),
                               lay.header_idx, lay.hpilot_idx, lay.data_idx, lay.pilot_idx])
        assert np.array_equal(np.sort(used), np.arange(lay.total))
    # same on-air cost as the single BPSK rate-1/2 header it replaces
    single = LinkConfig(header_qpsk=False, header_repeat=1, header_split=0)
    assert layout(cfg, 4096).overhead == layout(single, 4096).overhead == 608
    # a short frame costs what the single BPSK rate-1/3 header did
    old = LinkConfig(header_qpsk=False, header_repeat=1, header_split=0, header_rate=3)
    assert layout(cfg, 256).overhead == layout(old, 256).overhead == 618


def _stream_with_a_wiped_copy(cfg, wipe, rng):
    """Two frames of 16 x 256 symbols, AWGN 10 dB; wipe: which header copy (0, 1, or both) is replaced by
    noise alone in the first frame."""
    frames = [(_cn(4096, rng), Header(fid, 16, 256)) for fid in range(2)]
    x, starts = modulate(frames, cfg)
    x = x.astype(np.complex128)
    lay = layout(cfg, 4096)
    delay = (len(rrc_taps(cfg.sps, cfg.rolloff, cfg.span)) - 1) // 2
    for copy in ([0, 1] if wipe == "both" else [wipe]):
        idx = lay.header_idx[122 * copy:122 * (copy + 1)]
        a, b = starts[0] + delay + idx[0] * cfg.sps, starts[0] + delay + idx[-1] * cfg.sps
        x[a:b] = 0
    return x + np.sqrt(0.1 / 2) * (rng.normal(size=len(x)) + 1j * rng.normal(size=len(x)))


def test_a_frame_survives_either_header_copy_wiped_out_but_not_both():
    cfg = LinkConfig()
    rx = Receiver(cfg)
    for wipe in (0, 1):
        res = rx.demodulate(_stream_with_a_wiped_copy(cfg, wipe, np.random.default_rng(wipe)))
        assert [f.header.frame_id for f in res.frames] == [0, 1], (wipe, res.rejected)
    res = rx.demodulate(_stream_with_a_wiped_copy(cfg, "both", np.random.default_rng(2)))
    assert [f.header.frame_id for f in res.frames] == [1], res.rejected


def test_two_copies_lose_fewer_long_frames_at_doppler_1e4_5db():
    """fD Ts = 1e-4, 5 dB, 64 frames of 16 images (k = 256): the two copies lose at most 5 (4 now); the
    single BPSK rate-1/2 header of the same length loses 9 on the same fades and noise. Both without the
    header prediction (predict_header), which takes back nearly all such frames whatever the format: this
    compares what the formats' own decoding does."""
    z = torch.randn(1024, 256, generator=torch.Generator().manual_seed(0), dtype=torch.complex64)
    lost = {}
    for name, kw in (("copies", {}), ("single", {"header_qpsk": False, "header_repeat": 1, "header_split": 0})):
        be = EmulatedLinkBackend(LinkConfig(images_per_frame=16, predict_header=False, **kw), cfo=1e-4, doppler=1e-4)
        res = be.transmit(z, ChannelConfig(kind="rayleigh", snr_db=5), torch.Generator().manual_seed(1))
        lost[name] = 64 - res.extras["frames_received"]
    assert lost["copies"] <= 5 and lost["single"] >= lost["copies"] + 3, lost
