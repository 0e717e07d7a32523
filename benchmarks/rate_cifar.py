"""One CIFAR model for three CBRs against a model trained for each (issue 10's rate goal, thumbnails)

    python benchmarks/rate_cifar.py --limit 2000 --threads 2 --out benchmarks/results/rate_cifar

`sc-cdm-cpu-rate` sends the first 8, 16 or 32 of its 32 latent channels (CBR 1/48, 1/24, 1/12).
The single-CBR models next to it started from the same weights (`sc-cdm-cpu`'s codec) and trained for
the same time with the same recipe, each at its one rate (fp16 copies in checkpoints/rate-cpu/cC;
commands in scripts/train_cpu.sh); at 1/12 `sc-cdm-cpu` itself (75 min more of fixed-rate training) is
a second reference, and the cost is taken against the better one. The photo rate model (what
thumbnails got before) is measured on the same thumbnails. Every column uses `sccdm
eval`'s images and channel draws (first ``--limit`` CIFAR-10 test images, seed 0), decoder output (NSF)
unless marked refined. Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import report  # noqa: E402
from sccdm import data, weights, zoo  # noqa: E402
from sccdm.evaluate import evaluate  # noqa: E402
from sccdm.pipeline import SCCDM  # noqa: E402

RATES = {8: 1 / 48, 16: 1 / 24, 32: 1 / 12}


def single_rate_models(folder_fmt: str) -> dict[int, SCCDM]:
    """channels -> the loaded single-CBR model."""
    return {c: SCCDM(weights.load_model_dir(REPO / folder_fmt.format(c=c)), None, name=f"single-c{c}").eval()
            for c in RATES}


def _psnr(x, snr, cbr, scheme, name, cache) -> float:
    return evaluate([scheme], x, "awgn", (snr,), models=cache, names={"sc-cdm": name}, progress=False,
                    cbr=cbr)[0]["psnr_db"]


def run(x: torch.Tensor, snrs, rate: str, singles: dict, full: str, photo_rate: str) -> list[dict]:
    cache = {m.name: m for m in singles.values()}
    rows = []
    for snr in snrs:
        for c, cbr in RATES.items():
            row = {"snr_db": snr, "channels": c, "cbr": cbr,
                   "rate": _psnr(x, snr, cbr, "nsf", rate, cache),
                   "rate_refined": _psnr(x, snr, cbr, "sc-cdm", rate, cache),
                   "single": _psnr(x, snr, cbr, "nsf", singles[c].name, cache),
                   "photo_rate": _psnr(x, snr, cbr, "nsf", photo_rate, cache),
                   "models": {"rate": rate, "single": singles[c].name, "photo_rate": photo_rate}}
            if c == max(RATES):
                row["full"] = _psnr(x, snr, None, "nsf", full, cache)
                row["models"]["full"] = full
            row["best_single"] = max(row["single"], row.get("full", row["single"]))
            ref = f"single {row['single']:.2f}" + (f", {full} {row['full']:.2f}" if "full" in row else "")
            print(f"{snr:g} dB, 1/{round(1 / cbr)}: rate {row['rate']:.2f} (refined {row['rate_refined']:.2f}), "
                  f"{ref}, photo rate {row['photo_rate']:.2f}", flush=True)
            rows.append(row)
    return rows


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = report.head("One model for three CBRs vs one model per CBR, CIFAR-10 (benchmarks/rate_cifar.py)", meta,
                        f"first {meta['limit']} CIFAR-10 test images, AWGN, `sccdm eval`'s draws.")
    full = next(r["models"]["full"] for r in rows if "full" in r)
    lines += ["| SNR (dB) | CBR | one model (`%s`) | refined | model for this CBR, same budget | `%s` | "
              "one model minus the better | photo rate model on thumbnails |" % (rows[0]["models"]["rate"], full),
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = f"{r['full']:.2f}" if "full" in r else "-"
        lines.append(f"| {r['snr_db']:g} | 1/{round(1 / r['cbr'])} | {r['rate']:.2f} | {r['rate_refined']:.2f} | "
                     f"{r['single']:.2f} | {f} | {r['rate'] - r['best_single']:+.2f} | {r['photo_rate']:.2f} |")
    worst = min(r["rate"] - r["best_single"] for r in rows)
    lines += ["", f"PSNR in dB, decoder output unless refined (with `{full}`'s refiner). Same budget: "
              f"`{full}`'s codec trained 25 more CPU minutes at that one CBR (checkpoints/rate-cpu/cC), as the one "
              f"model was at three. Largest cost of serving three CBRs from one model: {-worst:.2f} dB. "
              f"Photo rate model: `{rows[0]['models']['photo_rate']}`."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snrs", nargs="+", type=float, default=[0, 5, 10, 15])
    ap.add_argument("--rate", default="sc-cdm-cpu-rate")
    ap.add_argument("--singles", default="checkpoints/rate-cpu/c{c}",
                    help="folder of each single-CBR model ({c}: latent channels sent)")
    ap.add_argument("--full", default="sc-cdm-cpu", help="a second reference at the full rate (1/12)")
    ap.add_argument("--photo-rate", default="sc-cdm-paper-photo-rate")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/rate_cifar")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    x = data.load_eval_images(None, limit=args.limit)
    rows = run(x, args.snrs, args.rate, single_rate_models(args.singles), args.full, args.photo_rate)
    m = report.meta("benchmarks/rate_cifar.py", argv, t0, limit=args.limit,
                    codec_sha256={n: zoo.entry(n)["parts"]["codec"]["sha256"] for n in (args.rate, args.full, args.photo_rate)},
                    single_sha256={c: weights.sha256_file(REPO / args.singles.format(c=c) / "model.safetensors")
                                   for c in RATES})
    report.write(args.out, m, rows, markdown(m, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
