"""Held-out curves of training runs (their log.jsonl): PSNR on test images vs images seen, and the
convergence rule of the baseline.

    python benchmarks/training_curves.py --run codec-paper=runs/gpu/codec --run deepjscc-paper=runs/gpu/deepjscc \
        [--run NAME=RUN_DIR ...] [--out benchmarks/results/training]

For every run: the held-out PSNR (``val_psnr_db``: mean over SNR 1 / 7 / 13 dB, the run's channel,
the first N test images; :mod:`sccdm.holdout`) against training images seen, and for refiner
runs the refinement gain and the prior-swap cost. ``last_fifth_gain_db`` is how much the
held-out PSNR rose over the last fifth of the run's images: the baseline counts as converged
when that is below 0.05 dB. Writes training.png, training.json and training.md.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CONVERGED_DB = 0.05


def load(run: Path) -> list[dict]:
    recs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    by_step = {}
    for r in recs:  # a resumed run may log a step twice: keep the last
        by_step[r["step"]] = r
    return [by_step[s] for s in sorted(by_step)]


def curve(run: Path) -> dict:
    recs = load(run)
    cfg = json.loads((run / "config.json").read_text()) if (run / "config.json").exists() else {}
    tr = cfg.get("training", {})
    batch = tr.get("batch", 64)
    val = [r for r in recs if "val_psnr_db" in r]
    pts = [{"step": r["step"], "images": r["step"] * batch, "val_psnr_db": r["val_psnr_db"],
            **{k: r[k] for k in ("refine_gain_db", "prior_swap_db", "val_nsf_db") if k in r},
            "elapsed_s": r["elapsed_s"]} for r in val]
    out = {"batch": batch, "points": pts, "device": tr.get("device", ""), "channel": tr.get("channel", ""),
           "train_seconds": tr.get("train_seconds"), "steps": recs[-1]["step"] if recs else 0,
           "preset": cfg.get("preset", "")}
    if pts:
        end = pts[-1]["images"]
        before = [q for q in pts if q["images"] <= 0.8 * end]
        if before:
            out["last_fifth_gain_db"] = round(pts[-1]["val_psnr_db"] - before[-1]["val_psnr_db"], 4)
            out["converged"] = out["last_fifth_gain_db"] < CONVERGED_DB
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (repeatable)")
    p.add_argument("--out", default="benchmarks/results/training")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    curves = {name: curve(Path(d)) for name, d in (s.split("=", 1) for s in a.run)}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, c in curves.items():
        xs = [q["images"] / 1e6 for q in c["points"]]
        if "refine" in name:
            axes[1].plot(xs, [q.get("refine_gain_db", 0) for q in c["points"]], label=f"{name}: gain over NSF")
            axes[1].plot(xs, [q.get("prior_swap_db", 0) for q in c["points"]], "--", label=f"{name}: prior-swap cost")
        else:
            axes[0].plot(xs, [q["val_psnr_db"] for q in c["points"]], label=name)
    titles = ["codecs: held-out PSNR (mean of 1/7/13 dB)", "refiners (held-out)"]
    for ax, t in zip(axes, titles):
        ax.set_xlabel("training images seen (millions)")
        ax.set_ylabel("dB")
        ax.set_title(t, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    meta = {"command": "python benchmarks/training_curves.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.node()}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "curves": curves}, indent=1) + "\n")
    lines = ["# Training curves (held-out)", "", f"`{meta['command']}`  ", f"{meta['date']}", "",
             "| run | device | channel | steps x batch | images | train time (s) | final held-out PSNR | "
             "gain over last fifth | refine gain / prior-swap cost |", "|---|---|---|---|---|---|---|---|---|"]
    for name, c in curves.items():
        q = c["points"][-1] if c["points"] else {}
        conv = (f"{c['last_fifth_gain_db']:+.3f} dB ({'converged' if c['converged'] else 'still rising'})"
                if "last_fifth_gain_db" in c else "-")
        ref = (f"{q['refine_gain_db']:+.3f} / {q['prior_swap_db']:.3f} dB" if "refine_gain_db" in q else "-")
        lines.append(f"| {name} | {c['device']} | {c['channel']} | {c['steps']} x {c['batch']} | "
                     f"{q.get('images', 0):,} | {c['train_seconds']} | {q.get('val_psnr_db', float('nan')):.3f} dB | "
                     f"{conv} | {ref} |")
    lines += ["", f"Converged = held-out PSNR rose less than {CONVERGED_DB} dB over the last fifth of the run "
              "(the rule of issue 9 for the baseline). Held-out: the first N CIFAR-10 test images (JPEG copy), "
              "SNR 1, 7 and 13 dB, fixed channel draws.", "", f"![training curves]({out.with_suffix('.png').name})", ""]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
