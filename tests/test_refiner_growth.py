"""Growing a trained refiner deeper (``grow_state_dict``): the new blocks start as the identity and can learn."""
from __future__ import annotations

import dataclasses

import pytest
import torch

import sccdm.zoo as zoo
from sccdm.models.refine import REFINER_PRESETS, Refiner, grow_state_dict


@pytest.fixture(scope="module")
def shipped():
    """A trained refiner of the shallow `cpu` preset without the SNR input (`sc-cdm-cpu-rate`'s; the photo
    models' and `sc-cdm-cpu`'s were grown from ones like it)."""
    r = zoo.load("sc-cdm-cpu-rate").refiner.float().eval()
    assert not r.cfg.snr_prior
    return r


def test_grown_refiner_restores_exactly_as_the_shallow_one(shipped):
    assert shipped.cfg.blocks == REFINER_PRESETS["cpu"].blocks
    deep = Refiner(REFINER_PRESETS["cpu-deep"]).eval()
    deep.load_state_dict(grow_state_dict(deep, shipped.state_dict()))
    assert sum(p.numel() for p in deep.parameters()) > 2 * sum(p.numel() for p in shipped.parameters())
    g = torch.Generator().manual_seed(0)
    s_hat = torch.rand(2, 3, 48, 40, generator=g)
    z = torch.randn(2, shipped.cfg.prior_dim, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(deep.restorer(s_hat, z), shipped.restorer(s_hat, z), rtol=0, atol=1e-6)
        # and the refined output differs from the input: the identity is the trained model's, not a dead network
        assert (shipped.restorer(s_hat, z) - s_hat).abs().mean() > 1e-3


def test_new_blocks_get_gradients(shipped):
    deep = Refiner(REFINER_PRESETS["cpu-deep"])
    deep.load_state_dict(grow_state_dict(deep, shipped.state_dict()))
    s_hat = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    z = torch.randn(1, shipped.cfg.prior_dim, generator=torch.Generator().manual_seed(2))
    deep.restorer(s_hat, z).square().mean().backward()
    new = deep.restorer.mid.blocks[-1]  # the cpu preset has one mid block; cpu-deep has six
    assert new.attn.proj.weight.grad.abs().sum() > 0 and new.ffn.out.weight.grad.abs().sum() > 0


def test_growth_refuses_a_different_width(shipped):
    wide = Refiner(REFINER_PRESETS["paper-s"])
    with pytest.raises(ValueError, match="shape|missing|does not have"):
        grow_state_dict(wide, shipped.state_dict())


def test_snr_input_starts_as_no_effect_then_reads_the_snr(shipped):
    """snr_prior: the diffusion's condition also reads the SNR. Loaded from a refiner without it, the served output
    is unchanged; once its weights move, a different SNR gives a different prior; without an SNR it refuses."""
    cfg = dataclasses.replace(shipped.cfg, snr_prior=True)
    snr = Refiner(cfg).eval()
    snr.load_state_dict(grow_state_dict(snr, shipped.state_dict()))
    s_hat = torch.rand(2, 3, 40, 48, generator=torch.Generator().manual_seed(3))
    z0 = torch.randn(2, cfg.prior_dim, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(snr(s_hat, z_start=z0, snr_db=torch.tensor([0.0, 15.0])),
                                   shipped(s_hat, z_start=z0), rtol=0, atol=1e-6)
        with pytest.raises(ValueError, match="SNR"):
            snr(s_hat, z_start=z0)
        torch.nn.init.normal_(snr.snr_embed[2].weight, std=0.1)
        low = snr.student_prior(s_hat, z_start=z0, snr_db=0.0)
        high = snr.student_prior(s_hat, z_start=z0, snr_db=15.0)
    assert (low - high).abs().mean() > 1e-3
