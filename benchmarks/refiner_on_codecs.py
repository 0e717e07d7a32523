"""One refiner on several candidate codecs: held-out decoder output (NSF), refined PSNR and the gain.

What decides whether a new codec can be shipped with the refiner it has: the refiner was trained on an earlier
codec's outputs, and a better codec leaves less to restore. Measured with the training loop's own validation
(``sccdm.holdout``: the first N CIFAR-10 test images at 1 / 7 / 13 dB, fixed channel draws), so the numbers are
comparable with the training logs. Writes JSON + Markdown with command, machine and date.

    python benchmarks/refiner_on_codecs.py --refiner sc-cdm-cpu --codec runs/s37/grow-deep --codec sc-cdm-cpu \
        --limit 500 --threads 1 --out benchmarks/results/core/codec_growth/refiner-awgn
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402
from refiner_photos import load_refiner  # noqa: E402
from sccdm import zoo  # noqa: E402
from sccdm.data import load_eval_images  # noqa: E402
from sccdm.holdout import HOLDOUT_SNRS, holdout_metrics  # noqa: E402


def markdown(meta: dict, rows: list[dict]) -> str:
    snrs = " / ".join(f"{s:g}" for s in meta["snrs_db"])
    lines = report.head("One refiner on candidate codecs (benchmarks/refiner_on_codecs.py)", meta,
                        f"refiner `{meta['refiner']}` ({meta['refiner_sha256'][:8]}...), first {meta['n']} "
                        f"CIFAR-10 test images, {meta['channel'].upper()} {snrs} dB (mean), held-out draws.")
    lines += ["| codec | sha256 | NSF | refined | gain | prior swap cost |", "|---|---|---|---|---|---|"]
    lines += [f"| `{r['codec']}` | {r['sha256'][:8]}... | {r['nsf_db']:.3f} | {r['refined_db']:.3f} | "
              f"{r['gain_db']:+.3f} | {r['prior_swap_db']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--refiner", default="sc-cdm-cpu", help="zoo name or run folder")
    ap.add_argument("--codec", action="append", required=True, help="zoo name or run folder (repeat)")
    ap.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"], help="rayleigh: block fading")
    ap.add_argument("--limit", type=int, default=500)
    ap.add_argument("--data", default="data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/refiner_on_codecs")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    refiner, ref_sha = load_refiner(a.refiner)
    refiner = refiner.float()
    images = load_eval_images(a.data, limit=a.limit)
    rows = []
    for k, spec in enumerate(a.codec):
        codec = zoo.load_any(spec).codec.float().eval()
        m = holdout_metrics("refine2", refiner, images, a.channel, codec)
        rows.append({"codec": spec, "sha256": zoo.checksums(spec)["codec"], "nsf_db": m["val_nsf_db"],
                     "refined_db": m["val_psnr_db"], "gain_db": m["val_psnr_db"] - m["val_nsf_db"],
                     "prior_swap_db": m["prior_swap_db"]})
        eta = (time.time() - t0) / (k + 1) * (len(a.codec) - k - 1)
        print(f"{spec}: NSF {m['val_nsf_db']:.3f}, refined {m['val_psnr_db']:.3f}  eta {eta:.0f}s",
              file=sys.stderr, flush=True)
    meta = report.meta("benchmarks/refiner_on_codecs.py", argv, t0, n=len(images), channel=a.channel,
                       snrs_db=list(HOLDOUT_SNRS), refiner=a.refiner, refiner_sha256=ref_sha)
    report.write(a.out, meta, rows, markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
