"""scripts/update_eval_rows.py: re-run rows replace the old ones only when the checked rows prove the same draws."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import update_eval_rows  # noqa: E402


def _rows(sc_cdm: float, nsf: float) -> list[dict]:
    return [{"scheme": s, "channel": "awgn", "snr_db": snr, "psnr_db": v + snr, "ssim": 0.9, "model": "m"}
            for snr in (0.0, 10.0) for s, v in (("sc-cdm", sc_cdm), ("nsf", nsf), ("deepjscc", 20.0))]


def _write(path: Path, rows: list[dict], **meta) -> Path:
    path.write_text(json.dumps(rows))
    path.with_suffix(".meta.json").write_text(json.dumps({"command": "sccdm eval x", "machine": "vm", "date": "d",
                                                           "wall_s": 1.0, "caveat": "", "models": {}, **meta}))
    return path


def test_replaces_rows_and_records_the_update(tmp_path):
    old = _write(tmp_path / "r.json", _rows(28.0, 27.8), update={"date": "2026-11-27T00:00", "rows": "sc-cdm",
                                                                  "why": "w", "command": "c", "wall_s": 2})
    new = _write(tmp_path / "n.json", [r for r in _rows(28.3, 27.8) if r["scheme"] != "deepjscc"],
                 models={"m": {"refiner": "abc"}})
    assert update_eval_rows.main([str(old), str(new), "--replace", "sc-cdm", "--check", "nsf", "--why", "new refiner",
                                  "--command", "sccdm eval y"]) == 0
    rows = json.loads(old.read_text())
    assert [r["psnr_db"] for r in rows if r["scheme"] == "sc-cdm"] == [28.3, 38.3]
    assert [r["psnr_db"] for r in rows if r["scheme"] == "deepjscc"] == [20.0, 30.0]
    meta = json.loads(old.with_suffix(".meta.json").read_text())
    assert [u["why"] for u in meta["updates"]] == ["w", "new refiner"] and meta["models"]["m"] == {"refiner": "abc"}
    md = old.with_suffix(".md").read_text()
    assert "| sc-cdm | 28.30 (0.900) | 38.30 (0.900) |" in md and "`sccdm eval y`" in md


def test_refuses_other_channel_draws(tmp_path):
    old = _write(tmp_path / "r.json", _rows(28.0, 27.8))
    new = _write(tmp_path / "n.json", _rows(28.3, 27.9))
    with pytest.raises(SystemExit, match="same channel draws"):
        update_eval_rows.main([str(old), str(new), "--replace", "sc-cdm", "--check", "nsf", "--why", "w",
                               "--command", "c"])
    assert json.loads(old.read_text())[0]["psnr_db"] == 28.0
