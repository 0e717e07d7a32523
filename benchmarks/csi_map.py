"""What the per-symbol CSI map is worth: codecs with and without it, and a map codec told only the mean SNR.

    python benchmarks/csi_map.py --models sc-cdm-cpu-rayleigh-fast checkpoints/fast-control \\
        --n 1000 --threads 1 --out benchmarks/results/csi_map

Every model sees the same CIFAR-10 test images and the same channel draws (fading, erasures, noise) per
condition and SNR. For a codec that reads the map (``csi_map``), a second column decodes the same received
symbols with the map flattened to the image's mean effective SNR, what a codec without the input is told:
the drop is what the decoder takes from each symbol's SNR (the mechanism, not just more training).
Decoder output (no refinement). Writes JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import report  # noqa: E402
from sccdm import data, metrics, pipeline, zoo  # noqa: E402
from sccdm.channels import ChannelConfig, apply_channel, equalize, symbol_snr_db  # noqa: E402

CONDITIONS = {  # name -> ChannelConfig fields
    "fast": dict(kind="rayleigh", fading="fast"),
    "fast+erasures10": dict(kind="rayleigh", fading="fast", erasure_prob=0.1),
    "block": dict(kind="rayleigh", fading="block"),
    "awgn": dict(kind="awgn"),
}


def load(name: str) -> torch.nn.Module:
    """A zoo name's codec, or a training run's folder."""
    return zoo.load_any(name).codec.float().eval()


def psnr_pair(model, x: torch.Tensor, cfg: ChannelConfig, seed: int, batch: int) -> tuple[float, float | None]:
    """Mean decoder-output PSNR with the map (as served) and, for a map codec, with the map flattened."""
    gen = torch.Generator().manual_seed(seed)
    served, flat = [], []
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        frame = pipeline.encode(model, xb, cfg.snr_db)
        rx = apply_channel(frame.symbols, cfg, gen)
        csi = cfg.csi if cfg.kind != "awgn" else "none"
        z_hat, eff = equalize(rx.y, rx.h, rx.noise_var, csi, rx.mask)
        sym = symbol_snr_db(rx.h, rx.noise_var, csi, rx.mask, k=z_hat.shape[1])
        out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, eff, symbol_snr=sym)
        served.append(metrics.psnr(out["x_hat"], xb))
        if pipeline.reads_csi_map(model):
            out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, eff)
            flat.append(metrics.psnr(out["x_hat"], xb))
    return float(torch.cat(served).mean()), (float(torch.cat(flat).mean()) if flat else None)


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = report.head("The per-symbol CSI map (benchmarks/csi_map.py)", meta,
                        f"{meta['n']} CIFAR-10 test images, seed {meta['seed']}, the same draws for every model.")
    lines += ["| model | reads map | channel | SNR (dB) | PSNR | told the mean SNR only | map's worth |",
              "|---|---|---|---|---|---|---|"]
    for r in rows:
        flat = "" if r["flat_psnr_db"] is None else f"{r['flat_psnr_db']:.2f}"
        worth = "" if r["flat_psnr_db"] is None else f"{r['psnr_db'] - r['flat_psnr_db']:+.2f}"
        lines.append(f"| {r['model']} | {'yes' if r['csi_map'] else 'no'} | {r['channel']} | {r['snr_db']:g} | "
                     f"{r['psnr_db']:.2f} | {flat} | {worth} |")
    lines += ["", "PSNR in dB, decoder output (no refinement). \"told the mean SNR only\": the same received "
              "symbols decoded with every symbol's SNR set to the image's mean effective SNR (the input a "
              "codec without the map gets); \"map's worth\" is the difference. fast: one h ~ CN(0, 1) per "
              "symbol (what OFDM or interleaving makes of a fading channel); block: one per image; MMSE; "
              "erasures10: 10 % of symbols lost (the map marks them)."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", required=True, help="zoo names or run folders")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    p.add_argument("--snrs", nargs="+", type=float, default=[0.0, 5.0, 10.0, 15.0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=str(REPO / "benchmarks/results/csi_map"))
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    x = data.load_eval_images(a.data, limit=a.n)
    rows = []
    with torch.no_grad():
        for name in a.models:
            model = load(name)
            for cond in a.conditions:
                for snr in a.snrs:
                    cfg = ChannelConfig(snr_db=snr, **CONDITIONS[cond]).validate()
                    served, flat = psnr_pair(model, x, cfg, a.seed, a.batch)
                    rows.append({"model": name, "csi_map": pipeline.reads_csi_map(model), "channel": cond,
                                 "snr_db": snr, "psnr_db": served, "flat_psnr_db": flat})
                    print(f"{name} {cond} {snr:g} dB: {served:.2f}" + ("" if flat is None else f" (flat {flat:.2f})")
                          + f"  [{time.time() - t0:.0f} s]", flush=True)
    meta = report.meta("benchmarks/csi_map.py", argv, t0, n=len(x), seed=a.seed)
    report.write(a.out, meta, rows, markdown(meta, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
