"""Header-less JPEG: send only the entropy-coded payload, re-attach the standard headers at the receiver.

A 32x32 baseline JFIF file is 650-950 bytes, about 620 of them headers (JFIF APP0,
quantisation tables, frame header, Huffman tables, scan header). Those headers
depend only on (quality, height, width, chroma subsampling) as long as the encoder
uses the standard Huffman tables (``optimize=False``), so both ends can rebuild
them and the link carries only the scan data between the SOS segment and EOI.

Trap (REFERENCE section 5): the CIFAR-10 copy in shared/data was stored as JPEG at
quality ~75, so re-encoding near 75 returns the stored file almost bit for bit.
Every quality here is capped at :data:`MAX_QUALITY` = 70.
"""
from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image

from .common import decode_rgb, highest_fitting

__all__ = ["MAX_QUALITY", "QUALITY_LADDER", "SUBSAMPLING", "encode_jpeg", "split_jpeg", "header_for",
           "jpeg_payload", "decode_payload", "best_fitting_quality"]

MAX_QUALITY = 70
SUBSAMPLING = 2  # Pillow's code for 4:2:0
# 32 qualities so the choice costs 5 bits of side information. Quality 2 is left out
# because libjpeg clips the quantisers at 255 for q <= 2, so q2 == q1 byte for byte.
QUALITY_LADDER = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 26, 28, 30, 33, 36,
                  40, 44, 48, 52, 56, 60, 65, 70)
SOS, EOI = 0xDA, b"\xff\xd9"


def encode_jpeg(img: np.ndarray, quality: int, subsampling: int = SUBSAMPLING) -> bytes:
    """img: uint8 [H, W, 3] -> a baseline JFIF file with the standard Huffman tables."""
    if not 1 <= quality <= MAX_QUALITY:
        raise ValueError(f"JPEG quality must be in [1, {MAX_QUALITY}] (the data was stored at ~75), got {quality}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, "JPEG", quality=int(quality), subsampling=subsampling,
                                                     optimize=False, progressive=False)
    return buf.getvalue()


def split_jpeg(data: bytes) -> tuple[bytes, bytes]:
    """A baseline JPEG file -> (headers up to and including the SOS segment, entropy-coded payload without EOI)."""
    if data[:2] != b"\xff\xd8" or data[-2:] != EOI:
        raise ValueError("not a complete JPEG file (no SOI at the start or no EOI at the end)")
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {i}")
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker == SOS:
            return data[:i + 2 + length], data[i + 2 + length:-2]
        i += 2 + length
    raise ValueError("JPEG file has no SOS segment")


@lru_cache(maxsize=4096)
def header_for(quality: int, height: int, width: int, subsampling: int = SUBSAMPLING) -> bytes:
    """The headers every image of this (quality, size, subsampling) shares; the receiver's copy."""
    return split_jpeg(encode_jpeg(np.zeros((height, width, 3), np.uint8), quality, subsampling))[0]


def jpeg_payload(img: np.ndarray, quality: int) -> bytes:
    """uint8 [H, W, 3] -> the entropy-coded bytes alone (what goes on the air)."""
    header, payload = split_jpeg(encode_jpeg(img, quality))
    if header != header_for(quality, img.shape[0], img.shape[1]):
        raise RuntimeError("JPEG headers depend on the image content; the header-less scheme needs standard tables")
    return payload


def decode_payload(payload: bytes, quality: int, height: int, width: int) -> np.ndarray:
    """Rebuild the file from the known headers + payload (trailing zero padding is allowed) -> uint8 [H, W, 3].

    Raises ValueError when the bytes do not decode to an image of that size.
    """
    return decode_rgb(header_for(quality, height, width) + payload + EOI, "JPEG payload", height, width)


def best_fitting_quality(img: np.ndarray, max_bytes: int, ladder=QUALITY_LADDER) -> tuple[int, bytes] | None:
    """The highest quality of ``ladder`` whose payload fits in ``max_bytes`` -> (ladder index, payload), or None.

    Binary search (payload size grows with quality), then a check of the next rungs
    because the growth is not strictly monotone.
    """
    cache: dict[int, bytes] = {}

    def size(i):
        if i not in cache:
            cache[i] = jpeg_payload(img, ladder[i])
        return len(cache[i])

    best = highest_fitting(len(ladder), size, max_bytes)
    if best is None:
        return None
    return best, cache[best]
