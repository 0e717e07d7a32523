"""The separate-coding baselines: header-less JPEG, JPEG + CRC + 5G LDPC + QPSK (Sionna), the separation reference
(the best image codec file that fits the capacity)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("sionna")

from sccdm.baselines import SCHEMES, JpegLdpcQam, Separation, available_codecs, link_budget  # noqa: E402
from sccdm.baselines.common import FALLBACK_RGB, from_uint8  # noqa: E402
from sccdm.baselines.jpeg import (EOI, MAX_QUALITY, QUALITY_LADDER, decode_payload, encode_jpeg,  # noqa: E402
                                  header_for, jpeg_payload, split_jpeg)
from sccdm.baselines.ldpc_qam import transmit_bits  # noqa: E402
from sccdm.baselines.separation import capacity_bits  # noqa: E402
from sccdm.channels import ChannelConfig, apply_channel  # noqa: E402

NAMES = ["coffee", "chelsea", "rocket", "immunohistochemistry", "astronaut", "retina", "colorwheel"]


def _photo(name: str, size=(32, 32)) -> np.ndarray:
    import skimage.data
    a = getattr(skimage.data, name)()[..., :3]
    return np.asarray(Image.fromarray(a).resize(size, Image.BILINEAR), dtype=np.uint8)


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """float32 [7, 3, 32, 32]: real photographs shrunk to CIFAR size (four fit 256 bits at JPEG q1, three do not)."""
    return torch.stack([from_uint8(_photo(n)) for n in NAMES])


# --- header-less JPEG -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(32, 32), (40, 56)])
@pytest.mark.parametrize("quality", [1, 10, 40, MAX_QUALITY])
def test_payload_strip_and_reattach_is_bit_exact(size, quality):
    img = _photo("astronaut", size)
    full = encode_jpeg(img, quality)
    payload = jpeg_payload(img, quality)
    assert header_for(quality, size[1], size[0]) + payload + EOI == full
    assert len(payload) < len(full) - 500  # the headers are most of a tiny file
    ref = np.asarray(Image.open(__import__("io").BytesIO(full)).convert("RGB"))
    assert np.array_equal(decode_payload(payload, quality, size[1], size[0]), ref)
    # zero padding after the payload (a fixed-size frame) decodes to the same pixels
    assert np.array_equal(decode_payload(payload + bytes(13), quality, size[1], size[0]), ref)


def test_headers_do_not_depend_on_content():
    a, b = split_jpeg(encode_jpeg(_photo("coffee"), 12))[0], split_jpeg(encode_jpeg(_photo("retina"), 12))[0]
    assert a == b == header_for(12, 32, 32)
    assert header_for(12, 32, 32) != header_for(13, 32, 32)


def test_quality_above_70_is_refused_and_ladder_fits_5_bits():
    with pytest.raises(ValueError, match="70"):
        encode_jpeg(_photo("coffee"), 75)
    assert max(QUALITY_LADDER) == MAX_QUALITY == 70 and len(QUALITY_LADDER) <= 32


def test_undecodable_payload_raises_value_error():
    with pytest.raises(ValueError, match="does not decode"):
        decode_payload(b"\xff\xd8", 10, 32, 32)  # a marker inside the scan: libjpeg gives up
    with pytest.raises(ValueError):
        split_jpeg(b"not a jpeg")


# --- LDPC + QAM chain ---------------------------------------------------------------------------------

def test_bit_budget_arithmetic():
    b = link_budget(256)  # CBR 1/12 for 32x32: k * 2 bits (QPSK) * 1/2
    assert (b.info_bits, b.n_cw, b.k_cw, b.n_codewords, b.symbols_used) == (256, 512, 256, 1, 256)
    assert b.data_bits == 256 - 16 and b.payload_bytes == (256 - 16 - 5) // 8 == 29
    b = link_budget(512, rate=1 / 3, bits_per_symbol=4)
    assert b.info_bits == int(512 * 4 / 3) and b.symbols_used == 512
    big = link_budget(20_000)  # 20,000 info bits: more than one 8448-bit 5G block
    assert big.n_codewords == 3 and big.symbols_used <= 20_000 and big.k_cw <= 8448
    for bad in (dict(rate=0.99), dict(bits_per_symbol=3), dict(crc="CRC99")):
        with pytest.raises(ValueError):
            link_budget(256, **bad)


def test_coded_chain_is_error_free_at_high_snr():
    b = link_budget(256)
    g = torch.Generator().manual_seed(1)
    bits = torch.randint(0, 2, (64, b.data_bits), generator=g).float()
    sent = torch.ones(64, dtype=torch.bool)
    for kind, snr in (("awgn", 10.0), ("rayleigh", 40.0)):
        out = transmit_bits(bits, sent, ChannelConfig(kind=kind, snr_db=snr), b, torch.Generator().manual_seed(2))
        assert out["crc_ok"].all()
        assert torch.equal(out["bits_hat"], bits)
    # and it does fail at -3 dB (below the rate-1/2 QPSK threshold), with the CRC saying so
    out = transmit_bits(bits, sent, ChannelConfig(snr_db=-3.0), b, torch.Generator().manual_seed(2))
    assert not out["crc_ok"].any()


def test_uncoded_qpsk_ber_matches_theory():
    snr_db, n, k = 4.0, 200, 256
    b = link_budget(k)
    bits = torch.randint(0, 2, (n, 2 * k), generator=torch.Generator().manual_seed(3)).float()
    out = transmit_bits(bits, torch.ones(n, dtype=torch.bool), ChannelConfig(snr_db=snr_db), b,
                        torch.Generator().manual_seed(4), coded=False)
    ber = (out["bits_hat"] != bits).float().mean().item()
    ebn0 = 10 ** (snr_db / 10) / 2  # Es/N0 = SNR per complex symbol, 2 bits per QPSK symbol
    theory = 0.5 * math.erfc(math.sqrt(ebn0))  # Q(sqrt(2 Eb/N0))
    assert abs(out["symbols"].abs().pow(2).mean().item() - 1.0) < 1e-5  # unit-power constellation
    assert theory == pytest.approx(0.0565, abs=1e-3)
    assert ber == pytest.approx(theory, rel=0.06)  # ~5,800 errors in 102,400 bits: 6 % is > 4 sigma


def test_jpeg_ldpc_fits_decodes_and_falls_back(photos):
    scheme = JpegLdpcQam()
    hi = scheme(photos, ChannelConfig(snr_db=12.0), 256, seed=5)
    fits = np.array([len(jpeg_payload(_photo(n), 1)) <= 29 for n in NAMES])
    assert fits.any() and (~fits).any()
    assert torch.equal(hi["lost"], torch.from_numpy(~fits))
    assert torch.equal(hi["channel_uses"], torch.from_numpy(np.where(fits, 256, 0)))
    fallback = torch.tensor(FALLBACK_RGB).view(3, 1, 1).expand(3, 32, 32)
    for i, name in enumerate(NAMES):
        if fits[i]:  # the receiver's image is exactly the JPEG at the chosen quality
            q = int(hi["quality"][i])
            ref = from_uint8(decode_payload(jpeg_payload(_photo(name), q), q, 32, 32))
            assert torch.equal(hi["x_hat"][i], ref) and q in QUALITY_LADDER
            assert len(jpeg_payload(_photo(name), q)) <= 29
        else:
            assert torch.equal(hi["x_hat"][i], fallback) and hi["quality"][i] == 0
    lo = scheme(photos, ChannelConfig(snr_db=-4.0), 256, seed=5)  # decoding fails: fallback, uses still spent
    assert lo["lost"].all() and not lo["crc_ok"].any()
    assert torch.equal(lo["channel_uses"], hi["channel_uses"])
    assert torch.allclose(lo["x_hat"], fallback.expand_as(lo["x_hat"]))


def test_schemes_interface_shapes(photos):
    for name in ("jpeg-ldpc", "separation"):
        out = SCHEMES[name](photos, ChannelConfig(kind="rayleigh", snr_db=6.0), 256, seed=0)
        assert out["x_hat"].shape == photos.shape and out["x_hat"].dtype == torch.float32
        assert out["lost"].dtype == torch.bool and out["lost"].shape == (len(photos),)
        assert out["channel_uses"].shape == (len(photos),) and int(out["channel_uses"].max()) <= 256


# --- separation reference -----------------------------------------------------------------------------

def test_pillow_codecs_present():
    assert "jpeg-payload" in available_codecs()


def test_separation_sends_more_bits_at_higher_snr(photos):
    sep = Separation()
    lo = sep(photos, ChannelConfig(snr_db=3.0), 256, seed=0)
    hi = sep(photos, ChannelConfig(snr_db=12.0), 256, seed=0)
    assert (hi["bits"] >= lo["bits"]).all() and hi["bits"].sum() > lo["bits"].sum()
    assert (hi["bits"] <= capacity_bits(256, 12.0)).all() and (lo["bits"] <= capacity_bits(256, 3.0)).all()
    assert not hi["lost"].any()  # AWGN: whatever is sent within capacity arrives
    mse = lambda o: (o["x_hat"] - photos).pow(2).mean().item()  # noqa: E731
    assert mse(hi) < mse(lo)


def test_separation_outage_uses_the_shared_channel_draws(photos):
    cfg = ChannelConfig(kind="rayleigh", snr_db=6.0)
    out = Separation()(photos, cfg, 256, seed=11)
    # the realised capacity comes from the same draws apply_channel gives every scheme with this seed
    rx = apply_channel(torch.zeros(len(photos), 256, dtype=torch.complex64), cfg, torch.Generator().manual_seed(11))
    mi = torch.log2(1 + rx.h.abs().double() ** 2 * 10 ** 0.6).sum(1)
    assert torch.allclose(out["capacity_bits"], mi)
    sent = out["channel_uses"] > 0
    assert torch.equal(out["lost"][sent], out["bits"][sent].double() > mi[sent])
    csit = Separation(csit=True)(photos, cfg, 256, seed=11)
    assert not csit["lost"][csit["channel_uses"] > 0].any()  # knowing h, it never overshoots
