"""Make the photo training set the GPU photo models were trained on.

    python scripts/prepare_photos.py data/photos/train data/photos-half/train [--scale 0.5] [--quality 88]

Every photo under SRC is downscaled (Lanczos) and re-encoded as JPEG. Why: the device tool
carries at most 64 MiB with the working tree, and the originals (63 MB) do not fit beside the
zoo; half-size photos (~512x384) are also closer in scale to Kodak (768x512) and CBSD68
(481x321), the test sets, than the ~1024x768 originals are. Deterministic (same bytes every run).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

EXTS = {".jpg", ".jpeg", ".png"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--scale", type=float, default=0.5)
    p.add_argument("--quality", type=int, default=88)
    a = p.parse_args(argv)
    src, dst = Path(a.src), Path(a.dst)
    files = sorted(f for f in src.rglob("*") if f.suffix.lower() in EXTS)
    if not files:
        raise SystemExit(f"no images under {src}")
    total = 0
    for f in files:
        with Image.open(f) as im:
            im = im.convert("RGB")
            if a.scale != 1:
                im = im.resize((round(im.width * a.scale), round(im.height * a.scale)), Image.LANCZOS)
            out = dst / f.relative_to(src).with_suffix(".jpg")
            out.parent.mkdir(parents=True, exist_ok=True)
            im.save(out, quality=a.quality)
            total += out.stat().st_size
    print(f"{len(files)} photos -> {dst} ({total / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
