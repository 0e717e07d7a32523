"""Zoo models of one service: the default loads at start, others on first use.

A request that names no model gets the default (SCCDM_MODEL), or the photo model
(SCCDM_PHOTO_MODEL) when its images are photo-sized: smaller side >= SCCDM_PHOTO_MIN_SIDE;
if it says its channel is "rayleigh", the fading-trained counterpart (SCCDM_RAYLEIGH_MODEL,
SCCDM_RAYLEIGH_PHOTO_MODEL; SCCDM_RAYLEIGH_FAST_MODEL for a thumbnail on per-symbol fading); if it
asks for a CBR that model cannot send, the rate-adaptive model (SCCDM_RATE_THUMB_MODEL for a thumbnail,
else SCCDM_RATE_MODEL).
"""
from __future__ import annotations

import threading

from .convert import InvalidInput


class ModelStore:
    """Thread-safe cache of :func:`sccdm.zoo.load` results on one device."""

    CHANNELS = ("", "awgn", "rayleigh")
    FADINGS = ("", "block", "fast")

    def __init__(self, default: str, device: str, photo: str = "", photo_min_side: int = 64, rate: str = "",
                 rayleigh: str = "", rayleigh_photo: str = "", rayleigh_fast: str = "", rate_thumb: str = ""):
        self.default, self.device = default, device
        self.photo, self.photo_min_side, self.rate, self.rate_thumb = photo, photo_min_side, rate, rate_thumb
        self.rayleigh, self.rayleigh_photo, self.rayleigh_fast = rayleigh, rayleigh_photo, rayleigh_fast
        self._models: dict = {}
        self._configs: dict = {}   # name -> codec config, read once (not per request)
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        from .. import zoo
        return zoo.names()

    @classmethod
    def from_config(cls, cfg, device) -> "ModelStore":
        return cls(cfg.model, device, cfg.photo_model, cfg.photo_min_side, cfg.rate_model,
                   cfg.rayleigh_model, cfg.rayleigh_photo_model, cfg.rayleigh_fast_model, cfg.rate_thumb_model)

    def is_photo(self, height: int | None, width: int | None) -> bool:
        """Whether an image of this size gets the photo model when a request names none."""
        return bool(self.photo and height and width and min(height, width) >= self.photo_min_side)

    def resolve(self, name: str, height: int | None = None, width: int | None = None,
                cbr: float | None = None, channel: str = "", fading: str = "") -> str:
        """The model that serves a request: an explicit ``name`` always; "" -> the photo model for a
        photo-sized image (height x width given), else the default, each replaced by its Rayleigh-trained
        counterpart when ``channel`` is "rayleigh" and one is configured (for a thumbnail with ``fading``
        "fast", the per-symbol-fading one first: a codec trained on one h per image loses 0.4-0.7 dB when
        every symbol fades on its own); and when that one cannot send ``cbr``, the rate-adaptive model
        (the thumbnail one for an image that is not photo-sized, when configured).
        An unknown name, channel or fading -> :class:`InvalidInput`."""
        if channel not in self.CHANNELS:
            raise InvalidInput(f"channel must be one of 'awgn', 'rayleigh' or empty, got {channel!r}")
        if fading not in self.FADINGS:
            raise InvalidInput(f"fading must be one of 'block', 'fast' or empty, got {fading!r}")
        if name:
            self._check(name)
            return name
        photo = self.is_photo(height, width)
        name = self.photo if photo else self.default
        if channel == "rayleigh":
            fast = self.rayleigh_fast if fading == "fast" and not photo else ""
            name = fast or (self.rayleigh_photo if photo else self.rayleigh) or name
        self._check(name)
        # a thumbnail's rate model is CIFAR-trained: the photo one spends its capacity on photo statistics
        rate = (self.rate_thumb if not photo else "") or self.rate
        if cbr is not None and rate and name != rate and not self.sends(name, cbr):
            self._check(rate)
            name = rate
        return name

    def _check(self, name: str) -> None:
        known = self.names()
        if name not in known:
            raise InvalidInput(f"unknown model {name!r}; available models: {', '.join(known) or '(none)'}")

    def sends(self, name: str, cbr: float) -> bool:
        """Whether zoo model ``name`` can send at ``cbr`` (its own CBR, or one of its rates)."""
        from .. import zoo
        if name not in self._configs:
            self._configs[name] = zoo.part_config(name)
        try:
            self._configs[name].channels_for_cbr(cbr)
            return True
        except ValueError:
            return False

    def get(self, name: str):
        with self._lock:
            if name not in self._models:
                from .. import zoo
                self._models[name] = zoo.load(name, device=self.device)
            return self._models[name]

    def load_default(self):
        return self.get(self.resolve(self.default))

    def _channel_default_for(self, name: str) -> list[str]:
        """The channels ("rayleigh", "rayleigh-fast") for which ``name`` is an automatic choice."""
        out = ["rayleigh"] if name and name in (self.rayleigh, self.rayleigh_photo) else []
        return out + (["rayleigh-fast"] if name and name == self.rayleigh_fast else [])

    def infos(self) -> list[dict]:
        from .. import zoo
        out = []
        for n in self.names():
            e = zoo.entry(n)
            cfg = {}
            try:
                import json
                cfg = json.loads((zoo.WEIGHTS_DIR / n / e["parts"]["codec"]["config"]).read_text())
                cfg = {k: v for k, v in cfg.items() if k not in ("training", "sha256")}
            except Exception:  # noqa: BLE001 - description only
                pass
            out.append({"name": n, "loaded": n in self._models, "has_refiner": "refiner" in e.get("parts", {}),
                        "is_default": n == self.default, "is_photo_default": bool(self.photo) and n == self.photo,
                        "is_rate_default": bool(self.rate) and n == self.rate,
                        "is_rate_thumb_default": bool(self.rate_thumb) and n == self.rate_thumb,
                        "channel_default_for": self._channel_default_for(n),
                        "device": str(self.device), "config": cfg})
        return out


def model_list_proto(store: ModelStore):
    """:class:`sccdm.v1.ModelList` of what ``store`` can serve."""
    from ..rpc import sccdm_pb2 as pb
    from .convert import dict_to_struct

    return pb.ModelList(models=[pb.ModelInfo(name=i["name"], loaded=i["loaded"], has_refiner=i["has_refiner"],
                                             is_default=i["is_default"], is_photo_default=i["is_photo_default"],
                                             is_rate_default=i["is_rate_default"],
                                             is_rate_thumb_default=i["is_rate_thumb_default"],
                                             channel_default_for=i["channel_default_for"],
                                             device=i["device"],
                                             config=dict_to_struct(i["config"]))
                                for i in store.infos()])
