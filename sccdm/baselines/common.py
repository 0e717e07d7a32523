"""What the separate-coding baselines share: the fallback image, tensor <-> uint8 conversion and the
search for the best quality that fits a bit budget."""
from __future__ import annotations

import io
from typing import Callable

import numpy as np
import torch
from PIL import Image

__all__ = ["FALLBACK_RGB", "fallback_images", "to_uint8", "from_uint8", "psnr_u8", "highest_fitting", "decode_rgb"]

# The CIFAR-10 training-set mean colour (the widely published per-channel means): what a
# receiver shows when nothing arrived, the least-MSE constant guess without the image.
FALLBACK_RGB = (0.4914, 0.4822, 0.4465)


def fallback_images(n: int, height: int, width: int) -> torch.Tensor:
    """float32 [n, 3, H, W], every pixel the mean colour."""
    return torch.tensor(FALLBACK_RGB, dtype=torch.float32).view(1, 3, 1, 1).expand(n, 3, height, width).clone()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [N, 3, H, W] in [0, 1] -> uint8 [N, H, W, 3] (rounded, what an image codec is given)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be float [N, 3, H, W], got shape {tuple(images.shape)}")
    return images.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(img: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [3, H, W] in [0, 1]."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).float().div(255.0).permute(2, 0, 1)


def psnr_u8(a: np.ndarray, b: np.ndarray, max_db: float = 50.0) -> float:
    """PSNR in dB of two uint8 images, capped at ``max_db`` (the stored-JPEG trap)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)) / 255.0 ** 2
    return min(max_db, 10 * np.log10(1.0 / max(mse, 1e-12)))


def highest_fitting(n: int, size: Callable[[int], int], max_bytes: int) -> int | None:
    """The highest index of a quality ladder of ``n`` rungs whose encoded size ``size(i)`` fits
    ``max_bytes``, or None. Binary search (size grows with quality), then a look at the next two
    rungs, because codecs' sizes are not strictly monotone in quality. ``size`` should cache."""
    lo, hi, best = 0, n - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if size(mid) <= max_bytes:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    if best is None:
        return None
    for j in range(best + 1, min(best + 3, n)):
        if size(j) <= max_bytes:
            best = j
    return best


def decode_rgb(data: bytes, what: str, height: int, width: int) -> np.ndarray:
    """An image file -> uint8 [H, W, 3]; ValueError naming ``what`` when it does not decode to H x W
    (what a receiver of damaged bits must expect)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            out = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as e:  # Pillow raises several types for corrupt files
        raise ValueError(f"{what} does not decode ({type(e).__name__}: {e})") from None
    if out.shape != (height, width, 3):
        raise ValueError(f"decoded {what} is {out.shape}, expected {(height, width, 3)}")
    return out
