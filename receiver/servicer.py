"""sccdm.v1.Receiver: validate a received frame, then equalise, decode and refine (batched, see decode.py)."""
from __future__ import annotations

import asyncio
import math
import secrets

import torch

from sccdm.backends import IMAGE_STATUSES, image_status
from sccdm.channels import CSI_MODES
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.rpc import sccdm_pb2_grpc
from sccdm.serving import convert
from sccdm.serving.batcher import service_batcher
from sccdm.serving.models import ModelStore, model_list_proto
from sccdm.serving.server import Service, rpc, stream

from .decode import RxItem, run_batch

InvalidInput = convert.InvalidInput


def expected_latent_shape(model, h: int, w: int, channels: int | None = None) -> tuple | None:
    """(C, h, w) the model sends for an h x w image; channels: a rate-adaptive model's prefix, if it has that rate."""
    fn = getattr(model.cfg, "latent_shape", None)
    if fn is None:
        return None
    if channels is not None and channels in getattr(model.cfg, "rates", ()):
        return tuple(fn(h, w, channels))
    return tuple(fn(h, w))


class ReceiverService(Service, sccdm_pb2_grpc.ReceiverServicer):
    name = "receiver"

    def __init__(self, cfg, log):
        super().__init__(cfg, log)
        self.models = ModelStore.from_config(cfg, self.device)
        self.batcher = service_batcher(self._run_batch, cfg, name="receiver", key=lambda it: it.key,
                                       size=lambda it: it.y.shape[0], pixels=lambda it: math.prod(it.image_size),
                                       limit=lambda key: cfg.batch_limit(*key[2]))

    def load(self):
        model = self.models.load_default()
        shape = expected_latent_shape(model, 32, 32)
        if shape:  # warm-up: first calls allocate and pick kernels
            k = shape[0] * shape[1] * shape[2] // 2
            it = RxItem(self.models.default, torch.zeros(1, k, dtype=torch.complex64), None, torch.ones(1), None,
                        "none", shape, (32, 32), model.refiner is not None, 0)
            run_batch(model, [it], self.device, self.cfg.tile_pixels)

    def _run_batch(self, items: list[RxItem]) -> list[dict]:
        out = run_batch(self.models.get(items[0].model), items, self.device, self.cfg.tile_pixels)
        for r in out:
            r["png"] = convert.png_bytes(r["x_hat"])
            r["unrefined_png"] = convert.png_bytes(r["s_hat"]) if items[0].refine else []
        return out

    def _item(self, req: pb.DecodeRequest, model_name: str, model) -> RxItem:
        f = req.frame
        info = f.info
        y = convert.proto_to_tensor(f.symbols, "frame.symbols", dtypes=("complex64",), ndim=2)
        b, k = y.shape
        if b == 0 or k == 0:
            raise InvalidInput(f"frame.symbols is empty (shape {[b, k]})")
        convert.require_finite(y, "frame.symbols")
        latent = tuple(int(x) for x in info.latent_shape)
        if len(latent) != 3 or min(latent) <= 0:
            raise InvalidInput(f"frame.info.latent_shape must be (C, h, w) with positive sizes, got {list(latent)}")
        if 2 * k != math.prod(latent):
            raise InvalidInput(f"frame.symbols has {k} symbols per image but latent shape {list(latent)} needs "
                               f"{math.prod(latent) // 2}: the frame is truncated or padded")
        hh, ww = info.geometry.height, info.geometry.width
        if hh <= 0 or ww <= 0:
            raise InvalidInput(f"frame.info.geometry must give the image size, got {hh}x{ww}")
        if hh * ww > self.cfg.max_pixels:
            raise InvalidInput(f"image is {ww}x{hh} pixels; the limit is {self.cfg.max_pixels} (SCCDM_MAX_PIXELS)")
        want = expected_latent_shape(model, hh, ww, latent[0])
        if want is not None and want != latent:
            raise InvalidInput(f"latent shape {list(latent)} does not fit a {hh}x{ww} image for model "
                               f"{model_name!r} (expects {list(want)})")
        h = None
        if f.HasField("csi"):
            h = convert.proto_to_tensor(f.csi, "frame.csi", dtypes=("complex64",), ndim=2)
            if tuple(h.shape) != (b, k):
                raise InvalidInput(f"frame.csi has shape {list(h.shape)}, expected {[b, k]} like the symbols")
            convert.require_finite(h, "frame.csi")
        mask = None
        if f.HasField("erasure_mask"):
            mask = convert.proto_to_tensor(f.erasure_mask, "frame.erasure_mask", dtypes=("bool",), ndim=2)
            if tuple(mask.shape) != (b, k):
                raise InvalidInput(f"frame.erasure_mask has shape {list(mask.shape)}, expected {[b, k]}")
        convert.check_tx_snr(info, b)
        power = convert.frame_power(info)
        nv = convert.received_noise_var(f, b, power)  # noise_var wins; snr_db, if given, must agree
        if power != 1.0:
            # the decoder was trained on unit-power symbols: scale y back to P = 1 (sigma^2 with it, so
            # the SNR the decoder is told is unchanged); P = 1 leaves the frame untouched, bit for bit
            y, nv = y / math.sqrt(power), nv / power
        csi = f.csi_mode or ("mmse" if h is not None else "none")
        if csi not in CSI_MODES:
            raise InvalidInput(f"frame.csi_mode {csi!r} unknown; expected one of {CSI_MODES}")
        if csi != "none" and h is None:
            raise InvalidInput(f"frame.csi_mode is {csi!r} but the frame carries no CSI (frame.csi)")
        # refine asks for refinement where the model has it; a model without a refiner decodes
        # without, and DecodeResponse.refined says so (no error: the same request works for every model)
        refine = bool(req.refine) and model.refiner is not None
        seed = req.seed if req.HasField("seed") else secrets.randbits(63)
        return RxItem(model_name, y, h, nv, mask, csi, latent, (hh, ww), refine, int(seed))

    @rpc("Decode")
    async def Decode(self, request: pb.DecodeRequest, context) -> pb.DecodeResponse:
        self.require_ready()
        if not request.HasField("frame"):
            raise InvalidInput("frame is required: the channel's ReceivedFrame")
        info = request.frame.info  # a frame with no model name: chosen from the image size as Encode chooses
        name = self.models.resolve(info.model, info.geometry.height, info.geometry.width)
        model = await asyncio.get_running_loop().run_in_executor(None, self.models.get, name)
        item = self._item(request, name, model)
        status = self._image_status(request.frame, item)    # a bad status list is refused before decoding
        png, tensor = request.want_png, request.want_tensor
        if not png and not tensor:
            png = tensor = True
        # an answer gRPC could not send is refused now, not after the decoder and refiner ran
        convert.check_decode_reply(item.y.shape[0], *item.image_size, png, tensor, item.refine,
                                   self.cfg.max_message_bytes)
        res, stats = await self.batcher.submit(item)
        out = pb.DecodeResponse(eff_snr_db=res["eff_snr_db"].tolist(), refined=item.refine, model=name,
                                seed=item.seed if item.refine else 0,
                                timings=pb.Timings(queue_ms=stats.queue_ms, compute_ms=stats.compute_ms,
                                                   refine_ms=res["refine_ms"], batch_requests=stats.requests,
                                                   batch_images=stats.images))
        out.image_status.extend(status)
        if png:
            out.png.extend(res["png"])
            out.unrefined_png.extend(res["unrefined_png"])
        if tensor:
            out.image.CopyFrom(convert.tensor_to_proto(res["x_hat"].float().contiguous()))
            if item.refine:
                out.unrefined.CopyFrom(convert.tensor_to_proto(res["s_hat"].float().contiguous()))
        return out

    @staticmethod
    def _image_status(f: pb.ReceivedFrame, item: RxItem) -> list[str]:
        """The channel's word per image where it gave one, else what the mask says; a mask with no
        symbol of an image wins over an "ok" (never pass off a guess from nothing as the image)."""
        b = item.y.shape[0]
        from_mask = image_status(item.mask, b)
        given = list(f.image_status)
        if not given:
            return from_mask
        if len(given) != b or any(s not in IMAGE_STATUSES for s in given):
            raise InvalidInput(f"frame.image_status must hold {b} of {list(IMAGE_STATUSES)}, got {given[:8]}")
        return ["lost" if m == "lost" else g for g, m in zip(given, from_mask)]

    DecodeStream = stream("DecodeStream", "Decode")

    @rpc("ListModels")
    async def ListModels(self, request, context) -> pb.ModelList:
        return model_list_proto(self.models)

    async def close(self):
        await self.batcher.close()
