"""The CIFAR rate-adaptive model (`sc-cdm-cpu-rate`, what a thumbnail gets when it asks for CBR 1/48 or
1/24) earns its place: each doubling of the rate buys quality, it beats the photo rate model it replaced
on thumbnails, and its full rate stays near the fixed-rate model it was made from (checkpoints/rate-cpu/c32,
`sc-cdm-cpu`'s codec). Random weights, or a model that ignores the rate, miss these margins.

Measured on 2,000 test images at AWGN 5 dB, decoder output (benchmarks/results/rate_cifar.md, which also
has 0-15 dB and the single-CBR models): 20.65 / 22.57 / 24.84 dB at 1/48, 1/24, 1/12; the photo rate model
20.16 / 22.07 / 24.17; the 1/12 reference 25.19. The tests use the first 300 of those images.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sccdm import weights
from sccdm.data import load_eval_images
from sccdm.evaluate import evaluate
from sccdm.pipeline import SCCDM

REPO = Path(__file__).resolve().parent.parent
RATE, PHOTO_RATE, FIXED = "sc-cdm-cpu-rate", "sc-cdm-paper-photo-rate", "checkpoints/rate-cpu/c32"
CBRS = (1 / 48, 1 / 24, 1 / 12)


@pytest.fixture(scope="module")
def measured():
    torch.set_num_threads(2)
    x = load_eval_images(None, limit=300)
    cache = {FIXED: SCCDM(weights.load_model_dir(REPO / FIXED), None, name=FIXED).eval()}

    def nsf(name: str, cbr: float | None) -> float:
        return evaluate(["nsf"], x, "awgn", (5.0,), models=cache, names={"sc-cdm": name}, progress=False,
                        cbr=cbr)[0]["psnr_db"]

    return {"rate": [nsf(RATE, c) for c in CBRS], "photo_rate": [nsf(PHOTO_RATE, c) for c in CBRS[:2]],
            "fixed": nsf(FIXED, None)}


def test_each_doubling_of_the_rate_buys_quality(measured):
    c8, c16, c32 = measured["rate"]
    assert c8 > 19.5 and c16 > c8 + 1.2 and c32 > c16 + 1.2, measured


def test_it_beats_the_photo_rate_model_on_thumbnails(measured):
    for own, photo in zip(measured["rate"], measured["photo_rate"]):
        assert own > photo + 0.2, measured


def test_full_rate_stays_near_the_fixed_rate_model(measured):
    assert measured["rate"][2] > measured["fixed"] - 0.6, measured
