"""One model for three CBRs against a model trained for each (issue 10's rate goal; CIFAR or a photo folder)

    python benchmarks/rate_cifar.py --limit 2000 --threads 2 --out benchmarks/results/rate_cifar
    python benchmarks/rate_cifar.py --data data/photos/test/kodak --rate RUN/rate --singles RUN/c{c} \
        --full sc-cdm-paper-photo --photo-rate "" --budget "..." --out benchmarks/results/photos/rate_kodak

`sc-cdm-cpu-rate` sends the first 8, 16 or 32 of its 32 latent channels (CBR 1/48, 1/24, 1/12).
The single-CBR models next to it started from the same weights (the `sc-cdm-cpu` codec of 2026-11-27,
sha256 e35708cd..., since replaced by a longer-trained one) and trained for the same time with the same
recipe, each at its one rate (fp16 copies in checkpoints/rate-cpu/cC; commands in scripts/train_cpu.sh);
``--full`` adds a second reference at 1/12 (the committed result: that start codec itself), and the cost
is taken against the better one. The photo rate model (what
thumbnails got before) is measured on the same thumbnails. Every column uses `sccdm
eval`'s images and channel draws (first ``--limit`` CIFAR-10 test images, seed 0), decoder output (NSF)
unless marked refined. With ``--data`` a folder of photos (Kodak) takes the place of CIFAR-10, and
``--rate`` / ``--full`` may name model folders (e.g. what scripts/gpu_rate_refs.sh brings back) instead
of zoo entries. Writes JSON + Markdown with command, machine and date.
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


def single_folders(spec: str) -> dict[int, str]:
    """"DIR/c{c}" (one folder per rate) or three comma-separated folders, 1/48 first -> {channels: folder}."""
    parts = spec.split(",")
    if len(parts) == 1:
        return {c: spec.format(c=c) for c in RATES}
    if len(parts) != len(RATES):
        raise SystemExit(f"--singles: one folder pattern or {len(RATES)} folders, got {len(parts)}")
    return dict(zip(RATES, parts))


def single_rate_models(spec: str) -> dict[int, SCCDM]:
    """channels -> the loaded single-CBR model."""
    return {c: zoo.load_any(REPO / d, name=f"single-c{c}")
            for c, d in single_folders(spec).items()}


def folder_model(spec: str) -> SCCDM | None:
    """A model folder (model.safetensors + config.json) as a codec-only model named by its path; None for a
    zoo name."""
    p = REPO / spec
    return zoo.load_any(p, name=spec) if spec and p.is_dir() else None


def _psnr(x, snr, cbr, scheme, name, cache) -> float:
    return evaluate([scheme], x, "awgn", (snr,), models=cache, names={"sc-cdm": name}, progress=False,
                    cbr=cbr)[0]["psnr_db"]


def run(x, snrs, rate: str, singles: dict, full: str, photo_rate: str) -> list[dict]:
    """x: CIFAR tensor [N, 3, H, W] or a list of photos [3, H, W]; photo_rate "" leaves that column out."""
    cache = {m.name: m for m in [*singles.values(), folder_model(rate), folder_model(full)] if m is not None}
    refined = rate not in cache or cache[rate].refiner is not None
    rows = []
    for snr in snrs:
        for c, cbr in RATES.items():
            row = {"snr_db": snr, "channels": c, "cbr": cbr,
                   "rate": _psnr(x, snr, cbr, "nsf", rate, cache),
                   "rate_refined": _psnr(x, snr, cbr, "sc-cdm", rate, cache) if refined else None,
                   "single": _psnr(x, snr, cbr, "nsf", singles[c].name, cache),
                   "photo_rate": _psnr(x, snr, cbr, "nsf", photo_rate, cache) if photo_rate else None,
                   "models": {"rate": rate, "single": singles[c].name, "photo_rate": photo_rate}}
            if full and c == max(RATES):
                row["full"] = _psnr(x, snr, None, "nsf", full, cache)
                row["models"]["full"] = full
            row["best_single"] = max(row["single"], row.get("full", row["single"]))
            ref = f"single {row['single']:.2f}" + (f", {full} {row['full']:.2f}" if "full" in row else "")
            print(f"{snr:g} dB, 1/{round(1 / cbr)}: rate {row['rate']:.2f} (refined {_f(row['rate_refined'])}), "
                  f"{ref}, photo rate {_f(row['photo_rate'])}", flush=True)
            rows.append(row)
    return rows


def _f(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(meta: dict, rows: list[dict]) -> str:
    where = meta.get("data") or "CIFAR-10"
    lines = report.head(f"One model for three CBRs vs one model per CBR, {where} (benchmarks/rate_cifar.py)", meta,
                        f"first {meta['limit']} {where} test images, AWGN, `sccdm eval`'s draws.")
    full = next((r["models"]["full"] for r in rows if "full" in r), "")
    photo = any(r.get("photo_rate") is not None for r in rows)
    cols = ["SNR (dB)", "CBR", f"one model (`{rows[0]['models']['rate']}`)", "refined",
            "model for this CBR"] + ([f"`{full}`"] if full else []) + ["one model minus the better"] \
        + ([f"`{rows[0]['models']['photo_rate']}`" + ("" if meta.get("data") else " on thumbnails")]
           if photo else [])
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r['snr_db']:g}", f"1/{round(1 / r['cbr'])}", f"{r['rate']:.2f}", _f(r["rate_refined"]),
                 f"{r['single']:.2f}"] + ([_f(r.get("full"))] if full else []) \
            + [f"{r['rate'] - r['best_single']:+.2f}"] + ([_f(r["photo_rate"])] if photo else [])
        lines.append("| " + " | ".join(cells) + " |")
    worst = min(r["rate"] - r["best_single"] for r in rows)
    lines += ["", f"PSNR in dB, decoder output unless refined (with the one model's refiner). Budgets: "
              f"{meta['budget']}. Largest cost of serving three CBRs from one model: {-worst:.2f} dB. "
              f"Photo rate model: `{rows[0]['models']['photo_rate'] or '-'}`."]
    return "\n".join(lines) + "\n"


def _codec_sha256(spec: str) -> str:
    if (REPO / spec).is_dir():
        return weights.sha256_file(REPO / spec / "model.safetensors")
    return zoo.entry(spec)["parts"]["codec"]["sha256"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snrs", nargs="+", type=float, default=[0, 5, 10, 15])
    ap.add_argument("--data", default=None, help="image folder (e.g. Kodak; default: the CIFAR-10 test set)")
    ap.add_argument("--rate", default="sc-cdm-cpu-rate", help="zoo name or model folder")
    ap.add_argument("--singles", default="checkpoints/rate-cpu/c{c}",
                    help="folder of each single-CBR model ({c}: latent channels sent), or three folders, "
                         "comma-separated, 1/48 first")
    ap.add_argument("--full", default="",
                    help="a second reference at the full rate (1/12): zoo name or model folder (the committed "
                         "result used the sc-cdm-cpu of 2026-11-27, codec sha256 e35708cd..., since replaced)")
    ap.add_argument("--photo-rate", default="sc-cdm-paper-photo-rate", help='"" leaves this column out')
    ap.add_argument("--budget", default="`sc-cdm-cpu`'s codec trained 25 more CPU minutes at that one CBR "
                                        "(checkpoints/rate-cpu/cC), as the one model was at three",
                    help="how the models were given the same budget (for the report)")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/rate_cifar")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    x = data.load_eval_images(args.data, limit=args.limit)
    rows = run(x, args.snrs, args.rate, single_rate_models(args.singles), args.full, args.photo_rate)
    m = report.meta("benchmarks/rate_cifar.py", argv, t0, limit=args.limit, data=args.data, budget=args.budget,
                    codec_sha256={n: _codec_sha256(n) for n in (args.rate, args.full, args.photo_rate) if n},
                    single_sha256={c: weights.sha256_file(REPO / d / "model.safetensors")
                                   for c, d in single_folders(args.singles).items()})
    report.write(args.out, m, rows, markdown(m, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
