"""benchmarks/refiner_on_codecs.py: one refiner measured on several codecs, zoo names and run folders alike,
with the training loop's held-out metric. The shipped refiner must refine the shipped codec's outputs, and a
codec that was never trained must show up as such (the rows really come from the codec named)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import refiner_on_codecs  # noqa: E402
import sccdm.zoo as zoo  # noqa: E402
from sccdm.weights import save_model_dir  # noqa: E402


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roc")
    run = tmp / "untrained"
    fresh = zoo.build("sc-cdm-cpu").codec
    save_model_dir(fresh, {"kind": "swin", **fresh.cfg.to_dict()}, run)
    out = tmp / "roc"
    assert refiner_on_codecs.main(["--codec", "sc-cdm-cpu", "--codec", str(run), "--limit", "16",
                                   "--threads", "2", "--out", str(out)]) == 0
    return json.loads(out.with_suffix(".json").read_text()), out.with_suffix(".md").read_text(), run


def test_shipped_refiner_refines_the_shipped_codec(result):
    data, _, _ = result
    served = data["rows"][0]
    assert served["codec"] == "sc-cdm-cpu" and served["sha256"] == zoo.checksums("sc-cdm-cpu")["codec"]
    assert served["nsf_db"] > 24.0  # 1 / 7 / 13 dB mean; the shipped codec measures about 26.2 on 500 images
    assert served["gain_db"] > 0.05, served
    assert data["meta"]["refiner_sha256"] == zoo.checksums("sc-cdm-cpu")["refiner"]


def test_rows_come_from_the_codec_named(result):
    data, md, run = result
    untrained = data["rows"][1]
    assert untrained["sha256"] == zoo.checksums(run)["codec"]
    assert untrained["nsf_db"] < data["rows"][0]["nsf_db"] - 8.0, untrained
    assert md.startswith("# One refiner on candidate codecs") and f"`{run}`" in md
