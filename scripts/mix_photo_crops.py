"""Build a CIFAR-10 + photo-crop training folder for re-fitting the CIFAR model's refiner.

A refiner re-fitted on CIFAR-10 alone has three times lost on photographs (the served model tiles photos
at native scale), so the re-fit sees both: CIFAR-10's train split, hard-linked, plus N random 32x32 crops of
the training photographs at scales 1, 1/2 and 1/4 (class folder ``photo``). The test split is CIFAR-10's, so
held-out PSNR stays comparable with every other CIFAR run.

    python scripts/mix_photo_crops.py --cifar data --photos data/photos/train --out data/mix --n 25000
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def link_tree(src: Path, dst: Path) -> int:
    """Hard-link every file under src into dst (same layout); copy when linking is refused."""
    n = 0
    for p in src.rglob("*"):
        if p.is_file():
            q = dst / p.relative_to(src)
            q.parent.mkdir(parents=True, exist_ok=True)
            if not q.exists():
                try:
                    os.link(p, q)
                except OSError:
                    shutil.copy2(p, q)
            n += 1
    return n


def photo_crops(photos: Path, out: Path, n: int, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    files = sorted(p for p in photos.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    scales = (1.0, 0.5, 0.25)
    pyramids = []
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            levels = []
            for s in scales:
                w, h = max(size, round(im.width * s)), max(size, round(im.height * s))
                levels.append(np.asarray(im if s == 1.0 else im.resize((w, h), Image.BOX), dtype=np.uint8))
            pyramids.append(levels)
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = pyramids[rng.integers(len(pyramids))][rng.integers(len(scales))]
        y = rng.integers(img.shape[0] - size + 1)
        x = rng.integers(img.shape[1] - size + 1)
        Image.fromarray(img[y:y + size, x:x + size]).save(out / f"{i:05d}.png")
        if (i + 1) % 5000 == 0:
            print(f"{i + 1}/{n} crops", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cifar", default="data", help="CIFAR-10 image tree with train/ and test/")
    ap.add_argument("--photos", default="data/photos/train")
    ap.add_argument("--out", default="data/mix")
    ap.add_argument("--n", type=int, default=25000, help="photo crops to add")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.out)
    for split in ("train", "test"):
        src = Path(a.cifar) / split
        n = sum(link_tree(src / c, out / split / c) for c in sorted(os.listdir(src)) if (src / c).is_dir())
        print(f"{split}: {n} CIFAR-10 images linked", file=sys.stderr)
    photo_crops(Path(a.photos), out / "train" / "photo", a.n, a.size, a.seed)


if __name__ == "__main__":
    main()
