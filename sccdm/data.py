"""Datasets: image folders (split/class/file, JPEG or PNG) and the CIFAR-10 python batches.

Images are decoded once into a uint8 array [N, H, W, 3] and cached as ``.npy``
beside a JSON index, so later runs start in a second. Training augmentation is
random horizontal flips and random crops with reflect padding.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["load_image_folder", "load_photo_folder", "center_crops", "load_eval_images", "load_cifar_batches", "load_split", "ImageArrayDataset", "find_cifar",
           "image_to_tensor", "tensor_to_image", "decode_image_bytes", "ImageDecodeError"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST = ["test_batch"]


class ImageDecodeError(ValueError):
    """Raised for bytes that are not a usable image (empty, truncated, too large, not an image)."""


def decode_image_bytes(data: bytes, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """Image file bytes -> uint8 [H, W, 3]. Refuses empty, truncated, oversized (bomb) input."""
    if not data:
        raise ImageDecodeError("empty image: the upload has no bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageDecodeError(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
            im.load()
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageDecodeError(f"image refused as a decompression bomb: {e}") from None
    except Exception as e:  # PIL raises many types for bad files
        raise ImageDecodeError(f"not a readable image ({type(e).__name__}: {e})") from None


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [N, H, W, 3] -> float32 [(N,) 3, H, W] in [0, 1]."""
    t = torch.from_numpy(np.require(img, requirements=["C", "W"])).float().div_(255.0)
    return t.permute(2, 0, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)


def tensor_to_image(t: torch.Tensor) -> np.ndarray:
    """float [(N,) 3, H, W] in [0, 1] -> uint8 [(N,) H, W, 3] (rounded)."""
    t = t.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return (t.permute(1, 2, 0) if t.ndim == 3 else t.permute(0, 2, 3, 1)).numpy()


def _cache_dir() -> Path:
    d = Path(os.environ.get("SCCDM_CACHE", Path.home() / ".cache" / "sccdm"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _list_images(root: Path) -> list[Path]:
    """Image files interleaved across classes (0000 of every class, then 0001, ...), so the
    first N images of a split are class-balanced, as in the original CIFAR-10 batches."""
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=lambda p: (p.stem, str(p.parent)))


def load_image_folder(root: str | Path, limit: int | None = None, cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Decode every image under ``root`` (``class/file`` layout) -> (uint8 [N, H, W, 3], int64 labels [N]).

    Files are taken in a fixed class-interleaved order, so ``limit`` picks the same,
    class-balanced images every time. All images must share one size (use :func:`sccdm.data.decode_image_bytes`
    for single images of any size).
    """
    root = Path(root)
    files = _list_images(root)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) under {root}")
    if limit is not None:
        files = files[:limit]
    classes = sorted({p.parent.name for p in files})
    key = hashlib.sha1(f"{root.resolve()}|{len(files)}|{files[0]}|{files[-1]}".encode()).hexdigest()[:16]
    npy = _cache_dir() / f"folder-{key}.npy"
    lab = _cache_dir() / f"folder-{key}.labels.npy"
    if cache and npy.exists() and lab.exists():
        return np.load(npy), np.load(lab)
    imgs = np.stack([np.asarray(Image.open(p).convert("RGB"), dtype=np.uint8) for p in files])
    labels = np.array([classes.index(p.parent.name) for p in files], dtype=np.int64)
    if cache:
        np.save(npy, imgs)
        np.save(lab, labels)
    return imgs, labels


def load_photo_folder(root: str | Path, min_side: int = 0, limit: int | None = None) -> list[np.ndarray]:
    """Every image under ``root`` (any sizes, any depth) -> list of uint8 [H, W, 3], sorted by path.

    Images whose shorter side is below ``min_side`` are skipped (they cannot give a crop that large).
    """
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) under {root}")
    out = []
    for p in files:
        with Image.open(p) as im:
            if min(im.size) < min_side:
                continue
            out.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
        if limit is not None and len(out) >= limit:
            break
    if not out:
        raise FileNotFoundError(f"no image under {root} has both sides >= {min_side} px")
    return out


def center_crops(photos: list[np.ndarray], size: int) -> np.ndarray:
    """Centre size x size crops of uint8 [H, W, 3] photos (each at least size on both sides) -> [N, size, size, 3]."""
    return np.stack([p[(p.shape[0] - size) // 2:(p.shape[0] - size) // 2 + size,
                       (p.shape[1] - size) // 2:(p.shape[1] - size) // 2 + size] for p in photos])


def load_cifar_batches(root: str | Path, split: str = "train", limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read the original ``cifar-10-batches-py`` pickles -> (uint8 [N, 32, 32, 3], labels [N])."""
    root = Path(root)
    names = CIFAR_TRAIN if split == "train" else CIFAR_TEST
    xs, ys = [], []
    for n in names:
        p = root / n
        if not p.exists():
            raise FileNotFoundError(f"CIFAR-10 batch {p} not found")
        with open(p, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(d[b"labels"], dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    return (x[:limit], y[:limit]) if limit is not None else (x, y)


def find_cifar(path: str | Path | None = None) -> Path:
    """Where the data lives: ``path``, else $SCCDM_DATA, else ./data, else ../shared/data (extracted to ./data)."""
    if path is not None and not Path(path).exists():
        raise FileNotFoundError(f"no data at {path}: pass --data DIR (split/class/file images or cifar-10-batches-py)")
    for cand in [path, os.environ.get("SCCDM_DATA"), "data"]:
        if cand and Path(cand).exists():
            return Path(cand)
    for tgz in [Path("../shared/data/cifar10-jpeg.tar.gz"), Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpeg.tar.gz"]:
        if tgz.exists():
            Path("data").mkdir(exist_ok=True)
            with tarfile.open(tgz) as tf:
                tf.extractall("data", filter="data")
            return Path("data")
    raise FileNotFoundError("no data: pass --data DIR (split/class/file images or cifar-10-batches-py)")


def load_split(path: str | Path | None, split: str, limit: int | None = None) -> np.ndarray:
    """uint8 [N, H, W, 3] for ``split`` ('train' or 'test') from a folder tree or CIFAR batches.

    ``path`` may be the dataset root (holding ``train/`` and ``test/`` or the
    CIFAR batch files) or directly a split folder.
    """
    root = find_cifar(path)
    if (root / "data_batch_1").exists() or (root / "test_batch").exists():
        return load_cifar_batches(root, split, limit)[0]
    if (root / "cifar-10-batches-py").exists():
        return load_cifar_batches(root / "cifar-10-batches-py", split, limit)[0]
    sub = root / split
    return load_image_folder(sub if sub.exists() else root, limit)[0]


def load_eval_images(path: str | Path | None, limit: int | None = None) -> torch.Tensor | list[torch.Tensor]:
    """The test images of ``sccdm eval``.

    A CIFAR-style set (``test/`` split, batch files, or one folder of same-size images) comes as one
    float tensor [N, 3, H, W]; a folder of photos of several sizes (Kodak, CBSD68, your own) as a list
    of float [3, H, W] tensors, sorted by path. All in [0, 1].
    """
    try:
        return image_to_tensor(load_split(path, "test", limit))
    except ValueError:  # np.stack of several sizes: a photo folder
        return [image_to_tensor(p) for p in load_photo_folder(path, limit=limit)]


class ImageArrayDataset(torch.utils.data.Dataset):
    """uint8 [N, H, W, 3] -> float [3, H, W] tensors, with optional flip + crop augmentation."""

    def __init__(self, images: np.ndarray, augment: bool = False, pad: int = 4):
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        self.augment, self.pad = augment, pad

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0
        if self.augment:
            if torch.rand(()) < 0.5:
                x = x.flip(-1)
            if self.pad:
                h, w = x.shape[-2:]
                xp = torch.nn.functional.pad(x[None], (self.pad,) * 4, mode="reflect")[0]
                dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
                x = xp[:, dy:dy + h, dx:dx + w]
        return x
