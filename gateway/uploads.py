"""Checks on an uploaded image before it costs anything: size, header, pixel count, decodability."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from sccdm.data import ImageDecodeError, decode_image_bytes

from .errors import GatewayError


async def read_limited(upload, max_bytes: int) -> bytes:
    """Read an UploadFile, refusing more than ``max_bytes`` (413) without reading it all."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise GatewayError(413, f"upload is larger than {max_bytes / 2**20:g} MiB (SCCDM_MAX_UPLOAD_MB)")
    return data


def decode_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """Image file bytes -> uint8 [H, W, 3]; 400 empty, 413 too many pixels / bomb, 422 not an image."""
    if not data:
        raise GatewayError(400, "empty upload: the `image` field has no bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size  # header only: a bomb is refused before any pixel is decoded
    except Image.DecompressionBombError as e:
        raise GatewayError(413, f"image refused as a decompression bomb: {e}") from None
    except Image.UnidentifiedImageError:
        raise GatewayError(422, f"the upload ({len(data)} bytes) is not an image format PIL can read; upload a PNG, "
                                f"JPEG, BMP or WebP file") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many types for broken headers
        raise GatewayError(422, f"not a readable image ({type(e).__name__}: {e}); upload a PNG, JPEG, BMP or WebP "
                                f"file") from None
    if w * h > max_pixels:
        raise GatewayError(413, f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels} (SCCDM_MAX_PIXELS)")
    try:
        return decode_image_bytes(data, max_pixels)
    except ImageDecodeError as e:
        raise GatewayError(422, f"{e}; the file may be truncated or corrupted") from None
