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
from ..weights import WeightsError, build_config, build_model, load_model_dir, load_weights, sha256_file

__all__ = ["load", "load_any", "checksums", "build", "names", "entry", "part_config", "default_for", "WEIGHTS_DIR", "DEFAULT_MODEL", "DEFAULTS"]

ROOT = Path(__file__).resolve().parent
WEIGHTS_DIR = ROOT / "weights"
REGISTRY = ROOT / "registry.json"
DEFAULT_MODEL = "sc-cdm-cpu"  # what the services load: sized for CPU serving
# (task, channel) -> the zoo's best model for it (held-out PSNR); evaluation defaults come from here.
# The Rayleigh models are the AWGN ones fine-tuned on Rayleigh for the same 28 min each.
# sc-cdm-cpu (CPU, about 45 epochs on AWGN) beats sc-cdm-paper-awgn (3 min on an H100) by ~0.8 dB.
DEFAULTS = {
    ("sc-cdm", "awgn"): "sc-cdm-cpu",
    ("sc-cdm", "rayleigh"): "sc-cdm-cpu-rayleigh",
    ("deepjscc", "awgn"): "deepjscc-paper-awgn",
    ("deepjscc", "rayleigh"): "deepjscc-paper-rayleigh",
}


def _registry(root: Path | None = None) -> dict:
    path = REGISTRY if root is None else Path(root) / "registry.json"
    return json.loads(path.read_text()) if path.exists() else {}


def names(root: Path | None = None) -> list[str]:
    return sorted(_registry(root))


def entry(name: str, root: Path | None = None) -> dict:
    """The registry row of ``name``; root: another zoo folder (registry.json + NAME/), e.g. a recipe's OUT/zoo."""
    reg = _registry(root)
    if name not in reg:
        raise KeyError(f"unknown model {name!r}; the zoo has: {', '.join(sorted(reg)) or '(nothing yet)'}")
    return reg[name]


def default_for(task: str, channel: str = "awgn") -> str:
    """The zoo's model for ``task`` ("sc-cdm" or "deepjscc") on ``channel`` ("awgn" or "rayleigh")."""
    try:
        return DEFAULTS[(task, channel)]
    except KeyError:
        raise KeyError(f"no default model for task {task!r} on channel {channel!r}; "
                       f"known: {sorted(DEFAULTS)}") from None


def part_config(name: str, part: str = "codec", root: Path | None = None):
    """The config dataclass of a zoo entry's part, read without loading weights (e.g. a codec's ``rates``)."""
    spec = entry(name, root)["parts"][part]
    folder = (WEIGHTS_DIR if root is None else Path(root)) / name
    return build_config(json.loads((folder / spec["config"]).read_text()))


def _part(name: str, part: str, spec: dict, pretrained: bool, device, root: Path | None = None) -> torch.nn.Module:
    folder = (WEIGHTS_DIR if root is None else Path(root)) / name
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


def load(name: str = DEFAULT_MODEL, device: str | torch.device = "cpu", pretrained: bool = True,
         root: Path | None = None) -> SCCDM:
    """A ready model: :class:`sccdm.pipeline.SCCDM` in eval mode.

    ``pretrained=False`` builds the same architecture with random weights (for tests
    of plumbing that must not depend on training). ``root``: load from another zoo folder.
    """
    e = entry(name, root)
    parts = {p: _part(name, p, spec, pretrained, device, root) for p, spec in e["parts"].items()}
    model = SCCDM(parts["codec"], parts.get("refiner"), name=name)
    return model.to(device).eval()


def load_any(spec: str | Path, device: str | torch.device = "cpu", name: str | None = None) -> SCCDM:
    """A zoo name, or a training run's folder (model.safetensors + config.json) as a codec-only model.

    Benchmarks take either, so a candidate is measured the same way before it is published.
    ``name``: the folder model's name in reports (default: the path as given).
    """
    if Path(spec).is_dir():
        return SCCDM(load_model_dir(spec), None, name=name or str(spec)).to(device).eval()
    return load(str(spec), device)


def checksums(spec: str | Path) -> dict[str, str]:
    """{part: sha256} of what :func:`load_any` loads for ``spec``: what a result names its weights by."""
    if Path(spec).is_dir():
        return {"codec": sha256_file(Path(spec) / "model.safetensors")}
    return {p: s["sha256"] for p, s in entry(str(spec))["parts"].items()}


def build(name: str = DEFAULT_MODEL, device="cpu") -> SCCDM:
    return load(name, device, pretrained=False)
