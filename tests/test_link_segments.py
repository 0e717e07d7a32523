"""Images larger than one frame header can announce (k > 65536 symbols) travel as segments.

A 512x1024 photo at CBR 1/12 is k = 131072 complex symbols: two segments of 65536; k = 150000
makes three of 50000. Without segmentation the link refused it (ValueError: k < 65536); a 512x512 one
(k = 65536 exactly) now fits one frame (the header's k field holds k - 1).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link.session import MAX_K, LinkMeta, LinkSession, TxPlan

K = 131072       # 32 x 64 x 128 latent / 2: a 512x1024 image at CBR 1/12


def _symbols(b: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.complex(torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)) * 0.7071).to(torch.complex64)


def test_a_large_image_crosses_the_link_in_segments():
    z = _symbols(2, K)
    res = EmulatedLinkBackend().transmit(z, ChannelConfig(kind="awgn", snr_db=10), torch.Generator().manual_seed(0),
                                         LinkMeta("sc-cdm-paper-photo", (32, 64, 128), (512, 1024)))
    e = res.extras
    assert e["segments_per_image"] == 2 and e["frames"] == 4 and e["frames_received"] == 4
    assert e["image_status"] == ["ok", "ok"] and res.mask.all() and res.y.shape == (2, K)
    mse_db = -10 * np.log10(((res.y - z).abs() ** 2).mean().item())
    assert abs(mse_db - 10) < 0.5 and torch.all((res.snr_db - 10).abs() < 1.0), (mse_db, res.snr_db)
    # the overhead is counted per image, padding and three headers included
    assert 1.0 < e["overhead_factor"] < 1.05 and e["cbr_with_overhead"] == pytest.approx(e["cbr"] * e["overhead_factor"])


def test_a_lost_segment_erases_only_its_symbols():
    s = LinkSession()
    z = _symbols(1, 150000, seed=1)
    plan = s.plan(z)
    assert plan.segments == 3 and plan.rows == 3 and plan.row_k == 50000
    rng = np.random.default_rng(0)
    rx = plan.samples + 0.1 * (rng.standard_normal(len(plan.samples)) + 1j * rng.standard_normal(len(plan.samples)))
    rx[plan.starts[1]:plan.starts[2]] = 0                  # the middle segment never arrives
    res = s.receive(rx.astype(np.complex64), plan, ChannelConfig(kind="awgn", snr_db=17).validate())
    m = res.mask[0].numpy()
    assert res.extras["image_status"] == ["erased"] and res.extras["lost_images"] == []
    assert m[:50000].all() and not m[50000:2 * 50000].any() and m[2 * 50000:].all()
    assert torch.all(res.y[0, 50000:2 * 50000] == 0)
    got = res.y[0].numpy()[m]
    assert np.mean(np.abs(got - z[0].numpy()[m]) ** 2) < 0.05


def test_the_plan_description_keeps_the_segments():
    plan = LinkSession().plan(_symbols(1, 70000))
    again = TxPlan.from_description(plan.describe(), plan.samples)
    assert again.segments == plan.segments == 2 and again.row_k == 35000 and again.rows == 1 * 2
    x = np.arange(70000)[None]
    assert np.array_equal(again.to_images(again.to_rows(x)), x)


def test_a_512x512_image_at_cbr_1_12_is_one_frame_within_5_percent_overhead():
    plan = LinkSession().plan(np.ones((1, 65536), dtype=np.complex64))
    assert plan.segments == 1 and len(plan.frames) == 1
    assert sum(plan.overhead_symbols) / 65536 <= 0.05


def test_more_symbols_than_the_link_takes_is_a_clear_error():
    with pytest.raises(ValueError, match="k <="):
        LinkSession().plan(np.ones((1, MAX_K + 1), dtype=np.complex64))


def test_the_channel_service_passes_a_large_photo_over_the_link():
    """The gRPC channel service with the emulated link: before segmentation this was INVALID_ARGUMENT."""
    import asyncio
    import logging

    from channel.servicer import ChannelService
    from sccdm.rpc import sccdm_pb2 as pb
    from sccdm.serving import convert
    from sccdm.serving.config import ServiceConfig

    svc = ChannelService(ServiceConfig.from_env("channel", env={"SCCDM_CHANNEL_BACKEND": "emulated_link"}),
                         logging.getLogger("test"))
    svc.backend, svc.ready = EmulatedLinkBackend(), True
    z = _symbols(1, K, seed=2)
    frame = pb.SymbolFrame(symbols=convert.tensor_to_proto(z), info=pb.FrameInfo(tx_snr_db=[12.0]))
    req = pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(kind="awgn", snr_db=12.0, seed=1))
    try:
        rx = asyncio.run(type(svc).Transmit.__wrapped_impl__(svc, req, None))
    finally:
        svc.executor.shutdown(wait=True)
    y = convert.proto_to_tensor(rx.symbols, "y")
    assert list(rx.image_status) == ["ok"] and rx.link_status == "ok: 2 of 2 frames decoded"
    assert y.shape == (1, K) and ((y - z).abs() ** 2).mean() < 0.1
