"""``sccdm train``: the four training stages, resumable, with progress, seeds, a JSON log and DDP.

Stages:
  codec     Swin JSCC encoder + decoder, MSE, SNR ~ U(snr_min, snr_max) per image,
            AWGN or Rayleigh block fading (MMSE, effective SNR to the decoder).
  deepjscc  the CNN baseline, same loss, SNRs and channels.
  refine1   N1 teacher + N2 on the frozen codec's output, L1(I, I_hat).
  refine2   diffusion denoiser + N1 student (+ N2), teacher and codec frozen,
            L1(I, I_hat) + L1(Z_hat, Z_0).

Each run writes ``OUT/ckpt.pt`` (resume), ``OUT/log.jsonl`` and, when done,
``OUT/model.safetensors`` + ``OUT/config.json``. Under ``torchrun`` it runs
DistributedDataParallel (gloo on CPU, NCCL on GPU); rank 0 logs and saves.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .channels import ChannelConfig
from .models.deepjscc import DEEPJSCC_PRESETS, DeepJSCC
from .models.refine import REFINER_PRESETS, Refiner
from .models.swin import SWIN_PRESETS, SwinJSCC
from .pipeline import transmit_train
from . import weights

STAGES = ("codec", "deepjscc", "refine1", "refine2")


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="sccdm train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--preset", default="cpu", choices=["cpu", "paper"])
    p.add_argument("--data", default=None, help="dataset root (split/class/file images or cifar-10-batches-py)")
    p.add_argument("--out", required=True, help="run folder (checkpoint, log, exported weights)")
    p.add_argument("--codec", default=None, help="exported codec folder (refine stages)")
    p.add_argument("--init", default=None, help="exported refine1 folder to start refine2 from")
    p.add_argument("--epochs", type=float, default=10)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default: 5e-4 (cpu preset) / 1e-4 (paper)")
    p.add_argument("--snr-min", type=float, default=1.0)
    p.add_argument("--snr-max", type=float, default=13.0)
    p.add_argument("--rayleigh-share", type=float, default=1 / 3,
                   help="share of batches sent over Rayleigh block fading (rest AWGN)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=None, help="stop (and export) after this wall time")
    p.add_argument("--device", default=None)
    return p


# --------------------------------------------------------------------------- helpers

def _dist_info():
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _seed_all(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build(stage: str, preset: str, args) -> tuple[torch.nn.Module, dict, torch.nn.Module | None]:
    """-> (trainable model, config dict to export, frozen codec or None)."""
    if stage == "codec":
        cfg = SWIN_PRESETS[preset]
        return SwinJSCC(cfg), {"kind": "swin", "preset": preset, **cfg.to_dict()}, None
    if stage == "deepjscc":
        cfg = DEEPJSCC_PRESETS[preset]
        return DeepJSCC(cfg), {"kind": "deepjscc", "preset": preset, **cfg.to_dict()}, None
    if not args.codec:
        raise SystemExit(f"stage {stage} needs --codec FOLDER (an exported codec run)")
    codec = weights.load_model_dir(args.codec).eval()
    for p in codec.parameters():
        p.requires_grad_(False)
    cfg = REFINER_PRESETS[preset]
    model = Refiner(cfg)
    if stage == "refine2":
        if not args.init:
            raise SystemExit("stage refine2 needs --init FOLDER (the exported refine1 run)")
        model.load_state_dict(weights.load_model_dir(args.init).state_dict())
        for p in model.teacher.parameters():
            p.requires_grad_(False)
    return model, {"kind": "refiner", "preset": preset, **cfg.to_dict()}, codec


def _channel_for_batch(gen: torch.Generator, share: float) -> ChannelConfig:
    if torch.rand((), generator=gen) < share:
        return ChannelConfig(kind="rayleigh", fading="block", csi="mmse")
    return ChannelConfig(kind="awgn")


class _Link(torch.nn.Module):
    """Codec + channel as one forward, so DistributedDataParallel sees (and syncs) the whole step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, snr, chan, gen):
        return transmit_train(self.model, x, snr, chan, gen)


def _fmt_eta(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


# --------------------------------------------------------------------------- loop

def run(args) -> Path:
    rank, world = _dist_info()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    _seed_all(args.seed + rank)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from .data import ImageArrayDataset, load_split
    images = load_split(args.data, "train", args.limit)
    ds = ImageArrayDataset(images, augment=True)
    sampler = torch.utils.data.DistributedSampler(ds, world, rank, shuffle=True, seed=args.seed) if world > 1 else None
    loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=sampler is None, sampler=sampler,
                                         drop_last=True, num_workers=0)

    model, cfg_dict, codec = _build(args.stage, args.preset, args)
    model.to(device)
    if codec is not None:
        codec.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = args.lr or (5e-4 if args.preset == "cpu" else (2e-4 if args.stage.startswith("refine") else 1e-4))
    opt = torch.optim.Adam(params, lr=lr)
    steps_per_epoch = len(loader)
    total = max(1, int(args.epochs * steps_per_epoch))
    warm = min(200, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(warm, 1)) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator(device=device).manual_seed(args.seed * 1000 + rank)

    step, elapsed_before = 0, 0.0
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        st = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        sched.load_state_dict(st["sched"])
        gen.set_state(st["gen"])
        step, elapsed_before = st["step"], st.get("elapsed", 0.0)
        if rank == 0:
            print(f"resumed {args.stage} from {ckpt} at step {step}/{total}", flush=True)

    link = _Link(model)
    net = torch.nn.parallel.DistributedDataParallel(link) if world > 1 else link
    logf = open(out / "log.jsonl", "a") if rank == 0 else None
    t0 = time.time()
    start_step = step
    run_loss, run_n = 0.0, 0
    done = step >= total

    def save():
        if rank == 0:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                        "gen": gen.get_state(), "step": step, "elapsed": elapsed_before + time.time() - t0,
                        "args": vars(args)}, ckpt.with_suffix(".tmp"))
            os.replace(ckpt.with_suffix(".tmp"), ckpt)

    epoch = step // steps_per_epoch
    while not done:
        if sampler is not None:
            sampler.set_epoch(epoch)
        skip = step - epoch * steps_per_epoch  # resume mid-epoch: skip batches already seen
        for i, x in enumerate(loader):
            if i < skip:
                continue
            x = x.to(device)
            b = x.shape[0]
            snr = args.snr_min + (args.snr_max - args.snr_min) * torch.rand(b, generator=gen, device=device)
            chan = _channel_for_batch(gen, args.rayleigh_share)
            model.train()
            if args.stage in ("codec", "deepjscc"):
                loss = F.mse_loss(net(x, snr, chan, gen), x)
            else:
                with torch.no_grad():
                    s_hat = transmit_train(codec, x, snr, chan, gen)
                if args.stage == "refine1":
                    o = model.stage1(x, s_hat)
                    loss = F.l1_loss(o["x_hat"], x)
                else:
                    o = model.stage2(x, s_hat, generator=gen)
                    loss = F.l1_loss(o["x_hat"], x) + F.l1_loss(o["z_hat"], o["z0"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if world > 1 and args.stage.startswith("refine"):
                for p in params:  # refine stages call the module directly: average grads by hand
                    if p.grad is not None:
                        dist.all_reduce(p.grad)
                        p.grad /= world
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            run_loss += float(loss.detach())
            run_n += 1
            el = time.time() - t0
            if rank == 0 and (step % args.log_every == 0 or step == total):
                rate = (step - start_step) / max(el, 1e-9)
                rec = {"stage": args.stage, "step": step, "total": total, "epoch": round(step / steps_per_epoch, 3),
                       "loss": run_loss / run_n, "lr": sched.get_last_lr()[0],
                       "elapsed_s": round(elapsed_before + el, 1), "eta_s": round((total - step) / max(rate, 1e-9), 1)}
                if args.stage in ("codec", "deepjscc"):
                    rec["train_psnr_db"] = round(10 * math.log10(1 / max(rec["loss"], 1e-12)), 3)
                logf.write(json.dumps(rec) + "\n")
                logf.flush()
                print(f"[{args.stage}] step {step}/{total} ep {rec['epoch']:.2f} loss {rec['loss']:.5f} "
                      f"lr {rec['lr']:.2e} {rate * args.batch * world:.0f} img/s eta {_fmt_eta(rec['eta_s'])}",
                      flush=True)
                run_loss, run_n = 0.0, 0
            if step % args.ckpt_every == 0:
                save()
            out_of_time = args.max_minutes is not None and (el / 60) >= args.max_minutes
            if step >= total or out_of_time:
                done = True
                break
        epoch += 1
    save()
    if rank == 0:
        meta = {"stage": args.stage, "steps": step, "planned_steps": total, "batch": args.batch * world,
                "lr": lr, "seed": args.seed, "world_size": world, "train_seconds": round(elapsed_before + time.time() - t0, 1),
                "command": "sccdm train " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["train"] else sys.argv[1:])}
        weights.save_model_dir(model, cfg_dict, out, meta)
        print(f"exported {out / 'model.safetensors'}", flush=True)
    if world > 1:
        dist.barrier()
    return out


def main(argv=None) -> int:
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
