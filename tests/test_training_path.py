"""The fast training path: device batches, the resumable plan, torch noise, refine2's start, the recipe."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sccdm.batches import DeviceImages, PhotoCrops
from sccdm.channels import ChannelConfig, apply_channel
from sccdm.schedule import Plan
from sccdm.symbols import latent_to_symbols

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(2)


def test_device_images_epoch_without_replacement_and_real_crops():
    imgs = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 3), dtype=np.uint8)
    src = DeviceImages(imgs, augment=False)
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([src.batch(4, gen) for _ in range(5)])  # 20 images = two epochs
    ref = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    match = lambda x: int(((ref - x).abs().flatten(1).amax(1) < 1e-6).nonzero()[0])  # noqa: E731
    ids = [match(x) for x in seen]
    assert sorted(ids[:10]) == list(range(10)) and sorted(ids[10:]) == list(range(10))
    # augmented: every output is a window of the reflect-padded (possibly flipped) original
    aug = DeviceImages(imgs, augment=True, pad=2)
    for x in aug.batch(10, gen):
        found = False
        for r in ref:
            for cand in (r, r.flip(-1)):
                p = F.pad(cand[None], (2, 2, 2, 2), mode="reflect")[0]
                win = p.unfold(1, 8, 1).unfold(2, 8, 1)  # [3, 5, 5, 8, 8]
                if ((win - x[:, None, None]).abs().flatten(3).amax(-1).amax(0) < 1e-6).any():
                    found = True
        assert found


def test_device_images_resume_continues_the_epoch():
    imgs = np.random.default_rng(1).integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    a, gen = DeviceImages(imgs, augment=False), torch.Generator().manual_seed(3)
    a.batch(5, gen)
    st, gst = a.state_dict(), gen.get_state()
    nxt = a.batch(5, gen)
    b, gen2 = DeviceImages(imgs, augment=False), torch.Generator()
    b.load_state_dict(st)
    gen2.set_state(gst)
    assert torch.equal(b.batch(5, gen2), nxt)


def test_photo_crops_shapes_and_refusal():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (40, 60, 3), dtype=np.uint8), rng.integers(0, 256, (33, 33, 3), dtype=np.uint8)]
    x = PhotoCrops(photos, 32).batch(6, torch.Generator().manual_seed(0))
    assert x.shape == (6, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    with pytest.raises(ValueError, match="smaller than the 48-pixel crop"):
        PhotoCrops(photos, 48)


def test_plan_warmup_cosine_and_units():
    p = Plan("seconds", 100.0, warmup=0.1, floor=0.0)
    assert p.lr_scale(0.0) == 0.0 and p.lr_scale(0.05) == pytest.approx(0.5 * 0.5 * (1 + np.cos(0.05 * np.pi)))
    assert p.lr_scale(0.5) == pytest.approx(0.5) and p.lr_scale(1.0) == pytest.approx(0.0, abs=1e-12)
    assert Plan("steps", 10, warmup=0.0, floor=0.1).lr_scale(1.0) == pytest.approx(0.1)
    assert p.progress(10**6, 50.0) == 0.5 and not p.finished(10**6, 99.0) and p.finished(0, 100.0)
    s = Plan("steps", 10)
    assert s.progress(5, 1e9) == 0.5 and s.finished(10, 0.0)
    with pytest.raises(ValueError):
        Plan("epochs", 3)


def test_torch_noise_matches_sionna_statistics():
    """Training draws the noise with torch, serving with Sionna's block: same SNR, same circular shape."""
    z = latent_to_symbols(torch.randn(1, 2 * 200_000, 1, 1, generator=torch.Generator().manual_seed(0)))
    stats = {}
    for src in ("torch", "sionna"):
        out = apply_channel(z, ChannelConfig("awgn", snr_db=6.0), torch.Generator().manual_seed(1), noise=src)
        n = out.y - z
        stats[src] = (float(n.abs().pow(2).mean()), float(n.real.var()), float(n.imag.var()))
    want = 10 ** (-0.6)
    for src, (p, vr, vi) in stats.items():
        assert p == pytest.approx(want, rel=0.01), src
        assert vr == pytest.approx(want / 2, rel=0.015) and vi == pytest.approx(want / 2, rel=0.015), src


def test_student_starts_from_the_teacher():
    from sccdm.models.refine import REFINER_PRESETS, Refiner
    torch.manual_seed(0)
    r = Refiner(REFINER_PRESETS["cpu"])
    s = torch.rand(3, 3, 32, 32)
    assert not torch.allclose(r.student(s), r.teacher_prior(s, s), atol=1e-4)
    r.init_student_from_teacher()
    assert torch.allclose(r.student(s), r.teacher_prior(s, s), atol=1e-5)
    # the residual denoiser starts as the identity on its condition: the served prior varies per image
    with torch.no_grad():
        z = r.student_prior(s, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z, r.student(s), atol=1e-6) and float(z.std(0).mean()) > 0


def test_old_refiner_configs_keep_their_behaviour():
    from sccdm.models.refine import RefinerConfig
    old = RefinerConfig.from_dict({"prior_ch": 16, "dim": 16})
    assert old.version == 1 and old.x0_residual is False
    assert RefinerConfig().version == 2 and RefinerConfig().x0_residual


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-split")
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n // 2):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    return root


def test_recipe_cpu_tiny_budget(tiny_split, tmp_path):
    """The whole recipe on a few seconds: four stages, held-out numbers in the logs, zoo entries that load."""
    out = tmp_path / "recipe"
    env = {**os.environ, "SCCDM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "sccdm", "train", "recipe", "--preset", "cpu", "--minutes", "0.12", "--out", str(out),
           "--data", str(tiny_split), "--val", "4", "--val-every", "2", "--threads", "1", "--batch-scale", "0.125"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for stage in ("codec", "refine1", "refine2", "deepjscc"):
        recs = [json.loads(x) for x in (out / stage / "log.jsonl").read_text().splitlines()]
        assert recs[-1]["progress"] == 1.0 and "val_psnr_db" in recs[-1], stage
        assert "img_per_s" in recs[-1] and recs[-1]["eta_s"] == 0
    assert "prior_swap_db" in json.loads((out / "refine2" / "log.jsonl").read_text().splitlines()[-1])
    import sccdm.zoo as zoo
    zdir = out / "zoo"
    assert set(zoo.names(zdir)) == {"sc-cdm-cpu-awgn", "deepjscc-cpu-awgn"}
    m = zoo.load("sc-cdm-cpu-awgn", root=zdir)
    e = zoo.entry("sc-cdm-cpu-awgn", zdir)
    assert e["parts"]["refiner"]["dtype"] == "float16" and m.refiner is not None
    with torch.no_grad():
        assert m(torch.rand(1, 3, 32, 32), torch.tensor([5.0]))["x_hat"].shape == (1, 3, 32, 32)
    rec = json.loads((out / "recipe.json").read_text())
    assert set(rec["stages"]) == {"codec", "refine1", "refine2", "deepjscc"}


def test_publish_fp16_and_merge_checks_hashes(tmp_path):
    from sccdm import weights
    from sccdm.models.deepjscc import DEEPJSCC_PRESETS, DeepJSCC
    from sccdm.zoo.publish import merge, publish
    m = DeepJSCC(DEEPJSCC_PRESETS["cpu"])
    weights.save_model_dir(m, {"kind": "deepjscc", "preset": "cpu", **m.cfg.to_dict()}, tmp_path / "run")
    src = tmp_path / "src"
    e = publish("dj", {"codec": tmp_path / "run"}, "test", weights_dir=src, registry=src / "registry.json", fp16=True)
    assert e["parts"]["codec"]["dtype"] == "float16"
    assert e["parts"]["codec"]["bytes"] < 0.6 * (tmp_path / "run" / "model.safetensors").stat().st_size
    assert (src / "dj" / "codec.safetensors").stat().st_mode & 0o044 == 0o044  # readable by the image's user
    dst = tmp_path / "dst"
    assert merge(src, dst, dst / "registry.json") == ["dj"]
    import sccdm.zoo as zoo
    got = zoo.load("dj", root=dst).codec
    for (k, a), (_, b) in zip(m.state_dict().items(), got.state_dict().items()):
        assert torch.allclose(a, b.float(), atol=1e-3, rtol=1e-3), k
    f = src / "dj" / "codec.safetensors"
    f.write_bytes(f.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(SystemExit, match="sha256"):
        merge(src, dst, dst / "registry.json")


def test_publish_update_replaces_one_part(tmp_path):
    from sccdm import weights
    from sccdm.models.deepjscc import DEEPJSCC_PRESETS, DeepJSCC
    from sccdm.zoo.publish import publish
    reg = tmp_path / "zoo" / "registry.json"
    for i, run in enumerate(("a", "b")):
        torch.manual_seed(i)
        m = DeepJSCC(DEEPJSCC_PRESETS["cpu"])
        weights.save_model_dir(m, {"kind": "deepjscc", "preset": "cpu", **m.cfg.to_dict()}, tmp_path / run)
    first = publish("m", {"codec": tmp_path / "a", "refiner": tmp_path / "a"}, "first", tmp_path / "zoo", reg)
    got = publish("m", {"refiner": tmp_path / "b"}, weights_dir=tmp_path / "zoo", registry=reg, update=True)
    assert got["description"] == "first" and got["parts"]["codec"] == first["parts"]["codec"]
    assert got["parts"]["refiner"]["sha256"] != first["parts"]["refiner"]["sha256"]
    with pytest.raises(SystemExit, match="not in"):
        publish("other", {"codec": tmp_path / "b"}, weights_dir=tmp_path / "zoo", registry=reg, update=True)


@pytest.mark.parametrize("budget, steps", [(["--epochs", "2"], [1, 2]), (["--steps", "3"], [1, 2, 3])])
def test_photo_crops_training_run(tmp_path, budget, steps):
    """Photos of different sizes: random crops for training, centre crops of test/ for the held-out numbers;
    the plan is in epochs (3 photos, batch 2: one step each) or in steps."""
    rng = np.random.default_rng(0)
    for split, sizes in (("train", [(70, 90), (64, 120), (100, 66)]), ("test", [(80, 80)])):
        (tmp_path / "photos" / split).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "photos" / split / f"{i}.png")
    from sccdm import train
    out = tmp_path / "run"
    train.run(train.build_parser().parse_args(
        ["codec", "--data", str(tmp_path / "photos" / "train"), "--crop", "64", *budget, "--batch", "2",
         "--val", "1", "--val-every", "1", "--log-every", "1", "--out", str(out), "--threads", "1"]))
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == steps and all("val_psnr_db" in r for r in recs)


def test_refine_pixel_loss_mse(tmp_path):
    """--pixel-loss mse trains the refiner on MSE: on the same first batch (same seed, same weights) its loss
    lies between the squared L1 loss and the L1 loss (Jensen; errors below 1), and is not the L1 loss."""
    rng = np.random.default_rng(0)
    (tmp_path / "photos" / "train").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(tmp_path / "photos" / "train" / f"{i}.png")
    from sccdm import train
    data = str(tmp_path / "photos" / "train")
    common = ["--data", data, "--crop", "64", "--steps", "1", "--batch", "2", "--log-every", "1", "--threads", "1"]
    train.run(train.build_parser().parse_args(["codec", *common, "--out", str(tmp_path / "codec")]))
    loss = {}
    for name in ("l1", "mse"):
        out = tmp_path / name
        train.run(train.build_parser().parse_args(
            ["refine1", *common, "--codec", str(tmp_path / "codec"), "--pixel-loss", name, "--out", str(out)]))
        loss[name] = json.loads((out / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert loss["l1"] ** 2 <= loss["mse"] < loss["l1"]


def test_snr_skew_draws_low_snrs_more_often():
    """--snr-skew P: SNR = lo + (hi - lo) * U**P, so its mean is lo + (hi - lo) / (P + 1) (4 sigma tolerance)."""
    from sccdm.train import draw_snr
    n = 40000
    for skew in (1.0, 1.6, 3.0):
        snr = draw_snr(-1.0, 16.0, skew, n, torch.Generator().manual_seed(5))
        assert snr.min() >= -1 and snr.max() <= 16
        var = 17.0 ** 2 * (1 / (2 * skew + 1) - 1 / (skew + 1) ** 2)
        assert abs(float(snr.mean()) - (-1 + 17.0 / (skew + 1))) < 4 * (var / n) ** 0.5


def test_refine2_snr_prior_trains_the_snr_input(tmp_path):
    """refine2 --snr-prior from a stage-1 run without it: the run exports snr_prior, its SNR MLP starts at zero
    (grow_state_dict) and moves, and the exported refiner then answers differently at 0 and 15 dB. A second refine2
    from that export continues its student and SNR input instead of restarting the student from the teacher."""
    rng = np.random.default_rng(0)
    (tmp_path / "photos" / "train").mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (72, 80, 3), dtype=np.uint8)).save(tmp_path / "photos" / "train" / f"{i}.png")
    from sccdm import train
    from sccdm.weights import load_model_dir
    common = ["--data", str(tmp_path / "photos" / "train"), "--crop", "64", "--batch", "2", "--threads", "1",
              "--snr-min", "0", "--snr-max", "15"]
    train.run(train.build_parser().parse_args(["codec", *common, "--steps", "1", "--out", str(tmp_path / "c")]))
    train.run(train.build_parser().parse_args(
        ["refine1", *common, "--steps", "1", "--codec", str(tmp_path / "c"), "--out", str(tmp_path / "r1")]))
    train.run(train.build_parser().parse_args(
        ["refine2", *common, "--steps", "3", "--lr", "1e-2", "--snr-prior", "--codec", str(tmp_path / "c"),
         "--init", str(tmp_path / "r1"), "--out", str(tmp_path / "r2")]))
    r = load_model_dir(tmp_path / "r2").float().eval()
    assert r.cfg.snr_prior and r.snr_embed[2].weight.abs().sum() > 0
    s_hat = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    z = torch.randn(1, r.cfg.prior_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (r.student_prior(s_hat, z_start=z, snr_db=0.0) - r.student_prior(s_hat, z_start=z, snr_db=15.0)).abs().max() > 0
    with pytest.raises(SystemExit, match="refine2"):
        train.run(train.build_parser().parse_args(
            ["refine1", *common, "--steps", "1", "--snr-prior", "--codec", str(tmp_path / "c"), "--out", str(tmp_path / "x")]))
    # refine2 from a refine2 export continues its student (not restarted from the teacher) and keeps its SNR input
    train.run(train.build_parser().parse_args(
        ["refine2", *common, "--steps", "1", "--lr", "1e-9", "--codec", str(tmp_path / "c"),
         "--init", str(tmp_path / "r2"), "--out", str(tmp_path / "r2b")]))
    cont = load_model_dir(tmp_path / "r2b").float().eval()
    assert cont.cfg.snr_prior
    restarted = load_model_dir(tmp_path / "r2").float()
    restarted.init_student_from_teacher()
    for k, v in r.student.state_dict().items():
        assert torch.allclose(cont.student.state_dict()[k], v, atol=1e-6), k
    assert any((restarted.student.state_dict()[k] - v).abs().max() > 1e-4 for k, v in r.student.state_dict().items())
