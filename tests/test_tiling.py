"""Tiled decoding + refinement of large images (sccdm/tiling.py, issue 10): small images unchanged bit for
bit, a 2048x2048 photo within 1.5 GB of receiver memory, and no seams."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sccdm.zoo
from sccdm import pipeline, tiling
from sccdm.channels import ChannelConfig
from sccdm.data import image_to_tensor
from sccdm.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]
PEAK_LIMIT_MB = 1536  # 1.5 GB


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return sccdm.zoo.load("sc-cdm-cpu")


def photo(size: int) -> np.ndarray:
    """uint8 [size, size, 3]: skimage's astronaut resized."""
    import skimage.data
    import skimage.transform
    img = skimage.transform.resize(skimage.data.astronaut(), (size, size), order=1, anti_aliasing=True)
    return (img * 255).round().astype(np.uint8)


# --------------------------------------------------------------------------- the tiling itself

@pytest.mark.parametrize("length,tile,overlap,align", [(256, 64, 16, 4), (2048, 512, 64, 8), (768, 256, 64, 8),
                                                       (100, 64, 16, 1), (64, 64, 16, 4), (40, 64, 8, 8)])
def test_tiles_cover_with_overlap(length, tile, overlap, align):
    starts = tiling.tile_starts(length, tile, overlap, align)
    t = min(tile, length)
    assert starts[0] == 0 and starts[-1] + t == length
    assert all(s % align == 0 for s in starts[:-1])
    for a, b in zip(starts, starts[1:]):
        assert a + t - b >= overlap - align, (starts, "overlap too small")


@pytest.mark.parametrize("scale,margin", [(1, 0), (1, 8), (4, 2)])
def test_blend_weights_sum_to_one(scale, margin):
    """A pointwise fn is reproduced exactly (up to rounding) by tiled_map, whatever the weights."""
    x = torch.rand(2, 3, 100, 90, generator=torch.Generator().manual_seed(0))
    calls = []

    def fn(t):
        calls.append(tuple(t.shape[-2:]))
        return t.repeat_interleave(scale, -2).repeat_interleave(scale, -1)

    out = tiling.tiled_map(fn, x, (32, 40), (16, 16), scale=scale, margin=margin)
    ref = fn(x)
    assert out.shape == ref.shape and torch.allclose(out, ref, atol=1e-6)
    assert len(calls) > 6 and max(h * w for h, w in calls[:-1]) <= 32 * 40 * scale ** 2


def test_config_and_env(monkeypatch):
    from sccdm.serving.config import ServiceConfig
    assert ServiceConfig.from_env("receiver", {}).tile_pixels == tiling.DEFAULT_TILE_PIXELS == 256 * 256
    assert ServiceConfig.from_env("receiver", {"SCCDM_TILE_PIXELS": "0"}).tile_pixels == 0
    monkeypatch.setenv("SCCDM_TILE_PIXELS", "1000")
    assert tiling.needs_tiling(32, 32) and not tiling.needs_tiling(32, 31)
    monkeypatch.setenv("SCCDM_TILE_PIXELS", "0")
    assert not tiling.needs_tiling(4096, 4096)
    assert "SCCDM_TILE_PIXELS" in sys.modules["sccdm.serving.config"].__doc__


# --------------------------------------------------------------------------- (a) small images: unchanged

@pytest.mark.parametrize("size", [(32, 32), (48, 80)])
def test_small_images_bit_identical(model, size, monkeypatch):
    monkeypatch.delenv("SCCDM_TILE_PIXELS", raising=False)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, *size, generator=gen)
    cfg = ChannelConfig("rayleigh", snr_db=7.0)
    outs = [pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(1), refine=True,
                              refine_generator=torch.Generator().manual_seed(2), tile_pixels=t)
            for t in (None, 0, 64 * 80)]
    # the untiled path, written out: what pipeline.decode did before tiling existed
    frame = outs[0]["frame"]
    from sccdm.channels import equalize
    from sccdm.symbols import symbols_to_latent
    rx = outs[0]["rx"]
    z_hat, eff = equalize(rx.y, rx.h, rx.noise_var, cfg.csi, rx.mask)
    with torch.no_grad():
        s_hat = model.decode(symbols_to_latent(z_hat, frame.latent_shape), eff, frame.image_size)
        x_hat = model.refine(s_hat, generator=torch.Generator().manual_seed(2), snr_db=eff)
    for out in outs:
        assert torch.equal(out["s_hat"], s_hat) and torch.equal(out["x_hat"], x_hat)


def test_receiver_batch_path_small_images_unchanged(model):
    """receiver/decode.py with several requests (z_start path) is unchanged for small images."""
    from receiver.decode import RxItem, run_batch
    k = model.cfg.num_symbols(32, 32)
    items = [RxItem("m", torch.randn(1, k, dtype=torch.complex64, generator=torch.Generator().manual_seed(i)), None,
                    torch.tensor([0.1]), None, "none", model.cfg.latent_shape(32, 32), (32, 32), True, 10 + i)
             for i in range(2)]
    a = run_batch(model, items, "cpu")
    b = run_batch(model, items, "cpu", tile_pixels=0)
    for ra, rb in zip(a, b):
        assert torch.equal(ra["x_hat"], rb["x_hat"]) and torch.equal(ra["s_hat"], rb["s_hat"])


# --------------------------------------------------------------------------- (c) no seams

def _edge_band(starts, tile, n, width):
    """bool [n]: within ``width`` pixels of an interior tile edge."""
    band = torch.zeros(n, dtype=torch.bool)
    for s in starts:
        for e in (s, s + tile):
            if 0 < e < n:
                band[max(0, e - width):e + width] = True
    return band


def test_no_seams_mid_size(model):
    """768x768 photo, tiles of at most 256x256: the decoder is exact (its margin covers the Swin windows'
    reach), the refined image is within 0.2 dB of the untiled one, and the error near tile edges is no
    larger than elsewhere."""
    x = image_to_tensor(photo(768))[None]
    cfg = ChannelConfig("awgn", snr_db=10.0)
    t = 256 * 256
    run = lambda tp: pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(0), refine=True,  # noqa: E731
                                       refine_generator=torch.Generator().manual_seed(1), tile_pixels=tp)
    full, tiled = run(0), run(t)
    assert torch.equal(full["frame"].symbols, tiled["frame"].symbols)

    # decoder: tiles of 32x32 latent pixels, the result equals the untiled decoder up to float rounding
    assert tiling.decoder_tiling(model.cfg, t)["tile"] == 32
    assert (tiled["s_hat"] - full["s_hat"]).abs().max() < 1e-5

    # refiner: close to the untiled output, same quality
    p_full, p_tiled = float(psnr(full["x_hat"], x)), float(psnr(tiled["x_hat"], x))
    assert abs(p_tiled - p_full) < 0.2, (p_full, p_tiled)
    assert float(psnr(tiled["x_hat"], full["x_hat"])) > 45

    plan = tiling.refiner_tiling(t)
    starts = tiling.tile_starts(768, plan["tile"], plan["overlap"], plan["align"])
    assert len(starts) >= 3
    b = _edge_band(starts, plan["tile"], 768, 8)
    band = b[:, None] | b[None, :]
    err_full = (full["x_hat"] - x).pow(2).mean(dim=(0, 1))
    err_tiled = (tiled["x_hat"] - x).pow(2).mean(dim=(0, 1))
    # relative to the untiled error at the same pixels (the content near the edges differs from the rest)
    ratio_band = float(err_tiled[band].mean() / err_full[band].mean())
    ratio_rest = float(err_tiled[~band].mean() / err_full[~band].mean())
    assert ratio_band < ratio_rest + 0.03, (ratio_band, ratio_rest)
    diff = (tiled["x_hat"] - full["x_hat"]).pow(2).mean(dim=(0, 1))
    assert float(diff[band].mean()) < 1.5 * float(diff[~band].mean()) + 1e-7
    # no step across an edge: the tiled image's gradient at tile edges is like the untiled one's
    step_t = (tiled["x_hat"][..., 1:] - tiled["x_hat"][..., :-1]).abs().mean(dim=(0, 1, 2))
    step_f = (full["x_hat"][..., 1:] - full["x_hat"][..., :-1]).abs().mean(dim=(0, 1, 2))
    edges = [e for s in starts for e in (s, s + plan["tile"]) if 0 < e < 768]
    for e in edges:
        assert abs(float(step_t[e - 1] - step_f[e - 1])) < 0.005, e


# --------------------------------------------------------------------------- (b) 2048x2048 within 1.5 GB

TX = r"""
import sys, numpy as np, torch
torch.set_num_threads(1)
import sccdm.zoo
from sccdm import channels, pipeline
from sccdm.data import image_to_tensor
img = np.load(sys.argv[1])
model = sccdm.zoo.load("sc-cdm-cpu")
x = image_to_tensor(img)[None]
frame = pipeline.encode(model, x, 10.0)
rx = channels.apply_channel(frame.symbols, channels.ChannelConfig("awgn", snr_db=10.0), torch.Generator().manual_seed(0))
torch.save({"y": rx.y, "noise_var": rx.noise_var, "latent_shape": frame.latent_shape,
            "image_size": frame.image_size}, sys.argv[2])
"""

# The receiver's computation (receiver/decode.py run_batch, then the PNGs its servicer sends), alone in a process.
RX = r"""
import json, sys, time, torch
torch.set_num_threads(1)
t0 = time.perf_counter()

def peak_rss_mb():
    # VmHWM: this process's peak resident set (ru_maxrss is not usable here: Linux carries the
    # parent's RSS at fork into the child's ru_maxrss across exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

import sccdm.zoo
from receiver.decode import RxItem, run_batch
from sccdm.serving import convert
model = sccdm.zoo.load("sc-cdm-cpu")
f = torch.load(sys.argv[1])
base = peak_rss_mb()
item = RxItem("sc-cdm-cpu", f["y"], None, f["noise_var"], None, "none", tuple(f["latent_shape"]),
              tuple(f["image_size"]), True, 7)
del f
t1 = time.perf_counter()
res = run_batch(model, [item], "cpu")[0]
t2 = time.perf_counter()
png, unrefined = convert.png_bytes(res["x_hat"]), convert.png_bytes(res["s_hat"])
peak = peak_rss_mb()
torch.save({"x_hat": res["x_hat"].mul(255).round().to(torch.uint8),
            "s_hat": res["s_hat"].mul(255).round().to(torch.uint8)}, sys.argv[2])
print(json.dumps({"peak_rss_mb": peak, "baseline_rss_mb": base, "decode_refine_s": t2 - t1,
                  "refine_s": res["refine_ms"] / 1000, "total_s": time.perf_counter() - t0}))
"""


def mosaic_2048() -> np.ndarray:
    """uint8 [2048, 2048, 3]: four skimage photos (astronaut, coffee, chelsea, rocket), each resized to 1024^2."""
    import skimage.data
    import skimage.transform
    quads = [skimage.transform.resize(getattr(skimage.data, n)(), (1024, 1024), order=1, anti_aliasing=False)
             for n in ("astronaut", "coffee", "chelsea", "rocket")]
    img = np.concatenate([np.concatenate(quads[:2], 1), np.concatenate(quads[2:], 1)], 0)
    return (img * 255).round().astype(np.uint8)


def test_2048_photo_within_1_5_gb(tmp_path):
    img = mosaic_2048()
    np.save(tmp_path / "img.npy", img)
    env = {k: v for k, v in os.environ.items() if k != "SCCDM_TILE_PIXELS"}   # the shipped default
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    run = lambda code, *args: subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT,  # noqa: E731
                                             env=env, capture_output=True, text=True, timeout=600)
    tx = run(TX, tmp_path / "img.npy", tmp_path / "frame.pt")
    assert tx.returncode == 0, tx.stderr[-3000:]
    rx = run(RX, tmp_path / "frame.pt", tmp_path / "out.pt")
    assert rx.returncode == 0, rx.stderr[-3000:]
    stats = json.loads(rx.stdout.strip().splitlines()[-1])
    print("2048x2048 receiver:", stats)
    assert stats["peak_rss_mb"] < PEAK_LIMIT_MB, stats

    out = torch.load(tmp_path / "out.pt")
    x = image_to_tensor(img)[None]
    assert out["x_hat"].shape == (1, 3, 2048, 2048)
    p_s = float(psnr(out["s_hat"].float() / 255, x))
    p_x = float(psnr(out["x_hat"].float() / 255, x))
    print(f"PSNR decoder {p_s:.2f} dB, refined {p_x:.2f} dB")
    assert p_s > 24 and p_x > p_s - 0.1, (p_s, p_x)
