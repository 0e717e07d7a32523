"""benchmarks/refiner_photos.py, the check a CIFAR refiner passes before it ships: it must not lose on photographs.

Two 256 px photographs (skimage's astronaut and coffee) at AWGN 10 dB through `sc-cdm-cpu`'s codec, restored by
the served refiner and by the one it replaced (stored with `sc-cdm-cpu-rate`). Both gain on photographs; the
re-fits that lost there (-0.3 to +0.0 dB on Kodak crops, sccdm/zoo/README.md) or an untrained (identity) refiner
would not. Measured here: +0.34 / +0.30 dB (served / former).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import refiner_photos  # noqa: E402


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    import skimage.data
    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "coffee"):
        img = getattr(skimage.data, name)()[:256, :256]
        Image.fromarray(np.ascontiguousarray(img)).save(folder / f"{name}.png")
    out = tmp_path_factory.mktemp("out") / "refiner_photos"
    before = torch.get_num_threads()
    refiner_photos.main(["--codec", "sc-cdm-cpu", "--refiner", "sc-cdm-cpu", "--refiner", "sc-cdm-cpu-rate",
                         "--data", str(folder), "--limit", "2", "--snr", "10", "--threads", "2", "--out", str(out)])
    torch.set_num_threads(before)
    return json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text()


def test_served_and_former_refiners_gain_on_photographs(result):
    data, _ = result
    (row,) = data["rows"]
    for name in ("sc-cdm-cpu", "sc-cdm-cpu-rate"):
        assert row["psnr"][name] > row["psnr"]["nsf"] + 0.1, row["psnr"]
        assert len(row["per_photo"][name]) == 2


def test_report_names_weights_and_command(result):
    data, md = result
    assert data["meta"]["sha256"]["sc-cdm-cpu"] != data["meta"]["sha256"]["sc-cdm-cpu-rate"]
    assert md.startswith("# Refiners on photographs") and "--refiner sc-cdm-cpu-rate" in md
