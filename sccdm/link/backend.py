"""Base of the radio backends (emulated_link, zmq, sigmf): symbols -> stream -> channel -> receiver."""
from __future__ import annotations

import numpy as np
import torch

from .framing import LinkConfig
from .session import LinkMeta, LinkSession, NoBurstError, TxPlan

__all__ = ["LinkBackend"]


class LinkBackend:
    """Subclasses implement :meth:`channel_stream` (tx samples -> rx samples)."""

    name = "link"
    raise_on_no_burst = False

    def __init__(self, link: LinkConfig | None = None):
        self.session = LinkSession(link or LinkConfig.from_env())

    def check(self, cfg) -> None:
        cfg.validate()

    def channel_stream(self, plan: TxPlan, cfg, generator: torch.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def transmit(self, symbols: torch.Tensor, cfg, generator: torch.Generator | None = None,
                 meta: LinkMeta | None = None):
        """symbols: complex64 [B, k], power-normalised -> ChannelResult (estimated CSI and SNR).

        meta: optional model name / latent shape / image size for the header (and
        for ``extras["cbr_with_overhead"]``).
        """
        self.check(cfg)
        plan = self.session.plan(symbols, meta)
        rx = self.channel_stream(plan, cfg, generator)
        return self.finish(rx, plan, cfg, generator)

    def finish(self, rx: np.ndarray, plan: TxPlan, cfg, generator):
        res = self.session.receive(rx, plan, cfg, generator, source=self.name)
        if self.raise_on_no_burst and res.extras["frames_received"] == 0:
            rej = "; ".join(sorted({r["reason"].split(" 0.")[0] for r in res.extras["rejected"]})) or "none"
            raise NoBurstError(f"{self.name}: no frame found in {len(rx)} received samples "
                               f"({res.extras['detect_candidates']} candidates; rejected: {rej})")
        return res
