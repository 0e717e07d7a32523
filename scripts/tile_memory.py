"""Receiver peak memory and time for one large photo at a given tile size (docs/tiling.md).

    OMP_NUM_THREADS=1 python scripts/tile_memory.py 1024 65536 [--model sc-cdm-paper-photo]

Step 1 (a child process) encodes skimage's astronaut resized to SIDE x SIDE and adds noise of
variance 0.1 to the symbols; step 2 (another child, so its VmHWM is the receiver's alone) runs
the receiver's ``run_batch`` (decode + refine, tiled above TILE_PIXELS) and prints one JSON line:
seconds, peak RSS (VmHWM, MB), and PSNR of the decoder and refined outputs.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

ENCODE = r"""
import sys, numpy as np, torch
from PIL import Image
from skimage import data
from sccdm import zoo, pipeline
torch.set_num_threads(1)
side, model, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
m = zoo.load(model, device="cpu")
img = np.array(Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC))
f = pipeline.encode(m, torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255, 10.0)
y = f.symbols + 0.1 ** 0.5 * torch.randn(f.symbols.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
torch.save({"y": y, "latent": f.latent_shape, "img": torch.from_numpy(img)}, out)
"""

DECODE = r"""
import json, re, sys, time, torch
from receiver.decode import RxItem, run_batch
from sccdm import zoo
from sccdm.metrics import psnr
torch.set_num_threads(1)
hwm = lambda: int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1)) / 1024
side, tile, model, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
m = zoo.load(model, device="cpu")
f = torch.load(path)
x = f["img"].permute(2, 0, 1)[None].float() / 255
base = hwm()
it = RxItem(model, f["y"], None, torch.full((1,), 0.1), None, "none", tuple(f["latent"]), (side, side), True, 1)
t = time.perf_counter()
out = run_batch(m, [it], "cpu", tile)[0]
print(json.dumps({"side": side, "tile_pixels": tile, "model": model, "seconds": time.perf_counter() - t,
                  "peak_rss_mb": hwm(), "rss_after_load_mb": base,
                  "psnr_decoder_db": float(psnr(out["s_hat"], x)[0]), "psnr_refined_db": float(psnr(out["x_hat"], x)[0])}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("side", type=int)
    ap.add_argument("tile_pixels", type=int, help="SCCDM_TILE_PIXELS to run with (0 = untiled)")
    ap.add_argument("--model", default="sc-cdm-paper-photo")
    a = ap.parse_args(argv)
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    with tempfile.TemporaryDirectory() as tmp:
        frame = str(Path(tmp) / "frame.pt")
        for code, args in ((ENCODE, [a.side, a.model, frame]), (DECODE, [a.side, a.tile_pixels, a.model, frame])):
            r = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, env=env,
                               capture_output=True, text=True)
            if r.returncode:
                print(r.stderr[-3000:], file=sys.stderr)
                return 1
    print(json.dumps(json.loads(r.stdout.strip().splitlines()[-1]), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
