"""``sccdm train recipe``: every model of a zoo entry on one time budget, then exported.

    sccdm train recipe --preset paper --minutes 7 --out runs/paper --channel awgn

Runs the stages in order (Swin codec, refiner stage 1, refiner stage 2, the DeepJSCC
baseline), each on its share of ``--minutes`` of training time with a time-based
warm-up + cosine plan (:mod:`sccdm.schedule`), so the same command fills a GPU call
or a CPU night without knowing the throughput in advance. Each stage lives in
``OUT/<stage>/`` and resumes from its checkpoint; a finished stage is not run again.
At the end the weights are written as zoo entries (fp16 safetensors + configs +
``registry.json``) under ``OUT/zoo/``; ``python -m sccdm.zoo.publish --merge OUT/zoo``
adds them to the package zoo.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RECIPES", "StageRecipe", "main"]


@dataclass(frozen=True)
class StageRecipe:
    preset: str
    batch: int
    lr: float
    share: float


# Shares sum to 1. The codec gets the most: every later stage is bounded by its output.
RECIPES = {
    "paper": {
        "codec": StageRecipe("paper", 256, 4e-4, 0.46),
        "refine1": StageRecipe("paper-s", 128, 4e-4, 0.22),
        "refine2": StageRecipe("paper-s", 128, 2e-4, 0.14),
        "deepjscc": StageRecipe("paper", 256, 1e-3, 0.18),
    },
    "cpu": {
        "codec": StageRecipe("cpu", 64, 5e-4, 0.45),
        "refine1": StageRecipe("cpu", 32, 5e-4, 0.2),
        "refine2": StageRecipe("cpu", 32, 5e-4, 0.15),
        "deepjscc": StageRecipe("cpu", 64, 5e-4, 0.2),
    },
}
ORDER = ("codec", "refine1", "refine2", "deepjscc")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sccdm train recipe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(RECIPES), default="cpu")
    p.add_argument("--minutes", type=float, required=True, help="training time for all stages together")
    p.add_argument("--out", required=True)
    p.add_argument("--data", default=None)
    p.add_argument("--channel", choices=["awgn", "rayleigh", "mixed"], default="awgn",
                   help="the channel every stage trains on (one model per channel)")
    p.add_argument("--stages", default=",".join(ORDER),
                   help="comma list, a subset of " + ",".join(ORDER) + "; the budget is shared among them")
    p.add_argument("--codec-run", default=None,
                   help="an exported codec run (model.safetensors + config.json) for refine stages run without codec")
    p.add_argument("--limit", type=int, default=None, help="first N training images only (tests)")
    p.add_argument("--val", type=int, default=1000, help="held-out test images for validation")
    p.add_argument("--val-every", type=int, default=1000)
    p.add_argument("--batch-scale", type=float, default=1.0, help="multiply every stage's batch")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="zoo entry name (default sc-cdm-PRESET-CHANNEL)")
    p.add_argument("--crop", type=int, default=None,
                   help="train on random CROPxCROP crops of the photos under --data (a photo model)")
    p.add_argument("--init-from", default=None, metavar="ZOO_ENTRY",
                   help="fine-tune: start the codec and refiner stages from this zoo entry's weights")
    p.add_argument("--init-deepjscc", default=None, metavar="ZOO_ENTRY",
                   help="fine-tune: start the DeepJSCC stage from this zoo entry's codec")
    return p


def _materialise(entry: str, part: str, dest: Path) -> Path:
    """A zoo entry's part as a run folder (model.safetensors + config.json) that ``--init`` reads."""
    from . import zoo
    from .weights import save_model_dir

    spec = zoo.entry(entry)["parts"][part]
    cfg = json.loads((zoo.WEIGHTS_DIR / entry / spec["config"]).read_text())
    model = zoo._part(entry, part, spec, True, "cpu")  # checks the sha256 on the way
    cfg = {k: v for k, v in cfg.items() if k not in ("sha256", "training")}
    save_model_dir(model, cfg, dest, training={"init_from": f"{entry}:{part}"})
    return dest


def _stage_argv(a, stage: str, rec: StageRecipe, out: Path, minutes: float) -> list[str]:
    argv = [stage, "--preset", rec.preset, "--out", str(out / stage), "--minutes", f"{minutes:.4f}",
            "--batch", str(max(2, int(rec.batch * a.batch_scale))), "--lr", str(rec.lr), "--channel", a.channel,
            "--seed", str(a.seed), "--log-every", "50", "--ckpt-every", "500", "--val", str(a.val),
            "--val-every", str(a.val_every)]
    for flag, val in (("--data", a.data), ("--limit", a.limit), ("--threads", a.threads)):
        if val is not None:
            argv += [flag, str(val)]
    if a.compile:
        argv.append("--compile")
    if a.crop:
        argv += ["--crop", str(a.crop)]
    init = {"codec": a.init_from and (out / "init" / "codec"), "refine1": a.init_from and (out / "init" / "refiner"),
            "deepjscc": a.init_deepjscc and (out / "init" / "deepjscc")}.get(stage)
    if init:
        argv += ["--init", str(init)]
    if stage.startswith("refine"):
        argv += ["--codec", str(a.codec_run or out / "codec")]
    if stage == "refine2":
        argv += ["--init", str(out / "refine1")]
    return argv


def main(argv=None) -> int:
    from . import train
    from .zoo.publish import publish

    a = build_parser().parse_args(argv)
    stages = [s for s in a.stages.split(",") if s]
    bad = [s for s in stages if s not in ORDER]
    if bad:
        raise SystemExit(f"unknown stage(s) {bad}; choose from {ORDER}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = RECIPES[a.preset]
    if any(s.startswith("refine") for s in stages) and "codec" not in stages and not a.codec_run:
        raise SystemExit("refine stages without the codec stage need --codec-run DIR")
    share_sum = sum(recipe[s].share for s in stages)
    minutes = {s: a.minutes * recipe[s].share / share_sum for s in stages}
    if a.init_from:
        _materialise(a.init_from, "codec", out / "init" / "codec")
        if "refine1" in stages:
            _materialise(a.init_from, "refiner", out / "init" / "refiner")
    if a.init_deepjscc and "deepjscc" in stages:
        _materialise(a.init_deepjscc, "codec", out / "init" / "deepjscc")
    t0 = time.time()
    record = {"preset": a.preset, "minutes": a.minutes, "channel": a.channel, "stages": {},
              "command": "sccdm train recipe " + " ".join(sys.argv[3:] if argv is None else argv)}
    for stage in stages:
        sargv = _stage_argv(a, stage, recipe[stage], out, minutes[stage])
        print(f"=== recipe {a.preset}: {stage} for {minutes[stage]:.2f} min "
              f"(total elapsed {time.time() - t0:.0f} s)", flush=True)
        ts = time.time()
        train.run(train.build_parser().parse_args(sargv))
        record["stages"][stage] = {"argv": sargv, "wall_s": round(time.time() - ts, 1)}
    record["wall_s"] = round(time.time() - t0, 1)
    name = a.name or f"sc-cdm-{a.preset}-{a.channel}"
    zoo = out / "zoo"
    entries = {}
    if "codec" in stages or a.codec_run:
        parts = {"codec": Path(a.codec_run) if a.codec_run else out / "codec"}
        if "refine2" in stages:
            parts["refiner"] = out / "refine2"
        entries[name] = parts
    if "deepjscc" in stages:
        dname = "deepjscc-" + name.removeprefix("sc-cdm-") if a.name else f"deepjscc-{a.preset}-{a.channel}"
        entries[dname] = {"codec": out / "deepjscc"}
    for entry, parts in entries.items():
        desc = (f"recipe {a.preset} ({a.minutes:g} min, {a.channel}): "
                + ", ".join(f"{p} {json.loads((d / 'config.json').read_text())['preset']}" for p, d in parts.items()))
        publish(entry, parts, desc, weights_dir=zoo, registry=zoo / "registry.json", fp16=True)
    (out / "recipe.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"recipe done in {record['wall_s']:.0f} s; zoo entries {sorted(entries)} under {zoo}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
