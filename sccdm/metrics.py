"""Image quality metrics on float tensors in [0, 1], shape [B, 3, H, W] (per-image results: float [B])."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["psnr", "mse", "ssim", "ms_ssim", "MS_SSIM_MIN_SIDE", "psnr_of_mean_mse", "mean_ci95"]


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x.float() - y.float()).pow(2).flatten(1).mean(dim=1)


def psnr(x: torch.Tensor, y: torch.Tensor, max_db: float = 100.0) -> torch.Tensor:
    """Per-image PSNR in dB (peak 1.0), capped at ``max_db`` for identical images."""
    return (10 * torch.log10(1.0 / mse(x, y).clamp_min(1e-20))).clamp(max=max_db)


def psnr_of_mean_mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """PSNR of the mean MSE over the set (WITT's convention)."""
    return float(10 * math.log10(1.0 / max(float(mse(x, y).mean()), 1e-20)))


def _gauss(size: int, sigma: float, device) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size, device=device) - size // 2) ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None].repeat(3, 1, 1, 1)


def _ssim_parts(x, y, win):
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_x, mu_y = F.conv2d(x, win, groups=3), F.conv2d(y, win, groups=3)
    sxx = F.conv2d(x * x, win, groups=3) - mu_x ** 2
    syy = F.conv2d(y * y, win, groups=3) - mu_y ** 2
    sxy = F.conv2d(x * y, win, groups=3) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x ** 2 + mu_y ** 2 + c1)
    return (lum * cs).flatten(1).mean(1), cs.flatten(1).mean(1)


def ssim(x: torch.Tensor, y: torch.Tensor, win_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-image SSIM (Gaussian window; shrinks for images smaller than the window)."""
    win_size = min(win_size, x.shape[-1], x.shape[-2])
    win = _gauss(win_size, sigma, x.device)
    return _ssim_parts(x.float(), y.float(), win)[0]


MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_MIN_SIDE = (11 - 1) * 16 + 1  # 5 scales of an 11-px window


def ms_ssim(x: torch.Tensor, y: torch.Tensor, win_size: int = 11) -> torch.Tensor:
    """Per-image MS-SSIM over 5 scales; needs sides >= (win_size - 1) * 16 + 1 (161 px)."""
    if min(x.shape[-2:]) < (win_size - 1) * 16 + 1:
        raise ValueError(f"MS-SSIM needs images of at least {(win_size - 1) * 16 + 1} px per side")
    win = _gauss(win_size, 1.5, x.device)
    x, y = x.float(), y.float()
    vals = []
    for i in range(len(MS_WEIGHTS)):
        s, cs = _ssim_parts(x, y, win)
        vals.append(cs.clamp_min(1e-6) if i < len(MS_WEIGHTS) - 1 else s.clamp_min(1e-6))
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    w = torch.tensor(MS_WEIGHTS, device=x.device)
    return torch.prod(torch.stack(vals, 1) ** w, dim=1)


def mean_ci95(v: torch.Tensor) -> tuple[float, float]:
    """(mean, half-width of the 95 % normal confidence interval)."""
    v = v.double().flatten()
    n = v.numel()
    if n < 2:
        return float(v.mean()), 0.0
    return float(v.mean()), float(1.96 * v.std(unbiased=True) / math.sqrt(n))
