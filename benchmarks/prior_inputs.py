"""Would the served prior matter if the student saw more than S_hat? (issue 9)

    python benchmarks/prior_inputs.py --model sc-cdm-cpu --steps 600 --threads 1 \
        --out benchmarks/results/prior_inputs

The teacher's prior (it sees the original) costs 0.3-0.7 dB to swap between images; the served one,
the student's from S_hat alone, about 0.02 dB. One explanation: the teacher encodes the residual
I - S_hat, and an MMSE-trained decoder leaves a residual that S_hat cannot predict. Another: the
student is starved of what the receiver has besides S_hat. This trains two copies of the shipped
student + diffusion for the same number of stage-2 steps (restorer and teacher frozen, the loss of
``sccdm train refine2``): ``s_hat`` sees S_hat as shipped; ``latent+snr`` also sees the equalised
received latent (upsampled to the student's H/4 grid) and the SNR (a constant plane), its new input
weights starting at zero so both start from the served prior. Same batches, same channel draws.
If the extra inputs carried what the teacher's prior says, ``latent+snr`` would pull ahead in
refinement gain and swap cost. Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sccdm import zoo  # noqa: E402
from sccdm.batches import DeviceImages  # noqa: E402
from sccdm.channels import ChannelConfig  # noqa: E402
from sccdm.data import image_to_tensor, load_split  # noqa: E402
from sccdm.metrics import psnr  # noqa: E402
from sccdm.pipeline import _encode, apply_channel, equalize, latent_to_symbols, symbols_to_latent  # noqa: E402


class LatentStudent(nn.Module):
    """N1-S2 on concat(unshuffle4(S_hat), latent at H/4, SNR / 10): the shipped student's layers, the
    first conv widened with zero weights for the new inputs (so it starts as the shipped one)."""

    def __init__(self, base: nn.Module, latent_ch: int):
        super().__init__()
        self.base = copy.deepcopy(base)
        w0 = self.base.body[0]
        conv = nn.Conv2d(w0.in_channels + latent_ch + 1, w0.out_channels, 3, padding=1)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, :w0.in_channels] = w0.weight
            conv.bias.copy_(w0.bias)
        self.base.body[0] = conv

    def forward(self, s_hat, latent, snr):
        x = F.pixel_unshuffle(s_hat, 4)
        lat = F.interpolate(latent, size=x.shape[-2:], mode="nearest")
        plane = (snr / 10.0).view(-1, 1, 1, 1).expand(-1, 1, *x.shape[-2:])
        return self.base.mlp(self.base.body(torch.cat([x, lat, plane], 1)).mean(dim=(2, 3)))


class ImageStudent(nn.Module):
    """The shipped student: S_hat only."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = copy.deepcopy(base)

    def forward(self, s_hat, latent, snr):
        return self.base(s_hat)


def _link(codec, x, snr, gen):
    """AWGN link with the training noise: (equalised latent float [B, C, h, w], S_hat float [B, 3, H, W])."""
    lat = _encode(codec, x, snr, None)
    out = apply_channel(latent_to_symbols(lat), ChannelConfig("awgn", 0.0), gen, snr_db=snr, noise="torch")
    z_hat, eff = equalize(out.y, out.h, out.noise_var, "none", out.mask)
    lat_hat = symbols_to_latent(z_hat, tuple(lat.shape[1:]))
    return lat_hat, codec.decode(lat_hat, eff, tuple(x.shape[-2:])).clamp(0, 1)


@torch.no_grad()
def _evaluate(model, student, diffusion, images, snr_db: float) -> dict:
    r = model.refiner
    sums = dict.fromkeys(("nsf", "served", "swapped", "teacher"), 0.0)
    for i in range(0, len(images), 100):
        x = images[i:i + 100]
        snr = torch.full((x.shape[0],), float(snr_db))
        lat, s_hat = _link(model.codec, x, snr, torch.Generator().manual_seed(100003 + i))
        z_start = torch.randn(x.shape[0], r.cfg.prior_dim, generator=torch.Generator().manual_seed(100019 + i))
        z = diffusion.sample(student(s_hat, lat, snr), z_start=z_start)
        for k, o in (("nsf", s_hat), ("served", r.restorer(s_hat, z)), ("swapped", r.restorer(s_hat, z.roll(1, 0))),
                     ("teacher", r.restorer(s_hat, r.teacher_prior(x, s_hat)))):
            sums[k] += float(psnr(o.clamp(0, 1), x).sum())
    m = {k: v / len(images) for k, v in sums.items()}
    return {"nsf": round(m["nsf"], 3), "refine_gain_db": round(m["served"] - m["nsf"], 4),
            "swap_cost_db": round(m["served"] - m["swapped"], 4), "teacher_gain_db": round(m["teacher"] - m["nsf"], 4)}


def train_variant(model, variant: str, train, val, steps: int, snrs, batch: int = 32, lr: float = 2e-4,
                  seed: int = 0) -> list[dict]:
    """Stage-2 steps on one student variant; held-out rows at step 0 and at the end."""
    r = model.refiner
    latent_ch = model.cfg.channels
    student = LatentStudent(r.student, latent_ch) if variant == "latent+snr" else ImageStudent(r.student)
    diffusion = copy.deepcopy(r.diffusion)
    params = list(student.parameters()) + list(diffusion.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    rows = [{"variant": variant, "step": 0, "snr_db": s, **_evaluate(model, student, diffusion, val, s)} for s in snrs]
    t0 = time.time()
    for step in range(1, steps + 1):
        x = train.batch(batch, gen)
        snr = 1 + 12 * torch.rand(batch, generator=gen)
        with torch.no_grad():
            lat, s_hat = _link(model.codec, x, snr, gen)
            z0 = r.teacher_prior(x, s_hat)
        z_t = diffusion.q_sample(z0, r.cfg.steps - 1, torch.randn(z0.shape, generator=gen))
        z_hat = diffusion.sample(student(s_hat, lat, snr), z_start=z_t)
        loss = F.l1_loss(r.restorer(s_hat, z_hat), x) + F.l1_loss(z_hat, z0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            el = time.time() - t0
            print(f"[{variant}] step {step}/{steps} loss {loss.item():.4f} eta {el / step * (steps - step):.0f} s",
                  flush=True)
    rows += [{"variant": variant, "step": steps, "snr_db": s, **_evaluate(model, student, diffusion, val, s)}
             for s in snrs]
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="sc-cdm-cpu")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--snr", type=float, nargs="+", default=[1, 9])
    p.add_argument("--limit", type=int, default=500, help="held-out CIFAR-10 test images")
    p.add_argument("--data", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/results/prior_inputs")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    model = zoo.load(a.model).eval()
    for q in model.parameters():
        q.requires_grad_(False)
    val = image_to_tensor(load_split(a.data, "test", a.limit))
    train = DeviceImages(load_split(a.data, "train"), "cpu", augment=True)
    t0 = time.time()
    rows = []
    for variant in ("s_hat", "latent+snr"):
        rows += train_variant(model, variant, train, val, a.steps, a.snr)
    meta = {"command": "python benchmarks/prior_inputs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} torch threads",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "wall_s": round(time.time() - t0, 1),
            "model": a.model, "sha256": {k: v["sha256"] for k, v in zoo.entry(a.model)["parts"].items()},
            "images": f"first {len(val)} CIFAR-10 test images (JPEG copy), AWGN"}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = ["# Student inputs: does a prior that sees the received latent matter more?", "",
             f"Command: `{meta['command']}`  ", f"Machine: {meta['machine']}; {meta['date']}; {meta['wall_s']} s; "
             f"{meta['images']}; model {a.model}", "",
             "| student sees | stage-2 steps | SNR dB | NSF | refinement gain | swap cost | teacher gain (oracle) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['step']} | {r['snr_db']:g} | {r['nsf']:.2f} | {r['refine_gain_db']:+.3f} | "
                     f"{r['swap_cost_db']:.3f} | {r['teacher_gain_db']:+.3f} |")
    lines += ["", "PSNR in dB, mean over images. Swap: every image restored with its neighbour's served prior. "
              "Both variants start from the shipped student (the new inputs' weights at zero) and see the same "
              "batches; the restorer and the teacher stay frozen."]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
