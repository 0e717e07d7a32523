"""Core library: shapes, power, channel statistics, conditioning, training, weights, data, metrics."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from sccdm.channels import ChannelConfig, apply_channel, equalize
from sccdm.metrics import psnr, ssim, ms_ssim, mean_ci95
from sccdm.models.deepjscc import DEEPJSCC_PRESETS, DeepJSCC
from sccdm.models.refine import REFINER_PRESETS, Refiner
from sccdm.models.swin import SWIN_PRESETS, SwinJSCC
from sccdm.symbols import cbr, latent_to_symbols, measured_power, symbols_to_latent

torch.set_num_threads(2)


def _unit_symbols(b, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return latent_to_symbols(torch.randn(b, 2 * k, 1, 1, generator=g))


@pytest.mark.parametrize("hw", [(32, 32), (33, 47), (17, 64), (70, 29)])
def test_swin_shapes_odd_sizes(hw):
    m = SwinJSCC(SWIN_PRESETS["cpu"]).eval()
    x = torch.rand(2, 3, *hw)
    snr = torch.tensor([0.0, 15.0])
    with torch.no_grad():
        lat = m.encode(x, snr)
        y = m.decode(lat, snr, hw)
    assert lat.shape[1:] == m.cfg.latent_shape(*hw)
    assert y.shape == x.shape
    assert 0 <= float(y.min()) and float(y.max()) <= 1


@pytest.mark.parametrize("hw", [(32, 32), (35, 21)])
def test_deepjscc_and_refiner_shapes(hw):
    x = torch.rand(2, 3, *hw)
    d = DeepJSCC(DEEPJSCC_PRESETS["cpu"]).eval()
    r = Refiner(REFINER_PRESETS["cpu"]).eval()
    with torch.no_grad():
        assert d.decode(d.encode(x), size=hw).shape == x.shape
        assert r(x, generator=torch.Generator().manual_seed(0)).shape == x.shape
        assert r.stage1(x, x)["x_hat"].shape == x.shape


def test_cbr_is_a_function():
    cfg = SWIN_PRESETS["paper"]
    assert cfg.num_symbols(32, 32) == 256
    assert cfg.cbr(32, 32) == pytest.approx(1 / 12)
    assert DEEPJSCC_PRESETS["cpu"].cbr(32, 32) == pytest.approx(1 / 12)
    assert cbr(512, 32, 32) == pytest.approx(1 / 6)


def test_power_normalised_per_image():
    m = SwinJSCC(SWIN_PRESETS["cpu"]).eval()
    x = torch.rand(4, 3, 32, 32) * torch.tensor([0.1, 1, 3, 10]).view(4, 1, 1, 1)
    with torch.no_grad():
        z = latent_to_symbols(m.encode(x, torch.full((4,), 5.0)))
    assert z.dtype == torch.complex64 and z.shape == (4, 256)
    assert torch.allclose(measured_power(z), torch.ones(4), rtol=0.01)
    lat = torch.randn(3, 32, 4, 4)
    back = symbols_to_latent(latent_to_symbols(lat), (32, 4, 4))
    # the round trip only rescales each image
    ratio = back / lat
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-4)


def _measured_snr_db(z, cfg, seed=1):
    out = apply_channel(z, cfg, torch.Generator().manual_seed(seed))
    noise = out.y - out.h * z
    return 10 * math.log10(float((out.h * z).abs().pow(2).mean() / noise.abs().pow(2).mean())), out


@pytest.mark.parametrize("cfg", [
    ChannelConfig("awgn", 7.0),
    ChannelConfig("rayleigh", 7.0, fading="fast"),
    ChannelConfig("rayleigh", 7.0, fading="block", block_size=64),
    ChannelConfig("rayleigh", 7.0, fading="block", csi="abs", block_size=16),
], ids=["awgn", "rayleigh-fast", "rayleigh-block", "rayleigh-abs"])
def test_measured_snr_within_0p1_db(cfg):
    z = _unit_symbols(4, 250_000)  # 10^6 symbols
    snr, out = _measured_snr_db(z, cfg)
    # E|h|^2 = 1 for Rayleigh, so the average received SNR is the asked one
    assert abs(snr - cfg.snr_db) < 0.1
    assert abs(float(out.h.abs().pow(2).mean()) - 1.0) < 0.02
    if cfg.kind == "rayleigh":
        assert float(out.h.abs().std()) > 0.3  # it really fades
        if cfg.csi == "abs":
            assert torch.all(out.h.imag == 0)


def test_noise_is_per_complex_symbol():
    z = _unit_symbols(1, 200_000)
    out = apply_channel(z, ChannelConfig("awgn", 0.0), torch.Generator().manual_seed(3))
    n = out.y - z
    # sigma^2 = 1 per complex symbol -> 1/2 per real dimension (the 3 dB trap)
    assert float(n.real.var()) == pytest.approx(0.5, rel=0.02)
    assert float(n.imag.var()) == pytest.approx(0.5, rel=0.02)


def test_block_fading_constant_within_block():
    z = _unit_symbols(2, 256)
    out = apply_channel(z, ChannelConfig("rayleigh", 10, fading="block", block_size=64), torch.Generator().manual_seed(0))
    h = out.h.reshape(2, 4, 64)
    assert torch.all(h == h[..., :1])
    assert not torch.all(h[:, 0, 0] == h[:, 1, 0])


def test_erasure_rate():
    z = _unit_symbols(4, 250_000)
    out = apply_channel(z, ChannelConfig("awgn", 10, erasure_prob=0.2), torch.Generator().manual_seed(0))
    rate = 1 - float(out.mask.float().mean())
    assert abs(rate - 0.2) < 0.002  # 4 sigma of a binomial over 10^6 draws is 0.0016
    assert torch.all(out.y[~out.mask] == 0)


def test_mmse_equalizer_recovers_and_reports_effective_snr():
    z = _unit_symbols(8, 4096)
    cfg = ChannelConfig("rayleigh", 30.0, fading="block")
    out = apply_channel(z, cfg, torch.Generator().manual_seed(0))
    z_hat, eff = equalize(out.y, out.h, out.noise_var, "mmse")
    good = out.h[:, 0].abs() > 0.3
    assert float((z_hat - z)[good].abs().pow(2).mean()) < 0.02
    expect = 10 * torch.log10(out.h[:, 0].abs() ** 2 / out.noise_var)
    assert torch.allclose(eff, expect, atol=1e-3)


def test_same_generator_same_draws():
    z = _unit_symbols(2, 512)
    cfg = ChannelConfig("rayleigh", 5.0, fading="fast", erasure_prob=0.1)
    a = apply_channel(z, cfg, torch.Generator().manual_seed(42))
    b = apply_channel(z, cfg, torch.Generator().manual_seed(42))
    assert torch.equal(a.y, b.y) and torch.equal(a.mask, b.mask)


@pytest.mark.parametrize("bad", [dict(kind="laser"), dict(snr_db=float("nan")), dict(snr_db=99.0),
                                 dict(erasure_prob=1.0), dict(erasure_prob=-0.1), dict(csi="psychic")])
def test_channel_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        ChannelConfig(**bad).validate()


def test_snr_input_changes_encoder_output():
    torch.manual_seed(0)
    m = SwinJSCC(SWIN_PRESETS["cpu"]).eval()
    # FiLM layers start at zero; give them weights as training would
    for mod in m.modules():
        if hasattr(mod, "film"):
            torch.nn.init.normal_(mod.film.weight, std=0.1)
    x = torch.rand(1, 3, 32, 32).repeat(2, 1, 1, 1)
    with torch.no_grad():
        lat = m.encode(x, torch.tensor([0.0, 15.0]))
    assert (lat[0] - lat[1]).abs().max() > 1e-3
    # and one batch may mix SNRs: each image matches its own single-image run
    with torch.no_grad():
        single = m.encode(x[:1], torch.tensor([15.0]))
    assert torch.allclose(single[0], lat[1], atol=1e-5)


@pytest.mark.parametrize("name", ["sc-cdm-cpu", "sc-cdm-paper-awgn"])
def test_shipped_codec_uses_its_snr_input(name):
    """Told the true SNR, the shipped codec decodes better than told a wrong one, at both ends of the
    range. A random or SNR-blind model fails this (the gap would be ~0 or of either sign)."""
    import sccdm.zoo as zoo
    from sccdm.data import image_to_tensor, load_split
    from sccdm.pipeline import decode, encode
    m = zoo.load(name)
    x = image_to_tensor(load_split(None, "test", 64))
    for true_snr, wrong_snr in ((0.0, 15.0), (15.0, 0.0)):
        g = torch.Generator().manual_seed(0)
        frame = encode(m, x, true_snr)
        rx = apply_channel(frame.symbols, ChannelConfig("awgn", snr_db=true_snr), g)
        got = {}
        for told in (true_snr, wrong_snr):
            out = decode(m, rx.y, frame.latent_shape, frame.image_size, torch.full((64,), told))
            got[told] = float(psnr(out["s_hat"], x).mean())
        assert got[true_snr] > got[wrong_snr] + 0.3, (name, true_snr, got)


def test_one_training_step_lowers_loss():
    from sccdm.pipeline import transmit_train
    torch.manual_seed(0)
    m = SwinJSCC(SWIN_PRESETS["cpu"])
    x = torch.rand(8, 3, 32, 32)
    snr = torch.full((8,), 10.0)
    cfg = ChannelConfig("awgn")
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)

    def loss_fn():
        return torch.nn.functional.mse_loss(transmit_train(m, x, snr, cfg, torch.Generator().manual_seed(0)), x)

    before = loss_fn()
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    assert float(after) < float(before.detach())


def test_refiner_starts_as_identity_and_learns():
    torch.manual_seed(0)
    r = Refiner(REFINER_PRESETS["cpu"])
    x = torch.rand(4, 3, 32, 32)
    s = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    with torch.no_grad():
        assert torch.allclose(r.stage1(x, s)["x_hat"], s, atol=1e-6)
    opt = torch.optim.Adam(r.parameters(), lr=1e-4)
    l0 = torch.nn.functional.l1_loss(r.stage1(x, s)["x_hat"], x).detach()
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.l1_loss(r.stage1(x, s)["x_hat"], x).backward()
        opt.step()
    with torch.no_grad():
        assert float(torch.nn.functional.l1_loss(r.stage1(x, s)["x_hat"], x)) < float(l0)


def test_diffusion_schedule():
    from sccdm.models.refine import PriorDiffusion
    d = PriorDiffusion(8, steps=4)
    assert torch.allclose(d.betas, torch.linspace(0.1 ** 0.5, 0.99 ** 0.5, 4) ** 2)
    assert float(d.betas[0]) == pytest.approx(0.1) and float(d.betas[-1]) == pytest.approx(0.99)


def test_save_load_roundtrip_bit_exact(tmp_path):
    from sccdm.weights import load_model_dir, save_model_dir
    m = SwinJSCC(SWIN_PRESETS["cpu"]).eval()
    save_model_dir(m, {"kind": "swin", **m.cfg.to_dict()}, tmp_path)
    m2 = load_model_dir(tmp_path)
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(m.encode(x, torch.tensor([3.0])), m2.encode(x, torch.tensor([3.0])))


def test_corrupted_weights_refused(tmp_path):
    from sccdm.weights import WeightsError, load_model_dir, save_model_dir
    m = DeepJSCC(DEEPJSCC_PRESETS["cpu"])
    st = save_model_dir(m, {"kind": "deepjscc", **m.cfg.to_dict()}, tmp_path)
    data = bytearray(st.read_bytes())
    data[-10] ^= 0xFF
    st.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="model.safetensors.*corrupted"):
        load_model_dir(tmp_path)


def test_zoo_refuses_corrupted_shipped_file(tmp_path, monkeypatch):
    import shutil
    import sccdm.zoo as zoo
    from sccdm.weights import WeightsError
    dst = tmp_path / "weights"
    shutil.copytree(zoo.WEIGHTS_DIR, dst)
    f = dst / "deepjscc-cpu" / "codec.safetensors"
    f.write_bytes(f.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", dst)
    with pytest.raises(WeightsError, match=r"deepjscc-cpu.*codec\.safetensors.*corrupted"):
        zoo.load("deepjscc-cpu")
    with pytest.raises(KeyError, match="unknown model"):
        zoo.load("no-such-model")


def test_zoo_load_any_takes_a_name_or_a_run_folder(tmp_path):
    import sccdm.zoo as zoo
    from sccdm.weights import save_model_dir
    served = zoo.load("deepjscc-cpu")
    save_model_dir(served.codec, json_config(zoo, "deepjscc-cpu"), tmp_path / "run")
    folder = zoo.load_any(tmp_path / "run", name="candidate")
    assert folder.refiner is None and folder.name == "candidate"
    for k, v in served.codec.state_dict().items():
        assert torch.equal(folder.codec.state_dict()[k], v), k
    assert zoo.load_any("deepjscc-cpu").name == "deepjscc-cpu"
    with pytest.raises(KeyError, match="unknown model"):
        zoo.load_any(tmp_path / "not-a-folder")


def json_config(zoo, name: str) -> dict:
    import json
    spec = zoo.entry(name)["parts"]["codec"]
    cfg = json.loads((zoo.WEIGHTS_DIR / name / spec["config"]).read_text())
    return {k: v for k, v in cfg.items() if k not in ("sha256", "training")}


def test_cifar_batches_format(tmp_path):
    from sccdm.data import load_cifar_batches, load_split
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": raw, b"labels": [1, 2, 3, 4, 5]}, f)
    x, y = load_cifar_batches(tmp_path, "test")
    assert x.shape == (5, 32, 32, 3) and list(y) == [1, 2, 3, 4, 5]
    # channel-planar rows: the first 1024 bytes are the red plane
    assert np.array_equal(x[0, :, :, 0].reshape(-1), raw[0, :1024])
    assert np.array_equal(load_split(tmp_path, "test", 3), x[:3])


def test_image_folder_and_augmentation(tmp_path):
    from PIL import Image
    from sccdm.data import ImageArrayDataset, load_image_folder
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i:04d}.png")
    imgs, labels = load_image_folder(tmp_path, cache=False)
    assert imgs.shape == (6, 32, 32, 3)
    assert list(labels[:4]) == [0, 1, 0, 1]  # class-interleaved order
    ds = ImageArrayDataset(imgs, augment=True)
    torch.manual_seed(0)
    views = torch.stack([ds[0] for _ in range(8)])
    assert views.shape == (8, 3, 32, 32) and (views - views[0]).abs().max() > 0


def test_decode_image_bytes_refuses_bad_input():
    import io
    from PIL import Image
    from sccdm.data import ImageDecodeError, decode_image_bytes
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), (10, 20, 30)).save(buf, "PNG")
    assert decode_image_bytes(buf.getvalue()).shape == (10, 20, 3)
    for bad in (b"", b"hello world", buf.getvalue()[:40]):
        with pytest.raises(ImageDecodeError):
            decode_image_bytes(bad)
    with pytest.raises(ImageDecodeError, match="pixels"):
        decode_image_bytes(buf.getvalue(), max_pixels=100)


def test_metrics():
    x = torch.rand(2, 3, 32, 32)
    y = (x + 0.1).clamp(0, 1)
    assert torch.allclose(psnr(x, x), torch.full((2,), 100.0))
    mse = ((x - y) ** 2).flatten(1).mean(1)
    assert torch.allclose(psnr(x, y), 10 * torch.log10(1 / mse), atol=1e-4)
    assert torch.allclose(ssim(x, x), torch.ones(2), atol=1e-5)
    assert float(ssim(x, torch.rand_like(x)).mean()) < 0.2
    big = torch.rand(1, 3, 176, 176)
    assert float(ms_ssim(big, big)) == pytest.approx(1.0, abs=1e-4)
    assert float(ms_ssim(big, (big + 0.2 * torch.randn_like(big)).clamp(0, 1))) < 0.99
    m, ci = mean_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert m == 2.5 and ci == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)
