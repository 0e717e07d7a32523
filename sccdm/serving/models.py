"""Zoo models of one service: the default loads at start, others on first use."""
from __future__ import annotations

import threading

from .convert import InvalidInput


class ModelStore:
    """Thread-safe cache of :func:`sccdm.zoo.load` results on one device."""

    def __init__(self, default: str, device: str):
        self.default, self.device = default, device
        self._models: dict = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        from .. import zoo
        return zoo.names()

    def resolve(self, name: str) -> str:
        """"" -> the default; an unknown name -> :class:`InvalidInput` listing the known ones."""
        name = name or self.default
        known = self.names()
        if name not in known:
            raise InvalidInput(f"unknown model {name!r}; available models: {', '.join(known) or '(none)'}")
        return name

    def get(self, name: str):
        with self._lock:
            if name not in self._models:
                from .. import zoo
                self._models[name] = zoo.load(name, device=self.device)
            return self._models[name]

    def load_default(self):
        return self.get(self.resolve(self.default))

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
                        "is_default": n == self.default, "device": str(self.device), "config": cfg})
        return out


def model_list_proto(store: ModelStore):
    """:class:`sccdm.v1.ModelList` of what ``store`` can serve."""
    from ..rpc import sccdm_pb2 as pb
    from .convert import dict_to_struct

    return pb.ModelList(models=[pb.ModelInfo(name=i["name"], loaded=i["loaded"], has_refiner=i["has_refiner"],
                                             is_default=i["is_default"], device=i["device"],
                                             config=dict_to_struct(i["config"]))
                                for i in store.infos()])
