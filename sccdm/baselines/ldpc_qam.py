"""The paper's classical baseline: header-less JPEG + CRC + 5G LDPC + QAM on Sionna 2.x.

Per image the transmitter has ``k`` complex channel uses (the learned schemes' k).
With ``m`` bits per QAM symbol and code rate ``r`` that is ``k * m * r`` information
bits (256 for k = 256, QPSK, r = 1/2), split into at most 8448-bit 5G LDPC blocks,
each carrying a CRC. The data bits carry a 5-bit index into
:data:`~sccdm.baselines.jpeg.QUALITY_LADDER` and the JPEG payload, zero padded; the
transmitter picks the highest quality (<= 70) whose payload fits. The receiver
rebuilds the JPEG headers from the quality and the (known) image size.

Channel: :func:`sccdm.channels.apply_channel` on a [N, k] symbol block, the same
call the learned schemes make, so the same seed gives the same fading and noise
draws. The receiver has perfect CSI (coherent detection): it divides by h and
hands the demapper the effective per-symbol noise variance ``sigma^2 / |h|^2``;
erased symbols give zero LLRs. An image is *lost* (the receiver shows the mean
colour) when nothing fits, when a CRC fails, or when the JPEG does not decode.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, asdict

import numpy as np
import torch

from ..channels import ChannelConfig, apply_channel
from .common import fallback_images, from_uint8, to_uint8
from .jpeg import QUALITY_LADDER, best_fitting_quality, decode_payload

__all__ = ["LinkBudget", "link_budget", "transmit_bits", "JpegLdpcQam", "CRC_BITS", "MAX_INFO_BITS"]

CRC_BITS = {"CRC6": 6, "CRC11": 11, "CRC16": 16, "CRC24A": 24, "CRC24B": 24, "CRC24C": 24}
MAX_INFO_BITS = 8448  # the largest 5G NR LDPC block (base graph 1)
HEADER_BITS = 5       # log2(len(QUALITY_LADDER))
DECODE_CHUNK = 4096   # codewords per BP call: bounds memory, keeps calls vectorised
LLR_MAX = 20.0        # = LDPC5GDecoder's default internal message clipping


@dataclass(frozen=True)
class LinkBudget:
    """How ``k`` channel uses are spent. ``info_bits`` = k * bits_per_symbol * rate (the bit budget)."""

    k: int
    bits_per_symbol: int
    rate: float
    n_codewords: int
    n_cw: int         # coded bits per codeword
    k_cw: int         # information bits per codeword, CRC included
    crc_bits: int
    header_bits: int

    @property
    def symbols_used(self) -> int:
        return self.n_codewords * self.n_cw // self.bits_per_symbol

    @property
    def info_bits(self) -> int:
        return self.n_codewords * self.k_cw

    @property
    def data_bits(self) -> int:
        return self.n_codewords * (self.k_cw - self.crc_bits)

    @property
    def payload_bytes(self) -> int:
        return max(0, (self.data_bits - self.header_bits) // 8)

    def to_dict(self) -> dict:
        return {**asdict(self), "symbols_used": self.symbols_used, "info_bits": self.info_bits,
                "data_bits": self.data_bits, "payload_bytes": self.payload_bytes}


def link_budget(k: int, rate: float = 0.5, bits_per_symbol: int = 2, crc: str = "CRC16",
                header_bits: int = HEADER_BITS) -> LinkBudget:
    """Split k channel uses into equal LDPC codewords. Raises ValueError for impossible settings."""
    if crc not in CRC_BITS:
        raise ValueError(f"unknown CRC {crc!r}; expected one of {sorted(CRC_BITS)}")
    if not 0 < rate <= 0.95:
        raise ValueError(f"code rate must be in (0, 0.95] (5G LDPC), got {rate}")
    if bits_per_symbol not in (2, 4, 6, 8):
        raise ValueError(f"bits_per_symbol must be 2, 4, 6 or 8 (QAM), got {bits_per_symbol}")
    if k < 1:
        raise ValueError(f"k must be >= 1 channel use, got {k}")
    info = int(k * bits_per_symbol * rate)
    ncw = max(1, math.ceil(info / MAX_INFO_BITS))
    n_cw = (k // ncw) * bits_per_symbol
    return LinkBudget(k, bits_per_symbol, rate, ncw, n_cw, int(n_cw * rate), CRC_BITS[crc], header_bits)


_BLOCKS: dict = {}


def _blocks(b: LinkBudget, crc: str, num_iter: int):
    from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
    from sionna.phy.mapping import Demapper, Mapper

    key = (b.k_cw, b.n_cw, b.bits_per_symbol, crc, num_iter)
    if key not in _BLOCKS:
        crc_enc = CRCEncoder(crc)
        enc = LDPC5GEncoder(b.k_cw, b.n_cw, num_bits_per_symbol=b.bits_per_symbol)
        _BLOCKS[key] = dict(
            crc_enc=crc_enc, crc_dec=CRCDecoder(crc_enc), enc=enc,
            dec=LDPC5GDecoder(enc, hard_out=True, return_infobits=True, num_iter=num_iter),
            mapper=Mapper("qam", b.bits_per_symbol),
            demapper=Demapper("app", "qam", b.bits_per_symbol))
    return _BLOCKS[key]


def transmit_bits(bits: torch.Tensor, sent: torch.Tensor, channel: ChannelConfig, budget: LinkBudget,
                  generator: torch.Generator | None, coded: bool = True, crc: str = "CRC16",
                  num_iter: int = 20) -> dict:
    """Send one bit block per image over ``channel`` (QAM, and CRC + LDPC when ``coded``).

    bits: float {0, 1} [N, budget.data_bits] if coded, else [N, k * bits_per_symbol];
    sent: bool [N], rows that are transmitted (the others send silence, but the
    channel is still drawn for all N rows so draws line up with the other schemes).
    Returns ``bits_hat`` float [N, same] (zeros for rows not sent), ``crc_ok`` bool [N] (False for rows not
    sent; all True uncoded),
    ``llr`` float [N, k * bits_per_symbol] (before decoding), ``symbols`` complex64 [N, k].
    """
    blk = _blocks(budget, crc, num_iter)
    n, m, k = bits.shape[0], budget.bits_per_symbol, budget.k
    if coded:
        u = bits.reshape(n, budget.n_codewords, budget.k_cw - budget.crc_bits)
        cw = blk["enc"](blk["crc_enc"](u)).reshape(n, -1)
    else:
        cw = bits.reshape(n, -1)
    x = blk["mapper"](cw)
    z = torch.zeros(n, k, dtype=torch.complex64)
    z[:, :x.shape[1]] = torch.where(sent[:, None], x, torch.zeros((), dtype=x.dtype))
    rx = apply_channel(z, channel, generator)
    h = rx.h[:, :x.shape[1]]
    gain = h.abs().pow(2).clamp_min(1e-12)
    y = rx.y[:, :x.shape[1]] / torch.where(h.abs() > 1e-6, h, torch.full_like(h, 1e-6))
    no = rx.noise_var.reshape(-1, 1) / gain
    llr = blk["demapper"](y, no)
    llr = torch.where(rx.mask[:, :x.shape[1]].repeat_interleave(m, dim=1), llr, torch.zeros((), dtype=llr.dtype))
    if not coded:
        return {"bits_hat": (llr > 0).float(), "crc_ok": torch.ones(n, dtype=torch.bool), "llr": llr, "symbols": z}
    rows = torch.nonzero(sent).flatten()  # BP is the expensive part: decode only what was sent
    # The decoder clips its messages at +-20 anyway; clipping the channel LLRs too, and flushing
    # denormals, keeps high-SNR (huge LLR) decoding from crawling through subnormal floats (3-5x).
    # BP is thousands of small gather/scatter ops: with one thread it never waits at OpenMP
    # barriers, which on a busy 2-core machine made two threads 5-6x slower than one.
    llr_cw = llr[rows].reshape(-1, budget.n_cw).clamp(-LLR_MAX, LLR_MAX)
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    try:
        outs = [blk["dec"](llr_cw[i:i + DECODE_CHUNK]) for i in range(0, llr_cw.shape[0], DECODE_CHUNK)]
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)  # torch's default; there is no getter to restore from
    bits_hat = torch.zeros(n, budget.data_bits)
    ok = torch.zeros(n, dtype=torch.bool)
    if outs:
        u_hat, ok_cw = blk["crc_dec"](torch.cat(outs).reshape(len(rows), budget.n_codewords, budget.k_cw))
        bits_hat[rows] = u_hat.reshape(len(rows), -1)
        ok[rows] = ok_cw.reshape(len(rows), budget.n_codewords).bool().all(dim=1)
    return {"bits_hat": bits_hat, "crc_ok": ok, "llr": llr, "symbols": z}


class JpegLdpcQam:
    """JPEG payload + CRC + 5G LDPC (BP) + QAM. Call it like every entry of :data:`sccdm.baselines.SCHEMES`."""

    def __init__(self, rate: float = 0.5, bits_per_symbol: int = 2, crc: str = "CRC16", num_iter: int = 20,
                 ladder=QUALITY_LADDER):
        if len(ladder) > 2 ** HEADER_BITS:
            raise ValueError(f"the quality ladder has {len(ladder)} rungs; {HEADER_BITS} header bits hold 32")
        self.rate, self.m, self.crc, self.num_iter, self.ladder = rate, bits_per_symbol, crc, num_iter, tuple(ladder)

    def budget(self, k: int) -> LinkBudget:
        return link_budget(k, self.rate, self.m, self.crc)

    def __call__(self, images: torch.Tensor, channel: ChannelConfig, k: int, seed: int) -> dict:
        """images: float32 [N, 3, H, W] in [0, 1]. Returns x_hat float32 [N, 3, H, W], lost bool [N],
        channel_uses int64 [N], quality int64 [N] (0 = nothing sent), bits int64 [N] (data bits used),
        crc_ok bool [N]."""
        channel.validate()
        b = self.budget(k)
        u8 = to_uint8(images)
        n, hgt, wid = u8.shape[:3]
        x_hat = fallback_images(n, hgt, wid)
        quality = np.zeros(n, np.int64)
        used = np.zeros(n, np.int64)
        frames = np.zeros((n, b.data_bits), np.uint8)
        sent = np.zeros(n, bool)
        if b.payload_bytes > 0 and b.k_cw - b.crc_bits >= 1 and b.k_cw >= 12:
            for i in range(n):
                pick = best_fitting_quality(u8[i], b.payload_bytes, self.ladder)
                if pick is None:
                    continue
                idx, payload = pick
                head = np.array([(idx >> (b.header_bits - 1 - j)) & 1 for j in range(b.header_bits)], np.uint8)
                body = np.unpackbits(np.frombuffer(payload, np.uint8))
                frames[i, :b.header_bits] = head
                frames[i, b.header_bits:b.header_bits + body.size] = body
                quality[i], used[i], sent[i] = self.ladder[idx], b.header_bits + body.size, True
        lost = ~sent
        crc_ok = np.zeros(n, bool)
        if sent.any():
            gen = torch.Generator().manual_seed(int(seed))
            out = transmit_bits(torch.from_numpy(frames).float(), torch.from_numpy(sent), channel, b, gen,
                                crc=self.crc, num_iter=self.num_iter)
            bits_hat = out["bits_hat"].round().to(torch.uint8).numpy()
            crc_ok = out["crc_ok"].numpy() & sent
            for i in np.flatnonzero(sent):
                if not crc_ok[i]:
                    lost[i] = True
                    continue
                idx = int(np.packbits(bits_hat[i, :b.header_bits], bitorder="big")[0] >> (8 - b.header_bits))
                payload = np.packbits(bits_hat[i, b.header_bits:b.header_bits + 8 * b.payload_bytes]).tobytes()
                try:
                    if idx >= len(self.ladder):
                        raise ValueError("quality index outside the ladder")
                    x_hat[i] = from_uint8(decode_payload(payload, self.ladder[idx], hgt, wid))
                except ValueError:
                    lost[i] = True
        return {"x_hat": x_hat, "lost": torch.from_numpy(lost),
                "channel_uses": torch.from_numpy(np.where(sent, b.symbols_used, 0).astype(np.int64)),
                "quality": torch.from_numpy(quality), "bits": torch.from_numpy(used),
                "crc_ok": torch.from_numpy(crc_ok)}
