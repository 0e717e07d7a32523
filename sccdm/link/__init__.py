"""The radio link: frames, synchronisation, channel / SNR estimation, pulse shaping.

>>> from sccdm.link import LinkConfig, LinkSession, LinkMeta
>>> session = LinkSession(LinkConfig(sps=4))
>>> plan = session.plan(symbols, LinkMeta("sc-cdm-cpu", (32, 4, 4), (32, 32)))  # symbols complex [B, k]
>>> rx = my_channel(plan.samples)                  # complex64 sample stream, any radio in between
>>> result = session.receive(rx, plan, channel_cfg)  # ChannelResult with ESTIMATED h, noise_var, snr_db

Lower levels: :func:`modulate` / :class:`Receiver` (frames <-> samples),
:mod:`.framing` (format, header, :class:`LinkConfig`), :mod:`.sync`,
:mod:`.estimate`, :mod:`.pulse`, :mod:`.fec`, :mod:`.fading` (time-varying Rayleigh
fading for emulation). SNR convention: unit energy per
symbol on air, noise variance per sample = 1 / SNR (see :mod:`.pulse`).
"""
from .framing import Header, HeaderError, LinkConfig, layout, model_id
from .modem import DemodResult, Receiver, RxFrame, modulate
from .session import LinkError, LinkMeta, LinkSession, LinkTimeout, NoBurstError, TxPlan

__all__ = ["LinkConfig", "Header", "HeaderError", "layout", "model_id", "modulate", "Receiver", "RxFrame",
           "DemodResult", "LinkSession", "LinkMeta", "TxPlan", "LinkError", "LinkTimeout", "NoBurstError"]
