"""Growing a trained Swin codec deeper (``adapt_state_dict`` into the ``cpu-deep`` preset): the new blocks start as
the identity, so the grown codec sends and decodes exactly what the trained one did, and they can learn."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from sccdm import zoo
from sccdm.models.swin import SWIN_PRESETS, SwinJSCC, adapt_state_dict


def _grown(trained: SwinJSCC) -> SwinJSCC:
    deep = SwinJSCC(dataclasses.replace(trained.cfg, depths=SWIN_PRESETS["cpu-deep"].depths))
    deep.load_state_dict(adapt_state_dict(deep, trained.state_dict()))  # strict: every weight accounted for
    return deep


def test_grown_codec_computes_what_the_trained_one_did():
    # sc-cdm-cpu itself was grown this way (2026-11-29); sc-cdm-cpu-rate's codec is a trained one still at cpu depth
    trained = zoo.load("sc-cdm-cpu-rate").codec.float().eval()
    assert trained.cfg.depths == SWIN_PRESETS["cpu"].depths
    deep = _grown(trained).eval()
    assert len(deep.encoder.stages[1].blocks) == 2 * len(trained.encoder.stages[1].blocks)
    assert len(deep.decoder.stages[0].blocks) == 2 * len(trained.decoder.stages[0].blocks)
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(2, 3, 4, 6, generator=g), size=(32, 48), mode="bilinear")  # smooth, like a photo
    snr = torch.tensor([1.0, 13.0])
    with torch.no_grad():
        z_trained, z_deep = trained.encode(x, snr), deep.encode(x, snr)
        torch.testing.assert_close(z_deep, z_trained, rtol=0, atol=1e-6)
        noisy = z_trained + 0.3 * torch.randn(z_trained.shape, generator=g)
        torch.testing.assert_close(deep.decode(noisy, snr), trained.decode(noisy, snr), rtol=0, atol=1e-6)
        # the identity is the trained codec's, not a dead network: it reconstructs the image
        assert (trained.decode(z_trained, snr, size=(32, 48)) - x).abs().mean() < 0.5 * (x - x.mean()).abs().mean()


def test_new_blocks_get_gradients():
    deep = _grown(SwinJSCC(SWIN_PRESETS["cpu"]))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    snr = torch.tensor([5.0, 10.0])
    (deep.decode(deep.encode(x, snr), snr) - x).square().mean().backward()
    for new in (deep.encoder.stages[1].blocks[-1], deep.decoder.stages[0].blocks[-1]):
        assert new.attn.proj.weight.grad.abs().sum() > 0 and new.mlp[2].weight.grad.abs().sum() > 0
