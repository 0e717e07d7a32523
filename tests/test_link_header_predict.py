"""predict_header (default on): a frame whose header fails its CRC at the place its neighbours put it is
matched against the header they predict and taken with it (sccdm.link.predict); noise and foreign frames
at that place are not."""
from __future__ import annotations

import numpy as np

from sccdm.link import LinkConfig
from sccdm.link.framing import Header, build_frame, layout
from sccdm.link.modem import Receiver
from sccdm.link.predict import header_soft, match_header
from sccdm.link.pulse import rrc_taps, shape


def _cn(n, rng):
    return (rng.normal(size=n) + 1j * rng.normal(size=n)) / np.sqrt(2)


def _stream(cfg, rng, headers, fade_db, tail_frames=0):
    """Back-to-back one-image frames with the given headers, the middle one (index 1) faded by fade_db
    as a whole, 10 dB SNR, CFO 1e-4; tail_frames: room for that many more frames of noise at the end.
    Returns (stream complex [n], the middle frame's data complex [256])."""
    taps = rrc_taps(cfg.sps, cfg.rolloff, cfg.span)
    gap = np.zeros(cfg.guard * cfg.sps)
    parts, mid = [], None
    for i, hdr in enumerate(headers):
        data = _cn(256, rng)
        s = shape(build_frame(data, hdr, cfg), cfg.sps, taps)
        if i == 1:
            s, mid = s * 10 ** (-fade_db / 20), data
        parts += [gap, s]
    n_tail = tail_frames * (layout(cfg, 256).total + cfg.guard) * cfg.sps
    stream = np.concatenate(parts + [gap, np.zeros(n_tail)])
    stream = stream * np.exp(2j * np.pi * 1e-4 * np.arange(len(stream)))
    return stream + _cn(len(stream), rng) * np.sqrt(0.1), mid


def test_a_frame_faded_18_db_is_taken_with_its_predicted_header():
    # 18 dB down at 10 dB: -8 dB in the fade, below what the header's code decodes, far above the match's floor
    stream, data = _stream(LinkConfig(), np.random.default_rng(3), [Header(f, 1, 256) for f in range(3)], 18.0)
    off = Receiver(LinkConfig(predict_header=False)).demodulate(stream)
    assert [f.header.frame_id for f in off.frames] == [0, 2], off.rejected
    res = Receiver(LinkConfig()).demodulate(stream)
    assert [(f.header.frame_id, f.header_predicted) for f in res.frames] == [(0, False), (1, True), (2, False)]
    fr = res.frames[1]
    assert fr.header == Header(1, 1, 256)
    # its data come back usable: the equalised symbols correlate with what was sent, the SNR says it is low
    z_hat = (fr.y * np.conj(fr.h) / np.maximum(np.abs(fr.h) ** 2, 1e-12))[0]
    rho = abs(np.vdot(data, z_hat)) / np.linalg.norm(data) / np.linalg.norm(z_hat)
    assert rho > 0.2, rho
    assert -15 < float(fr.snr_db[0]) < 0, fr.snr_db


def test_noise_after_the_burst_is_not_taken_for_a_frame():
    # room for two more frames of noise after the burst: their slots are tested and rejected
    cfg = LinkConfig()
    stream, _ = _stream(cfg, np.random.default_rng(4), [Header(f, 1, 256) for f in range(3)], 0.0, tail_frames=2)
    res = Receiver(cfg).demodulate(stream)
    assert [f.header.frame_id for f in res.frames] == [0, 1, 2]
    assert any(r["reason"].startswith("header prediction: no match") for r in res.rejected), res.rejected


def test_a_faded_foreign_frame_at_the_predicted_place_is_not_taken():
    # the middle slot holds a frame the neighbours do not predict: 3 frame_ids on (within the window of
    # frame_ids the prediction must beat), or another transmission's (frame_id, model and geometry); faded
    # so that its own CRC fails
    for foreign in (Header(4, 1, 256), Header(9, 1, 256, model_id=3, C=16, h=4, w=8, H=64, W=64)):
        stream, _ = _stream(LinkConfig(), np.random.default_rng(5), [Header(0, 1, 256), foreign, Header(2, 1, 256)],
                            18.0)
        res = Receiver(LinkConfig()).demodulate(stream)
        assert [f.header.frame_id for f in res.frames] == [0, 2], (foreign, res.rejected)


def test_match_statistic_is_standard_normal_on_noise():
    # Z of noise: about N(0, 1), so the threshold 4.5 holds a false accept to 3.4e-6 per candidate
    cfg, rng = LinkConfig(), np.random.default_rng(6)
    lay, hdr = layout(cfg, 256), Header(7, 1, 256, 1, 8, 8, 8, 32, 32)
    ms = [match_header(header_soft(_cn(lay.total, rng), cfg, lay), cfg, lay, hdr) for _ in range(120)]
    z = np.array([m.z for m in ms])
    assert abs(z.mean()) < 0.3 and 0.75 < z.std() < 1.25 and z.max() < 4.5, (z.mean(), z.std(), z.max())
    assert all(m.reject_reason(cfg.predict_header_z) for m in ms)
