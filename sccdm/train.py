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

Speed: the data set sits on the training device as uint8 and is augmented a batch
at a time (:mod:`sccdm.batches`); on CUDA the forward runs under bf16 autocast
(``--amp``) and optionally ``torch.compile`` (``--compile``). The learning rate
follows one warm-up + cosine plan (:mod:`sccdm.schedule`), in steps (``--epochs``, ``--steps``) or
in seconds of training (``--minutes``), stored in the checkpoint so a resume
continues it. ``--val N`` measures held-out PSNR on N test images every
``--val-every`` steps (:mod:`sccdm.holdout`). ``sccdm train recipe`` runs all four
stages on one time budget (:mod:`sccdm.recipe`).
"""
from __future__ import annotations

import argparse
import dataclasses
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
from .models.refine import REFINER_PRESETS, Refiner, grow_state_dict
from .models.swin import SWIN_PRESETS, SwinJSCC, adapt_state_dict
from .pipeline import transmit_train
from .schedule import Plan
from . import weights

STAGES = ("codec", "deepjscc", "refine1", "refine2")
PRESETS = {"codec": SWIN_PRESETS, "deepjscc": DEEPJSCC_PRESETS, "refine1": REFINER_PRESETS,
           "refine2": REFINER_PRESETS}
RAYLEIGH_SHARE = {"awgn": 0.0, "rayleigh": 1.0, "mixed": 1 / 3}


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="sccdm train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    names = sorted({n for table in PRESETS.values() for n in table})
    p.add_argument("stage", choices=STAGES)
    p.add_argument("--preset", default="cpu", choices=names, help="architecture size (per stage's table)")
    p.add_argument("--data", default=None, help="dataset root (split/class/file images or cifar-10-batches-py)")
    p.add_argument("--crop", type=int, default=None,
                   help="train on random CROPxCROP crops of photos of any size under --data (photo models)")
    p.add_argument("--out", required=True, help="run folder (checkpoint, log, exported weights)")
    p.add_argument("--codec", default=None, help="exported codec folder (refine stages)")
    p.add_argument("--init", default=None,
                   help="exported run to start from: refine1 for refine2 (a refine2 run continues its student); a "
                        "refiner, codec or deepjscc run to continue / fine-tune on a new plan")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=float, default=None, help="plan in steps: this many epochs (default 10)")
    budget.add_argument("--minutes", type=float, default=None, help="plan in training time: this many minutes")
    budget.add_argument("--steps", type=int, default=None,
                        help="plan in steps: this many updates (equal budgets for runs that share a device)")
    p.add_argument("--replan", action="store_true",
                   help="on resume, take this invocation's --epochs/--minutes instead of the checkpoint's plan")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="default: 5e-4 (cpu preset) / 1e-4 (paper)")
    p.add_argument("--warmup", type=float, default=None, help="warm-up as a fraction of the plan")
    p.add_argument("--rates", default=None,
                   help="codec: rate-adaptive, comma list of latent channel counts it may send (e.g. 8,16,32: "
                        "CBR 1/48, 1/24, 1/12); each batch trains one, drawn as --rate-weights says")
    p.add_argument("--rate-weights", default=None,
                   help="with --rates: how often each rate is drawn, comma list (default: uniformly)")
    p.add_argument("--channels", type=int, default=None,
                   help="codec: latent channels of a fixed-rate codec (the preset's by default); with --init from "
                        "a wider codec it starts from that codec's first channels (a single-CBR reference)")
    p.add_argument("--csi-map", action="store_true",
                   help="codec: the decoder also reads each symbol's SNR (per-symbol fading, OFDM, erasures); "
                        "from --init its new input starts at zero")
    p.add_argument("--snr-min", type=float, default=1.0)
    p.add_argument("--snr-max", type=float, default=13.0)
    p.add_argument("--snr-prior", action="store_true",
                   help="refine2: the diffusion's condition also reads the SNR (RefinerConfig.snr_prior)")
    p.add_argument("--snr-skew", type=float, default=1.0,
                   help="SNR = min + (max - min) * U**skew: 1 uniform; > 1 draws low SNRs more often (a refiner whose "
                        "gain is smallest at low SNR)")
    p.add_argument("--channel", choices=sorted(RAYLEIGH_SHARE), default=None,
                   help="awgn, rayleigh (block, MMSE) or mixed (1/3 Rayleigh); default mixed")
    p.add_argument("--rayleigh-share", type=float, default=None, help="share of Rayleigh batches (overrides --channel)")
    p.add_argument("--fading", choices=["block", "fast"], default="block",
                   help="Rayleigh batches: one h per image (block) or per symbol (fast: what OFDM makes of a "
                        "delay spread); validation follows")
    p.add_argument("--stage2", choices=["frozen", "joint", "anchored", "co"], default="frozen",
                   help="refine2: N2 frozen; trained on the diffusion prior (joint); trained on both the "
                        "diffusion and the teacher prior (anchored); or everything trained together with the "
                        "teacher's prior pulled toward what the diffusion can reach (co)")
    p.add_argument("--commit", type=float, default=0.25, help="co: weight of L1(Z_0, sg(Z_hat))")
    p.add_argument("--pixel-loss", choices=["l1", "mse"], default="l1",
                   help="refine stages' image loss: L1 (the paper's) or MSE (what PSNR scores: the posterior "
                        "mean rather than its median, which differ most at low SNR)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--val", type=int, default=0, help="held-out test images for validation (0: none)")
    p.add_argument("--val-every", type=int, default=500, help="validate every N steps (and at the end)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop this invocation (and export) after this wall time; the plan is unchanged")
    p.add_argument("--amp", choices=["auto", "bf16", "off"], default="auto", help="auto: bf16 on CUDA, off on CPU")
    p.add_argument("--compile", action="store_true", help="torch.compile the trained module")
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
    table = PRESETS[stage]
    if preset not in table:
        raise SystemExit(f"stage {stage} has no preset {preset!r}; it has {sorted(table)}")
    cfg = table[preset]
    if getattr(args, "channels", None):
        if stage != "codec" or getattr(args, "rates", None):
            raise SystemExit("--channels is for a fixed-rate codec stage (not with --rates)")
        cfg = dataclasses.replace(cfg, channels=args.channels)
    if getattr(args, "rates", None):
        if stage != "codec":
            raise SystemExit("--rates is for the codec stage (refine stages follow their codec's rates)")
        cfg = dataclasses.replace(cfg, rates=tuple(int(r) for r in args.rates.split(",")))
    if getattr(args, "snr_prior", False):
        if stage != "refine2":
            raise SystemExit("--snr-prior is for the refine2 stage (stage 1's teacher sees the residual)")
        cfg = dataclasses.replace(cfg, snr_prior=True)
    if getattr(args, "csi_map", False) and stage != "codec":
        raise SystemExit("--csi-map is for the codec stage")
    if stage in ("codec", "deepjscc"):
        init = weights.load_model_dir(args.init) if args.init else None
        if stage == "codec" and (getattr(args, "csi_map", False) or getattr(init and init.cfg, "csi_map", False)):
            cfg = dataclasses.replace(cfg, csi_map=True)  # a codec that reads the CSI map keeps reading it
        model = SwinJSCC(cfg) if stage == "codec" else DeepJSCC(cfg)
        if init is not None:  # fine-tune exported weights (e.g. on one channel, or made rate-adaptive) on a new plan
            state = init.state_dict()
            model.load_state_dict(adapt_state_dict(model, state) if stage == "codec" else state)
        kind = "swin" if stage == "codec" else "deepjscc"
        return model, {"kind": kind, "preset": preset, **cfg.to_dict()}, None
    if not args.codec:
        raise SystemExit(f"stage {stage} needs --codec FOLDER (an exported codec run)")
    codec = weights.load_model_dir(args.codec).eval()
    for p in codec.parameters():
        p.requires_grad_(False)
    init = weights.load_model_dir(args.init) if args.init else None
    if stage == "refine2":
        if init is None:
            raise SystemExit("stage refine2 needs --init FOLDER (the exported refine1 run, or a refine2 run to continue)")
        # A stage-2 export already holds a trained student (and maybe its SNR input): continue from it rather than
        # restart the student from the teacher, and keep the SNR input it was trained with.
        continuing = _init_stage(args.init) == "refine2"
        if continuing and init.cfg.snr_prior:
            cfg = dataclasses.replace(cfg, snr_prior=True)
    model = Refiner(cfg)
    if init is not None and stage in ("refine1", "refine2"):  # continue (e.g. on a fine-tuned codec, or grown deeper)
        model.load_state_dict(grow_state_dict(model, init.state_dict()))
    if stage == "refine2":
        if cfg.version >= 2 and not continuing:
            model.init_student_from_teacher()
        # Stage 2 fits the student's prior to what the stage-1 restorer reads ("frozen"). Training the restorer
        # too lets it learn to ignore a prior that is still poor, and the prior then stops mattering
        # (measured: teacher swap cost 0.45 -> 0.13 dB, served 0.007 dB), so it stays frozen by default.
        frozen = ([] if args.stage2 == "co" else [model.teacher]) + ([model.restorer] if args.stage2 == "frozen" else [])
        for m in frozen:
            for p in m.parameters():
                p.requires_grad_(False)
    return model, {"kind": "refiner", "preset": preset, **cfg.to_dict()}, codec


def _init_stage(folder: str) -> str | None:
    """The stage an exported run was trained by (its config's ``training.stage``; None without a training record)."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    return (cfg.get("training") or {}).get("stage")


def draw_snr(lo: float, hi: float, skew: float, n: int, gen: torch.Generator) -> torch.Tensor:
    """float [n] on ``gen``'s device: lo + (hi - lo) * U ** skew (1: uniform; 2: mean a third of the way up)."""
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=gen.device).pow(skew)


def _channel_for_batch(gen: torch.Generator, share: float, fading: str = "block") -> ChannelConfig:
    if share > 0 and torch.rand((), generator=gen, device=gen.device) < share:
        return ChannelConfig(kind="rayleigh", fading=fading, csi="mmse")
    return ChannelConfig(kind="awgn")


class _Link(torch.nn.Module):
    """Codec + channel as one forward, so DistributedDataParallel sees (and syncs) the whole step."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x, snr, chan, gen, channels=None):
        return transmit_train(self.model, x, snr, chan, gen, channels=channels)


def _fmt_eta(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600:d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _amp_dtype(args, device) -> torch.dtype | None:
    if args.amp == "bf16" or (args.amp == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def _default_lr(args) -> float:
    if args.preset == "cpu":
        return 5e-4
    return 2e-4 if args.stage.startswith("refine") else 1e-4


def _batches(args, device, rank):
    from .batches import DeviceImages, PhotoCrops
    from .data import load_photo_folder, load_split
    if args.crop:
        return PhotoCrops(load_photo_folder(args.data, min_side=args.crop, limit=args.limit), args.crop, device)
    return DeviceImages(load_split(args.data, "train", args.limit), device, augment=True)


def _holdout_images(args, device) -> torch.Tensor | None:
    if not args.val:
        return None
    from .data import image_to_tensor, load_split
    from .holdout import holdout_photos
    if args.crop:
        test = Path(args.data).parent / "test"
        return holdout_photos(test if test.exists() else args.data, args.crop, args.val).to(device)
    return image_to_tensor(load_split(args.data, "test", args.val)).to(device)


def _rate_weights(spec: str | None, rates: tuple, device) -> torch.Tensor | None:
    """``--rate-weights`` "1,1,2" -> a tensor of draw weights, one per rate (None: draw uniformly)."""
    if not spec:
        return None
    if not rates:
        raise SystemExit("--rate-weights needs a rate-adaptive codec (--rates)")
    w = torch.tensor([float(v) for v in spec.split(",")], device=device)
    if len(w) != len(rates) or bool((w < 0).any()) or float(w.sum()) <= 0:
        raise SystemExit(f"--rate-weights needs {len(rates)} non-negative weights, one per rate {rates}")
    return w


# --------------------------------------------------------------------------- loop

class _Trainer:
    """One stage's state: model, optimiser, plan, generator, data; ``step()`` does one update."""

    def __init__(self, args, rank: int, world: int):
        self.args, self.rank, self.world = args, rank, world
        self.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.amp = _amp_dtype(args, self.device)
        # refine stages' image loss (--pixel-loss): L1, the paper's, or MSE
        self.pixel_loss = F.mse_loss if getattr(args, "pixel_loss", "l1") == "mse" else F.l1_loss
        self.share = (args.rayleigh_share if args.rayleigh_share is not None
                      else RAYLEIGH_SHARE[args.channel or "mixed"])
        self.data = _batches(args, self.device, rank)
        self.model, self.cfg_dict, self.codec = _build(args.stage, args.preset, args)
        self.model.to(self.device)
        if self.codec is not None:
            self.codec.to(self.device)
        self.rates = tuple(getattr((self.codec or self.model).cfg, "rates", ()) or ())
        self.rate_weights = _rate_weights(getattr(args, "rate_weights", None), self.rates, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.lr = args.lr or _default_lr(args)
        self.opt = torch.optim.Adam(self.params, lr=self.lr)
        self.steps_per_epoch = max(1, len(self.data) // (args.batch * world))
        if args.minutes is not None:
            self.plan = Plan("seconds", args.minutes * 60, warmup=args.warmup or 0.03)
        else:
            total = getattr(args, "steps", None) or max(1, int((args.epochs or 10) * self.steps_per_epoch))
            self.plan = Plan("steps", total, warmup=args.warmup or min(200, total // 10) / total)
        self.gen = torch.Generator(device=self.device).manual_seed(args.seed * 1000 + rank)
        self.step_n, self.seconds = 0, 0.0
        link = _Link(self.model)
        self.net = torch.nn.parallel.DistributedDataParallel(link) if world > 1 else link
        self.fwd = torch.compile(self.net) if args.compile else self.net
        self.refine_fwd = None
        if args.stage.startswith("refine"):
            fn = self.model.stage1 if args.stage == "refine1" else self.model.stage2
            self.refine_fwd = torch.compile(fn) if args.compile else fn

    # -- checkpoint
    def state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "plan": self.plan.to_dict(),
                "gen": self.gen.get_state(), "data": self.data.state_dict(), "step": self.step_n,
                "elapsed": self.seconds, "lr": self.lr, "args": vars(self.args)}

    def load(self, st: dict) -> None:
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        if "plan" in st and not self.args.replan:  # a resume continues the curve it started
            new = self.plan.to_dict()
            self.plan = Plan(**st["plan"])
            if new != st["plan"] and self.rank == 0:
                print(f"keeping the checkpoint's plan {st['plan']} (asked: {new})", flush=True)
        elif "plan" not in st and not self.args.replan:  # checkpoints of the first trainer: step-based cosine
            self.plan = Plan("steps", (st["args"].get("epochs") or 10) * self.steps_per_epoch)
        self.lr = st.get("lr", self.lr)
        self.gen.set_state(st["gen"])
        self.data.load_state_dict(st.get("data", {}))
        self.step_n, self.seconds = st["step"], st.get("elapsed", 0.0)

    # -- one update
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        args = self.args
        b = x.shape[0]
        snr = draw_snr(args.snr_min, args.snr_max, getattr(args, "snr_skew", 1.0), b, self.gen)
        chan = _channel_for_batch(self.gen, self.share, self.args.fading)
        with torch.autocast(self.device.type, dtype=self.amp or torch.bfloat16, enabled=self.amp is not None):
            if args.stage in ("codec", "deepjscc"):
                return F.mse_loss(self.fwd(x, snr, chan, self.gen, self._draw_rate()).float(), x)
            with torch.no_grad():
                s_hat = transmit_train(self.codec, x, snr, chan, self.gen, channels=self._draw_rate()).float()
            if args.stage == "refine1":
                o = self.refine_fwd(x, s_hat)
                return self.pixel_loss(o["x_hat"].float(), x)
            co = args.stage2 == "co"
            o = self.refine_fwd(x, s_hat, generator=self.gen, anchor=args.stage2 in ("anchored", "co"), teacher_grad=co,
                                snr_db=snr)
            z_hat, z0 = o["z_hat"].float(), o["z0"].float()
            loss = self.pixel_loss(o["x_hat"].float(), x) + F.l1_loss(z_hat, z0.detach())
            if co:  # commitment: the teacher may only say what the student side can learn to say
                loss = loss + args.commit * F.l1_loss(z0, z_hat.detach())
            return loss + self.pixel_loss(o["x_teacher"].float(), x) if "x_teacher" in o else loss

    def _draw_rate(self) -> int | None:
        """A rate-adaptive codec trains every rate: one drawn per batch, uniformly or by ``--rate-weights``
        (None: fixed rate)."""
        if not self.rates:
            return None
        if self.rate_weights is not None:
            return self.rates[int(torch.multinomial(self.rate_weights, 1, generator=self.gen))]
        return self.rates[int(torch.randint(len(self.rates), (1,), generator=self.gen, device=self.device))]

    def step(self) -> float:
        self.model.train()
        for g in self.opt.param_groups:
            g["lr"] = self.lr * self.plan.lr_scale(self.plan.progress(self.step_n, self.seconds))
        loss = self.loss(self.data.batch(self.args.batch, self.gen))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world > 1 and self.args.stage.startswith("refine"):
            for p in self.params:  # refine stages call the module directly: average grads by hand
                if p.grad is not None:
                    dist.all_reduce(p.grad)
                    p.grad /= self.world
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.step_n += 1
        return loss.detach()


def _validate(tr: _Trainer, images) -> dict:
    from .holdout import holdout_metrics
    return holdout_metrics(tr.args.stage, tr.model, images, tr.args.channel or "awgn", tr.codec, amp=tr.amp,
                           fading=tr.args.fading)


def run(args) -> Path:
    rank, world = _dist_info()
    if args.threads:
        torch.set_num_threads(args.threads)
    _seed_all(args.seed + rank)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tr = _Trainer(args, rank, world)
    ckpt = out / "ckpt.pt"
    if ckpt.exists():
        tr.load(torch.load(ckpt, map_location=tr.device, weights_only=False))
        if rank == 0:
            print(f"resumed {args.stage} from {ckpt} at step {tr.step_n}/{_plan_str(tr)}", flush=True)
    val_images = _holdout_images(args, tr.device) if rank == 0 else None
    logf = open(out / "log.jsonl", "a") if rank == 0 else None

    def save():
        if rank == 0:
            torch.save(tr.state(), ckpt.with_suffix(".tmp"))
            os.replace(ckpt.with_suffix(".tmp"), ckpt)

    def log(rec: dict):
        logf.write(json.dumps(rec) + "\n")
        logf.flush()

    t_call = time.time()
    t_last, step_last = time.time(), tr.step_n
    run_loss, run_n = torch.zeros((), device=tr.device), 0
    done = tr.plan.finished(tr.step_n, tr.seconds)
    while not done:
        t_step = time.time()
        run_loss += tr.step()
        run_n += 1
        tr.seconds += time.time() - t_step
        n = tr.step_n
        last = tr.plan.finished(n, tr.seconds) or (
            args.max_minutes is not None and (time.time() - t_call) / 60 >= args.max_minutes)
        if rank == 0 and (n % args.log_every == 0 or last):
            loss = float(run_loss) / max(run_n, 1)  # one device sync per log line, not per step
            now = time.time()
            rate = (n - step_last) / max(now - t_last, 1e-9)
            t_last, step_last = now, n
            rec = {"stage": args.stage, "step": n, "epoch": round(n / tr.steps_per_epoch, 3), "loss": loss,
                   "lr": tr.opt.param_groups[0]["lr"], "elapsed_s": round(tr.seconds, 1),
                   "progress": round(tr.plan.progress(n, tr.seconds), 4), "img_per_s": round(rate * args.batch * world, 1),
                   "eta_s": round(tr.plan.remaining_s(n, tr.seconds, rate), 1)}
            if tr.plan.unit == "steps":
                rec["total"] = int(tr.plan.total)
            if args.stage in ("codec", "deepjscc"):
                rec["train_psnr_db"] = round(10 * math.log10(1 / max(loss, 1e-12)), 3)
            if val_images is not None and (n % args.val_every == 0 or last):
                rec.update(_validate(tr, val_images))
            log(rec)
            val = f" val {rec['val_psnr_db']:.2f} dB" if "val_psnr_db" in rec else ""
            val += "".join(f" c{k[10:-3]} {v:.2f}" for k, v in rec.items() if k.startswith("val_psnr_c"))
            print(f"[{args.stage}] step {n} ({100 * rec['progress']:.1f} %) ep {rec['epoch']:.2f} loss {loss:.5f}"
                  f" lr {rec['lr']:.2e} {rec['img_per_s']:.0f} img/s{val} eta {_fmt_eta(rec['eta_s'])}", flush=True)
            run_loss, run_n = torch.zeros((), device=tr.device), 0
        if n % args.ckpt_every == 0:
            save()
        done = last
    save()
    if rank == 0:
        meta = {"stage": args.stage, "steps": tr.step_n, "plan": tr.plan.to_dict(), "batch": args.batch * world,
                "lr": tr.lr, "seed": args.seed, "world_size": world, "train_seconds": round(tr.seconds, 1),
                "device": _device_name(tr.device), "amp": str(tr.amp).replace("torch.", "") if tr.amp else "off",
                "channel": args.channel or "mixed",
                "command": "sccdm train " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["train"] else sys.argv[1:])}
        weights.save_model_dir(tr.model, tr.cfg_dict, out, meta)
        print(f"exported {out / 'model.safetensors'}", flush=True)
    if world > 1:
        dist.barrier()
    return out


def _plan_str(tr: _Trainer) -> str:
    return f"{int(tr.plan.total)}" if tr.plan.unit == "steps" else f"{tr.plan.total:.0f} s"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    run(build_parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
