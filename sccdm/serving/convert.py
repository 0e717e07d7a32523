"""The one place where tensors become protobuf messages and back, with validation.

Every check raises :class:`InvalidInput` (a ValueError) with a message a person
can act on; the servers turn it into INVALID_ARGUMENT, the gateway into HTTP 422.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
from google.protobuf import json_format, struct_pb2

from ..rpc import sccdm_pb2 as pb

__all__ = ["InvalidInput", "TooLarge", "DTYPES", "tensor_to_proto", "proto_to_tensor", "require_finite",
           "images_from_encode", "info_to_proto", "png_bytes", "dict_to_struct", "struct_to_dict", "check_snr",
           "frame_power", "check_tx_snr", "received_noise_var", "decode_reply_bytes", "check_decode_reply"]

SNR_RANGE_DB = (-20.0, 40.0)


class InvalidInput(ValueError):
    """The request cannot be served as sent (answered with INVALID_ARGUMENT)."""


class TooLarge(InvalidInput):
    """The answer would exceed the message size limit (answered with RESOURCE_EXHAUSTED, as gRPC itself
    answers an oversize message, but before any computation is spent on it)."""


# name -> (numpy dtype, torch dtype, bytes per element)
DTYPES = {
    "float32": (np.dtype("<f4"), torch.float32, 4),
    "complex64": (np.dtype("<c8"), torch.complex64, 8),
    "uint8": (np.dtype("u1"), torch.uint8, 1),
    "bool": (np.dtype("?"), torch.bool, 1),
}
_TORCH_TO_NAME = {v[1]: k for k, v in DTYPES.items()}


def tensor_to_proto(t: torch.Tensor) -> pb.Tensor:
    """Any tensor of a dtype in :data:`DTYPES` -> :class:`sccdm.v1.Tensor` (moved to CPU, C order)."""
    if t.dtype not in _TORCH_TO_NAME:
        raise TypeError(f"cannot send a tensor of dtype {t.dtype}; supported: {sorted(DTYPES)}")
    name = _TORCH_TO_NAME[t.dtype]
    arr = t.detach().cpu().contiguous().numpy().astype(DTYPES[name][0], copy=False)
    return pb.Tensor(shape=list(t.shape), dtype=name, data=arr.tobytes())


def proto_to_tensor(msg: pb.Tensor, what: str, dtypes=None, ndim=None) -> torch.Tensor:
    """:class:`sccdm.v1.Tensor` -> CPU tensor, checking dtype, shape and payload length.

    what: how to name the field in errors ("frame.symbols"); dtypes: allowed dtype
    names; ndim: allowed numbers of dimensions (int or tuple).
    """
    if msg.dtype not in DTYPES:
        raise InvalidInput(f"{what}: unknown dtype {msg.dtype!r}; use one of {sorted(DTYPES)}")
    if dtypes is not None and msg.dtype not in dtypes:
        raise InvalidInput(f"{what}: dtype must be {' or '.join(dtypes)}, got {msg.dtype}")
    shape = tuple(int(s) for s in msg.shape)
    if ndim is not None and len(shape) not in ((ndim,) if isinstance(ndim, int) else ndim):
        raise InvalidInput(f"{what}: expected {ndim} dimensions, got shape {list(shape)}")
    if any(s < 0 for s in shape):
        raise InvalidInput(f"{what}: negative dimension in shape {list(shape)}")
    npd, _, itemsize = DTYPES[msg.dtype]
    want = math.prod(shape) * itemsize
    if len(msg.data) != want:
        raise InvalidInput(f"{what}: payload is {len(msg.data)} bytes but shape {list(shape)} of {msg.dtype} "
                           f"needs {want} bytes")
    arr = np.frombuffer(msg.data, dtype=npd).reshape(shape)
    if msg.dtype == "bool":
        raw = np.frombuffer(msg.data, dtype=np.uint8)
        if raw.size and raw.max() > 1:
            raise InvalidInput(f"{what}: bool payload bytes must be 0 or 1")
    return torch.from_numpy(arr.copy())


def require_finite(t: torch.Tensor, what: str) -> torch.Tensor:
    """Refuse NaN / infinity (a corrupted frame must not reach the model)."""
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bad.any():
            n = int(bad.sum())
            idx = tuple(int(i) for i in bad.nonzero()[0])
            raise InvalidInput(f"{what}: {n} value(s) are NaN or infinite (first at index {list(idx)})")
    return t


def check_snr(snr_db: float, what: str = "snr_db") -> float:
    lo, hi = SNR_RANGE_DB
    if not (math.isfinite(snr_db) and lo <= snr_db <= hi):
        raise InvalidInput(f"{what} must be a number in [{lo:g}, {hi:g}] dB, got {snr_db!r}")
    return float(snr_db)


def check_cbr(cbr: float, what: str = "cbr") -> float:
    """A requested bandwidth ratio: finite, in (0, 1] channel uses per real pixel value."""
    if not (math.isfinite(cbr) and 0 < cbr <= 1):
        raise InvalidInput(f"{what} must be in (0, 1] (channel uses per real pixel value), got {cbr}")
    return float(cbr)


def images_from_encode(req: pb.EncodeRequest, max_pixels: int) -> torch.Tensor:
    """The images of an EncodeRequest -> float32 [B, 3, H, W] in [0, 1].

    A uint8 input is converted exactly as :func:`sccdm.data.image_to_tensor` does,
    so a networked run matches the in-process pipeline bit for bit.
    """
    from ..data import ImageDecodeError, decode_image_bytes, image_to_tensor

    which = req.WhichOneof("input")
    if which is None:
        raise InvalidInput("no input: set either `image` (file bytes) or `tensor`")
    if which == "image":
        try:
            return image_to_tensor(decode_image_bytes(req.image, max_pixels))[None]
        except ImageDecodeError as e:
            raise InvalidInput(str(e)) from None
    t = proto_to_tensor(req.tensor, "tensor", dtypes=("uint8", "float32"), ndim=(3, 4))
    if t.ndim == 3:
        t = t[None]
    if t.dtype == torch.uint8:
        if t.shape[-1] != 3:
            raise InvalidInput(f"tensor: uint8 images must be [B, H, W, 3], got {list(t.shape)}")
        t = image_to_tensor(t.numpy())
    else:
        if t.shape[1] != 3:
            raise InvalidInput(f"tensor: float32 images must be [B, 3, H, W], got {list(t.shape)}")
        require_finite(t, "tensor")
        if t.numel() and (t.min() < 0 or t.max() > 1):
            raise InvalidInput("tensor: float32 pixel values must lie in [0, 1]")
    b, _, h, w = t.shape
    if b == 0 or h == 0 or w == 0:
        raise InvalidInput(f"tensor: empty image batch, shape {list(t.shape)}")
    if h * w > max_pixels:
        raise InvalidInput(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels} (SCCDM_MAX_PIXELS)")
    return t.contiguous()


def info_to_proto(num_symbols: int, latent_shape, image_size, padded_size, model: str, power: float,
                  tx_snr_db, cbr: float) -> pb.FrameInfo:
    return pb.FrameInfo(num_symbols=int(num_symbols), latent_shape=[int(x) for x in latent_shape],
                        geometry=pb.ImageGeometry(height=int(image_size[0]), width=int(image_size[1]),
                                                  padded_height=int(padded_size[0]),
                                                  padded_width=int(padded_size[1])),
                        model=model, transmit_power=float(power), tx_snr_db=[float(s) for s in tx_snr_db],
                        cbr=float(cbr))


def frame_power(info: pb.FrameInfo) -> float:
    """FrameInfo.transmit_power, checked: the average power P per image the symbols were normalised to.

    The field has no presence (plain proto3 double), so a frame that never set it reads 0.0 and
    cannot be told from one that set 0 - 0 therefore means "unset" = the default P = 1, which a
    power-0 transmission (all symbols 0) could not use anyway.
    """
    p = float(info.transmit_power)
    if p == 0.0:
        return 1.0
    if not (math.isfinite(p) and p > 0):
        raise InvalidInput(f"frame.info.transmit_power must be a finite power > 0 (0 or unset = 1.0), got {p!r}")
    return p


def check_tx_snr(info: pb.FrameInfo, batch: int) -> None:
    """FrameInfo.tx_snr_db: one value for the whole batch or one per image, each a valid SNR."""
    n = len(info.tx_snr_db)
    if n not in (1, batch):
        raise InvalidInput(f"frame.info.tx_snr_db has {n} values for {batch} image(s): give 1 (shared by the "
                           f"batch) or {batch} (one per image)")
    for s in info.tx_snr_db:
        check_snr(s, "frame.info.tx_snr_db")


# snr_db and noise_var of a frame "agree" when they give the same SNR to within this (float32 rounding
# of noise_var is ~1e-6 dB; a client that mixed up units or powers is off by far more)
SNR_AGREEMENT_DB = 0.01


def received_noise_var(frame: pb.ReceivedFrame, batch: int, power: float) -> torch.Tensor:
    """The noise variance per image the receiver equalises with: float32 [B].

    noise_var is required and wins; snr_db is optional. Both given: unless the CSI was estimated, they
    must describe the same channel, snr_db = 10 log10(P / noise_var) with P the frame's transmit power,
    or the frame is refused rather than one of them silently ignored. An estimated frame (a radio
    backend) reports in snr_db its per-image SNR estimate including the fading gain |h|^2, which differs
    from P / noise_var by design, so it is only checked for count and finiteness.
    """
    if len(frame.noise_var) != batch:
        raise InvalidInput(f"frame.noise_var has {len(frame.noise_var)} values, expected one per image ({batch})")
    nv = torch.tensor(list(frame.noise_var), dtype=torch.float32)
    if not bool(torch.isfinite(nv).all()) or bool((nv <= 0).any()):
        raise InvalidInput(f"frame.noise_var must be finite and > 0, got {nv.tolist()}")
    if not frame.snr_db:
        return nv
    if len(frame.snr_db) != batch:
        raise InvalidInput(f"frame.snr_db has {len(frame.snr_db)} values, expected none or one per image ({batch})")
    snr = [float(s) for s in frame.snr_db]
    if not all(math.isfinite(s) for s in snr):
        raise InvalidInput(f"frame.snr_db must be finite, got {snr}")
    if frame.csi_source == "estimated":
        return nv
    for i, (s, v) in enumerate(zip(snr, nv.tolist())):
        implied = 10.0 * math.log10(power / v)
        if abs(implied - s) > SNR_AGREEMENT_DB:
            raise InvalidInput(
                f"frame.snr_db[{i}] = {s:g} dB but frame.noise_var[{i}] = {v:g} at transmit power {power:g} "
                f"means {implied:.4f} dB; noise_var is what the receiver uses: send it alone, or both consistent "
                f"(snr_db = 10 log10(P / noise_var))")
    return nv


# Bounds of the bytes of a DecodeResponse, used to refuse a reply gRPC could not send before computing it.
# PNG: png_bytes writes deflate level 1; incompressible data is stored (raw rows, a filter byte each) with
# block, zlib and chunk headers around it - measured +0.04 % on noise, bounded here by +0.4 % + 1 KiB.
# Every field: a tag and a length varint (< 16 bytes); the scalars and the Tensor headers fit the slack.
_REPLY_SLACK = 4096


def _png_bound(h: int, w: int) -> int:
    raw = h * (3 * w + 1)
    return raw + raw // 256 + 1024 + 16


def decode_reply_bytes(batch: int, h: int, w: int, png: bool, tensor: bool, refined: bool) -> int:
    """An upper bound of the serialized DecodeResponse for ``batch`` h x w images: PNGs and/or float32
    tensors [B, 3, H, W], twice when refined (the unrefined outputs come along)."""
    copies = 2 if refined else 1
    n = batch * 8 + _REPLY_SLACK  # eff_snr_db, scalars, timings
    if png:
        n += copies * batch * _png_bound(h, w)
    if tensor:
        n += copies * (4 * batch * 3 * h * w + 64)
    return n


def check_decode_reply(batch: int, h: int, w: int, png: bool, tensor: bool, refined: bool, limit: int) -> None:
    """Refuse (TooLarge) a Decode whose answer could exceed ``limit`` bytes, naming what to turn off."""
    need = decode_reply_bytes(batch, h, w, png, tensor, refined)
    if need <= limit:
        return
    tries = (["PNGs only (want_png=true, want_tensor=false; float32 is 4 bytes a value, PNG at most ~1)"]
             if tensor else []) \
        + (["refine=false (the unrefined outputs double the reply)"] if refined else []) \
        + (["fewer images per frame"] if batch > 1 else [])
    raise TooLarge(f"the reply for {batch} image(s) of {w}x{h} could reach {need / 2**20:.1f} MiB, over the "
                   f"message limit of {limit / 2**20:g} MiB (SCCDM_MAX_MESSAGE_MB); ask for "
                   + (", or ".join(tries) if tries else "a smaller image"))


def png_bytes(img: torch.Tensor) -> list[bytes]:
    """float [B, 3, H, W] in [0, 1] -> one PNG file per image (rounded to uint8)."""
    from PIL import Image

    from ..data import tensor_to_image

    out = []
    for arr in tensor_to_image(img.reshape(-1, *img.shape[-3:])):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def dict_to_struct(d: dict | None) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    if d:
        s.update({k: (v if isinstance(v, (int, float, str, bool, type(None), list, dict)) else str(v))
                  for k, v in d.items()})
    return s


def struct_to_dict(s: struct_pb2.Struct) -> dict:
    return json_format.MessageToDict(s)
