"""``SwinJSCCConfig.decoder_reach``, the margin the tiled decoder drops, is exactly how far the decoder reads.

Structural, so any weights do: change the latent beyond a cut on the window grid and the decoded image must stay
bit-identical up to ``decoder_reach`` latent pixels before the cut, and change within it (a reach one too small
lets tiles disagree near their edges, as the deeper codecs' did with the fixed 4-pixel margin)."""
from __future__ import annotations

import pytest
import torch

from sccdm.models.swin import SWIN_PRESETS, SwinJSCC


@pytest.mark.parametrize("preset,expected", [("cpu", 3), ("cpu-deep", 7), ("paper", 7)])
def test_decoder_reads_exactly_its_reach(preset, expected):
    cfg = SWIN_PRESETS[preset]
    assert cfg.decoder_reach == expected
    torch.manual_seed(0)
    codec = SwinJSCC(cfg).eval()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(1, cfg.channels, 8, 16, generator=g)
    cut = 12                                      # latent columns, on the 4-pixel window grid
    z2 = z.clone()
    z2[..., cut:] += torch.randn(z2[..., cut:].shape, generator=g)
    snr = torch.tensor([10.0])
    with torch.no_grad():
        a, b = codec.decode(z, snr), codec.decode(z2, snr)
    clean = (cut - cfg.decoder_reach) * cfg.downscale  # image columns before the reach
    assert torch.equal(a[..., :clean], b[..., :clean])
    assert (a[..., clean:clean + cfg.downscale] - b[..., clean:clean + cfg.downscale]).abs().max() > 1e-4
