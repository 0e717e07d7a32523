"""Plots of `sccdm eval` rows on photographs: PSNR vs SNR (one panel per results file) and PSNR vs CBR.

    python benchmarks/plot_photos.py --vs-snr benchmarks/results/photos/kodak_awgn.json,more_rows.json \
        [--vs-snr another_panel.json ...] [--vs-cbr benchmarks/results/photos/kodak_awgn_cbr.json] \
        --out benchmarks/results/photos

Writes psnr_vs_snr.png and (with --vs-cbr) psnr_vs_cbr.png. The rows are what ``sccdm eval --out``
wrote; nothing is recomputed, so a plot is exactly its table.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"sc-cdm": ("C0", "o", "-"), "nsf": ("C0", "s", "--"), "deepjscc": ("C2", "^", "-"),
         "separation": ("C3", "D", "-"), "avif-ldpc": ("C1", "v", "-"), "avif-ldpc-genie": ("C1", "v", ":"),
         "jpeg-ldpc": ("C5", "x", "-")}
NAMES = {"sc-cdm": "SC-CDM", "nsf": "NSF (decoder only)", "deepjscc": "DeepJSCC",
         "separation": "AVIF/WebP/JPEG + capacity", "avif-ldpc": "AVIF + LDPC + QAM (link adaptation)",
         "avif-ldpc-genie": "AVIF + LDPC + QAM (genie MCS)", "jpeg-ldpc": "JPEG + LDPC + 4-QAM"}


def _rows(path: Path) -> list[dict]:
    """One results file, or several joined with commas (rows of separate runs on the same draws)."""
    return [r for part in str(path).split(",") for r in json.loads(Path(part).read_text())]


def _title(path: Path, rows: list[dict]) -> str:
    n = rows[0]["n_images"] if rows else 0
    return f"{Path(str(path).split(',')[0]).stem} ({n} images)"


def vs_snr(files: list[Path], out: Path) -> Path:
    fig, axes = plt.subplots(1, len(files), figsize=(5.5 * len(files), 4.2), squeeze=False)
    for ax, f in zip(axes[0], files):
        rows = _rows(f)
        # one line per (scheme, model): a per-channel model beside the AWGN one of the same scheme
        lines = list(dict.fromkeys((r["scheme"], r.get("model")) for r in rows))
        models_of = {s: [m for s2, m in lines if s2 == s] for s, _ in lines}
        for scheme, model in lines:
            rs = sorted((r for r in rows if r["scheme"] == scheme and r.get("model") == model
                         and not r.get("cbr_target")), key=lambda r: r["snr_db"])
            if not rs:
                continue
            c, m, ls = STYLE.get(scheme, ("k", ".", "-"))
            if models_of[scheme].index(model):
                c = "C4"                       # the second model of a scheme
            ax.plot([r["snr_db"] for r in rs], [r["psnr_db"] for r in rs], color=c, marker=m, ls=ls,
                    label=f"{NAMES.get(scheme, scheme)}" + (f" [{model}]" if model else ""))
        ax.set(xlabel="channel SNR (dB)", ylabel="PSNR (dB)", title=_title(f, rows))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "psnr_vs_snr.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def vs_cbr(file: Path, out: Path) -> Path:
    rows = [r for r in _rows(file) if r.get("cbr_target")]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    snrs = sorted({r["snr_db"] for r in rows})
    shades = {s: 0.35 + 0.65 * i / max(1, len(snrs) - 1) for i, s in enumerate(snrs)}
    for scheme in dict.fromkeys(r["scheme"] for r in rows):
        c, m, ls = STYLE.get(scheme, ("k", ".", "-"))
        for s in snrs:
            rs = sorted((r for r in rows if r["scheme"] == scheme and r["snr_db"] == s), key=lambda r: r["cbr_target"])
            # the requested CBR: a classical scheme that sends nothing (0 dB, 1/48) reports fewer uses
            ax.plot([r["cbr_target"] for r in rs], [r["psnr_db"] for r in rs], color=c, marker=m, ls=ls, alpha=shades[s],
                    label=f"{NAMES.get(scheme, scheme)}, {s:g} dB")
    ax.set_xscale("log", base=2)
    ticks = sorted({r["cbr_target"] for r in rows})
    ax.set_xticks(ticks, [f"1/{1 / t:.0f}" for t in ticks])
    ax.set(xlabel="CBR (channel uses per real pixel value)", ylabel="PSNR (dB)",
           title=_title(file, rows) + ": one rate-adaptive model")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    path = out / "psnr_vs_cbr.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vs-snr", action="append", default=[], type=Path,
                   help="an eval JSON, or A.json,B.json for one panel (repeatable: panels)")
    p.add_argument("--vs-cbr", default=None, type=Path, help="an eval JSON written with --cbr")
    p.add_argument("--out", required=True, type=Path)
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.vs_snr:
        print(vs_snr(a.vs_snr, a.out))
    if a.vs_cbr:
        print(vs_cbr(a.vs_cbr, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
