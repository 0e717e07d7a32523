"""The web page: ``/`` serves static/index.html, ``/static/...`` its script, style and sample images.

Plain files, no build step and no CDN: the page works offline and from a phone.

Besides the small bundled samples (static/samples/*.png, 64x64) the page offers full-size photographs
from scikit-image's bundled data (``skimage.data``: astronaut 512x512, coffee 400x600, chelsea 300x451),
read from the installed package (nothing is downloaded) and served as PNG:

- ``/static/samples/photos.json``  ``{"photos": [{name, title, width, height, src, thumb}, ...]}``;
  an empty list where scikit-image is not installed (the page then offers the small samples only)
- ``/static/samples/photo/<name>.png``        the photograph at full size
- ``/static/samples/photo/<name>.thumb.png``  a thumbnail for the sample button

They live under /static/ so that, like the page's other files, they need no API token.
"""
from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

# name -> (skimage.data function, title); all three ship inside the scikit-image wheel
PHOTOS = {
    "astronaut": ("astronaut", "astronaut (photo)"),
    "coffee": ("coffee", "coffee (photo)"),
    "chelsea": ("chelsea", "chelsea the cat (photo)"),
}
THUMB = 96          # longest side of a sample button's thumbnail, pixels
PHOTO_CACHE = {"Cache-Control": "public, max-age=86400"}


@lru_cache(maxsize=None)
def photo_array(name: str) -> np.ndarray | None:
    """uint8 [H, W, 3] of a bundled photograph, or None (unknown name, or scikit-image not installed)."""
    if name not in PHOTOS:
        return None
    try:
        from skimage import data
        arr = getattr(data, PHOTOS[name][0])()
    except Exception:  # noqa: BLE001 - not installed, or a build without its data files
        return None
    arr = np.asarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] < 3:
        return None
    return np.ascontiguousarray(arr[:, :, :3])


@lru_cache(maxsize=None)
def photo_png(name: str, thumb: bool = False) -> bytes | None:
    from PIL import Image

    arr = photo_array(name)
    if arr is None:
        return None
    im = Image.fromarray(arr)
    if thumb:
        im.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=not thumb)
    return buf.getvalue()


def photo_list() -> list[dict]:
    out = []
    for name, (_, title) in PHOTOS.items():
        arr = photo_array(name)
        if arr is None:
            continue
        out.append({"name": name, "title": title, "width": int(arr.shape[1]), "height": int(arr.shape[0]),
                    "src": f"/static/samples/photo/{name}.png", "thumb": f"/static/samples/photo/{name}.thumb.png"})
    return out


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon():
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    # plain (sync) handlers: the first call decodes / encodes a photograph, FastAPI runs them in a thread
    @app.get("/static/samples/photos.json", include_in_schema=False)
    def photos():
        return JSONResponse({"photos": photo_list()}, headers={"Cache-Control": "no-cache"})

    @app.get("/static/samples/photo/{filename}", include_in_schema=False)
    def photo(filename: str):
        stem, thumb = (filename[:-len(".thumb.png")], True) if filename.endswith(".thumb.png") else \
                      (filename[:-len(".png")], False) if filename.endswith(".png") else ("", False)
        data = photo_png(stem, thumb) if stem in PHOTOS else None
        if data is None:
            return JSONResponse({"detail": f"no sample photo {filename!r}"}, status_code=404)
        return Response(data, media_type="image/png", headers=PHOTO_CACHE)

    # after the routes above, so /static/samples/photo* reach them rather than the file mount
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
