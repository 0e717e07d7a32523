"""The /v1 API: send an image over the link (/v1/transmit), list models (/v1/models)."""
from __future__ import annotations

import asyncio
import base64
import secrets
import time
from typing import Literal

import torch
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response

from sccdm import metrics as quality
from sccdm.channels import ChannelConfig
from sccdm.data import decode_image_bytes, image_to_tensor
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert

from .errors import GatewayError
from .uploads import decode_upload, read_limited

router = APIRouter(prefix="/v1", tags=["link"])

MAX_CONSTELLATION = 512


def _b64(png: bytes) -> str:
    return base64.b64encode(png).decode("ascii")


def _constellation(y: torch.Tensor, n: int = MAX_CONSTELLATION) -> list[list[float]]:
    """Up to n received symbols of the first image, evenly spread over the frame: [[re, im], ...]."""
    row = y[0]
    idx = torch.linspace(0, row.numel() - 1, min(n, row.numel())).round().long()
    pts = row[idx]
    return [[round(float(a), 5), round(float(b), 5)] for a, b in zip(pts.real.tolist(), pts.imag.tolist())]


def _quality(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    return float(quality.psnr(x_hat, x)[0]), float(quality.ssim(x_hat, x)[0])


def _on_air(rx: pb.ReceivedFrame, h: int, w: int) -> dict | None:
    """What a radio backend really spent per image, framing overhead (preamble, header, pilots) included."""
    if not rx.HasField("extras"):
        return None
    from google.protobuf import json_format
    ex = json_format.MessageToDict(rx.extras)
    if "symbols_per_image_on_air" not in ex:
        return None
    uses = int(ex["symbols_per_image_on_air"])
    return {"channel_uses": uses, "overhead_factor": float(ex["overhead_factor"]), "cbr": uses / (3.0 * h * w)}


def _image_status(out: pb.DecodeResponse, rx: pb.ReceivedFrame) -> str:
    if out.image_status:
        return out.image_status[0]
    return rx.image_status[0] if rx.image_status else "ok"


def _validate_channel(channel, snr_db, fading, block_size, csi, erasure_prob, tx_snr_db) -> ChannelConfig:
    cfg = ChannelConfig(kind=channel, snr_db=snr_db, fading=fading or "block", block_size=block_size,
                        csi=csi or "mmse", erasure_prob=erasure_prob)
    try:
        cfg.validate()
        if tx_snr_db is not None:
            convert.check_snr(tx_snr_db, "tx_snr_db")
    except ValueError as e:
        raise GatewayError(422, str(e)) from None
    return cfg


def _timeout(cfg, timeout_s: float | None) -> float:
    if timeout_s is None:
        return cfg.request_timeout_s
    if timeout_s > cfg.max_request_timeout_s:
        raise GatewayError(422, f"timeout_s={timeout_s:g} is above the gateway's limit of "
                                f"{cfg.max_request_timeout_s:g} s (SCCDM_MAX_REQUEST_TIMEOUT_S)")
    return timeout_s


@router.post("/transmit", summary="Send an image through transmitter -> channel -> receiver",
             responses={200: {"description": "JSON report, or the PNG with `Accept: image/png`",
                              "content": {"image/png": {}}},
                        400: {"description": "empty upload"}, 413: {"description": "upload or image too large"},
                        422: {"description": "not an image, or a parameter out of range"},
                        503: {"description": "a backend is down"}, 504: {"description": "deadline exceeded"}})
async def transmit(
        request: Request,
        image: UploadFile = File(..., description="PNG, JPEG, BMP or WebP file"),
        channel: Literal["awgn", "rayleigh"] = Form("awgn", description="channel model"),
        snr_db: float = Form(10.0, description="channel SNR per complex symbol, dB, in [-20, 40]"),
        refine: bool = Form(True, description="run the diffusion refinement (models that have one; for one "
                                              "without, the report says refined: false)"),
        seed: int | None = Form(None, ge=0, lt=2**63, description="seed of channel and diffusion noise; "
                                                                  "omitted: drawn and reported"),
        fading: Literal["block", "fast"] | None = Form(None, description="Rayleigh fading: block (default) or fast"),
        block_size: int = Form(0, ge=0, description="symbols per fading block, 0 = one per image"),
        csi: Literal["mmse", "zf", "abs", "none"] | None = Form(None, description="receiver CSI mode (default mmse)"),
        erasure_prob: float = Form(0.0, description="probability a symbol is lost, in [0, 1)"),
        tx_snr_db: float | None = Form(None, description="SNR the encoder assumes (default: snr_db)"),
        model: str = Form("", description="zoo model name (default: the services' SCCDM_MODEL, or their "
                                          "SCCDM_PHOTO_MODEL for an image whose smaller side is >= "
                                          "SCCDM_PHOTO_MIN_SIDE; on a rayleigh channel their Rayleigh-trained "
                                          "SCCDM_RAYLEIGH_MODEL / SCCDM_RAYLEIGH_PHOTO_MODEL, "
                                          "SCCDM_RAYLEIGH_FAST_MODEL for a thumbnail on fast fading); the report's "
                                          "`model` names the one used"),
        cbr: float | None = Form(None, description="bandwidth, channel uses per real pixel value: a "
                                                  "rate-adaptive model sends its nearest rate (1/48, 1/24, 1/12); "
                                                  "omitted: the model's own; the report gives the k and CBR spent"),
        timeout_s: float | None = Form(None, gt=0, description="deadline of this request in seconds, passed to "
                                                             "every backend call (default SCCDM_REQUEST_TIMEOUT_S, "
                                                             "at most SCCDM_MAX_REQUEST_TIMEOUT_S); give more for "
                                                             "large photographs on a CPU"),
):
    cfg = request.app.state.cfg
    t_start = time.monotonic()
    deadline = t_start + _timeout(cfg, timeout_s)
    ch = _validate_channel(channel, snr_db, fading, block_size, csi, erasure_prob, tx_snr_db)
    seed = secrets.randbits(63) if seed is None else seed
    data = await read_limited(image, int(cfg.max_upload_mb * 2**20))
    loop = asyncio.get_running_loop()
    img = await loop.run_in_executor(None, decode_upload, data, cfg.max_pixels)
    t = {"start": t_start, "decoded": time.monotonic()}
    # float32 outputs give metrics identical to the in-process pipeline; a very large image whose
    # float outputs would not fit one gRPC message is measured on its PNG (uint8) instead
    h, w = img.shape[:2]
    want_tensor = h * w * 3 * 4 * (2 if refine else 1) + h * w * 3 * 2 < 0.8 * cfg.max_message_bytes
    frame, rx, out = await _through_the_link(request.app.state.backends, img, ch, seed, refine, model, cbr,
                                             tx_snr_db, want_tensor, deadline, t)
    status = _image_status(out, rx)
    if "image/png" in request.headers.get("accept", "") and "application/json" not in request.headers.get("accept", ""):
        if status == "lost":  # a guess from no symbols is not passed off as the image that was sent
            raise GatewayError(502, f"the channel lost this image's frame: {rx.link_status or 'no symbols arrived'}",
                               stage="channel", image_status=status, link_status=rx.link_status)
        return Response(out.png[0], media_type="image/png",
                        headers={"X-SCCDM-Seed": str(seed), "X-SCCDM-Channel-Uses": str(frame.info.num_symbols),
                                 "X-SCCDM-Image-Status": status})
    rep = await loop.run_in_executor(None, _report, img, frame, rx, out, ch, seed, refine, want_tensor, status)
    rep["timings_ms"] = {
        "upload_decode": (t["decoded"] - t["start"]) * 1000, "encode": (t["enc"] - t["decoded"]) * 1000,
        "channel": (t["ch"] - t["enc"]) * 1000, "decode": (t["rx"] - t["ch"]) * 1000,
        "refine": out.timings.refine_ms, "total": (time.monotonic() - t["start"]) * 1000,
        "transmitter_compute": frame.timings.compute_ms, "receiver_compute": out.timings.compute_ms,
        "receiver_batch_requests": out.timings.batch_requests,
    }
    return rep


async def _through_the_link(backends, img, ch, seed, refine, model, cbr, tx_snr_db, want_tensor, deadline, t):
    """Encode -> channel -> decode through the three services; t gets each stage's end time."""
    frame = await backends.call("transmitter", backends.transmitter.Encode, pb.EncodeRequest(
        tensor=convert.tensor_to_proto(torch.from_numpy(img)),
        snr_db=ch.snr_db if tx_snr_db is None else tx_snr_db, model=model, cbr=cbr, channel=ch.kind,
        fading=ch.fading if ch.kind == "rayleigh" else ""), deadline)
    t["enc"] = time.monotonic()
    rx = await backends.call("channel", backends.channel.Transmit, pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind=ch.kind, snr_db=ch.snr_db, fading=ch.fading, block_size=ch.block_size, csi=ch.csi,
        erasure_prob=ch.erasure_prob, seed=seed)), deadline)
    t["ch"] = time.monotonic()
    out = await backends.call("receiver", backends.receiver.Decode, pb.DecodeRequest(
        frame=rx, refine=refine, seed=seed, want_png=True, want_tensor=want_tensor), deadline)
    t["rx"] = time.monotonic()
    return frame, rx, out


def _report(img, frame, rx, out, ch, seed, refine, want_tensor, status) -> dict:
    """The JSON report of one transmission: quality against the upload, the channel as used, the images."""
    h, w = img.shape[:2]
    x = image_to_tensor(img)[None]
    x_hat = (convert.proto_to_tensor(out.image, "image") if want_tensor
             else image_to_tensor(decode_image_bytes(out.png[0], h * w))[None])
    y = convert.proto_to_tensor(rx.symbols, "symbols")
    p, s = _quality(x_hat, x)
    rep = {
        "model": out.model, "width": int(w), "height": int(h),
        "channel": {"kind": ch.kind, "snr_db": ch.snr_db, "fading": ch.fading, "block_size": ch.block_size,
                    "csi": ch.csi, "erasure_prob": ch.erasure_prob},
        # refine: what was asked; refined: whether it ran (a model without a refiner decodes without)
        "seed": seed, "refine": bool(refine), "refined": bool(out.refined),
        "psnr_db": p, "ssim": s, "image": _b64(out.png[0]), "image_mime": "image/png",
        "quality_from": "float32" if want_tensor else "png",
        "channel_uses": int(frame.info.num_symbols), "cbr": frame.info.cbr,
        "latent_shape": list(frame.info.latent_shape),
        "tx_snr_db": float(frame.info.tx_snr_db[0]), "est_snr_db": float(rx.snr_db[0]),
        "eff_snr_db": float(out.eff_snr_db[0]), "noise_var": float(rx.noise_var[0]),
        "csi_source": rx.csi_source, "csi_mode": rx.csi_mode, "backend": rx.backend,
        "erased_fraction": (1.0 - float(convert.proto_to_tensor(rx.erasure_mask, "mask").float().mean())
                            if rx.HasField("erasure_mask") else 0.0),
        "received_symbols": _constellation(y),
        # "ok", "erased" (some symbols lost) or "lost" (none arrived: the image is the decoder's guess
        # from nothing); link_status: the radio backend's one-line account, when it gave one
        "image_status": status, "link_status": rx.link_status,
    }
    air = _on_air(rx, h, w)
    if air:
        rep["on_air"] = air
    if out.refined:
        s_hat = (convert.proto_to_tensor(out.unrefined, "unrefined") if want_tensor
                 else image_to_tensor(decode_image_bytes(out.unrefined_png[0], h * w))[None])
        sp, ss = _quality(s_hat, x)
        rep["s_hat"] = {"psnr_db": sp, "ssim": ss, "image": _b64(out.unrefined_png[0]), "image_mime": "image/png"}
    return rep


@router.get("/models", summary="The zoo models the services can use")
async def models(request: Request):
    lst = await request.app.state.backends.models()
    from google.protobuf import json_format
    items = [json_format.MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
             for m in lst.models]
    default = next((m["name"] for m in items if m.get("is_default")), None)
    photo = next((m["name"] for m in items if m.get("is_photo_default")), None)
    rate = next((m["name"] for m in items if m.get("is_rate_default")), None)
    rate_thumb = next((m["name"] for m in items if m.get("is_rate_thumb_default")), None)
    fading = {kind: [m["name"] for m in items if kind in m.get("channel_default_for", [])] for kind in ("rayleigh", "rayleigh-fast")}
    return {"default": default, "photo_default": photo, "rate_default": rate,
            "rate_thumb_default": rate_thumb, "channel_defaults": fading,
            "models": items}
