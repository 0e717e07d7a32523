"""Plot the training logs (runs/*/log.jsonl) of the shipped weights: loss and train PSNR vs images seen.

python benchmarks/training_curves.py [--runs runs] [--out benchmarks/results/training]
Writes training.png, training.json (the curves, downsampled) and training.md.
"""
from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RUNS = {"codec-cpu": "Swin JSCC codec (MSE)", "deepjscc-cpu": "DeepJSCC (MSE)",
        "refine1-cpu": "refiner stage 1 (L1)", "refine2-cpu": "refiner stage 2 (L1 img + L1 prior)"}


def load(run: Path) -> list[dict]:
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    by_step = {}
    for r in recs:  # a resumed run may log a step twice: keep the last
        by_step[r["step"]] = r
    return [by_step[s] for s in sorted(by_step)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="benchmarks/results/training")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves = {}
    for name, label in RUNS.items():
        f = Path(a.runs) / name / "log.jsonl"
        if f.exists():
            recs = load(f.parent)
            batch = json.loads((f.parent / "config.json").read_text())["training"]["batch"] if (f.parent / "config.json").exists() else 64
            keep = recs[:: max(1, len(recs) // 200)] + recs[-1:]
            curves[name] = {"label": label, "batch": batch,
                            "points": [{"step": r["step"], "images": r["step"] * batch, "loss": r["loss"],
                                        "elapsed_s": r["elapsed_s"]} for r in keep]}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, c in curves.items():
        ax = axes[0] if name in ("codec-cpu", "deepjscc-cpu") else axes[1]
        ax.plot([q["images"] / 1e3 for q in c["points"]], [q["loss"] for q in c["points"]], label=c["label"])
    for ax, t in zip(axes, ["JSCC codecs: MSE over SNR 1-13 dB, AWGN + Rayleigh", "refiner: L1"]):
        ax.set_xlabel("training images seen (thousands)")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.set_title(t, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    meta = {"command": "python benchmarks/training_curves.py " + " ".join(argv or []),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node()}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "curves": curves}, indent=1) + "\n")
    lines = [f"# Training curves of the shipped cpu weights\n", f"`{meta['command']}` - {meta['date']}\n",
             "| run | steps | images seen | final loss | wall time (s) |", "|---|---|---|---|---|"]
    for name, c in curves.items():
        q = c["points"][-1]
        lines.append(f"| {c['label']} | {q['step']} | {q['images']} | {q['loss']:.5f} | {q['elapsed_s']:.0f} |")
    lines.append(f"\n![training curves]({out.with_suffix('.png').name})\n")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
