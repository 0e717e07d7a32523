"""``sccdm eval``: mean PSNR / SSIM per scheme, channel and SNR on a test set.

    sccdm eval --scheme sc-cdm --scheme nsf --scheme deepjscc --channel awgn \
        --snr 0 3 6 --data DIR --limit N --out results.json

Every scheme sees the same images and the same channel draws (the generator is
re-seeded per SNR and batch), so differences are the schemes', not the noise's.
The JSON is a list of rows ``{"scheme", "channel", "snr_db", "psnr_db", "ssim",
"n_images", ...}``; ``--suite paper`` runs the full figure suite instead
(:mod:`sccdm.suite`).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from .channels import ChannelConfig
from .metrics import MS_SSIM_MIN_SIDE, mean_ci95, ms_ssim, mse, psnr, ssim
from .pipeline import simulate

__all__ = ["evaluate", "main", "LEARNED", "DATA_CAVEAT"]

# scheme -> (zoo task whose model runs it, refine); --model / --deepjscc name other zoo entries
LEARNED = {"sc-cdm": ("sc-cdm", True), "nsf": ("sc-cdm", False), "deepjscc": ("deepjscc", False)}
DATA_CAVEAT = ("Data caveat: the CIFAR-10 copy used here was re-encoded as JPEG (quality ~75); it is smoother "
               "than the original, so PSNR runs somewhat higher than on the original CIFAR-10.")


def _chunks(images, batch: int):
    """(index of the first image, float [B, 3, H, W]): batches of a stacked set, single images of a list."""
    if isinstance(images, torch.Tensor):
        for i in range(0, len(images), batch):
            yield i, images[i:i + batch]
    else:
        for i, x in enumerate(images):
            yield i, x[None]


def _run_learned(model, x, cfg, seed, i, tx_snr_db, refine, channels=None):
    g = torch.Generator().manual_seed(seed * 100003 + i)
    rg = torch.Generator().manual_seed(seed * 100019 + i)
    o = simulate(model, x, cfg, g, tx_snr_db=tx_snr_db, refine=refine, refine_generator=rg, channels=channels)
    k = model.cfg.num_symbols(*x.shape[-2:], channels)
    return o["x_hat"].clamp(0, 1), torch.full((len(x),), k), torch.zeros(len(x), dtype=torch.bool)


def _channels(model, name: str, cbr: float | None) -> int | None:
    """The latent channels ``name`` sends at ``cbr`` (None: all); SystemExit if it cannot send that CBR."""
    if cbr is None:
        return None
    try:
        return model.cfg.channels_for_cbr(cbr)
    except ValueError as e:
        raise SystemExit(f"sccdm eval: {name}: {e}; pick a rate-adaptive model (e.g. sc-cdm-paper-photo-rate) "
                         f"or leave out --cbr") from None


def _scores(x_hat: torch.Tensor, x: torch.Tensor, uses: torch.Tensor) -> dict:
    """Per-image metrics of one chunk (float [B] each); MS-SSIM only where the image is large enough."""
    out = {"psnr": psnr(x_hat, x, max_db=50.0), "ssim": ssim(x_hat, x), "mse": mse(x_hat, x),
           "cbr": uses.float() / (3 * x.shape[-1] * x.shape[-2])}
    if min(x.shape[-2:]) >= MS_SSIM_MIN_SIDE:
        out["ms_ssim"] = ms_ssim(x_hat, x)
    return out


def _row(scheme, model, cfg, per: dict, uses, lost, n, tx_snr_db, seconds) -> dict:
    pm, pci = mean_ci95(per["psnr"])
    sm, sci = mean_ci95(per["ssim"])
    row = {"scheme": scheme, "model": model, "channel": cfg.kind, "snr_db": float(cfg.snr_db), "psnr_db": round(pm, 4),
           "psnr_ci95_db": round(pci, 4),
           "psnr_of_mean_mse_db": round(10 * math.log10(1.0 / max(float(per["mse"].mean()), 1e-20)), 4),
           "ssim": round(sm, 5), "ssim_ci95": round(sci, 5), "n_images": n,
           "channel_uses": float(uses.float().mean()), "cbr": float(per["cbr"].mean()),
           "lost_share": float(lost.float().mean()), "fading": cfg.fading if cfg.kind != "awgn" else None,
           "csi": cfg.csi if cfg.kind != "awgn" else None, "erasure_prob": cfg.erasure_prob,
           "tx_snr_db": tx_snr_db, "seconds": round(seconds, 2)}
    if "ms_ssim" in per and len(per["ms_ssim"]) == n:
        row["ms_ssim"] = round(float(per["ms_ssim"].mean()), 5)
    return row


def evaluate(schemes: list[str], images, channel: str = "awgn", snrs=(0, 3, 6, 9, 12, 15),
             seed: int = 0, batch: int = 250, fading: str = "block", csi: str = "mmse", erasure_prob: float = 0.0,
             tx_snr_db: float | None = None, models: dict | None = None, progress: bool = True,
             names: dict | None = None, cbr: float | None = None) -> list[dict]:
    """images: float [N, 3, H, W] in [0, 1], or a list of float [3, H, W] of any sizes (photos, sent one
    at a time). Returns one row per (scheme, SNR); metrics are means over images (PSNR per image,
    then averaged; ``psnr_of_mean_mse_db`` is WITT's convention), ``cbr`` the mean of each image's k / (3HW).

    names: {"sc-cdm": zoo name, "deepjscc": zoo name}; default :func:`sccdm.zoo.default_for` of
    the channel. models: a cache {zoo name: loaded model}, shared across calls. cbr: the bandwidth
    ratio to send at (a rate-adaptive model sends the nearest of its rates; the classical schemes get
    the same k); rows then carry ``cbr_target``.
    """
    from . import zoo

    models = models if models is not None else {}
    names = {t: (names or {}).get(t) or zoo.default_for(t, channel) for t in ("sc-cdm", "deepjscc")}
    rows = []
    total = len(schemes) * len(snrs)
    t_start = time.time()

    def model(name):
        if name not in models:
            models[name] = zoo.load_any(name)
        return models[name]

    for si, snr in enumerate(snrs):
        cfg = ChannelConfig(kind=channel, snr_db=float(snr), fading=fading, csi=csi, erasure_prob=erasure_prob).validate()
        for sj, scheme in enumerate(schemes):
            t0 = time.time()
            if scheme not in LEARNED:
                from .baselines import SCHEMES
                if scheme not in SCHEMES:
                    raise SystemExit(f"unknown scheme {scheme!r}; known: {sorted(set(LEARNED) | set(SCHEMES))}")
            per, all_uses, all_lost = {}, [], []
            n_chunks = -(-len(images) // batch) if isinstance(images, torch.Tensor) else len(images)
            for j, (i, x) in enumerate(_chunks(images, batch)):
                if progress and n_chunks >= 8 and j and j % max(1, n_chunks // 4) == 0:  # photos: slow per image
                    el = time.time() - t0
                    print(f"[eval {si * len(schemes) + sj + 1}/{total}] {scheme} {snr:g} dB: {j}/{n_chunks} "
                          f"eta {el / j * (n_chunks - j):.0f}s", file=sys.stderr, flush=True)
                if scheme in LEARNED:
                    task, refine = LEARNED[scheme]
                    m = model(names[task])
                    x_hat, uses, lost = _run_learned(m, x, cfg, seed, i, tx_snr_db, refine,
                                                     _channels(m, names[task], cbr))
                else:
                    # the learned model's k for this size, with the learned schemes' seeds: same channel draws
                    m = model(names["sc-cdm"])
                    k = m.cfg.num_symbols(*x.shape[-2:], _channels(m, names["sc-cdm"], cbr))
                    o = SCHEMES[scheme](x, cfg, k, seed * 100003 + i)
                    x_hat = o["x_hat"]
                    uses = torch.as_tensor(o["channel_uses"]).reshape(-1).expand(len(x))
                    lost = torch.as_tensor(o["lost"]).reshape(-1).expand(len(x))
                for key, v in _scores(x_hat, x, uses).items():
                    per.setdefault(key, []).append(v)
                all_uses.append(uses)
                all_lost.append(lost)
            per = {key: torch.cat(v) for key, v in per.items()}
            n = len(per["psnr"])
            rows.append(_row(scheme, names[LEARNED[scheme][0]] if scheme in LEARNED else None, cfg, per,
                             torch.cat(all_uses), torch.cat(all_lost), n, tx_snr_db, time.time() - t0))
            if cbr is not None:
                rows[-1]["cbr_target"] = cbr
            if progress:
                done = si * len(schemes) + sj + 1
                el = time.time() - t_start
                print(f"[eval {done}/{total}] {scheme:9s} {channel} {snr:5.1f} dB  PSNR {rows[-1]['psnr_db']:6.2f} dB  "
                      f"SSIM {rows[-1]['ssim']:.4f}  eta {el / done * (total - done):.0f}s", file=sys.stderr, flush=True)
    return rows


def _label(r: dict) -> str:
    return r["scheme"] + (f" @ 1/{1 / r['cbr_target']:.0f}" if r.get("cbr_target") else "")


def format_table(rows: list[dict]) -> str:
    schemes = list(dict.fromkeys(_label(r) for r in rows))
    snrs = sorted({r["snr_db"] for r in rows})
    chans = list(dict.fromkeys(r["channel"] for r in rows))
    lines = []
    for ch in chans:
        ms = any("ms_ssim" in r for r in rows)
        lines.append(f"{ch}: mean PSNR dB (SSIM{', MS-SSIM' if ms else ''})")
        lines.append("| scheme | " + " | ".join(f"{s:g} dB" for s in snrs) + " |")
        lines.append("|---" * (len(snrs) + 1) + "|")
        for sc in schemes:
            cells = []
            for s in snrs:
                r = next((r for r in rows if _label(r) == sc and r["snr_db"] == s and r["channel"] == ch), None)
                ms = f", {r['ms_ssim']:.3f}" if r and "ms_ssim" in r else ""
                cells.append(f"{r['psnr_db']:.2f} ({r['ssim']:.3f}{ms})" if r else "-")
            lines.append(f"| {sc} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _ratio(text: str) -> float:
    """'1/12' or '0.0833' -> float in (0, 1]."""
    try:
        num, _, den = text.partition("/")
        v = float(num) / float(den) if den else float(num)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a ratio: {text!r} (write 1/12 or 0.0833)") from None
    if not 0 < v <= 1:
        raise argparse.ArgumentTypeError(f"a CBR is in (0, 1], got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sccdm eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scheme", action="append", default=None,
                   help="sc-cdm, nsf, deepjscc, jpeg-ldpc, separation (repeatable; default the three learned)")
    p.add_argument("--channel", default="awgn", choices=["awgn", "rayleigh"])
    p.add_argument("--snr", type=float, nargs="+", default=[0, 3, 6, 9, 12, 15])
    p.add_argument("--fading", default="block", choices=["block", "fast"])
    p.add_argument("--csi", default="mmse", choices=["mmse", "zf", "abs", "none"])
    p.add_argument("--erasure-prob", type=float, default=0.0)
    p.add_argument("--tx-snr", type=float, default=None, help="SNR the encoder assumes (default: the channel's)")
    p.add_argument("--model", default=None, help="zoo model for sc-cdm / nsf (default: the zoo's for the channel), "
                   "or a training run's folder (a codec alone: --scheme nsf)")
    p.add_argument("--deepjscc", default=None, help="zoo model for deepjscc (default: the zoo's for the channel)")
    p.add_argument("--cbr", type=_ratio, nargs="+", default=None,
                   help="bandwidth ratios to send at, e.g. 1/48 1/24 1/12 (rate-adaptive models; default: the model's own)")
    p.add_argument("--data", default=None)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="JSON file for the rows")
    p.add_argument("--markdown", default=None, help="also write the table as Markdown here")
    p.add_argument("--suite", default=None, help="run a figure suite instead (paper)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--suite" in argv:
        from . import suite
        return int(suite.main(argv) or 0)
    a = build_parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from .data import load_eval_images
    try:
        images = load_eval_images(a.data, a.limit)
    except FileNotFoundError as e:
        print(f"sccdm eval: {e}", file=sys.stderr)
        return 2
    schemes = a.scheme or ["sc-cdm", "nsf", "deepjscc"]
    t0 = time.time()
    from . import zoo
    for n in (a.model, a.deepjscc):
        if n is not None and n not in zoo.names() and not Path(n).is_dir():
            print(f"sccdm eval: unknown model {n!r} (not a run folder either); the zoo has: {', '.join(zoo.names())}",
                  file=sys.stderr)
            return 2
    if a.model and Path(a.model).is_dir() and "sc-cdm" in schemes:
        print(f"sccdm eval: {a.model} is a run folder, a codec without a refiner: use --scheme nsf", file=sys.stderr)
        return 2
    rows, cache = [], {}
    for cbr in a.cbr or [None]:
        rows += evaluate(schemes, images, a.channel, a.snr, a.seed, a.batch, a.fading, a.csi, a.erasure_prob,
                         a.tx_snr, names={"sc-cdm": a.model, "deepjscc": a.deepjscc}, cbr=cbr, models=cache)
    table = format_table(rows)
    # the caveat is about the CIFAR-10 JPEG copy, not about photo folders
    caveat = DATA_CAVEAT if isinstance(images, torch.Tensor) and tuple(images.shape[-2:]) == (32, 32) else ""
    print(table)
    print(caveat)
    meta = {"command": "sccdm eval " + " ".join(argv), "machine": f"{platform.node()} {platform.machine()} "
            f"{torch.get_num_threads()} threads", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(time.time() - t0, 1), "caveat": caveat,
            "models": {n: zoo.checksums(n) for n in sorted({r["model"] for r in rows if r.get("model")})}}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")
        Path(a.out).with_suffix(".meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if a.markdown:
        Path(a.markdown).write_text(f"# sccdm eval\n\n`{meta['command']}`\n\n{meta['date']}, {meta['machine']}, "
                                    f"{meta['wall_s']} s\n\n{table}\n{caveat}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
