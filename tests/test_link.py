"""The radio link layer (sccdm.link): pulse shaping, header protection, detection, estimation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sccdm.channels import ChannelConfig
from sccdm.link import Header, HeaderError, LinkConfig, LinkMeta, LinkSession, Receiver, layout
from sccdm.link.fec import conv_encode, viterbi_decode
from sccdm.link.framing import build_frame
from sccdm.link.pulse import rrc_taps, shape
from sccdm.backends.emulated_link import EmulatedLinkBackend


def _noise(n, snr_db, rng):
    return np.sqrt(10 ** (-snr_db / 10) / 2) * (rng.normal(size=n) + 1j * rng.normal(size=n))


def _cn(shape, rng):
    return ((rng.normal(size=shape) + 1j * rng.normal(size=shape)) / np.sqrt(2)).astype(np.complex64)


def test_rrc_is_unit_energy_and_nyquist():
    g = rrc_taps(4, 0.35, 10)
    assert np.sum(g ** 2) == pytest.approx(1.0)
    rc = np.convolve(g, g)
    c = len(rc) // 2
    assert rc[c] == pytest.approx(1.0)
    isi = np.delete(rc[c % 4::4], c // 4)
    assert np.max(np.abs(isi)) < 5e-3


def test_header_roundtrip_and_every_corruption_is_caught():
    hdr = Header(frame_id=513, n_images=3, k=256, model_id=1, C=32, h=4, w=4, H=32, W=32)
    bits = hdr.to_bits()
    assert Header.from_bits(bits) == hdr
    for i in range(len(bits)):                     # any single bit error
        bad = list(bits)
        bad[i] ^= 1
        with pytest.raises(HeaderError):
            Header.from_bits(bad)
    rng = np.random.default_rng(0)
    for _ in range(300):                           # garbage is never read as a header
        with pytest.raises(HeaderError):
            Header.from_bits(rng.integers(0, 2, len(bits)))
    with pytest.raises(HeaderError, match="does not hold"):
        Header(0, 1, 100, C=32, h=4, w=4).check()


def test_viterbi_corrects_channel_errors():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, 116)
    soft = 1.0 - 2.0 * conv_encode(bits)
    soft[rng.choice(len(soft), 12, replace=False)] *= -1   # 12 hard errors spread over the block
    assert np.array_equal(viterbi_decode(soft, 116), bits)


def test_corrupted_header_is_rejected_not_misread():
    cfg = LinkConfig()
    rng = np.random.default_rng(2)
    taps = rrc_taps(cfg.sps, cfg.rolloff, cfg.span)
    gap = np.zeros(cfg.guard * cfg.sps)
    parts = []
    for fid in range(3):
        x = build_frame(_cn(256, rng), Header(fid, 1, 256), cfg)
        if fid == 1:
            hs = layout(cfg, 256).header_idx                 # both copies of the header
            flip = rng.random(len(hs)) < 0.3                 # 30 % of the header symbols negated
            x[hs] = np.where(flip, -x[hs], x[hs])
        parts += [gap, shape(x, cfg.sps, taps)]
    stream = np.concatenate(parts + [gap])
    stream = stream + _noise(len(stream), 20, rng)
    # the CRC path alone (predict_header off): the header is rejected, never misread
    res = Receiver(LinkConfig(predict_header=False)).demodulate(stream)
    assert [f.header.frame_id for f in res.frames] == [0, 2]
    assert any("header" in r["reason"] for r in res.rejected), res.rejected
    # with it (the default) the frame between 0 and 2 is taken with the header they predict, and flagged
    res = Receiver(cfg).demodulate(stream)
    assert [(f.header.frame_id, f.header_predicted) for f in res.frames] == [(0, False), (1, True), (2, False)]


@pytest.mark.parametrize("snr_db", [0.0, 5.0, 10.0, 15.0, 20.0])
def test_snr_estimate_within_1db(snr_db):
    """AWGN with CFO 1e-3 cycles/sample and a 100 ppm clock offset: estimated SNR per frame within +-1 dB."""
    be = EmulatedLinkBackend(LinkConfig(), cfo=1e-3, eps_ppm=100)
    z = torch.from_numpy(_cn((8, 256), np.random.default_rng(3)))
    res = be.transmit(z, ChannelConfig(kind="awgn", snr_db=snr_db), torch.Generator().manual_seed(int(snr_db)))
    assert res.csi_source == "estimated" and res.h is None and bool(res.mask.all())
    est_in = np.array(res.extras["snr_in_db"])
    assert np.all(np.abs(est_in - snr_db) <= 1.0), est_in
    assert np.all(np.abs(res.snr_db.numpy() - snr_db) <= 1.0), res.snr_db
    # the estimate is honest: the measured error of the symbols matches the SNR handed on
    mse = ((res.y - z).abs() ** 2).mean().item()
    assert abs(10 * np.log10(1 / mse) - res.snr_db.mean().item()) <= 1.0
    assert abs(np.mean(res.extras["cfo"]) - 1e-3) < 2e-5


@pytest.mark.parametrize("rate", [3, 2])
def test_detection_200_frames_at_0db_misses_none_invents_none(rate):
    """One-image frames (shorter than header_split) carry the header's two QPSK copies back to back at
    rate 1/3 (default, 366 symbols): none of 200 frames missed at 0 dB; at rate 1/2 (244 symbols, about
    1.8 dB less energy per header bit) at most 1.5 % (3 now)."""
    cfg = LinkConfig(header_rate_short=rate)
    session = LinkSession(cfg)
    rng = np.random.default_rng(4)
    plan = session.plan(_cn((200, 256), rng))
    x = plan.samples.astype(np.complex128) * np.exp(2j * np.pi * 1e-3 * np.arange(len(plan.samples)))
    rx = x + _noise(len(x), 0.0, rng)
    res = Receiver(cfg).demodulate(rx)
    ids = [f.header.frame_id for f in res.frames]
    if rate == 3:
        assert ids == list(range(200)), (len(ids), res.rejected[:5])
    else:
        assert len(ids) >= 197 and ids == sorted(set(ids)) and set(ids) <= set(range(200)), (len(ids), res.rejected[:5])
    # where the frames really start, +- 2 samples (matched-filter delay: len(taps) - 1)
    delay = cfg.span * cfg.sps
    starts = np.array(plan.starts)[ids]
    assert np.max(np.abs(np.array([f.start for f in res.frames]) - starts - delay)) < 2
    noise_only = Receiver(cfg).demodulate(_noise(len(rx), 0.0, rng))
    assert noise_only.frames == []


def test_rayleigh_block_fading_estimated_csi():
    be = EmulatedLinkBackend(LinkConfig(), cfo=5e-4)
    z = torch.from_numpy(_cn((6, 256), np.random.default_rng(5)))
    meta = LinkMeta("sc-cdm-cpu", (32, 4, 4), (32, 32))
    res = be.transmit(z, ChannelConfig(kind="rayleigh", snr_db=20, csi="mmse"), torch.Generator().manual_seed(5),
                      meta=meta)
    assert res.h is not None and res.h.shape == z.shape and res.csi_source == "estimated"
    zf = res.y / res.h                                   # the estimated CSI undoes the fading
    err_db = 10 * torch.log10(((zf - z).abs() ** 2).mean(1))
    eff = 10 * torch.log10((res.h.abs() ** 2).mean(1) / res.noise_var)
    assert torch.all((err_db + eff).abs() < 1.5), (err_db, eff)    # error power matches 1 / estimated SNR
    assert torch.allclose(res.snr_db, eff, atol=1e-3)
    ex = res.extras
    ovh = layout(LinkConfig(), 256).overhead
    assert ex["overhead_symbols_per_frame"] == [ovh] * 6 and ex["overhead_symbols_per_image"] == ovh
    assert ex["cbr"] == pytest.approx(256 / 3072)
    assert ex["cbr_with_overhead"] == pytest.approx((256 + ovh) / 3072)


def test_link_config_from_env_and_bad_values():
    cfg = LinkConfig.from_env({"SCCDM_LINK_SPS": "2", "SCCDM_LINK_IMAGES_PER_FRAME": "4", "SCCDM_LINK_TRACK": "0"})
    assert (cfg.sps, cfg.images_per_frame, cfg.track) == (2, 4, False)
    with pytest.raises(ValueError, match="SCCDM_LINK_SPS"):
        LinkConfig.from_env({"SCCDM_LINK_SPS": "four"})
    with pytest.raises(ValueError, match="odd"):
        LinkConfig(chan_taps=4).validate()


def test_several_images_per_frame_and_symbol_rate_link():
    for cfg in (LinkConfig(images_per_frame=4), LinkConfig(sps=1, chan_taps=1, eq_taps=1)):
        be = EmulatedLinkBackend(cfg, cfo=2e-4)
        z = torch.from_numpy(_cn((6, 128), np.random.default_rng(6)))
        res = be.transmit(z, ChannelConfig(kind="awgn", snr_db=15), torch.Generator().manual_seed(6))
        assert res.extras["frames"] == (2 if cfg.images_per_frame == 4 else 6)
        assert res.extras["frames_received"] == res.extras["frames"]
        mse_db = 10 * np.log10(((res.y - z).abs() ** 2).mean().item())
        assert abs(-mse_db - 15) < 1.5
