"""The cost of realism: PSNR with ESTIMATED CSI (the radio link layer) next to PERFECT CSI.

    python benchmarks/csi.py                          # 200 CIFAR test images, 0..15 dB, Rayleigh + AWGN
    python benchmarks/csi.py --n 50 --snrs 0 6 12 --kinds rayleigh --variants default

For every SNR the same images go through

* ``perfect``: ``sccdm.pipeline.simulate`` - the emulated channel with genie CSI
  (h and sigma^2 known, MMSE equalisation, the decoder told the true SNR);
* ``estimated``: the ``emulated_link`` backend - symbols framed (preamble,
  header, training, pilots), RRC-shaped at 4 samples per symbol, the same kind
  of channel (Rayleigh: one h ~ CN(0, 1) per image / frame) with a 1e-4
  normalised CFO, then burst detection, timing, CFO and clock recovery, LS
  channel estimate, SNR estimate; MMSE equalisation with the ESTIMATED h and
  sigma^2, the decoder told the ESTIMATED SNR.

Link variants (--variants): ``default`` (LinkConfig()), ``robust`` (four QPSK
header copies at rate 1/3 back to back: 366 more symbols per frame, frames
survive about 3 dB deeper fades), ``uncorrected`` (no DC / IQ correction in the receiver);
see VARIANTS for the header ones (``single-1/2``, ``old-default``, ``16-*``:
16 images per frame) and ``no-predict`` / ``16-no-predict`` (without the retry of a missing frame where
its neighbours put it, LinkConfig.predict_missing), ``no-header-predict`` / ``16-no-header-predict`` (without
the header its neighbours predict for a frame whose own header fails, LinkConfig.predict_header).

Front-end impairments (--impairments, added after the noise): ``none``, ``dc``
(0.2 DC offset), ``iq`` (1 dB / 5 deg IQ imbalance, iqbal_gen's receiver
model), ``dc+iq``, ``multipath`` (static, 5 paths 6 samples apart; the
perfect-CSI reference stays flat, so its cost is the multipath's against AWGN).
``doppler1e-4`` / ``doppler1e-3`` (Rayleigh only: the gain moves within a frame,
fD * Ts per sample); their perfect-CSI reference is the genie on the SAME fades
(the emulator's true gain at every data symbol, its own noise draw), not block fading.
``delay15`` / ``delay15-slow``: issue 12's "delay spread up to 15 samples" - paths spanning exactly 15
samples with an exponential power-delay profile, the phases drawn anew for every frame (see PROFILES);
beside the link they report the bound of a linear receiver with perfect CSI on the same taps
(``mmse_bound_loss_db``, ``psnr_linear_bound``), the part of the cost no estimator removes.
Variant ``fixed-taps`` turns off the delay-spread sizing (max_chan_taps 0). With anything but ``none`` alone the results go to
``--out`` (default csi-frontend) so the main table stays.

    python benchmarks/csi.py --n 200 --snrs 10 20 --kinds awgn rayleigh \
        --impairments none dc iq dc+iq multipath --variants default uncorrected fixed-taps

Both use the same model (codec output, no refinement unless --refine) and the
same SNR per data symbol; the link's preamble / header / pilot overhead is
reported beside (it is not charged to the SNR). Also reported: frames lost,
and the SNR estimation error against the emulator's truth (|h|^2 SNR).
Writes benchmarks/results/csi.{json,md,png}.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
_SINGLE = {"header_qpsk": False, "header_repeat": 1, "header_split": 0}
_OLD = {**_SINGLE, "header_rate": 3, "detect_threshold": 0.06}
VARIANTS = {"default": {}, "robust": {"header_split": 0, "header_rate": 3, "header_repeat": 4},
            "uncorrected": {"dc_remove": False, "iq_correct": False}, "fixed-taps": {"max_chan_taps": 0},
            # issue 12's header knobs against the default (two QPSK copies of the rate-1/2 header, the second
            # after 1024 data symbols; 2 pilots per 64 data symbols: 14.8 % overhead at 16 32x32 images per frame)
            "pilots-4": {"pilot_len": 4}, "no-header-pilots": {"header_pilot_every": 0},
            # one BPSK rate-1/2 header, the same length as the two copies: no time diversity
            "single-1/2": _SINGLE,
            # the default before the two copies: one BPSK rate-1/3 header (18 % overhead at 16 per frame)
            "old-default": _OLD,
            # the framing before issue 12's Doppler work: rate 1/3 header without pilots, 4 pilots per 64
            "old-framing": {**_OLD, "pilot_len": 4, "header_pilot_every": 0},
            # 16 images per frame (the overhead goal's case): the copies lie about 1200 symbols apart
            "16-per-frame": {"images_per_frame": 16}, "16-single-1/2": {**_SINGLE, "images_per_frame": 16},
            "16-old-default": {**_OLD, "images_per_frame": 16},
            # without the retry of a missing frame where its neighbours put it (predict_missing, the default)
            "no-predict": {"predict_missing": False},
            "16-no-predict": {"images_per_frame": 16, "predict_missing": False},
            # without the data-aided header prediction (predict_header, the default): a slot whose header
            # fails its CRC is lost, as before it
            "no-header-predict": {"predict_header": False},
            "16-no-header-predict": {"images_per_frame": 16, "predict_header": False}}
# receiver front-end impairments added after the noise (sccdm.link.frontend): DC offset, IQ imbalance
IMPAIRMENTS = {"none": {}, "dc": {"dc": 0.2}, "iq": {"iq_mag_db": 1.0, "iq_phase_deg": 5.0},
               "dc+iq": {"dc": 0.2, "iq_mag_db": 1.0, "iq_phase_deg": 5.0},
               # the static channel: 5 paths 6 samples apart (6 symbols of spread), unit energy
               "multipath": {"taps": "5path"},
               # issue 12's goal "delay spread up to 15 samples within 0.5 dB of AWGN": paths spanning exactly
               # 15 samples (3.75 symbols at sps 4), exponential power-delay profile, the path phases drawn anew
               # for every frame (numpy seed 7, the same draws for every variant and SNR), unit energy per draw.
               # delay15: 4 paths at 0/5/10/15 samples, -3 dB per 5 samples; delay15-slow: 5 paths at
               # 0/4/8/11/15, -1 dB per 4 samples (most of the energy late: deeper notches)
               "delay15": {"profile": "delay15"}, "delay15-slow": {"profile": "delay15-slow"},
               # continuous flat Rayleigh fading (sum of sinusoids, GNU Radio's fading_model), fD * Ts per sample
               "doppler1e-4": {"doppler": 1e-4}, "doppler1e-3": {"doppler": 1e-3}}


def five_paths(spacing: int = 6) -> list:
    """5 sample-spaced paths, decaying exp(-i/3), fixed random phases (seed 1): complex [4 spacing + 1]."""
    rng = np.random.default_rng(1)
    taps = np.zeros(4 * spacing + 1, dtype=np.complex128)
    for i in range(5):
        taps[spacing * i] = (rng.normal() + 1j * rng.normal()) * np.exp(-i / 3)
    return list(taps / np.linalg.norm(taps))


# (delays in samples, power in dB per sample of delay) of the per-frame multipath profiles
PROFILES = {"delay15": ((0, 5, 10, 15), -3.0 / 5), "delay15-slow": ((0, 4, 8, 11, 15), -1.0 / 4)}


def draw_taps(profile: str, rng) -> np.ndarray:
    """One frame's taps: complex [16], the profile's path powers with uniform random phases, unit energy."""
    delays, db_per = PROFILES[profile]
    taps = np.zeros(max(delays) + 1, dtype=np.complex128)
    for d in delays:
        taps[d] = 10 ** (db_per * d / 20) * np.exp(2j * np.pi * rng.random())
    return taps / np.linalg.norm(taps)


def mmse_bound_db(taps: np.ndarray, snr_db: float, sps: int, rolloff: float, span: int) -> float:
    """The SNR a linear MMSE equaliser of unbounded length with PERFECT channel knowledge reaches on these
    sample-rate taps (after the RRC matched filter, symbol-spaced, the best of the sps sampling phases):
    1 / mean_f 1 / (1 + snr |H(f)|^2) - 1, in dB. What the channel itself costs a linear receiver against
    AWGN (snr_db), before any estimation error: the part of the multipath cost no link can remove."""
    from sccdm.link.pulse import rrc_taps
    rrc = rrc_taps(sps, rolloff, span)
    pulse = np.convolve(np.convolve(rrc, taps), rrc)
    snr = 10 ** (snr_db / 10)
    best = -np.inf
    for ph in range(sps):
        hf = np.fft.fft(pulse[ph::sps], 1024)
        best = max(best, 1.0 / np.mean(1.0 / (1.0 + snr * np.abs(hf) ** 2)) - 1.0)
    return float(10 * np.log10(best))


def linear_bound(model, frame, x, taps, snr: float, link, generator, args):
    """PSNR [B] of a linear receiver with PERFECT knowledge of each frame's multipath (taps: one complex array
    per image): the image's symbols with Gaussian noise at :func:`mmse_bound_db`'s SINR, the decoder told it
    (the residual ISI taken as Gaussian). The part of the multipath's cost against AWGN that no estimator
    can win back; the estimated link's PSNR minus this is what estimation and finite lengths cost."""
    import torch
    from sccdm import pipeline
    from sccdm.metrics import psnr
    z = frame.symbols.to(torch.complex64)
    sinr_db = torch.tensor([mmse_bound_db(t, snr, link.sps, link.rolloff, link.span) for t in taps])
    nv = (10.0 ** (-sinr_db / 10.0))[:, None]
    n = torch.complex(torch.randn(z.shape, generator=generator), torch.randn(z.shape, generator=generator))
    out = pipeline.decode(model, z + (nv / 2) ** 0.5 * n, frame.latent_shape, frame.image_size, sinr_db.float(),
                          refine=args.refine, generator=torch.Generator().manual_seed(args.seed))
    return psnr(out["x_hat"].clamp(0, 1), x)


def impairment(name: str) -> dict:
    kw = dict(IMPAIRMENTS[name])
    if kw.get("taps") == "5path":
        kw["taps"] = five_paths()
    return kw


def make_backend(link, cfo: float, name: str, seed: int = 7):
    """The emulated link with impairment ``name``; a per-frame multipath profile gets a backend that
    convolves every frame with taps of its own (the base backend holds one static set for the stream)."""
    import dataclasses
    from sccdm.backends.emulated_link import EmulatedLinkBackend
    kw = impairment(name)
    profile = kw.pop("profile", None)
    if profile is None:
        return EmulatedLinkBackend(link, cfo=cfo, **kw)

    class PerFrameTaps(EmulatedLinkBackend):
        def reseed(self):
            self.rng, self.drawn = np.random.default_rng(seed), []

        def _channel(self, plan, cfg, generator):
            x = plan.samples.astype(np.complex128)
            out = np.zeros(len(x) + max(PROFILES[profile][0]), dtype=np.complex128)
            # frames are separated by silent guards longer than the spread: each frame's convolution,
            # tail included, stays within its own stretch
            bounds = [0] + list(plan.starts[1:]) + [len(x)]
            for a, b in zip(bounds[:-1], bounds[1:]):
                t = draw_taps(profile, self.rng)
                self.drawn.append(t)
                out[a:b + len(t) - 1] += np.convolve(x[a:b], t)
            return super()._channel(dataclasses.replace(plan, samples=out[:len(x)].astype(np.complex64)), cfg,
                                    generator)

    be = PerFrameTaps(link, cfo=cfo, **kw)
    be.reseed()
    return be


def genie(model, frame, x, h, snr: float, csi: str, generator, args):
    """PSNR [B] of the genie on given fades: y = h z + n (h complex [B, k] known, true SNR told)."""
    import torch
    from sccdm import pipeline
    from sccdm.channels import equalize, symbol_snr_db
    from sccdm.metrics import psnr
    z = frame.symbols.to(torch.complex64)
    nv = 10.0 ** (-snr / 10.0)
    n = torch.complex(torch.randn(z.shape, generator=generator), torch.randn(z.shape, generator=generator))
    y = h * z + (nv / 2) ** 0.5 * n
    nvs = torch.full((z.shape[0],), nv)
    z_hat, eff_db = equalize(y, h, nvs, csi, None)
    out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, eff_db, refine=args.refine,
                          generator=torch.Generator().manual_seed(args.seed), symbol_snr=symbol_snr_db(h, nvs, csi))
    return psnr(out["x_hat"].clamp(0, 1), x)


def load_images(n: int, data: str | None):
    import torch
    from sccdm.data import load_split
    arr = load_split(data, "test", n)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0


def run(args) -> dict:
    import torch
    from sccdm import pipeline, zoo
    from sccdm.channels import ChannelConfig, equalize, symbol_snr_db
    from sccdm.link import LinkConfig, LinkMeta
    from sccdm.metrics import mean_ci95, psnr

    torch.set_num_threads(max(1, os.cpu_count() // 2))
    model = zoo.load(args.model)
    x_all = load_images(args.n, args.data)
    links = {v: LinkConfig(sps=args.sps, **VARIANTS[v]) for v in args.variants}
    backends = {(imp, v): make_backend(links[v], args.cfo, imp) for imp in args.impairments for v in args.variants}
    rows = []
    t_start = time.time()
    for kind in args.kinds:
        for snr in args.snrs:
            cfg = ChannelConfig(kind=kind, snr_db=float(snr), csi="mmse")
            csi = cfg.csi if kind != "awgn" else "none"
            g_perf = torch.Generator().manual_seed(args.seed)
            p_perf = []
            for i in range(0, len(x_all), args.batch):
                x = x_all[i:i + args.batch]
                ref = pipeline.simulate(model, x, cfg, g_perf, refine=args.refine,
                                        refine_generator=torch.Generator().manual_seed(args.seed))
                p_perf.append(psnr(ref["x_hat"].clamp(0, 1), x))
            mp, cp = mean_ci95(torch.cat(p_perf))
            for (imp, v), backend in backends.items():
                if backend.doppler and kind != "rayleigh":
                    continue                     # Doppler is a fading channel's
                # the same generator seed for every variant: the same fading draws per image
                g_est = torch.Generator().manual_seed(args.seed)
                if hasattr(backend, "reseed"):
                    backend.reseed()             # the same multipath draws at every SNR
                p_est, p_gen, p_lin, est_err, lost, ovh, cbr, cbr_o = [], [], [], [], 0, [], None, None
                predicted = 0                    # images whose frame came with a predicted header (not lost)
                g_gen = torch.Generator().manual_seed(args.seed + 1)
                for i in range(0, len(x_all), args.batch):
                    x = x_all[i:i + args.batch]
                    frame = pipeline.encode(model, x, float(snr))
                    n_drawn = len(getattr(backend, "drawn", []))
                    res = backend.transmit(frame.symbols, cfg, g_est,
                                           meta=LinkMeta(args.model, frame.latent_shape, frame.image_size))
                    z_hat, _ = equalize(res.y, res.h, res.noise_var, csi, res.mask)
                    out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, res.snr_db,
                                          refine=args.refine, generator=torch.Generator().manual_seed(args.seed),
                                          symbol_snr=symbol_snr_db(res.h, res.noise_var, csi, res.mask,
                                                                   k=z_hat.shape[1]))
                    p_est.append(psnr(out["x_hat"].clamp(0, 1), x))
                    if "true_h" in res.extras:
                        p_gen.append(genie(model, frame, x, torch.from_numpy(res.extras["true_h"]), float(snr),
                                           csi, g_gen, args))
                    new_taps = getattr(backend, "drawn", [])[n_drawn:]
                    if len(new_taps) == len(x):  # one frame per image: the linear receiver's bound on its taps
                        p_lin.append(linear_bound(model, frame, x, new_taps, float(snr), links[v], g_gen, args))
                    got = res.mask.any(dim=1).numpy()
                    lost += int((~got).sum())
                    predicted += len(res.extras.get("header_predicted_images", []))
                    truth = np.array(res.extras["true_snr_db"])
                    est_err += list((res.snr_db.numpy() - truth)[got])
                    ovh.append(res.extras["overhead_symbols_per_image"])
                    cbr, cbr_o = res.extras["cbr"], res.extras["cbr_with_overhead"]
                me, ce = mean_ci95(torch.cat(p_est))
                if p_gen:                        # doppler: the genie on the same fades replaces block fading
                    mp_row, cp_row = mean_ci95(torch.cat(p_gen))
                else:
                    mp_row, cp_row = mp, cp
                err = np.asarray(est_err)
                bound = None
                if getattr(backend, "drawn", None):
                    lk = links[v]
                    bound = float(snr) - float(np.mean([mmse_bound_db(t, float(snr), lk.sps, lk.rolloff, lk.span)
                                                        for t in backend.drawn]))
                row = {"kind": kind, "snr_db": float(snr), "impairment": imp, "variant": v, "psnr_perfect": float(mp_row),
                       "ci95_perfect": float(cp_row), "psnr_estimated": float(me), "ci95_estimated": float(ce),
                       "cost_db": float(mp_row - me), "frames_lost": lost, "header_predicted": predicted,
                       "frames_lost_pct": 100.0 * lost / len(x_all),
                       "snr_err_mean_db": float(err.mean()) if len(err) else None,
                       "snr_err_rms_db": float(np.sqrt(np.mean(err ** 2))) if len(err) else None,
                       "overhead_symbols_per_image": float(np.mean(ovh)), "cbr": cbr, "cbr_with_overhead": cbr_o,
                       "mmse_bound_loss_db": bound,
                       "psnr_linear_bound": float(mean_ci95(torch.cat(p_lin))[0]) if p_lin else None}
                rows.append(row)
                print(f"{kind:8s} {snr:5.1f} dB {imp:6s} {v:11s} perfect {mp_row:6.2f}  estimated {me:6.2f}  cost {mp_row - me:+5.2f} dB"
                      f"  lost {lost:3d} (predicted header {predicted})  SNR err {row['snr_err_mean_db']:+.2f} (rms {row['snr_err_rms_db']:.2f})  "
                      + (f"MMSE bound loss {bound:.2f} dB  " if bound is not None else "") +
                      f"[{time.time() - t_start:.0f} s]", flush=True)
    return {"rows": rows, "seconds": time.time() - t_start, "links": {v: c.to_dict() for v, c in links.items()},
            "n_images": len(x_all)}


# --header-match: the slot's true frame against the predicted header (frame_id 1, one or 16 images of 256)
MATCH_FRAMES = {"predicted (true)": {}, "frame_id +1": {"frame_id": 2}, "frame_id +3": {"frame_id": 4},
                "frame_id +8 (1 bit away)": {"frame_id": 9}, "frame_id +100 (not a rival)": {"frame_id": 101},
                "another transmission (frame_id, model, geometry)": {"frame_id": 9, "model_id": 3, "C": 16, "h": 4,
                                                                     "w": 8, "H": 64, "W": 64},
                "predicted frame_id, other model and geometry": {"model_id": 3, "C": 16, "h": 4, "w": 8, "H": 64,
                                                                 "W": 64}}
MATCH_SNRS = (-15, -12, -10, -8, -5, -3, 0, 10)


def header_match(n: int, seed: int) -> dict:
    """How often the header prediction (sccdm.link.predict) takes a slot for the predicted frame: noise alone
    (5 n draws) and, for each MATCH_FRAMES frame the slot may really hold, n draws at each in-fade SNR of
    MATCH_SNRS - at symbol rate on one flat gain of random phase, the statistic alone (no timing or CFO error)."""
    import dataclasses
    from sccdm.link import LinkConfig
    from sccdm.link.framing import Header, build_frame, layout
    from sccdm.link.predict import header_soft, match_headers
    cfg, rng, rows = LinkConfig(), np.random.default_rng(seed), []
    for n_img in (1, 16):
        lay = layout(cfg, 256 * n_img)
        pred = Header(1, n_img, 256, 1, 8, 8, 8, 32, 32)

        def cn(m):
            return (rng.normal(size=m) + 1j * rng.normal(size=m)) / np.sqrt(2)
        noise = [match_headers(header_soft(cn(lay.total), cfg, lay), cfg, lay, [pred])[0] for _ in range(5 * n)]
        z = np.array([m.z for m in noise])
        rows.append({"images_per_frame": n_img, "truth": "noise only", "snr_db": None, "draws": len(z),
                     "z_mean": float(z.mean()), "z_std": float(z.std()), "z_max": float(z.max()),
                     "p_z_above_3": float(np.mean(z > 3)), "p_z_above_4_5": float(np.mean(z >= 4.5)),
                     "accepted": float(np.mean([m.reject_reason(cfg.predict_header_z) is None for m in noise]))})
        for snr in MATCH_SNRS:
            acc = {name: 0 for name in MATCH_FRAMES}
            for _ in range(n):
                g = 10 ** (snr / 20) * np.exp(2j * np.pi * rng.random())
                for name, kw in MATCH_FRAMES.items():
                    r = g * build_frame(cn(lay.n_data), dataclasses.replace(pred, **kw), cfg) + cn(lay.total)
                    m = match_headers(header_soft(r, cfg, lay), cfg, lay, [pred])[0]
                    acc[name] += m.reject_reason(cfg.predict_header_z) is None
            rows += [{"images_per_frame": n_img, "truth": name, "snr_db": snr, "draws": n, "accepted": a / n}
                     for name, a in acc.items()]
            print(f"{n_img:2d} per frame, {snr:+3d} dB: " + "; ".join(f"{k} {v / n:.3f}" for k, v in acc.items()),
                  flush=True)
    return {"rows": rows, "predict_header_z": cfg.predict_header_z}


def write_match(result: dict, args, seconds: float) -> None:
    doc = {"benchmark": "csi --header-match", "command": "python " + " ".join(sys.argv), "date": dt.datetime.now(
        dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "seed": args.seed,
        "seconds": seconds, **result}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=2))
    lines = ["# Header prediction: what the match takes for the predicted frame (benchmarks/csi.py --header-match)", "",
             f"`{doc['command']}` - {doc['date']}, commit {doc['machine']['commit']}, seed {args.seed}.", "",
             "The slot's weighted header symbols (sccdm.link.predict.header_soft: the gain from the known symbols "
             "around the header) tested against the predicted header (frame_id 1, k 256, model 1, latent 8x8x8, "
             "32x32; one image per frame: short frame, rate-1/3 header; 16: long frame, rate 1/2) by "
             f"HeaderMatch.reject_reason (Z >= {result['predict_header_z']:g}; the rival frame_ids, within +-4 or "
             "1 or 2 bits away; a valid other header; the best code word). Symbol rate, one flat gain of random "
             "phase per draw, unit noise: the statistic alone.", "", "Noise alone:", "",
             "| images per frame | draws | Z mean | Z std | Z max | P(Z > 3) (N(0,1): 1.3e-3) | P(Z >= 4.5) | taken |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["snr_db"] is None:
            lines.append(f"| {r['images_per_frame']} | {r['draws']} | {r['z_mean']:+.3f} | {r['z_std']:.3f} | "
                         f"{r['z_max']:.2f} | {r['p_z_above_3']:.1e} | {r['p_z_above_4_5']:.1e} | "
                         f"{r['accepted']:.1e} |")
    snrs = sorted({r["snr_db"] for r in result["rows"] if r["snr_db"] is not None})
    lines += ["", "Share of draws taken for the predicted frame, by what the slot really holds and its in-fade SNR "
              "(dB per symbol):", "", "| images per frame | slot holds | " + " | ".join(f"{v:+d}" for v in snrs) + " |",
              "|---|---|" + "---|" * len(snrs)]
    for n_img in (1, 16):
        for name in MATCH_FRAMES:
            rs = {r["snr_db"]: r for r in result["rows"] if r["truth"] == name and r["images_per_frame"] == n_img}
            lines.append(f"| {n_img} | {name} | " + " | ".join(f"{rs[v]['accepted']:.3f}" for v in snrs) + " |")
    lines += ["", f"{result['rows'][1]['draws']} draws per cell. The receiver tries the prediction only where the "
              "frame's own header failed its CRC (in these draws: below about -3 dB in the fade), and only at "
              "the slot next to a frame found in the same burst."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


def machine() -> dict:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "commit": commit}


def write(result: dict, args) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": "csi", "command": "python " + " ".join(sys.argv), "date": dt.datetime.now(
        dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine(), "model": args.model,
        "refine": args.refine, "cfo": args.cfo, "seed": args.seed, **result}
    doc["impairments"] = {k: IMPAIRMENTS[k] for k in args.impairments}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(doc, indent=2))
    sps = next(iter(result["links"].values()))["sps"]
    lines = [
        "# Estimated vs perfect CSI (benchmarks/csi.py)", "",
        f"`{doc['command']}` - {doc['date']}, {doc['machine']['cpu']} ({doc['machine']['cores']} cores), "
        f"commit {doc['machine']['commit']}, model `{args.model}` ({'refined' if args.refine else 'codec output'}), "
        f"{result['n_images']} CIFAR-10 test images, seed {args.seed}.", "",
        "perfect = emulated channel with genie CSI and true SNR; estimated = the `emulated_link` backend "
        f"(framing, RRC at {sps} samples/symbol, CFO {args.cfo:g} cycles/sample, detection, "
        "sync, LS channel + SNR estimate). Same SNR per data symbol; the link overhead below is not charged to it.",
        "", "Front-end impairments (after the noise): " + "; ".join(
            f"`{k}` {json.dumps(v)}" for k, v in doc["impairments"].items()) + ".",
        "", "| channel | SNR (dB) | front end | link | PSNR perfect CSI | PSNR estimated CSI | cost (dB) | "
        "frames lost | with a predicted header | SNR est. error mean / rms (dB) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        err = "-" if r["snr_err_mean_db"] is None else f"{r['snr_err_mean_db']:+.2f} / {r['snr_err_rms_db']:.2f}"
        lines.append(f"| {r['kind']} | {r['snr_db']:.0f} | {r.get('impairment', 'none')} | {r['variant']} | {r['psnr_perfect']:.2f} +- {r['ci95_perfect']:.2f} | "
                     f"{r['psnr_estimated']:.2f} +- {r['ci95_estimated']:.2f} | {r['cost_db']:+.2f} | "
                     f"{r['frames_lost']} | {r.get('header_predicted', '-')} | {err} |")
    bound_rows = [r for r in result["rows"] if r.get("mmse_bound_loss_db") is not None]
    if bound_rows:
        lines += ["", "Per-frame multipath (`delay15*`): what the channel itself costs a linear receiver with perfect "
                  "CSI (unbounded symbol-spaced MMSE equaliser, best sampling phase; the residual ISI taken as "
                  "Gaussian) against AWGN, next to the link:", "",
                  "| SNR (dB) | front end | link | SINR loss of the bound (dB) | PSNR at the bound | PSNR link | "
                  "link - bound (dB) | link against AWGN (dB) |", "|---|---|---|---|---|---|---|---|"]
        for r in bound_rows:
            lb = r["psnr_linear_bound"]
            lines.append(f"| {r['snr_db']:.0f} | {r['impairment']} | {r['variant']} | {r['mmse_bound_loss_db']:.2f} | "
                         + (f"{lb:.2f} | {r['psnr_estimated']:.2f} | {r['psnr_estimated'] - lb:+.2f}" if lb is not None
                            else f"- | {r['psnr_estimated']:.2f} | -") + f" | {-r['cost_db']:+.2f} |")
    lines += ["", "Link overhead per image (a frame's preamble, training x2, coded header copies, pilots, postamble "
              "over its images):", ""]
    for v in result["links"]:
        r0 = next(r for r in result["rows"] if r["variant"] == v)
        lines.append(f"* `{v}` {json.dumps(VARIANTS[v])}: {r0['overhead_symbols_per_image']:.0f} symbols per image "
                     f"on top of the data, CBR {r0['cbr']:.4f} -> {r0['cbr_with_overhead']:.4f} with overhead.")
    lines += ["", "SCCDM_LINK_IMAGES_PER_FRAME=8 spreads the frame overhead over 8 images (one fade per frame then).",
              "Frames lost = deep fades where the burst is not detected or its header fails its CRC; the receiver "
              "then has no symbols for the image (an outage the genie channel never has). Frames lost and "
              "\"with a predicted header\" count images: the latter's frame failed its own header and was decoded "
              "with the header its neighbours predict (LinkConfig.predict_header; not lost).",
              "The two paths draw their fades and noise independently (the genie channel cannot share the "
              "link's draws), so on Rayleigh differences within about +-0.2 dB are sampling noise; a negative "
              "cost is such noise, not a gain.",
              "", "+- : 95 % confidence interval of the mean over images. Cost = perfect - estimated."]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    if args.out != "csi":
        return                                   # the plot belongs to the main table
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        kinds = sorted({r["kind"] for r in result["rows"]})
        fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            rs = [r for r in result["rows"] if r["kind"] == kind]
            rp = [r for r in rs if r["variant"] == rs[0]["variant"]]
            ax.errorbar([r["snr_db"] for r in rp], [r["psnr_perfect"] for r in rp], [r["ci95_perfect"] for r in rp],
                        marker="o",
                        label="perfect CSI (genie)")
            for v in result["links"]:
                rv = [r for r in rs if r["variant"] == v]
                ax.errorbar([r["snr_db"] for r in rv], [r["psnr_estimated"] for r in rv],
                            [r["ci95_estimated"] for r in rv], marker="s", label=f"estimated CSI + SNR (link, {v})")
            ax.set(title=f"{kind}, {args.model}", xlabel="SNR per symbol (dB)", ylabel="PSNR (dB)")
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        fig.savefig(RESULTS / "csi.png", dpi=120)
    except ImportError:
        print("matplotlib missing: no plot")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=200, help="CIFAR-10 test images")
    p.add_argument("--data", default=None, help="CIFAR folder (default: sccdm.data's)")
    p.add_argument("--snrs", type=float, nargs="+", default=[0, 3, 6, 9, 12, 15])
    p.add_argument("--kinds", nargs="+", default=["rayleigh", "awgn"], choices=["rayleigh", "awgn"])
    p.add_argument("--model", default="sc-cdm-cpu")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--sps", type=int, default=4)
    p.add_argument("--cfo", type=float, default=1e-4)
    p.add_argument("--variants", nargs="+", default=["default", "robust"], choices=list(VARIANTS))
    p.add_argument("--impairments", nargs="+", default=["none"], choices=list(IMPAIRMENTS))
    p.add_argument("--out", default=None, help="results file stem (default csi, or csi-frontend with impairments)")
    p.add_argument("--refine", action="store_true", help="also run the diffusion refiner (slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--header-match", type=int, default=0, metavar="N",
                   help="instead: measure the header prediction's match (N draws per cell; see header_match)")
    args = p.parse_args(argv)
    if args.header_match:
        args.out = args.out or "csi-header-predict-match"
        t0 = time.time()
        write_match(header_match(args.header_match, args.seed), args, time.time() - t0)
        print(f"wrote {RESULTS / (args.out + '.md')}")
        return 0
    if args.n < 1 or args.batch < 1:
        p.error("--n and --batch must be >= 1")
    args.out = args.out or ("csi" if args.impairments == ["none"] else "csi-frontend")
    write(run(args), args)
    print(f"wrote {RESULTS / (args.out + '.json')}, {args.out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
