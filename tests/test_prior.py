"""The shipped refiners earn their name: the refinement beats NSF and the prior carries image information
(REFERENCE section 4's check), measured on the shipped weights, CIFAR-10 test images, AWGN 9 dB.

Three numbers per model (sccdm.prior_ablation): the refinement gain over NSF with the served
(diffusion) prior; the swap cost of the served prior (every image gets its neighbour's); the swap
cost of the teacher's prior, which shows the restorer reads its prior at all. The first shipped
refiner (constant prior: swap costs 0.0014 / 0.0018 dB) fails here, and so does an untrained one.

Issue 9 asks for a served swap cost >= 0.2 dB; the shipped v2 refiners measure 0.01-0.07 dB on AWGN (the
student sees only S_hat, so its prior holds little the restorer could not see itself). The teacher's
prior, which sees the original, costs 0.27+ dB to swap where stage 2 froze the restorer
(sc-cdm-paper-awgn). sc-cdm-cpu's refiner (2026-11-29, also served by the two Rayleigh models) trained its
restorer on the served prior in stage 2 (``--stage2 joint``, 75 + 70 min): it refines more (+0.210 dB here on the
codec it was trained with; +0.197 after the first 75 min, +0.171 before) but reads the teacher's prior less (swap
cost 0.089 dB, was 0.73; teacher over the SNR-mean prior +0.060 dB), so its thresholds for the teacher are lower.
On the deeper codec served since 2026-11-29 (nineteenth session; 0.10 dB better decoder output, so less left to
restore) it measures +0.183 dB, swap costs 0.017 / 0.092 dB, teacher over the SNR-mean prior +0.061 dB. The
thresholds below are what the weights meet and what a constant prior, an untrained refiner or the
previous sc-cdm-cpu refiners cannot; raising them to the issue's goal is open work.
"""
from __future__ import annotations

import pytest
import torch

import sccdm.zoo as zoo
from sccdm.data import image_to_tensor, load_split
from sccdm.prior_ablation import _others_mean, prior_ablation



@pytest.fixture(autouse=True, scope="module")
def _two_threads():
    """Set here, not at import: a thread count set at collection would leak into every other module's
    in-process references (the services' bit-exactness tests compare against them)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


# (model, min served swap cost, min teacher swap cost, min refinement gain, min teacher over the SNR-mean prior),
# dB, AWGN 9 dB, 200 images
SHIPPED = [("sc-cdm-cpu", 0.01, 0.05, 0.17, 0.03), ("sc-cdm-paper-awgn", 0.03, 0.2, 0.25, 0.1)]


@pytest.fixture(scope="module")
def images():
    return image_to_tensor(load_split(None, "test", 200))


@pytest.mark.parametrize("name,min_swap,min_teacher_swap,min_gain,min_teacher_over_mean", SHIPPED)
def test_refinement_uses_its_prior(images, name, min_swap, min_teacher_swap, min_gain, min_teacher_over_mean):
    res = prior_ablation(zoo.load(name), images, "awgn", 9.0)
    assert res["refine_gain_db"] >= min_gain, res
    assert res["swap_cost_db"] >= min_swap, res
    assert res["teacher_swap_cost_db"] >= min_teacher_swap, res
    # the oracle prior (the teacher sees the original) bounds what a prior can add, and its image
    # information is worth more than what the SNR alone tells (the other images' mean prior)
    assert res["teacher"] >= res["served"] - 0.05, res
    assert res["teacher"] >= res["teacher_mean"] + min_teacher_over_mean, res


def test_snr_mean_prior_leaves_each_image_out():
    """Row i of the SNR-mean prior is the mean of the OTHER rows: no image sees its own teacher prior."""
    z = torch.tensor([[0.0, 3.0], [2.0, 6.0], [4.0, 9.0]])
    assert torch.equal(_others_mean(z), torch.tensor([[3.0, 7.5], [2.0, 6.0], [1.0, 4.5]]))


def test_untrained_refiner_fails_the_check(images):
    """The same check on an identity-initialised refiner gives no gain and no swap cost."""
    m = zoo.load("sc-cdm-cpu")
    fresh = zoo.build("sc-cdm-cpu")
    m.refiner = fresh.refiner
    res = prior_ablation(m, images[:50], "awgn", 9.0)
    assert abs(res["refine_gain_db"]) < 1e-3 and abs(res["swap_cost_db"]) < 1e-3


def test_rayleigh_model_refines_fading_outputs(images):
    """sc-cdm-cpu-rayleigh serves sc-cdm-cpu's AWGN-trained refiner on its Rayleigh codec: on those outputs it must
    still refine and read its prior. Measured on these 200 images at Rayleigh 10 dB: +0.203 dB, served swap cost
    0.110 dB, teacher swap cost 0.323 dB (on the Rayleigh codec before 2026-11-29's deeper one: +0.212, 0.110, 0.321;
    the refiner it replaced on 2026-11-29: +0.125, 0.015, 1.17; it fails the first two). Under block fading each image has its own effective SNR, which the prior also reads, so part of
    the swap cost here is the wrong SNR, not the wrong image."""
    m = zoo.load("sc-cdm-cpu-rayleigh")
    res = prior_ablation(m, images, "rayleigh", 10.0)
    assert res["refine_gain_db"] >= 0.18, res
    assert res["swap_cost_db"] >= 0.05, res
    assert res["teacher_swap_cost_db"] >= 0.2, res
