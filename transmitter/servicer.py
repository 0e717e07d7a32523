"""sccdm.v1.Transmitter: Encode images into symbols with :func:`sccdm.pipeline.encode`, dynamically batched."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sccdm import pipeline
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving import convert
from sccdm.serving.batcher import service_batcher
from sccdm.serving.models import ModelStore, model_list_proto
from sccdm.serving.server import Service, rpc, stream


@dataclass
class _Item:
    model: str
    images: torch.Tensor   # float32 [B, 3, H, W] in [0, 1], CPU
    snr_db: float          # the SNR the encoder assumes, for every image of the request
    channels: int | None = None  # latent channels sent (rate-adaptive models); None: all


class TransmitterService(Service, sccdm_pb2_grpc.TransmitterServicer):
    name = "transmitter"

    def __init__(self, cfg, log):
        super().__init__(cfg, log)
        self.models = ModelStore.from_config(cfg, self.device)
        self.batcher = service_batcher(self._run_batch, cfg, name="transmitter",
                                       key=lambda it: (it.model, tuple(it.images.shape[-2:]), it.channels),
                                       size=lambda it: it.images.shape[0],
                                       pixels=lambda it: it.images.shape[-2] * it.images.shape[-1],
                                       limit=lambda key: cfg.batch_limit(*key[1]))

    def load(self):
        model = self.models.load_default()
        pipeline.encode(model, torch.zeros(1, 3, 32, 32, device=self.device), 10.0)  # warm-up

    def _run_batch(self, items: list[_Item]) -> list:
        """All items share model and image size; returns per item (symbols complex64 [b, k], latent shape)."""
        model = self.models.get(items[0].model)
        images = torch.cat([it.images for it in items]).to(self.device)
        # a lone request passes the scalar SNR exactly as sccdm.pipeline.simulate does
        snr = items[0].snr_db if len(items) == 1 else torch.cat(
            [torch.full((it.images.shape[0],), it.snr_db, dtype=torch.float32) for it in items]).to(self.device)
        frame = pipeline.encode(model, images, snr, channels=items[0].channels)
        out, i = [], 0
        symbols = frame.symbols.cpu()
        for it in items:
            n = it.images.shape[0]
            out.append((symbols[i:i + n], frame.latent_shape))
            i += n
        return out

    @rpc("Encode")
    async def Encode(self, request: pb.EncodeRequest, context) -> pb.SymbolFrame:
        self.require_ready()
        if request.model:  # an unknown name fails before the image is decoded
            self.models.resolve(request.model)
        if not request.HasField("snr_db"):
            raise convert.InvalidInput("snr_db is required: the SNR in dB the encoder assumes, in [-20, 40]")
        snr = convert.check_snr(request.snr_db)
        cbr = convert.check_cbr(request.cbr) if request.HasField("cbr") else None
        images = convert.images_from_encode(request, self.cfg.max_pixels)
        # no model named: the photo model (SCCDM_PHOTO_MODEL) for photo-sized images, else SCCDM_MODEL,
        # or their Rayleigh-trained counterparts when the request's channel is "rayleigh" (for a thumbnail on
        # fading "fast", the per-symbol-fading SCCDM_RAYLEIGH_FAST_MODEL);
        # the rate-adaptive SCCDM_RATE_MODEL when the request's cbr is one that model cannot send
        model = self.models.resolve(request.model, *images.shape[-2:], cbr=cbr, channel=request.channel,
                                    fading=request.fading)
        # the first request of an unloaded model loads it here, off the event loop
        m = await _in_thread(self.models.get, model)
        channels = _channels_for(m, cbr)
        (symbols, latent_shape), stats = await self.batcher.submit(_Item(model, images, snr, channels))
        h, w = images.shape[-2:]
        mult = getattr(m.cfg, "pad_multiple", 1)
        padded = (h + (-h) % mult, w + (-w) % mult)
        k = symbols.shape[1]
        info = convert.info_to_proto(k, latent_shape, (h, w), padded, model, 1.0, [snr] * images.shape[0],
                                     k / (3.0 * h * w))
        return pb.SymbolFrame(symbols=convert.tensor_to_proto(symbols), info=info,
                              timings=pb.Timings(queue_ms=stats.queue_ms, compute_ms=stats.compute_ms,
                                                 batch_requests=stats.requests, batch_images=stats.images))

    EncodeStream = stream("EncodeStream", "Encode")

    @rpc("ListModels")
    async def ListModels(self, request, context) -> pb.ModelList:
        return model_list_proto(self.models)

    async def close(self):
        await self.batcher.close()


def _channels_for(model, cbr: float | None) -> int | None:
    """The latent channels to send for a (checked) ``cbr`` (None: the model's full rate)."""
    if cbr is None:
        return None
    try:
        c = model.cfg.channels_for_cbr(cbr)
    except ValueError as e:
        raise convert.InvalidInput(f"model {model.name!r}: {e}; rate-adaptive models take cbr "
                                   f"1/48, 1/24, 1/12 (see ListModels: config.rates)") from None
    return None if c == model.cfg.channels else c


async def _in_thread(fn, *args):
    import asyncio
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
