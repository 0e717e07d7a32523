"""The per-symbol CSI map (``SwinJSCCConfig.csi_map``): each symbol's SNR reaches the decoder, through the
in-process link, the tiled decoder and the receiver service's batch path alike.

What the trained map buys (and that the trained decoder reads it) is in tests/test_fading_models.py.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sccdm import pipeline, zoo
from sccdm.channels import ERASED_SNR_DB, ChannelConfig, apply_channel, equalize, symbol_snr_db
from sccdm.models.swin import SWIN_PRESETS, SwinJSCC, SwinJSCCConfig, adapt_state_dict

FAST = ChannelConfig(kind="rayleigh", snr_db=5.0, fading="fast", erasure_prob=0.1)


def _map_codec(seed: int = 0, scale: float = 0.05) -> SwinJSCC:
    """A small csi_map codec whose map input is not zero (random weights: wiring tests only)."""
    torch.manual_seed(seed)
    m = SwinJSCC(dataclasses.replace(SWIN_PRESETS["cpu"], csi_map=True)).eval()
    with torch.no_grad():
        m.decoder.csi_head.weight.normal_(0, scale)
    return m


def test_symbol_snr_is_the_gain_over_the_noise_and_erasures_read_as_nothing():
    g = torch.Generator().manual_seed(3)
    z = torch.complex(torch.randn(4, 512, generator=g), torch.randn(4, 512, generator=g)) / math.sqrt(2)
    rx = apply_channel(z, FAST, g, noise="torch")
    sym = symbol_snr_db(rx.h, rx.noise_var, "mmse", rx.mask)
    assert sym.shape == (4, 512) and sym.dtype == torch.float32
    want = 10 * torch.log10(rx.h.abs() ** 2 / rx.noise_var[:, None])
    assert torch.allclose(sym[rx.mask], want[rx.mask], atol=1e-4)
    assert bool((sym[~rx.mask] == ERASED_SNR_DB).all()) and int((~rx.mask).sum()) > 0
    # without erasures the map's linear mean is the effective SNR equalize() tells the decoder
    sym = symbol_snr_db(rx.h, rx.noise_var, "mmse")
    _, eff = equalize(rx.y, rx.h, rx.noise_var, "mmse")
    assert torch.allclose(10 * torch.log10((10 ** (sym / 10)).mean(1)), eff, atol=1e-3)
    # no CSI: every symbol at the channel's SNR
    flat = symbol_snr_db(None, rx.noise_var, "none", k=512)
    assert torch.allclose(flat, torch.full_like(flat, 5.0), atol=1e-4)
    with pytest.raises(ValueError):
        symbol_snr_db(None, rx.noise_var, "none")


def test_a_codec_given_the_map_starts_as_the_codec_it_came_from():
    """--csi-map from a trained codec: the new input starts at zero, so the decoder is unchanged until trained."""
    src = zoo.load("sc-cdm-cpu-rayleigh").codec.float().eval()
    cfg = SwinJSCCConfig.from_dict({**src.cfg.to_dict(), "csi_map": True})
    dst = SwinJSCC(cfg).eval()
    dst.load_state_dict(adapt_state_dict(dst, src.state_dict()))
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    a = pipeline.simulate(src, x, FAST, torch.Generator().manual_seed(1))
    b = pipeline.simulate(dst, x, FAST, torch.Generator().manual_seed(1))
    assert torch.equal(a["s_hat"], b["s_hat"])


def test_the_decoder_reads_the_map_where_the_symbols_faded():
    m = _map_codec()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = pipeline.simulate(m, x, FAST, torch.Generator().manual_seed(1))
    frame, rx = out["frame"], out["rx"]
    z_hat, eff = equalize(rx.y, rx.h, rx.noise_var, "mmse", rx.mask)
    flat = pipeline.decode(m, z_hat, frame.latent_shape, frame.image_size, eff)   # map = mean SNR everywhere
    assert torch.equal(pipeline.decode(m, z_hat, frame.latent_shape, frame.image_size, eff,
                                       symbol_snr=symbol_snr_db(rx.h, rx.noise_var, "mmse", rx.mask))["s_hat"],
                       out["s_hat"])
    assert (flat["s_hat"] - out["s_hat"]).abs().mean() > 1e-4


def test_codecs_without_the_map_ignore_it():
    m = zoo.load("sc-cdm-cpu").codec.float().eval()
    assert not pipeline.reads_csi_map(m) and pipeline.snr_map(m, torch.zeros(1, 256), (32, 4, 4)) is None
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = pipeline.simulate(m, x, FAST, torch.Generator().manual_seed(1))
    rx = out["rx"]
    z_hat, eff = equalize(rx.y, rx.h, rx.noise_var, "mmse", rx.mask)
    sym = symbol_snr_db(rx.h, rx.noise_var, "mmse", rx.mask)
    got = pipeline.decode(m, z_hat, out["frame"].latent_shape, out["frame"].image_size, eff, symbol_snr=sym)
    assert torch.equal(got["s_hat"], out["s_hat"])


def test_tiled_decoding_carries_the_map_with_the_latent():
    """A large image is decoded in latent tiles; the map is cut with the same tiles (no seams, same result
    as the whole image up to the blend, as for a codec without the map)."""
    m = _map_codec()
    x = torch.rand(1, 3, 96, 160, generator=torch.Generator().manual_seed(0))
    whole = pipeline.simulate(m, x, FAST, torch.Generator().manual_seed(1), tile_pixels=0)["s_hat"]
    tiled = pipeline.simulate(m, x, FAST, torch.Generator().manual_seed(1), tile_pixels=64 * 64)["s_hat"]
    assert tiled.shape == whole.shape
    assert float((tiled - whole).abs().mean()) < 2e-3


def test_receiver_batch_path_equals_simulate():
    """The receiver service computes the map from the frame's CSI and erasure mask (no proto change)."""
    from receiver.decode import RxItem, run_batch

    m = pipeline.SCCDM(_map_codec())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = pipeline.simulate(m, x, FAST, torch.Generator().manual_seed(1))
    rx = out["rx"]
    item = RxItem(model="t", y=rx.y, h=rx.h, noise_var=rx.noise_var, mask=rx.mask, csi_mode="mmse",
                  latent_shape=out["frame"].latent_shape, image_size=out["frame"].image_size, refine=False, seed=0)
    got = run_batch(m, [item], torch.device("cpu"))[0]
    assert torch.equal(got["s_hat"], out["s_hat"])


def test_train_flag_is_for_the_codec_only(tmp_path):
    from sccdm.train import main

    with pytest.raises(SystemExit, match="codec stage"):
        main(["deepjscc", "--csi-map", "--out", str(tmp_path / "x"), "--steps", "1"])
