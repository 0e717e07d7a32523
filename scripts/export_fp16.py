"""Export a training run's weights as fp16 safetensors + config, the form the zoo ships and the device tool
brings back (every file under its size limit). One helper for the scripts/gpu_*.sh calls and CPU runs alike.

    python scripts/export_fp16.py RUN DEST/codec.safetensors [--config DEST/codec.json] [--split 16500000]
    python scripts/export_fp16.py RUN DEST/c8/model.safetensors --config DEST/c8/config.json --from-ckpt

RUN is a run folder (``model.safetensors`` + ``config.json``, what ``sccdm train`` exports). With
``--from-ckpt`` a run stopped before the end of its plan (``--max-minutes``) is exported from its last
``ckpt.pt``. ``--split N`` writes ``DEST.part00``, ``DEST.part01``, ... of at most N bytes instead of DEST
(join: ``cat DEST.part* > DEST``). The config loses its ``sha256`` (the export has other bytes); the
export is loaded once to check it is usable. Prints one line: part, bytes, step and held-out PSNR.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sccdm import weights  # noqa: E402


def _state(run: Path, from_ckpt: bool) -> tuple[dict, str]:
    if (run / "model.safetensors").exists():
        return load_file(str(run / "model.safetensors")), "final"
    if from_ckpt and (run / "ckpt.pt").exists():
        return torch.load(run / "ckpt.pt", map_location="cpu", weights_only=False)["model"], "last checkpoint"
    raise SystemExit(f"{run}: no model.safetensors" + ("" if from_ckpt else " (--from-ckpt takes ckpt.pt)"))


def _split(path: Path, size: int) -> list[Path]:
    data, parts = path.read_bytes(), []
    for i in range(0, len(data), size):
        p = path.with_name(f"{path.name}.part{i // size:02d}")
        p.write_bytes(data[i:i + size])
        parts.append(p)
    path.unlink()
    return parts


def _last_log(run: Path) -> dict:
    log = run / "log.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return json.loads(lines[-1]) if lines else {}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("dest", help="the fp16 safetensors file to write")
    p.add_argument("--config", default=None, help="where the config goes (default: config.json beside DEST)")
    p.add_argument("--split", type=int, default=None, help="write parts of at most this many bytes")
    p.add_argument("--from-ckpt", action="store_true", help="no final export: take the last checkpoint")
    a = p.parse_args(argv)
    run, dest = Path(a.run), Path(a.dest)
    state, source = _state(run, a.from_ckpt)
    cfg = json.loads((run / "config.json").read_text())
    cfg.pop("sha256", None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cfg_path = Path(a.config) if a.config else dest.with_name("config.json")
    cfg_path.parent.mkdir(parents=True, exist_ok=True)
    half = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    with tempfile.TemporaryDirectory() as tmp:   # check the export loads before anything is written
        save_file(half, str(Path(tmp) / "model.safetensors"))
        (Path(tmp) / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        weights.load_model_dir(tmp)
        shutil.copyfile(Path(tmp) / "model.safetensors", dest)
    cfg_path.write_text(json.dumps(cfg, indent=2) + "\n")
    size = dest.stat().st_size
    files = _split(dest, a.split) if a.split and size > a.split else [dest]
    last = _last_log(run)
    print(f"fp16 {cfg.get('kind', '?')} from {source}: {size} bytes in {len(files)} file(s), step {last.get('step')}, "
          f"val {last.get('val_psnr_db')}, img/s {last.get('img_per_s')}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
