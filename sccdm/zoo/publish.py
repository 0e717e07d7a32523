"""Copy exported training runs into the zoo and record their sha256 in registry.json.

python -m sccdm.zoo.publish NAME codec=runs/codec-cpu [refiner=runs/refine2-cpu] [--description TEXT]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from . import REGISTRY, WEIGHTS_DIR
from ..weights import sha256_file


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sccdm.zoo.publish")
    p.add_argument("name")
    p.add_argument("parts", nargs="+", help="PART=RUN_DIR, e.g. codec=runs/codec-cpu")
    p.add_argument("--description", default="")
    a = p.parse_args(argv)
    folder = WEIGHTS_DIR / a.name
    folder.mkdir(parents=True, exist_ok=True)
    reg = json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}
    parts = {}
    for spec in a.parts:
        part, run = spec.split("=", 1)
        run = Path(run)
        shutil.copyfile(run / "model.safetensors", folder / f"{part}.safetensors")
        shutil.copyfile(run / "config.json", folder / f"{part}.json")
        parts[part] = {"file": f"{part}.safetensors", "config": f"{part}.json",
                       "sha256": sha256_file(folder / f"{part}.safetensors"),
                       "bytes": (folder / f"{part}.safetensors").stat().st_size,
                       "training": json.loads((run / "config.json").read_text()).get("training", {})}
    reg[a.name] = {"description": a.description, "parts": parts}
    REGISTRY.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    print(json.dumps(reg[a.name], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
