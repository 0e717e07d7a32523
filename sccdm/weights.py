"""Weights on disk: ``model.safetensors`` + ``config.json`` (architecture, sha256, training record).

The sha256 of the safetensors file is written into config.json when saving and
checked on every load; a mismatch raises :class:`WeightsError` naming the file.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = ["WeightsError", "sha256_file", "save_model_dir", "load_model_dir", "build_model"]


class WeightsError(RuntimeError):
    """A weight file is missing, corrupted, or does not match its config."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _classes(kind):
    from .models.deepjscc import DeepJSCC, DeepJSCCConfig
    from .models.refine import Refiner, RefinerConfig
    from .models.swin import SwinJSCC, SwinJSCCConfig

    table = {"swin": (SwinJSCC, SwinJSCCConfig), "deepjscc": (DeepJSCC, DeepJSCCConfig),
             "refiner": (Refiner, RefinerConfig)}
    if kind not in table:
        raise WeightsError(f"unknown model kind {kind!r} in config")
    return table[kind]


def build_config(cfg: dict):
    """config dict (with ``kind``) -> the architecture's config dataclass (no weights built)."""
    arch = {k: v for k, v in cfg.items() if k not in ("kind", "preset", "sha256", "training")}
    return _classes(cfg.get("kind"))[1].from_dict(arch)


def build_model(cfg: dict) -> torch.nn.Module:
    """config dict (with ``kind``) -> freshly initialised model of that architecture."""
    return _classes(cfg.get("kind"))[0](build_config(cfg))


def save_model_dir(model: torch.nn.Module, cfg: dict, out: str | Path, training: dict | None = None,
                   stem: str = "model") -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = out / f"{stem}.safetensors"
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(tensors, str(st))
    full = {**cfg, "sha256": sha256_file(st)}
    if training:
        full["training"] = training
    (out / f"{stem}.json" if stem != "model" else out / "config.json").write_text(json.dumps(full, indent=2) + "\n")
    return st


def load_model_dir(path: str | Path, stem: str = "model", device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load ``path/model.safetensors`` with ``path/config.json``; verifies the sha256 first."""
    path = Path(path)
    st = path / f"{stem}.safetensors"
    cj = path / ("config.json" if stem == "model" else f"{stem}.json")
    if not st.exists() or not cj.exists():
        raise WeightsError(f"missing weights: need {st} and {cj}")
    cfg = json.loads(cj.read_text())
    return load_weights(st, cfg, device)


def load_weights(st: Path, cfg: dict, device="cpu") -> torch.nn.Module:
    want = cfg.get("sha256")
    got = sha256_file(st)
    if want and got != want:
        raise WeightsError(f"weight file {st} is corrupted or was replaced: sha256 {got} does not match "
                           f"the expected {want}")
    try:
        tensors = load_file(str(st), device=str(device))
    except Exception as e:
        raise WeightsError(f"weight file {st} cannot be read as safetensors: {e}") from None
    model = build_model(cfg)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise WeightsError(f"weight file {st} does not fit its config: {e}") from None
    return model.to(device).eval()
