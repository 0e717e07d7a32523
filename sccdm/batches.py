"""Training batches drawn from images held on the training device, augmented a batch at a time.

The data set is decoded once (:mod:`sccdm.data`) into uint8 and moved to the device
(the GPU when there is one): a batch is one gather, one flip and one crop over the
whole batch, so the accelerator is not left waiting on per-image Python work.

* :class:`DeviceImages`: same-size images (CIFAR-10): random order without
  replacement per epoch, horizontal flips, reflect-padded random crops of the
  original size.
* :class:`PhotoCrops`: photographs of different sizes: random square crops of
  ``crop`` pixels (and flips) from randomly chosen photos.

Both draw every random number from the ``torch.Generator`` they are given, so a
run is reproducible from its seed and resumable from the generator's state.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DeviceImages", "PhotoCrops"]


def _flip_some(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


class DeviceImages:
    """uint8 images [N, H, W, 3] -> float batches [B, 3, H, W] in [0, 1] on ``device``."""

    def __init__(self, images: np.ndarray, device: torch.device | str = "cpu", augment: bool = True, pad: int = 4):
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).contiguous()
        self.device = torch.device(device)
        self.augment, self.pad = augment, pad
        self._order: torch.Tensor | None = None
        self._pos = 0

    def __len__(self) -> int:
        return self.images.shape[0]

    def _indices(self, b: int, gen: torch.Generator) -> torch.Tensor:
        out = []
        while b > 0:
            if self._order is None or self._pos >= len(self):
                self._order = torch.randperm(len(self), generator=gen, device=self.device)
                self._pos = 0
            take = self._order[self._pos:self._pos + b]
            self._pos += take.numel()
            b -= take.numel()
            out.append(take)
        return torch.cat(out)

    def _crop(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.pad
        xp = F.pad(x, (p, p, p, p), mode="reflect")
        dy = torch.randint(0, 2 * p + 1, (b,), generator=gen, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=gen, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None, None]
        ci = torch.arange(c, device=x.device)[None, :, None, None]
        return xp[bi, ci, rows, cols]

    def batch(self, b: int, gen: torch.Generator) -> torch.Tensor:
        """b images float [b, 3, H, W]; gen must live on ``device``."""
        x = self.images[self._indices(b, gen)].float().div_(255.0)
        if self.augment:
            x = _flip_some(x, gen)
            if self.pad:
                x = self._crop(x, gen)
        return x

    def state_dict(self) -> dict:
        return {"order": None if self._order is None else self._order.cpu(), "pos": self._pos}

    def load_state_dict(self, st: dict) -> None:
        self._order = None if st.get("order") is None else st["order"].to(self.device)
        self._pos = int(st.get("pos", 0))


class PhotoCrops:
    """Photos of any size (a list of uint8 [H, W, 3], each side >= crop) -> float crops [B, 3, crop, crop]."""

    def __init__(self, photos: list[np.ndarray], crop: int, device: torch.device | str = "cpu"):
        small = [p.shape[:2] for p in photos if min(p.shape[:2]) < crop]
        if small:
            raise ValueError(f"{len(small)} photos are smaller than the {crop}-pixel crop (e.g. {small[0]})")
        self.device = torch.device(device)
        self.photos = [torch.from_numpy(np.require(p, requirements=["C", "W"])).to(self.device).permute(2, 0, 1) for p in photos]
        self.crop = crop
        # Larger photos hold more distinct crops: pick a photo with probability proportional to its area.
        area = torch.tensor([float(p.shape[1] * p.shape[2]) for p in self.photos])
        self._weights = (area / area.sum()).to(self.device)

    def __len__(self) -> int:
        return len(self.photos)

    def batch(self, b: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.multinomial(self._weights, b, replacement=True, generator=gen).tolist()
        u = torch.rand(b, 2, generator=gen, device=self.device).tolist()
        s = self.crop
        crops = []
        for i, (uy, ux) in zip(idx, u):
            p = self.photos[i]
            y, x = int(uy * (p.shape[1] - s + 1)), int(ux * (p.shape[2] - s + 1))
            crops.append(p[:, y:y + s, x:x + s])
        return _flip_some(torch.stack(crops).float().div_(255.0), gen)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, st: dict) -> None:
        pass
