"""scripts/export_fp16.py: the one export every GPU script and CPU run uses (fp16, loadable, split when large)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sccdm import weights
from sccdm.models.swin import SWIN_PRESETS, SwinJSCC

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "export_fp16.py"


@pytest.fixture(scope="module")
def export():
    spec = importlib.util.spec_from_file_location("export_fp16", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main


@pytest.fixture()
def run(tmp_path):
    torch.manual_seed(0)
    model = SwinJSCC(SWIN_PRESETS["cpu"])
    out = tmp_path / "run"
    weights.save_model_dir(model, {"kind": "swin", "preset": "cpu", **SWIN_PRESETS["cpu"].to_dict()}, out)
    (out / "log.jsonl").write_text(json.dumps({"step": 7, "val_psnr_db": 21.5}) + "\n")
    return model, out


def test_export_is_fp16_and_decodes_like_the_fp32_run(export, run, tmp_path, capsys):
    model, out = run
    dest = tmp_path / "zoo" / "codec.safetensors"
    assert export([str(out), str(dest), "--config", str(tmp_path / "zoo" / "codec.json")]) == 0
    assert "step 7" in capsys.readouterr().out
    cfg = json.loads((tmp_path / "zoo" / "codec.json").read_text())
    assert "sha256" not in cfg and cfg["kind"] == "swin"
    assert {t.dtype for t in load_file(str(dest)).values()} == {torch.float16}
    loaded = weights.load_weights(dest, cfg)
    x = torch.rand(1, 3, 32, 32)
    snr = torch.tensor([5.0])
    with torch.no_grad():
        a = model.decode(model.encode(x, snr), snr)
        b = loaded.float().decode(loaded.float().encode(x, snr), snr)
    assert (a - b).abs().max() < 5e-3 and dest.stat().st_size < (out / "model.safetensors").stat().st_size * 0.6


def test_split_parts_join_to_the_file(export, run, tmp_path):
    _, out = run
    whole, parts = tmp_path / "a" / "m.safetensors", tmp_path / "b" / "m.safetensors"
    export([str(out), str(whole)])
    export([str(out), str(parts), "--split", "300000"])
    pieces = sorted(parts.parent.glob("m.safetensors.part*"))
    assert len(pieces) >= 2 and not parts.exists()
    assert b"".join(p.read_bytes() for p in pieces) == whole.read_bytes()


def test_unfinished_run_needs_from_ckpt(export, run, tmp_path):
    model, out = run
    (out / "model.safetensors").unlink()
    with pytest.raises(SystemExit, match="--from-ckpt"):
        export([str(out), str(tmp_path / "x.safetensors")])
    torch.save({"model": model.state_dict()}, out / "ckpt.pt")
    assert export([str(out), str(tmp_path / "x.safetensors"), "--from-ckpt"]) == 0
    assert (tmp_path / "config.json").exists()
