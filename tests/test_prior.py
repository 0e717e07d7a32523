"""The shipped refiners earn their name: the refinement beats NSF and the diffusion prior carries image
information (REFERENCE section 4's check), measured on the shipped weights, CIFAR-10 test images.

A refiner that learned a constant prior (the first shipped one: swap cost 0.0014 dB) fails here,
and so does a random or identity-initialised one (gain 0).
"""
from __future__ import annotations

import pytest
import torch

import sccdm.zoo as zoo
from sccdm.data import image_to_tensor, load_split
from sccdm.prior_ablation import prior_ablation

torch.set_num_threads(2)
# (model, minimum swap cost of the served prior in dB, minimum refinement gain in dB) at AWGN 9 dB, 200 images
SHIPPED = [("sc-cdm-cpu", 0.2, 0.3), ("sc-cdm-paper-awgn", 0.2, 0.3)]


@pytest.fixture(scope="module")
def images():
    return image_to_tensor(load_split(None, "test", 200))


@pytest.mark.parametrize("name,min_swap,min_gain", SHIPPED)
def test_refinement_uses_its_prior(images, name, min_swap, min_gain):
    res = prior_ablation(zoo.load(name), images, "awgn", 9.0)
    assert res["refine_gain_db"] >= min_gain, res
    assert res["swap_cost_db"] >= min_swap, res
    # the oracle prior (the teacher sees the original) bounds what a prior can add
    assert res["teacher"] >= res["served"] - 0.05, res


def test_untrained_refiner_fails_the_check(images):
    """The same check on an identity-initialised refiner gives no gain and no swap cost."""
    m = zoo.load("sc-cdm-cpu")
    fresh = zoo.build("sc-cdm-cpu")
    m.refiner = fresh.refiner
    res = prior_ablation(m, images[:50], "awgn", 9.0)
    assert abs(res["refine_gain_db"]) < 1e-3 and abs(res["swap_cost_db"]) < 1e-3
