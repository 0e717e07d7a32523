"""Model zoo: a table of named models, each a set of safetensors files with checked sha256.

>>> import sccdm.zoo
>>> model = sccdm.zoo.load("sc-cdm-cpu")        # SCCDM: Swin codec + diffusion refiner

The table lives in ``registry.json`` beside this file (written by
``python -m sccdm.zoo.publish``); weights live under ``weights/<name>/``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..pipeline import SCCDM
from ..weights import WeightsError, build_model, load_weights, sha256_file

__all__ = ["load", "build", "names", "entry", "WEIGHTS_DIR", "DEFAULT_MODEL"]

ROOT = Path(__file__).resolve().parent
WEIGHTS_DIR = ROOT / "weights"
REGISTRY = ROOT / "registry.json"
DEFAULT_MODEL = "sc-cdm-cpu"


def _registry() -> dict:
    return json.loads(REGISTRY.read_text()) if REGISTRY.exists() else {}


def names() -> list[str]:
    return sorted(_registry())


def entry(name: str) -> dict:
    reg = _registry()
    if name not in reg:
        raise KeyError(f"unknown model {name!r}; the zoo has: {', '.join(sorted(reg)) or '(nothing yet)'}")
    return reg[name]


def _part(name: str, part: str, spec: dict, pretrained: bool, device) -> torch.nn.Module:
    folder = WEIGHTS_DIR / name
    cfg = json.loads((folder / spec["config"]).read_text())
    if not pretrained:
        return build_model(cfg).to(device).eval()
    st = folder / spec["file"]
    if not st.exists():
        raise WeightsError(f"model {name!r}: weight file {st} is missing")
    got = sha256_file(st)
    if got != spec["sha256"]:
        raise WeightsError(f"model {name!r}: weight file {st} is corrupted: sha256 {got} does not match the "
                           f"zoo's {spec['sha256']}")
    return load_weights(st, cfg, device)


def load(name: str = DEFAULT_MODEL, device: str | torch.device = "cpu", pretrained: bool = True) -> SCCDM:
    """A ready model: :class:`sccdm.pipeline.SCCDM` in eval mode.

    ``pretrained=False`` builds the same architecture with random weights (for tests
    of plumbing that must not depend on training).
    """
    e = entry(name)
    parts = {p: _part(name, p, spec, pretrained, device) for p, spec in e["parts"].items()}
    model = SCCDM(parts["codec"], parts.get("refiner"), name=name)
    return model.to(device).eval()


def build(name: str = DEFAULT_MODEL, device="cpu") -> SCCDM:
    return load(name, device, pretrained=False)
