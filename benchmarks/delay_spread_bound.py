"""How close to AWGN can any receiver get on issue 12's 15-sample delay spread? (issue 12)

    python benchmarks/delay_spread_bound.py --n 500 --threads 1 --out benchmarks/results/delay_spread_bound

The goal "delay spread up to 15 samples within 0.5 dB of AWGN" is missed by the link (2.11 / 0.69 dB at
10 / 20 dB, csi-delay15.md) and by a linear receiver with perfect CSI (1.57 / 0.57 dB). Would a better
waveform close it? Two answers, on the same multipath draws as benchmarks/csi.py (``delay15``,
``delay15-slow``: PROFILES there), over the band the single-carrier link occupies at sps 4
(|f| <= 1/8 cycles per sample, the symbol rate's Nyquist band):

* **capacity**: the channel's ergodic capacity per frame, mean over f of log2(1 + SNR |H(f)|^2) with
  unit mean |H|^2, as the SNR of an AWGN channel of the same capacity. No receiver without CSI at the
  transmitter beats it; the codec run on AWGN at that SNR is an estimate of the best it could do.
* **OFDM, perfect CSI**: the same band as subcarriers with a cyclic prefix longer than the spread (its
  overhead not charged), each symbol on a subcarrier (interleaved at random) seeing H(f), MMSE per
  subcarrier, the decoder told the mean SNR (a ``csi_map`` codec also each subcarrier's): what an OFDM
  waveform would deliver with these codecs.

Decoder output (no refinement), CIFAR-10 test images, the same images and noise for every row. Writes
JSON + Markdown with command, machine and date.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from csi import PROFILES, draw_taps  # noqa: E402
import report  # noqa: E402
from sccdm import channels, data, metrics, pipeline, zoo  # noqa: E402

BAND = 1 / 8            # cycles per sample: the symbol rate's Nyquist band at sps 4


def frequency_response(taps: np.ndarray, n: int) -> np.ndarray:
    """H at n frequencies evenly over |f| <= BAND, scaled to unit mean |H|^2: complex [n]."""
    f = (np.arange(n) / n - 0.5) * 2 * BAND
    h = np.exp(-2j * np.pi * np.outer(f, np.arange(len(taps)))) @ taps
    return h / np.sqrt(np.mean(np.abs(h) ** 2))


def mmse_power_allocation(a: np.ndarray) -> np.ndarray:
    """Powers p >= 0 with mean 1 minimising the mean analog MMSE, mean(1 / (1 + p a)), for per-subcarrier SNRs a
    (a transmitter that knows H): p = max(0, (sqrt(a / lam) - 1) / a), lam by bisection."""
    lo, hi = 1e-12, 1e6
    for _ in range(200):
        lam = math.sqrt(lo * hi)
        p = np.maximum((np.sqrt(a / lam) - 1) / a, 0)
        lo, hi = (lam, hi) if p.mean() > 1 else (lo, lam)
    return p


def capacity_snr_db(profile: str, snr_db: float, draws: int, rng) -> dict:
    """Mean over draws of each frame's capacity, as the AWGN SNR with that capacity; the 5 % worst frame's;
    and the analog-equivalent SNR: the AWGN SNR whose MMSE per unit-power symbol, 1 / (1 + SNR), equals the
    mean over subcarriers of 1 / (1 + SNR |H(f)|^2), what symbol-by-symbol analog transmission reaches; and the
    same with the transmitter's power spread over subcarriers to minimise that mean (it knows H)."""
    s = 10 ** (snr_db / 10)
    gains = [np.abs(frequency_response(draw_taps(profile, rng), 512)) ** 2 for _ in range(draws)]
    caps = np.array([np.mean(np.log2(1 + s * g)) for g in gains])
    mmse = float(np.mean([np.mean(1 / (1 + s * g)) for g in gains]))
    mmse_csit = float(np.mean([np.mean(1 / (1 + mmse_power_allocation(s * g) * s * g)) for g in gains]))
    to_db = lambda c: float(10 * np.log10(2 ** c - 1))  # noqa: E731
    return {"capacity_bits": float(caps.mean()), "awgn_capacity_bits": float(np.log2(1 + s)),
            "equivalent_snr_db": to_db(caps.mean()), "worst5_snr_db": to_db(np.percentile(caps, 5)),
            "analog_snr_db": float(10 * np.log10(1 / mmse - 1)),
            "analog_csit_snr_db": float(10 * np.log10(1 / mmse_csit - 1))}


def _decode_psnr(model, x: torch.Tensor, snr_db: float, h: torch.Tensor, gen: torch.Generator) -> float:
    """Encode at snr_db, y = h z + n, MMSE per symbol, decode with the effective mean SNR (and each symbol's,
    for a codec that reads the CSI map): mean PSNR dB."""
    frame = pipeline.encode(model, x, snr_db)
    z = frame.symbols
    nv = channels.snr_db_to_noise_var(torch.full((z.shape[0],), float(snr_db)))
    n = torch.complex(torch.randn(z.shape, generator=gen), torch.randn(z.shape, generator=gen))
    y = h * z + n * (nv / 2).sqrt()[:, None]
    z_hat, eff = channels.equalize(y, h, nv, "mmse")
    out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, eff,
                          symbol_snr=channels.symbol_snr_db(h, nv, "mmse"))   # read by csi_map codecs only
    return float(metrics.psnr(out["x_hat"], x).mean())


def ofdm_gains(profile: str, b: int, k: int, rng) -> torch.Tensor:
    """Per-symbol gains of k symbols interleaved over k subcarriers, one multipath draw per image:
    complex64 [b, k]."""
    return torch.tensor(np.stack([rng.permutation(frequency_response(draw_taps(profile, rng), k))
                                  for _ in range(b)]), dtype=torch.complex64)


def run(model_name: str, x: torch.Tensor, snrs, seed: int) -> list[dict]:
    model = zoo.load_any(model_name)
    rows = []
    with torch.no_grad():
        k = pipeline.encode(model, x[:1], snrs[0]).symbols.shape[1]     # symbols per image, any SNR
        ones = torch.ones(x.shape[0], k, dtype=torch.complex64)
        for snr in snrs:
            awgn = _decode_psnr(model, x, snr, ones, torch.Generator().manual_seed(seed))
            for profile in PROFILES:
                cap = capacity_snr_db(profile, snr, 2000, np.random.default_rng(seed))
                at_cap = _decode_psnr(model, x, cap["equivalent_snr_db"], ones, torch.Generator().manual_seed(seed))
                at_analog = _decode_psnr(model, x, cap["analog_snr_db"], ones, torch.Generator().manual_seed(seed))
                h = ofdm_gains(profile, x.shape[0], ones.shape[1], np.random.default_rng(seed))
                ofdm = _decode_psnr(model, x, snr, h, torch.Generator().manual_seed(seed))
                rows.append({"model": model_name, "snr_db": snr, "profile": profile, "awgn_psnr_db": awgn,
                             **cap, "psnr_at_capacity_db": at_cap, "psnr_at_analog_db": at_analog,
                             "ofdm_psnr_db": ofdm})
                print(f"{model_name} {snr} dB {profile}: AWGN {awgn:.2f}, capacity-equivalent "
                      f"{cap['equivalent_snr_db']:.2f} dB -> {at_cap:.2f}, analog-equivalent "
                      f"{cap['analog_snr_db']:.2f} dB -> {at_analog:.2f}, OFDM {ofdm:.2f}", flush=True)
    return rows


def markdown(meta: dict, rows: list[dict]) -> str:
    seen = {(r["snr_db"], r["profile"]): r for r in rows}
    csit = ", ".join(f"{r['analog_csit_snr_db']:.2f} dB ({r['analog_snr_db']:.2f} without; {p}, {snr:g} dB)"
                     for (snr, p), r in sorted(seen.items()))
    lines = report.head("Delay spread: what any receiver could reach (benchmarks/delay_spread_bound.py)", meta,
                        f"{meta['n']} CIFAR-10 test images, seed {meta['seed']}.")
    lines += ["| model | SNR (dB) | profile | AWGN | capacity-equivalent SNR (5 % worst frame) | codec at that SNR "
             "(loss) | analog-equivalent SNR | codec at that SNR (loss) | OFDM, perfect CSI (loss) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['snr_db']:g} | {r['profile']} | {r['awgn_psnr_db']:.2f} | "
                     f"{r['equivalent_snr_db']:.2f} ({r['worst5_snr_db']:.2f}) | {r['psnr_at_capacity_db']:.2f} "
                     f"({r['awgn_psnr_db'] - r['psnr_at_capacity_db']:.2f}) | {r['analog_snr_db']:.2f} | "
                     f"{r['psnr_at_analog_db']:.2f} ({r['awgn_psnr_db'] - r['psnr_at_analog_db']:.2f}) | "
                     f"{r['ofdm_psnr_db']:.2f} ({r['awgn_psnr_db'] - r['ofdm_psnr_db']:.2f}) |")
    lines += ["", "PSNR in dB, decoder output. Loss = AWGN minus the column. Over the band, the channel's capacity is "
              "that of an AWGN channel 1.4-2.1 dB weaker. Near 10 dB, where PSNR still climbs about 0.5 dB per dB, "
              "the codec at that SNR loses 0.6-0.8 dB: by this estimate issue 12's 0.5 dB is out of reach of any receiver with these "
              "codecs there. At 20 dB the codecs saturate (trained on 0-15 dB) and the estimate leaves room (0.1 dB). "
              "A linear equaliser is the right receiver for analog JSCC symbols (no decisions to feed back), and "
              "with perfect CSI it loses 1.57 / 0.57 dB (csi-delay15.md). OFDM with perfect CSI does worse for codecs "
              "trained on AWGN or block fading; trained on per-symbol fading (sc-cdm-cpu-rayleigh-fast) a codec loses "
              "1.5-1.6 dB at 10 dB, about as much as under single carrier. The analog-equivalent SNR explains it: "
              "an analog symbol's MMSE is 1 / (1 + SNR), so over subcarriers the distortions average arithmetically "
              "while capacity averages log(1 + SNR); the codec run at that SNR predicts the OFDM result of the codecs "
              "trained on fading to within 0.15 dB at 10 dB (at 20 dB 0.04 dB for the fast-fading ones); decoders not "
              "trained on per-symbol fading lose more under OFDM than that (0.2-0.45 dB at 20 dB, and the AWGN-only "
              "sc-cdm-cpu 0.3 dB at 10 dB). Telling the decoder each subcarrier's SNR does not change this: sc-cdm-cpu-rayleigh-fast "
              "reads the CSI map and checkpoints/fast-control, its twin trained the same 9,000 steps without it, "
              "is within 0.01 dB under OFDM (csi_map.md). Nor would CSI at the transmitter: the power allocation that minimises the mean analog MMSE "
              f"raises the analog-equivalent SNR only to {csit}. What is left to capacity is what coding across "
              "symbols (a codec trained on this channel, or digital coding) could recover, not a better receiver."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500, help="CIFAR-10 test images")
    ap.add_argument("--models", nargs="+", default=["sc-cdm-cpu", "sc-cdm-cpu-rayleigh"],
                    help="zoo names or training-run folders")
    ap.add_argument("--snrs", nargs="+", type=float, default=[10.0, 20.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="benchmarks/results/delay_spread_bound")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    x = data.load_eval_images(args.data, limit=args.n)
    rows = [r for m in args.models for r in run(m, x, args.snrs, args.seed)]
    m = report.meta("benchmarks/delay_spread_bound.py", argv, t0, n=args.n, seed=args.seed)
    report.write(args.out, m, rows, markdown(m, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
