"""The practical chain ``avif-ldpc``: AVIF + CRC16 + 5G LDPC + QAM with link adaptation (sccdm.baselines.practical)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("sionna")
pytest.importorskip("scipy")

from sccdm.baselines import SCHEMES  # noqa: E402
from sccdm.baselines.common import FALLBACK_RGB, from_uint8  # noqa: E402
from sccdm.baselines.practical import (MCS_TABLE, TARGET_BLER, THRESHOLDS, PracticalChain,  # noqa: E402
                                       predicted_bler, select_mcs)
from sccdm.baselines.separation import CODECS, available_codecs  # noqa: E402
from sccdm.channels import ChannelConfig  # noqa: E402

SIZE = 128
K = 3 * SIZE * SIZE // 12  # the learned model's k for a 128 x 128 image at CBR 1/12
SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)
SEED = 11


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """float32 [1, 3, 128, 128]: a real photograph (skimage's astronaut, else a Kodak image), resized."""
    try:
        import skimage.data
        a = skimage.data.astronaut()[..., :3]
    except ImportError:
        path = Path(__file__).resolve().parents[1] / "data/photos/test/kodak/kodim23.png"
        if not path.exists():
            pytest.skip("no photo: neither skimage nor data/photos/test/kodak")
        a = np.asarray(Image.open(path).convert("RGB"))
        s = min(a.shape[:2])
        a = a[:s, :s]
    return from_uint8(np.asarray(Image.fromarray(a).resize((SIZE, SIZE), Image.BILINEAR), dtype=np.uint8))[None]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12))


@pytest.fixture(scope="module")
def sweep(photo):
    """{snr: (output dict, PSNR)} of the adaptive scheme over SNRS and -5 dB, same seed."""
    out = {}
    for snr in (-5.0,) + SNRS:
        o = SCHEMES["avif-ldpc"](photo, ChannelConfig("awgn", snr), K, SEED)
        out[snr] = (o, _psnr(o["x_hat"], photo))
    return out


def test_table_is_measured_and_above_capacity():
    assert len(MCS_TABLE) == 15 and {m.bits_per_symbol for m in MCS_TABLE} == {2, 4, 6}
    assert THRESHOLDS, "run python -m sccdm.baselines.practical measure"
    for ref, table in THRESHOLDS.items():
        assert set(table) == {m.name for m in MCS_TABLE}, ref
        for m in MCS_TABLE:
            mu, sigma = table[m.name]
            # no code beats capacity: the 50 % error point lies above the Shannon SNR of its throughput
            assert mu > 10 * math.log10(2 ** m.efficiency - 1), (ref, m.name, mu)
            assert 0 < sigma < 1.5, (ref, m.name, sigma)


def test_link_adaptation_rule():
    prev = -1.0
    for snr in np.arange(-5.0, 26.0, 1.0):
        cfg = ChannelConfig("awgn", float(snr))
        i, p = select_mcs(cfg, K)
        eff = MCS_TABLE[i].efficiency
        assert eff >= prev, snr  # monotone in SNR
        prev = eff
        blers = [predicted_bler(cfg, K, m) for m in MCS_TABLE]
        if min(blers) < TARGET_BLER:
            assert p < TARGET_BLER
            # nothing with more throughput passes the target
            assert all(b >= TARGET_BLER for m, b in zip(MCS_TABLE, blers) if m.efficiency > eff), snr
        else:  # beyond the table's reach: the most robust MCS
            assert p == min(blers)
    assert MCS_TABLE[select_mcs(ChannelConfig("awgn", 30.0), K)[0]].efficiency == 5.0


def test_output_fields_and_codec(sweep, photo):
    o, _ = sweep[10.0]
    assert o["x_hat"].shape == photo.shape and o["x_hat"].dtype == torch.float32
    assert o["lost"].dtype == torch.bool and o["channel_uses"].dtype == torch.int64
    for key in ("mcs", "bits_per_symbol", "code_rate", "codec", "quality", "bits", "crc_ok", "bler_pred"):
        assert o[key].shape == (1,), key
    first = next(c for c in ("avif", "webp", "jpeg-payload") if c in available_codecs())
    assert CODECS[int(o["codec"][0])] == first
    assert 0 < int(o["channel_uses"][0]) <= K
    m = MCS_TABLE[int(o["mcs"][0])]
    assert (int(o["bits_per_symbol"][0]), float(o["code_rate"][0])) == (m.bits_per_symbol, float(m.rate))
    assert int(o["bits"][0]) <= K * m.efficiency


def test_sweep_high_snr_mcs_monotone_psnr_monotone(sweep):
    o, psnr = sweep[20.0]
    assert not bool(o["lost"][0]) and bool(o["crc_ok"][0])
    assert psnr > 25.0, psnr
    effs = [MCS_TABLE[int(sweep[s][0]["mcs"][0])].efficiency for s in SNRS]
    assert effs == sorted(effs), effs
    assert effs[-1] > effs[0]
    psnrs = [sweep[s][1] for s in SNRS]
    assert all(b >= a - 1e-9 for a, b in zip(psnrs, psnrs[1:])), psnrs
    for s in SNRS:  # an image that arrives is the decoded file; a lost one is the fallback colour
        if not bool(sweep[s][0]["lost"][0]):
            assert sweep[s][1] > 20.0


def test_very_low_snr_is_robust_or_lost(sweep):
    o, psnr = sweep[-5.0]
    # below every threshold the link adaptation still picks the most robust MCS (QPSK 1/3) ...
    assert MCS_TABLE[int(o["mcs"][0])].efficiency == min(m.efficiency for m in MCS_TABLE)
    assert float(o["bler_pred"][0]) > TARGET_BLER
    if bool(o["lost"][0]):  # ... and the image arrives or the receiver shows the mean colour
        fb = torch.tensor(FALLBACK_RGB).view(1, 3, 1, 1).expand_as(o["x_hat"])
        assert torch.equal(o["x_hat"], fb)
        assert psnr < 18.0


def test_crc_failure_loses_the_image(photo):
    o = PracticalChain(mcs=len(MCS_TABLE) - 1)(photo, ChannelConfig("awgn", 0.0), K, SEED)  # 64-QAM 5/6 at 0 dB
    assert int(o["channel_uses"][0]) > 0 and not bool(o["crc_ok"][0]) and bool(o["lost"][0])
    assert float(o["bler_pred"][0]) > 0.99
    assert torch.allclose(o["x_hat"][0, :, 0, 0], torch.tensor(FALLBACK_RGB))


def test_deterministic_and_genie_is_an_upper_reference(photo, sweep):
    cfg = ChannelConfig("awgn", 10.0)
    again = SCHEMES["avif-ldpc"](photo, cfg, K, SEED)
    assert torch.equal(again["x_hat"], sweep[10.0][0]["x_hat"])
    g = SCHEMES["avif-ldpc-genie"](photo, cfg, K, SEED)
    assert not bool(g["lost"][0])
    assert MCS_TABLE[int(g["mcs"][0])].efficiency >= MCS_TABLE[int(sweep[10.0][0]["mcs"][0])].efficiency
    assert _psnr(g["x_hat"], photo) >= sweep[10.0][1] - 1e-9


def test_rayleigh_backs_off_and_other_codec(photo, sweep):
    ray = SCHEMES["avif-ldpc"](photo, ChannelConfig("rayleigh", 15.0), K, SEED)
    assert 0.0 <= float(ray["bler_pred"][0]) < TARGET_BLER
    # no CSI at the transmitter: block fading needs a margin, so a more robust MCS than on AWGN
    assert MCS_TABLE[int(ray["mcs"][0])].efficiency < MCS_TABLE[int(sweep[15.0][0]["mcs"][0])].efficiency
    if "webp" in available_codecs():
        w = PracticalChain(codecs=("webp",))(photo, ChannelConfig("awgn", 10.0), K, SEED)
        assert CODECS[int(w["codec"][0])] == "webp" and not bool(w["lost"][0])
