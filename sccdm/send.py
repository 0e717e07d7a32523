"""``sccdm send IMAGE``: send an image through the gateway, save the received PNG, print the report.

    sccdm send photo.png --snr 10 --channel rayleigh --out out.png
    sccdm send astronaut --no-refine --seed 1          # a scikit-image sample image by name

IMAGE is a file, or the name of a scikit-image sample (astronaut, coffee, chelsea, ...).
The command waits up to --wait seconds for the gateway's /readyz, so it can follow
``sccdm stack up &`` directly.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import time
from pathlib import Path

DEFAULT_GATEWAY = "http://127.0.0.1:8000"


def image_bytes(spec: str) -> tuple[bytes, str]:
    """A file path or a scikit-image sample name -> (file bytes, name)."""
    p = Path(spec)
    if p.exists():
        return p.read_bytes(), p.name
    try:
        import numpy as np
        from PIL import Image
        from skimage import data as skdata
    except ImportError:
        skdata = None
    fn = getattr(skdata, spec, None) if skdata is not None else None
    if fn is None or not callable(fn):
        raise FileNotFoundError(f"{spec}: no such file, and not a scikit-image sample name (e.g. astronaut)")
    arr = np.asarray(fn())
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    buf = io.BytesIO()
    Image.fromarray(arr[..., :3].astype("uint8")).save(buf, format="PNG")
    return buf.getvalue(), f"{spec}.png"


def wait_ready(gateway: str, timeout_s: float, client=None) -> bool:
    """Poll ``gateway``/readyz until 200 or ``timeout_s`` passes."""
    import httpx
    client = client or httpx.Client(timeout=5)
    end = time.monotonic() + timeout_s
    while True:
        try:
            if client.get(f"{gateway}/readyz").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if time.monotonic() >= end:
            return False
        time.sleep(0.5)


def transmit(gateway: str, data: bytes, filename: str = "image.png", *, snr_db: float = 10.0, channel: str = "awgn",
             refine: bool = True, seed: int | None = None, timeout_s: float = 300.0, client=None, **extra) -> dict:
    """POST /v1/transmit; returns the JSON report. Raises RuntimeError with the gateway's message on 4xx/5xx."""
    import httpx
    client = client or httpx.Client(timeout=timeout_s)
    # the gateway's deadline is this client's patience, not its 25 s default (a large photo on a CPU takes longer)
    form = {"snr_db": str(snr_db), "channel": channel, "refine": "true" if refine else "false",
            "timeout_s": f"{timeout_s:g}"}
    if seed is not None:
        form["seed"] = str(seed)
    form.update({k: str(v) for k, v in extra.items() if v is not None})
    r = client.post(f"{gateway}/v1/transmit", data=form, files={"image": (filename, data, "application/octet-stream")},
                    headers={"Accept": "application/json"})
    if r.status_code != 200:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise RuntimeError(f"gateway answered HTTP {r.status_code}: {detail}")
    return r.json()


def format_report(rep: dict, out: str | None = None) -> str:
    ch = rep["channel"]
    lines = [
        f"model        {rep['model']}   image {rep['width']}x{rep['height']}",
        f"channel      {ch['kind']} {ch['snr_db']:g} dB"
        + (f", {ch['fading']} fading, CSI {ch['csi']}" if ch["kind"] == "rayleigh" else "")
        + (f", erasures {ch['erasure_prob']:g}" if ch["erasure_prob"] else "") + f"   seed {rep['seed']}",
        f"channel uses {rep['channel_uses']}   CBR {rep['cbr']:.4f}   est. SNR {rep['est_snr_db']:.2f} dB"
        f"   effective SNR {rep['eff_snr_db']:.2f} dB",
        f"PSNR         {rep['psnr_db']:.2f} dB   SSIM {rep['ssim']:.4f}" + ("   (refined)" if rep.get("refined", rep["refine"]) else ""),
    ]
    if "s_hat" in rep:
        lines.append(f"no refine    {rep['s_hat']['psnr_db']:.2f} dB   SSIM {rep['s_hat']['ssim']:.4f}")
    t = rep.get("timings_ms", {})
    if t:
        lines.append("timings ms   " + "  ".join(f"{k} {t[k]:.1f}" for k in
                                                ("encode", "channel", "decode", "refine", "total") if k in t))
    if out:
        lines.append(f"saved        {out}")
    return "\n".join(lines)


def run_demo(gateway_url: str, out: str = "sccdm-demo.png", snr_db: float = 10.0, seed: int = 0) -> int:
    """Send scikit-image's astronaut through the link at ``snr_db`` and print the report."""
    data, name = image_bytes("astronaut")
    print(f"demo: sending {name} (512x512) over AWGN at {snr_db:g} dB with refinement ...", flush=True)
    try:
        rep = transmit(gateway_url, data, name, snr_db=snr_db, channel="awgn", refine=True, seed=seed)
    except Exception as e:  # noqa: BLE001
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
    Path(out).write_bytes(base64.b64decode(rep["image"]))
    print(format_report(rep, out), flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="sccdm send", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", help="image file, or a scikit-image sample name (astronaut)")
    ap.add_argument("--snr", type=float, default=10.0, help="channel SNR in dB (default 10)")
    ap.add_argument("--channel", choices=("awgn", "rayleigh"), default="awgn")
    ap.add_argument("--out", default="out.png", help="where to save the received image (default out.png)")
    ap.add_argument("--gateway", default=DEFAULT_GATEWAY, help=f"gateway URL (default {DEFAULT_GATEWAY})")
    ap.add_argument("--refine", action=argparse.BooleanOptionalAction, default=True,
                    help="diffusion refinement (default on)")
    ap.add_argument("--seed", type=int, default=None, help="seed of channel and diffusion noise")
    ap.add_argument("--model", default=None)
    ap.add_argument("--fading", choices=("block", "fast"), default=None)
    ap.add_argument("--csi", choices=("mmse", "zf", "abs", "none"), default=None)
    ap.add_argument("--erasure-prob", type=float, default=None)
    ap.add_argument("--tx-snr", type=float, default=None, help="SNR the encoder assumes (default --snr)")
    ap.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the gateway to be ready")
    ap.add_argument("--json", action="store_true", help="print the whole JSON report (images elided)")
    args = ap.parse_args(argv)
    gateway = args.gateway.rstrip("/")
    try:
        data, name = image_bytes(args.image)
    except FileNotFoundError as e:
        print(f"sccdm send: {e}", file=sys.stderr)
        return 2
    if not wait_ready(gateway, args.wait):
        print(f"sccdm send: the gateway at {gateway} is not ready after {args.wait:g} s "
              f"(is `sccdm stack up` running? see {gateway}/readyz)", file=sys.stderr)
        return 1
    try:
        rep = transmit(gateway, data, name, snr_db=args.snr, channel=args.channel, refine=args.refine, seed=args.seed,
                       model=args.model, fading=args.fading, csi=args.csi, erasure_prob=args.erasure_prob,
                       tx_snr_db=args.tx_snr)
    except Exception as e:  # noqa: BLE001 - report, don't trace
        print(f"sccdm send: {e}", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_bytes(base64.b64decode(rep["image"]))
    if args.json:
        slim = {k: v for k, v in rep.items() if k not in ("image", "received_symbols")}
        if "s_hat" in slim:
            slim["s_hat"] = {k: v for k, v in slim["s_hat"].items() if k != "image"}
        print(json.dumps(slim, indent=2))
    else:
        print(format_report(rep, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
