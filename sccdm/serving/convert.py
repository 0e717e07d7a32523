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

__all__ = ["InvalidInput", "DTYPES", "tensor_to_proto", "proto_to_tensor", "require_finite", "images_from_encode",
           "info_to_proto", "png_bytes", "dict_to_struct", "struct_to_dict", "check_snr"]

SNR_RANGE_DB = (-20.0, 40.0)


class InvalidInput(ValueError):
    """The request cannot be served as sent (answered with INVALID_ARGUMENT)."""


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
