"""Rate adaptation: a Swin codec that sends a prefix of its latent channels (SwinJSCC-style)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from sccdm import zoo
from sccdm.channels import ChannelConfig
from sccdm.models.swin import SwinJSCC, SwinJSCCConfig, adapt_state_dict
from sccdm.pipeline import SCCDM, encode, simulate


@pytest.fixture(scope="module")
def fixed_and_adaptive():
    fixed = zoo.load("sc-cdm-cpu").codec
    cfg = dataclasses.replace(fixed.cfg, rates=(8, 16, 32))
    adaptive = SwinJSCC(cfg)
    adaptive.load_state_dict(adapt_state_dict(adaptive, fixed.state_dict()))
    return fixed, adaptive.eval()


@pytest.mark.parametrize("rates", [(8, 16), (16, 8, 32), (7, 32), (0, 32)])
def test_bad_rates_are_refused(rates):
    with pytest.raises(ValueError, match="rates"):
        SwinJSCCConfig(channels=32, rates=rates)


def test_adapted_weights_compute_the_fixed_codec_at_full_rate(fixed_and_adaptive):
    # the rate input starts at zero weight: converting a trained codec loses nothing
    fixed, adaptive = fixed_and_adaptive
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    snr = torch.tensor([3.0, 12.0])
    with torch.no_grad():
        a = fixed.decode(fixed.encode(x, snr), snr)
        b = adaptive.decode(adaptive.encode(x, snr), snr)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 64), (100, 75)])
def test_a_prefix_of_the_latent_is_sent_and_counted_exactly(fixed_and_adaptive, size):
    _, adaptive = fixed_and_adaptive
    x = torch.rand(1, 3, *size)
    full = encode(adaptive, x, 10.0)
    for c in (8, 16):
        f = encode(adaptive, x, 10.0, channels=c)
        assert f.latent_shape == (c,) + full.latent_shape[1:]
        assert f.symbols.shape[1] == adaptive.cfg.num_symbols(*size) * c // 32
        # power-normalised over what is sent
        assert float(f.symbols.abs().pow(2).mean()) == pytest.approx(1.0, rel=1e-4)
    assert adaptive.cfg.nominal_cbr(8) == pytest.approx(1 / 48)
    assert [adaptive.cfg.channels_for_cbr(c) for c in (1 / 48, 1 / 30, 1 / 24, 1 / 12, 0.5)] == [8, 16, 16, 32, 32]


def test_fixed_rate_codecs_refuse_other_rates(fixed_and_adaptive):
    fixed, _ = fixed_and_adaptive
    assert fixed.cfg.channels_for_cbr(1 / 12) == 32
    with pytest.raises(ValueError, match="only CBR"):
        fixed.cfg.channels_for_cbr(1 / 24)
    with pytest.raises(ValueError, match="not rate-adaptive"):
        encode(fixed, torch.rand(1, 3, 32, 32), 10.0, channels=16)
    with pytest.raises(ValueError, match="latent channels"):
        encode(fixed_and_adaptive[1], torch.rand(1, 3, 32, 32), 10.0, channels=12)


def test_simulate_decodes_a_prefix(fixed_and_adaptive):
    _, adaptive = fixed_and_adaptive
    model = SCCDM(adaptive, None, name="adaptive")
    x = torch.rand(1, 3, 64, 64)
    out = simulate(model, x, ChannelConfig(kind="awgn", snr_db=10.0).validate(), torch.Generator().manual_seed(0),
                   channels=8)
    assert out["x_hat"].shape == x.shape and out["frame"].symbols.shape[1] == 64 * 64 * 3 // 48


# ------------------------------------------------------------------ sccdm eval --cbr

def _photo_dir(tmp_path):
    """Two 128x128 crops of scikit-image photos as PNG files (no padding at H/8 with window 4)."""
    from PIL import Image
    from skimage import data as skd
    for name, img in (("astronaut", skd.astronaut()), ("coffee", skd.coffee())):
        Image.fromarray(img[100:228, 150:278]).save(tmp_path / f"{name}.png")
    return tmp_path


def test_eval_cbr_sweeps_one_rate_adaptive_model(tmp_path):
    import json

    from sccdm.evaluate import main
    out = tmp_path / "rows.json"
    (tmp_path / "img").mkdir()
    assert main(["--data", str(_photo_dir(tmp_path / "img")),
                 "--scheme", "nsf", "--scheme", "separation", "--model", "sc-cdm-paper-photo-rate", "--snr", "12",
                 "--cbr", "1/48", "1/12", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    by = {(r["scheme"], round(1 / r["cbr_target"])): r for r in rows}
    assert sorted(by) == [("nsf", 12), ("nsf", 48), ("separation", 12), ("separation", 48)]
    for (scheme, inv), r in by.items():
        if scheme == "nsf" or r["lost_share"] == 0:
            assert r["channel_uses"] == {48: 8, 12: 32}[inv] * 16 * 16 / 2 and r["cbr"] == pytest.approx(1 / inv)
    # the trained model uses the bandwidth it is given
    assert by[("nsf", 12)]["psnr_db"] > by[("nsf", 48)]["psnr_db"] + 2.0


def test_eval_cbr_refused_for_a_fixed_rate_model(tmp_path, capsys):
    from sccdm.evaluate import main
    (tmp_path / "img").mkdir()
    with pytest.raises(SystemExit, match=r"sc-cdm-paper-photo: this codec sends only CBR .*1/12.*rate-adaptive"):
        main(["--data", str(_photo_dir(tmp_path / "img")), "--scheme", "nsf", "--model", "sc-cdm-paper-photo",
              "--snr", "12", "--cbr", "1/24"])
    with pytest.raises(SystemExit):
        main(["--cbr", "1/0"])
    assert "not a ratio" in capsys.readouterr().err


def test_a_narrower_codec_starts_from_the_wider_ones_first_channels(fixed_and_adaptive):
    # the single-CBR references of benchmarks/rate_cifar.py (`sccdm train codec --channels 8 --init ...`)
    fixed, _ = fixed_and_adaptive
    narrow = SwinJSCC(dataclasses.replace(fixed.cfg, channels=8))
    narrow.load_state_dict(adapt_state_dict(narrow, fixed.state_dict()))
    narrow.eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    snr = torch.tensor([3.0, 12.0])
    with torch.no_grad():
        wide = fixed.encode(x, snr)
        z = narrow.encode(x, snr)
        assert torch.allclose(z, wide[:, :8], atol=1e-5)
        padded = torch.nn.functional.pad(z, (0, 0, 0, 0, 0, 24))
        assert torch.allclose(narrow.decode(z, snr), fixed.decode(padded, snr), atol=1e-5)
    assert narrow.cfg.cbr(32, 32) == pytest.approx(1 / 48)


def test_rate_weights_set_how_often_each_rate_trains():
    from types import SimpleNamespace

    from sccdm import train
    cpu, rates = torch.device("cpu"), (8, 16, 32)
    me = SimpleNamespace(rates=rates, rate_weights=train._rate_weights("0,1,3", rates, cpu),
                         gen=torch.Generator().manual_seed(0), device=cpu)
    draws = [train._Trainer._draw_rate(me) for _ in range(4000)]
    assert 8 not in draws and abs(draws.count(32) / len(draws) - 0.75) < 0.03      # binomial sd 0.007
    me.rate_weights = train._rate_weights(None, rates, cpu)
    draws = [train._Trainer._draw_rate(me) for _ in range(3000)]
    assert all(abs(draws.count(c) / len(draws) - 1 / 3) < 0.03 for c in (8, 16, 32))
    with pytest.raises(SystemExit, match="rate-weights"):
        train._rate_weights("1,1", rates, cpu)
    with pytest.raises(SystemExit, match="rate-adaptive"):
        train._rate_weights("1,1", (), cpu)
