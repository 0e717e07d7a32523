"""sccdm.v1.Channel: run a frame through the configured backend with the request's seed.

Not batched: every request has its own seed, and the draws of a request must be
exactly those of ``sccdm.pipeline.simulate`` for that seed. All backend calls run
on ONE worker thread (the Sionna AWGN block is shared state).
"""
from __future__ import annotations

import asyncio
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from sccdm.backends import all_lost, get_backend, image_status, transmit_at_power
from sccdm.link.session import NoBurstError
from sccdm.channels import ChannelConfig
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving import convert
from sccdm.serving.server import Service, rpc, stream


def channel_config(p: pb.ChannelParams) -> ChannelConfig:
    """ChannelParams -> a validated :class:`sccdm.channels.ChannelConfig` (ValueError names the bad field)."""
    if not p.kind:
        raise convert.InvalidInput("channel.kind is required: 'awgn' or 'rayleigh'")
    cfg = ChannelConfig(kind=p.kind, snr_db=float(p.snr_db), fading=p.fading or "block",
                        block_size=int(p.block_size), csi=p.csi or "mmse", erasure_prob=float(p.erasure_prob))
    try:
        return cfg.validate()
    except ValueError as e:
        raise convert.InvalidInput(f"channel: {e}") from None


def frame_symbols(frame: pb.SymbolFrame) -> torch.Tensor:
    """The frame's symbols as complex64 [B, k], checked against its own description."""
    z = convert.proto_to_tensor(frame.symbols, "frame.symbols", dtypes=("complex64",), ndim=2)
    b, k = z.shape
    if b == 0 or k == 0:
        raise convert.InvalidInput(f"frame.symbols is empty (shape {[b, k]})")
    info = frame.info
    if info.num_symbols and k != info.num_symbols:
        raise convert.InvalidInput(f"frame.symbols has {k} symbols per image but frame.info.num_symbols says "
                                   f"{info.num_symbols}")
    convert.check_tx_snr(info, b)
    return convert.require_finite(z, "frame.symbols")


class ChannelService(Service, sccdm_pb2_grpc.ChannelServicer):
    name = "channel"

    def __init__(self, cfg, log):
        super().__init__(cfg, log)
        self.device = "cpu"  # channel draws are cheap; CPU keeps them identical to the in-process reference
        self.backend = get_backend(cfg.channel_backend)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channel")

    def load(self):
        # first use imports Sionna (seconds); do it before reporting SERVING
        z = torch.ones(1, 8, dtype=torch.complex64)
        self.backend.transmit(z, ChannelConfig(), torch.Generator().manual_seed(0))

    def _transmit(self, z, cfg, seed, power):
        t0 = time.perf_counter()
        try:
            res = transmit_at_power(self.backend, z, cfg, torch.Generator().manual_seed(seed), power)
        except NoBurstError as e:
            # the radio answered but no frame survived: a result (every image lost, and why), not an
            # outage - the service is up, and an error here read as "unavailable" to callers
            res = all_lost(z, getattr(self.backend, "name", self.cfg.channel_backend), str(e))
        return res, (time.perf_counter() - t0) * 1000

    @rpc("Transmit")
    async def Transmit(self, request: pb.TransmitRequest, context) -> pb.ReceivedFrame:
        self.require_ready()
        if not request.HasField("frame"):
            raise convert.InvalidInput("frame is required: the transmitter's SymbolFrame")
        cfg = channel_config(request.channel)
        z = frame_symbols(request.frame)
        power = convert.frame_power(request.frame.info)  # the noise variance is relative to it
        seed = request.channel.seed if request.channel.HasField("seed") else secrets.randbits(63)
        t0 = time.perf_counter()
        res, ms = await asyncio.get_running_loop().run_in_executor(self.executor, self._transmit, z, cfg, seed,
                                                                power)
        out = pb.ReceivedFrame(
            symbols=convert.tensor_to_proto(res.y.to(torch.complex64)),
            noise_var=res.noise_var.float().tolist(), snr_db=res.snr_db.float().tolist(),
            csi_source=res.csi_source,
            # the equaliser sccdm.pipeline.simulate applies: none on AWGN or without CSI
            csi_mode=cfg.csi if (cfg.kind != "awgn" and res.h is not None) else "none",
            info=request.frame.info, backend=getattr(self.backend, "name", self.cfg.channel_backend),
            extras=convert.dict_to_struct(res.extras), seed=seed,
            timings=pb.Timings(queue_ms=(time.perf_counter() - t0) * 1000 - ms, compute_ms=ms,
                               batch_requests=1, batch_images=z.shape[0]))
        if res.h is not None:
            out.csi.CopyFrom(convert.tensor_to_proto(res.h.to(torch.complex64)))
        if res.mask is not None and not bool(res.mask.all()):
            out.erasure_mask.CopyFrom(convert.tensor_to_proto(res.mask.bool()))
        out.image_status.extend(res.extras.get("image_status") or image_status(res.mask, z.shape[0]))
        out.link_status = str(res.extras.get("link_status", ""))
        return out

    TransmitStream = stream("TransmitStream", "Transmit")

    async def close(self):
        self.executor.shutdown(wait=False, cancel_futures=True)
