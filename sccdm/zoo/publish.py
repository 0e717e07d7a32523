"""Copy exported training runs into a zoo and record their sha256 in its registry.json.

python -m sccdm.zoo.publish NAME codec=runs/codec-cpu [refiner=runs/refine2-cpu] [--description TEXT] [--fp16]
python -m sccdm.zoo.publish NAME refiner=runs/refine2-new --update --fp16   # replace one part, keep the others
python -m sccdm.zoo.publish --merge runs/paper/zoo      # entries a recipe exported elsewhere (a GPU machine)
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from . import REGISTRY, WEIGHTS_DIR
from ..weights import sha256_file

__all__ = ["publish", "merge"]


def _copy_weights(src: Path, dst: Path, fp16: bool) -> None:
    if not fp16:
        shutil.copyfile(src, dst)
        return
    # fp16 halves the shipped size; the model's fp32 parameters take the values back on load.
    tensors = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(src)).items()}
    save_file(tensors, str(dst))
    dst.chmod(0o644)  # save_file creates it 0600: a service image running as another user could not read it


def publish(name: str, parts: dict, description: str = "", weights_dir: Path = WEIGHTS_DIR,
            registry: Path = REGISTRY, fp16: bool = False, update: bool = False) -> dict:
    """parts: {part: run folder with model.safetensors + config.json} -> the registry entry written.

    update: NAME must exist; only ``parts`` are replaced, its other parts (with their training records) stay,
    and so does its description unless one is given."""
    registry = Path(registry)
    reg = json.loads(registry.read_text()) if registry.exists() else {}
    if update and name not in reg:
        raise SystemExit(f"--update: {name} is not in {registry}")
    old = reg.get(name, {}) if update else {}
    folder = Path(weights_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    entry = dict(old.get("parts", {}))
    for part, run in parts.items():
        run = Path(run)
        st = folder / f"{part}.safetensors"
        _copy_weights(run / "model.safetensors", st, fp16)
        cfg = json.loads((run / "config.json").read_text())
        cfg["sha256"] = sha256_file(st)
        (folder / f"{part}.json").write_text(json.dumps(cfg, indent=2) + "\n")
        entry[part] = {"file": st.name, "config": f"{part}.json", "sha256": cfg["sha256"],
                       "bytes": st.stat().st_size, "dtype": "float16" if fp16 else "float32",
                       "training": cfg.get("training", {})}
    reg[name] = {"description": description or old.get("description", ""), "parts": entry}
    registry.write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    return reg[name]


def merge(src_zoo: Path, weights_dir: Path = WEIGHTS_DIR, registry: Path = REGISTRY) -> list[str]:
    """Copy every entry of another zoo folder (registry.json + NAME/ folders) into this one."""
    src_zoo = Path(src_zoo)
    theirs = json.loads((src_zoo / "registry.json").read_text())
    reg = json.loads(Path(registry).read_text()) if Path(registry).exists() else {}
    for name, e in theirs.items():
        for spec in e["parts"].values():
            got = sha256_file(src_zoo / name / spec["file"])
            if got != spec["sha256"]:
                raise SystemExit(f"{src_zoo / name / spec['file']}: sha256 {got} != registry {spec['sha256']}")
        dst = Path(weights_dir) / name
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src_zoo / name, dst)
        reg[name] = e
    Path(registry).write_text(json.dumps(reg, indent=2, sort_keys=True) + "\n")
    return sorted(theirs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sccdm.zoo.publish")
    p.add_argument("name", nargs="?")
    p.add_argument("parts", nargs="*", help="PART=RUN_DIR, e.g. codec=runs/codec-cpu")
    p.add_argument("--description", default="")
    p.add_argument("--fp16", action="store_true", help="store the weights as float16")
    p.add_argument("--update", action="store_true", help="replace only the named parts of an existing entry")
    p.add_argument("--merge", default=None, help="a zoo folder written by `sccdm train recipe` (OUT/zoo)")
    a = p.parse_args(argv)
    if a.merge:
        print("merged:", ", ".join(merge(Path(a.merge))))
        return 0
    if not a.name or not a.parts:
        p.error("NAME and at least one PART=RUN_DIR are needed (or --merge FOLDER)")
    parts = dict(spec.split("=", 1) for spec in a.parts)
    print(json.dumps(publish(a.name, parts, a.description, fp16=a.fp16, update=a.update), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
