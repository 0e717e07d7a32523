"""Training throughput per stage: the first trainer's data path against the current one, same machine, same run.

    python benchmarks/training_speed.py --preset cpu --seconds 20 --out benchmarks/results/training_speed
    python benchmarks/training_speed.py --preset paper --seconds 15 --out $OUT/speed      # on a GPU

"before": a DataLoader over per-image Python augmentation (flip + crop of one image at
a time, ``num_workers=0``), fp32 - what ``sccdm train`` did first. "after": the data
set on the device as uint8, flips and crops a batch at a time (:mod:`sccdm.batches`),
bf16 autocast on CUDA. Both run the same :class:`sccdm.train._Trainer` step (model,
channel, loss, optimiser), so the ratio is the data path's and precision's alone.
Each stage warms up for a few steps, then counts images over ``--seconds``.
Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sccdm import train  # noqa: E402
from sccdm.data import ImageArrayDataset, load_split  # noqa: E402
from sccdm.recipe import RECIPES  # noqa: E402

STAGES = ("codec", "refine1", "refine2", "deepjscc")


class LoaderBatches:
    """The first trainer's data path behind the ``batch(b, gen)`` interface."""

    def __init__(self, images, batch: int, device):
        self.ds = ImageArrayDataset(images, augment=True)
        self.loader = torch.utils.data.DataLoader(self.ds, batch_size=batch, shuffle=True, drop_last=True,
                                                  num_workers=0)
        self.it = iter(self.loader)
        self.device = device

    def __len__(self):
        return len(self.ds)

    def batch(self, b, gen):
        try:
            x = next(self.it)
        except StopIteration:
            self.it = iter(self.loader)
            x = next(self.it)
        return x.to(self.device, non_blocking=True)

    def state_dict(self):
        return {}

    def load_state_dict(self, st):
        pass


def _export_stubs(preset: str, tmp: Path) -> None:
    """Refine stages start from an exported codec (and refine1): random weights time the same."""
    from sccdm import weights
    from sccdm.models.refine import REFINER_PRESETS, Refiner
    from sccdm.models.swin import SWIN_PRESETS, SwinJSCC
    cp, rp = RECIPES[preset]["codec"].preset, RECIPES[preset]["refine1"].preset
    weights.save_model_dir(SwinJSCC(SWIN_PRESETS[cp]), {"kind": "swin", "preset": cp, **SWIN_PRESETS[cp].to_dict()},
                           tmp / "codec-stub")
    weights.save_model_dir(Refiner(REFINER_PRESETS[rp]),
                           {"kind": "refiner", "preset": rp, **REFINER_PRESETS[rp].to_dict()}, tmp / "refine1-stub")


def _measure(args, stage: str, mode: str, images, tmp: Path) -> dict:
    rec = RECIPES[args.preset][stage]
    argv = [stage, "--preset", rec.preset, "--out", str(tmp / f"{stage}-{mode}"), "--minutes", "60",
            "--batch", str(rec.batch), "--data", args.data, "--channel", "awgn",
            "--amp", "auto" if mode == "after" else "off"]
    if stage.startswith("refine"):
        argv += ["--codec", str(tmp / "codec-stub")]
    if stage == "refine2":
        argv += ["--init", str(tmp / "refine1-stub")]
    a = train.build_parser().parse_args(argv)
    if args.limit:
        a.limit = args.limit
    tr = train._Trainer(a, 0, 1)
    if mode == "before":
        tr.data = LoaderBatches(images, rec.batch, tr.device)
    sync = torch.cuda.synchronize if tr.device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        tr.step()
    sync()
    t0, n = time.time(), 0
    while time.time() - t0 < args.seconds:
        tr.step()
        n += 1
    sync()
    dt = time.time() - t0
    return {"stage": stage, "mode": mode, "steps": n, "batch": rec.batch, "seconds": round(dt, 2),
            "img_per_s": round(n * rec.batch / dt, 1), "device": train._device_name(tr.device),
            "amp": str(tr.amp).replace("torch.", "") if tr.amp else "off"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(RECIPES), default="cpu")
    p.add_argument("--data", default="data")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="benchmarks/results/training_speed")
    p.add_argument("--from-log", default=None,
                   help="write the tables from the JSON rows this script printed elsewhere (a GPU call's log)")
    p.add_argument("--note", default="", help="a line for the Markdown (e.g. where the log came from)")
    a = p.parse_args(argv)
    if a.from_log:
        rows = [json.loads(line) for line in Path(a.from_log).read_text().splitlines() if line.startswith("{")]
        return _write(a, argv, rows)
    if a.threads:
        torch.set_num_threads(a.threads)
    import tempfile
    tmp = Path(tempfile.mkdtemp(prefix="sccdm-speed-"))
    _export_stubs(a.preset, tmp)
    images = load_split(a.data, "train", a.limit)
    rows = []
    for stage in [s for s in a.stages.split(",") if s]:
        for mode in ("before", "after"):
            r = _measure(a, stage, mode, images, tmp)
            rows.append(r)
            print(json.dumps(r), flush=True)
    return _write(a, argv, rows)


def _write(a, argv, rows: list[dict]) -> int:
    meta = {"command": "python benchmarks/training_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                       f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
            "device": rows[0]["device"] if rows else "", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "preset": a.preset}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [f"# Training throughput, preset `{a.preset}`", "", f"Command: `{meta['command']}`  ",
             f"Machine: {meta['machine']}; device: {meta['device']}; date: {meta['date']}", "",
             "| stage | before img/s | after img/s | speed-up | batch | precision after |", "|---|---|---|---|---|---|"]
    if a.note:
        lines[4:4] = [a.note, ""]
    by = {(r["stage"], r["mode"]): r for r in rows}
    for stage in dict.fromkeys(r["stage"] for r in rows):
        if (stage, "before") not in by or (stage, "after") not in by:
            continue
        b, f = by[(stage, "before")], by[(stage, "after")]
        lines.append(f"| {stage} | {b['img_per_s']:.0f} | {f['img_per_s']:.0f} | "
                     f"{f['img_per_s'] / max(b['img_per_s'], 1e-9):.2f}x | {f['batch']} | {f['amp']} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
