"""Lost frames reported per image (issue 12): backend extras, the channel service's reply, the receiver's mark."""
from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
import torch

from sccdm.backends import all_lost, image_status
from sccdm.backends.emulated_link import EmulatedLinkBackend
from sccdm.channels import ChannelConfig
from sccdm.link import LinkConfig
from sccdm.link.backend import LinkBackend
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert


def _symbols(b, k=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.complex(torch.randn(b, k, generator=g), torch.randn(b, k, generator=g)) * 0.7071).to(torch.complex64)


def test_a_frame_lost_on_air_is_reported_for_its_images():
    """Two images per frame, the second frame's samples wiped out on the way: exactly images 2 and 3 'lost'."""
    be = EmulatedLinkBackend(LinkConfig(images_per_frame=2), cfo=1e-4)
    z = _symbols(6)
    plan = be.session.plan(z)
    cfg = ChannelConfig(kind="awgn", snr_db=15)
    rx = be.channel_stream(plan, cfg, torch.Generator().manual_seed(0))
    rx[plan.starts[1]:plan.starts[2]] = 0                # frame 1 (images 2, 3) never arrives
    res = be.finish(rx, plan, cfg, None)
    st = res.extras["image_status"]
    assert st == ["ok", "ok", "lost", "lost", "ok", "ok"], st
    assert res.extras["lost_images"] == [2, 3]
    assert res.extras["link_status"].startswith("2 of 6 images lost: 1 of 3 frames not decoded"), res.extras
    assert not res.mask[2:4].any() and res.mask[[0, 1, 4, 5]].all()
    assert torch.all(res.y[2:4] == 0)


def test_image_status_from_a_mask():
    m = torch.ones(3, 4, dtype=torch.bool)
    m[1, 2] = False
    m[2] = False
    assert image_status(m, 3) == ["ok", "erased", "lost"]
    assert image_status(None, 2) == ["ok", "ok"]
    with pytest.raises(ValueError, match="mask"):
        image_status(m, 2)


class _NoiseRadio(LinkBackend):
    """A radio that answers with noise only: samples come back, no frame in them."""

    name = "noise-radio"
    raise_on_no_burst = True

    def channel_stream(self, plan, cfg, generator):
        rng = np.random.default_rng(0)
        n = len(plan.samples)
        return ((rng.normal(size=n) + 1j * rng.normal(size=n)) * 0.3).astype(np.complex64)


def _channel_service(backend):
    from channel.servicer import ChannelService
    from sccdm.serving.config import ServiceConfig

    svc = ChannelService(ServiceConfig.from_env("channel", env={"SCCDM_CHANNEL_BACKEND": "emulated_link"}),
                         logging.getLogger("test"))
    svc.backend, svc.ready = backend, True
    return svc


def _transmit(svc, z, snr_db=15.0):
    frame = pb.SymbolFrame(symbols=convert.tensor_to_proto(z), info=pb.FrameInfo(tx_snr_db=[snr_db]))
    req = pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(kind="awgn", snr_db=snr_db, seed=1))
    impl = type(svc).Transmit.__wrapped_impl__
    try:
        return asyncio.run(impl(svc, req, None))
    finally:
        svc.executor.shutdown(wait=True)


def test_channel_service_reply_carries_image_status():
    rx = _transmit(_channel_service(EmulatedLinkBackend(LinkConfig(), cfo=1e-4)), _symbols(3))
    assert list(rx.image_status) == ["ok"] * 3
    assert rx.link_status == "ok: 3 of 3 frames decoded"


def test_channel_service_answers_no_frame_with_every_image_lost_not_an_error():
    """A radio that returns samples without any frame: a reply saying so (the service is up), not UNAVAILABLE."""
    rx = _transmit(_channel_service(_NoiseRadio(LinkConfig())), _symbols(2))
    assert list(rx.image_status) == ["lost", "lost"]
    assert "no frame found" in rx.link_status
    mask = convert.proto_to_tensor(rx.erasure_mask, "mask")
    assert mask.shape == (2, 128) and not mask.any()
    assert torch.all(convert.proto_to_tensor(rx.symbols, "y") == 0)


def test_all_lost_result_shapes():
    res = all_lost(_symbols(2, 8), "zmq", "why")
    assert res.y.shape == (2, 8) and res.y.dtype == torch.complex64 and not res.mask.any()
    assert res.extras["image_status"] == ["lost", "lost"] and res.extras["link_status"] == "why"


def test_receiver_marks_lost_images_and_refuses_a_bad_status_list():
    from receiver.servicer import ReceiverService
    from sccdm.serving.convert import InvalidInput

    class Item:
        y = torch.zeros(3, 4, dtype=torch.complex64)
        mask = torch.tensor([[True] * 4, [True, False, True, True], [False] * 4])

    f = pb.ReceivedFrame()
    assert ReceiverService._image_status(f, Item) == ["ok", "erased", "lost"]
    f.image_status.extend(["ok", "ok", "ok"])          # a channel that says ok where nothing arrived: mask wins
    assert ReceiverService._image_status(f, Item) == ["ok", "ok", "lost"]
    f2 = pb.ReceivedFrame(image_status=["ok", "fine", "ok"])
    with pytest.raises(InvalidInput, match="image_status"):
        ReceiverService._image_status(f2, Item)
    with pytest.raises(InvalidInput, match="image_status"):
        ReceiverService._image_status(pb.ReceivedFrame(image_status=["ok"]), Item)
