"""`sccdm train`: resume, export, the JSON log, and a 2-process gloo DDP run (real torchrun)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / "train" / cls).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "train" / cls / f"{i:04d}.png")
    return root


def _env(tmp_path):
    return {**os.environ, "SCCDM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_train_resume_and_export(tiny_data, tmp_path):
    run = tmp_path / "run"
    base = [sys.executable, "-m", "sccdm", "train", "deepjscc", "--data", str(tiny_data), "--out", str(run),
            "--batch", "4", "--log-every", "1", "--ckpt-every", "1", "--threads", "1"]
    r1 = subprocess.run(base + ["--epochs", "0.5"], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert r1.returncode == 0, r1.stderr
    assert "eta" in r1.stdout  # progress with ETA
    assert _log(run)[-1]["step"] == 2
    # a resume keeps the plan it started with (asking for more does not restart the cosine) ...
    r2 = subprocess.run(base + ["--epochs", "1"], env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr
    assert "resumed deepjscc" in r2.stdout and "at step 2/2" in r2.stdout and "keeping the checkpoint's plan" in r2.stdout
    assert [rec["step"] for rec in _log(run)] == [1, 2]
    # ... unless told to replan
    r3 = subprocess.run(base + ["--epochs", "1", "--replan"], env=_env(tmp_path), capture_output=True, text=True,
                        timeout=300)
    assert r3.returncode == 0, r3.stderr
    assert "at step 2/4" in r3.stdout
    steps = [rec["step"] for rec in _log(run)]
    assert steps == [1, 2, 3, 4]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "deepjscc" and cfg["training"]["steps"] == 4 and len(cfg["sha256"]) == 64
    from sccdm.weights import load_model_dir
    assert load_model_dir(run).cfg.channels == 8


def test_ddp_two_gloo_processes(tiny_data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sccdm.train", "codec", "--data", str(tiny_data), "--out", str(run), "--epochs", "1",
           "--batch", "4", "--log-every", "1", "--threads", "1"]
    r = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    log = _log(run)
    # 16 images / (2 ranks * batch 4) = 2 steps, each over a global batch of 8
    assert [rec["step"] for rec in log] == [1, 2]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["training"]["world_size"] == 2 and cfg["training"]["batch"] == 8
