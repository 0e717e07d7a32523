"""Separate source/channel coding baselines, called by ``sccdm eval`` and :mod:`sccdm.suite`.

:data:`SCHEMES` maps a name to ``fn(images, channel, k, seed) -> dict``:

* images: float32 [N, 3, H, W] in [0, 1]; channel: :class:`sccdm.channels.ChannelConfig`;
  k: complex channel uses per image (the learned schemes' k, 256 for 32x32 at CBR 1/12);
  seed: the channel draws come from ``torch.Generator().manual_seed(seed)`` through
  :func:`sccdm.channels.apply_channel` on a [N, k] block, exactly as
  ``sccdm.pipeline.simulate(model, images, channel, torch.Generator().manual_seed(seed))``
  draws them, so a batch sees the same fading and noise under every scheme.
* returns ``x_hat`` float32 [N, 3, H, W], ``lost`` bool [N] (the receiver shows the
  mean-colour fallback), ``channel_uses`` int64 [N] (actually spent), plus per-image extras.

Entries: ``jpeg-ldpc`` (header-less JPEG + CRC16 + 5G LDPC rate 1/2 + QPSK, Sionna),
``separation`` (Pillow's codecs + capacity: a reference, not a bound for stronger codecs; transmitter without CSI) and
``separation-csit`` (the same with the realised capacity known at the transmitter),
``avif-ldpc`` (the practical chain: AVIF + CRC16 + 5G LDPC + 4/16/64-QAM, the MCS picked per SNR by link
adaptation at 10 % predicted image error rate, :mod:`sccdm.baselines.practical`) and ``avif-ldpc-genie``
(the same with the best MCS per image on the realised channel: an upper reference, not practical).
"""
from __future__ import annotations

from .ldpc_qam import JpegLdpcQam, link_budget
from .practical import MCS_TABLE, PracticalChain
from .separation import Separation, available_codecs

__all__ = ["SCHEMES", "JpegLdpcQam", "Separation", "PracticalChain", "MCS_TABLE", "link_budget",
           "available_codecs"]

SCHEMES = {
    "jpeg-ldpc": JpegLdpcQam(rate=0.5, bits_per_symbol=2),
    "separation": Separation(csit=False),
    "separation-csit": Separation(csit=True),
    "avif-ldpc": PracticalChain(mcs="adaptive"),
    "avif-ldpc-genie": PracticalChain(mcs="best"),
}
