"""Do candidate refiners for a CIFAR codec hold on photographs? (issues 9 and 10)

    python benchmarks/refiner_photos.py --codec sc-cdm-cpu --refiner sc-cdm-cpu \
        --refiner sc-cdm-cpu-rate --refiner checkpoints/awgn-next3-photomix-refiner \
        --data data/photos/test/kodak --limit 12 --snr 5 10 --threads 2 --out benchmarks/results/refiner_photos

Refiners re-fitted on CIFAR-10 alone have gained a little on CIFAR-10 and lost on photographs (the served CIFAR
model takes a photograph whole, at native scale), so a candidate is checked here before it ships. Each photo is
sent once per SNR through ``--codec``'s encoder, the AWGN channel and its decoder (one channel draw per image,
shared by every refiner), then every ``--refiner`` restores that same decoder output. A refiner is a zoo name (its
``refiner`` part) or an exported run folder. Reported: mean PSNR of the decoder output (NSF) and of each refiner,
and each refiner's gain over NSF. Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402
from sccdm import weights, zoo  # noqa: E402
from sccdm.channels import ChannelConfig  # noqa: E402
from sccdm.data import image_to_tensor, load_photo_folder  # noqa: E402
from sccdm.metrics import psnr  # noqa: E402
from sccdm.pipeline import simulate  # noqa: E402


def load_refiner(spec: str) -> tuple[torch.nn.Module, str]:
    """(refiner in eval mode, sha256 of its weights) for a zoo name or a run folder."""
    if Path(spec).is_dir():
        # a run folder holds one model.safetensors, which checksums() files under "codec" whatever it is
        return weights.load_model_dir(spec).eval(), zoo.checksums(spec)["codec"]
    m = zoo.load(spec)
    if m.refiner is None:
        raise SystemExit(f"{spec} has no refiner")
    return m.refiner.eval(), zoo.checksums(spec)["refiner"]


def measure(codec: torch.nn.Module, refiners: dict, photos: list[np.ndarray], snr: float, seed: int,
            channel: str = "awgn") -> dict:
    """{"nsf": [psnr per photo], name: [...]} at one SNR of an AWGN or Rayleigh block-fading (MMSE) channel."""
    cfg = ChannelConfig(kind=channel, snr_db=float(snr)).validate()  # csi: MMSE (the default)
    out = {"nsf": [], **{n: [] for n in refiners}}
    for i, img in enumerate(photos):
        x = image_to_tensor(img)[None]
        with torch.no_grad():
            sim = simulate(codec, x, cfg, torch.Generator().manual_seed(seed + i), refine=False)
            s = sim["x_hat"].clamp(0, 1)
            out["nsf"].append(float(psnr(s, x)))
            for n, r in refiners.items():
                g = torch.Generator().manual_seed(seed + 1 + i)  # the diffusion's noise, same for every refiner
                out[n].append(float(psnr(r(s, generator=g, snr_db=sim["eff_snr_db"]).clamp(0, 1), x)))
    return out


def markdown(meta: dict, rows: list[dict], names: list[str]) -> str:
    lines = report.head("Refiners on photographs (benchmarks/refiner_photos.py)", meta,
                        f"{meta['n']} photos from {meta['data']}, codec {meta['codec']}, "
                        f"{meta.get('channel', 'awgn').upper()}, seed {meta['seed']}.")
    lines += ["| SNR (dB) | NSF | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for r in rows:
        cells = [f"{r['psnr'][n]:.2f} ({r['psnr'][n] - r['psnr']['nsf']:+.2f})" for n in names]
        lines.append(f"| {r['snr_db']:g} | {r['psnr']['nsf']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "Mean PSNR in dB over the photos (refined minus NSF in brackets). Refiner weights (sha256): "
              + "; ".join(f"`{n}` {meta['sha256'][n][:8]}..." for n in names) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codec", default="sc-cdm-cpu", help="zoo name or run folder whose codec sends the photos")
    ap.add_argument("--refiner", action="append", required=True, help="zoo name or run folder (repeat)")
    ap.add_argument("--data", default="data/photos/test/kodak")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--snr", type=float, nargs="+", default=[5, 10])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"],
                    help="rayleigh: block fading, one h per image, MMSE equalisation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/refiner_photos")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    codec = zoo.load_any(a.codec)  # measure() sends with refine=False: only its codec runs
    loaded = {n: load_refiner(n) for n in a.refiner}
    refiners = {n: r for n, (r, _) in loaded.items()}
    photos = load_photo_folder(a.data, limit=a.limit)
    rows = []
    for k, snr in enumerate(a.snr):
        per = measure(codec, refiners, photos, snr, a.seed, a.channel)
        rows.append({"snr_db": snr, "psnr": {n: float(np.mean(v)) for n, v in per.items()}, "per_photo": per})
        eta = (time.time() - t0) / (k + 1) * (len(a.snr) - k - 1)
        print(f"{snr:g} dB: " + ", ".join(f"{n} {v:.2f}" for n, v in rows[-1]["psnr"].items()) + f"  eta {eta:.0f}s",
              file=sys.stderr, flush=True)
    meta = report.meta("benchmarks/refiner_photos.py", argv, t0, n=len(photos), data=a.data, codec=a.codec,
                       seed=a.seed, channel=a.channel, sha256={n: s for n, (_, s) in loaded.items()})
    report.write(a.out, meta, rows, markdown(meta, rows, list(refiners)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
