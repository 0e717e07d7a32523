"""A practical separate chain: AVIF + CRC + 5G LDPC + QAM with link adaptation (scheme ``avif-ldpc``).

Per image the transmitter has ``k`` complex channel uses (the learned schemes' k) and
picks a modulation and coding scheme (MCS) from :data:`MCS_TABLE` (QAM order 4 / 16 / 64
x 5G LDPC rate 1/3 ... 5/6). Like a link-adaptation loop it knows the channel's
*statistics* (kind, mean SNR, fading, erasure probability), never the noise or fading
realisation: it takes the highest-throughput MCS whose predicted image error rate
(any CRC failing) is below :data:`TARGET_BLER` = 10 %. Below the table's reach it
still sends on the most robust MCS (as 5G would) and the CRC decides.

* Prediction: each MCS has a measured AWGN codeword-error curve, a probit in dB,
  ``p_cw(snr) = Phi((mu - snr) / sigma)`` (:data:`THRESHOLDS`, measured with
  :func:`measure_threshold` on the codeword geometry of 3 image sizes, command in the
  table's comment); an image of ``n_codewords`` codewords is lost with
  ``1 - prod(1 - p_cw)``. Fading / erasures: per codeword effective SNR by mutual
  information (MIESM with the BICM capacity of the QAM order, erased symbols carry 0
  bits), averaged over :data:`STAT_DRAWS` channel draws from a fixed seed (the
  transmitter's knowledge of the statistics, not the shared draws).
* Source: the first codec of ``codecs`` this Pillow has (AVIF, else WebP, else the
  header-less JPEG payload) at the highest quality whose file fits the MCS's data bits
  (binary search over quality, encodes cached per image and quality). With
  ``fit_fallback=True`` the next codecs are tried when even the lowest quality does not
  fit (AVIF's container alone is ~300 bytes). A 33-bit frame header carries codec,
  quality and byte length; the MCS index travels on the control channel (not counted,
  like 5G's DCI).
* Channel: :func:`sccdm.baselines.ldpc_qam.transmit_bits` - CRC16 per codeword, 5G LDPC
  (BP, 20 iterations), QAM through :func:`sccdm.channels.apply_channel` on a [N, k]
  block with ``torch.Generator().manual_seed(seed)``: the same draws as every scheme.
* Loss: any CRC failure, a header that makes no sense or a file that does not decode
  -> the mean-colour fallback image.
* ``mcs="best"``: a genie upper reference, NOT practical - per image the MCS is tried
  from the highest throughput down on the realised channel and the first that
  decodes is kept (more bits never lower the chosen quality, so that is the best
  PSNR up to codec quirks); MCSs the BLER model gives < 0.1 % success on the realised
  channel are skipped. ``mcs=<int>``: a fixed MCS index.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from ..channels import ChannelConfig, apply_channel
from .common import decode_rgb, fallback_images, from_uint8, highest_fitting, to_uint8
from .jpeg import MAX_QUALITY, decode_payload
from .ldpc_qam import LinkBudget, link_budget, transmit_bits
from .separation import CODECS, available_codecs, encode_option

__all__ = ["Mcs", "MCS_TABLE", "THRESHOLDS", "TARGET_BLER", "PracticalChain", "predicted_bler",
           "select_mcs", "measure_threshold", "best_fitting_file"]

CRC = "CRC16"
NUM_ITER = 20
TARGET_BLER = 0.10
STAT_DRAWS = 256
CODEC_BITS, QUALITY_BITS, LENGTH_BITS = 2, 7, 24
HEADER_BITS = CODEC_BITS + QUALITY_BITS + LENGTH_BITS
SOURCE_CODECS = ("avif", "webp", "jpeg-payload")  # preference order; the first available is the codec


@dataclass(frozen=True)
class Mcs:
    """One modulation and coding scheme: ``bits_per_symbol`` (2 = QPSK, 4 = 16-QAM, 6 = 64-QAM), LDPC ``rate``."""

    bits_per_symbol: int
    rate: Fraction

    @property
    def name(self) -> str:
        return f"{2 ** self.bits_per_symbol}QAM-{self.rate}"

    @property
    def efficiency(self) -> float:
        """Information bits per channel use."""
        return self.bits_per_symbol * float(self.rate)


RATES = tuple(Fraction(a, b) for a, b in ((1, 3), (1, 2), (2, 3), (3, 4), (5, 6)))
# The full product; entries another one beats (same or lower throughput, higher threshold) are never picked.
MCS_TABLE: tuple[Mcs, ...] = tuple(Mcs(m, r) for m in (2, 4, 6) for r in RATES)

# AWGN codeword error rate of each MCS as a probit in dB: p_cw(snr) = Phi((mu - snr) / sigma), keyed by the
# reference k whose codeword geometry (_geometry(k, mcs)) was simulated; an image uses the table of the
# nearest k (log scale). Measured on this machine (1 busy CPU thread) with
#   python -m sccdm.baselines.practical measure --k 256 4096 98304
# (seed 0, 16 codewords per coarse 0.5 dB point, 32 per 0.1 dB point across the waterfall, probit MLE;
# ~35 min). With the image's codeword count the 10 % image-loss points at k = 98,304 are QPSK 1/3 -1.15 dB,
# 1/2 1.23, 2/3 3.22, 3/4 4.25, 5/6 5.44; 16-QAM 1/2 6.58, 2/3 9.01, 3/4 10.35, 5/6 11.71; 64-QAM 2/3 13.90,
# 3/4 15.61, 5/6 17.28 (16-QAM 1/3, 64-QAM 1/3 and 1/2 are beaten by an MCS of equal throughput, never picked).
# MIESM spot checks at k = 4,096 (64 images, fast Rayleigh / 20 % erasures) put the predicted 10 % points
# within ~0.1-0.2 dB of the simulated ones, on the optimistic side for 64-QAM.
THRESHOLDS: dict[int, dict[str, tuple[float, float]]] = {
    256: {
        '4QAM-1/3': (-1.338, 0.528),
        '4QAM-1/2': (0.942, 0.394),
        '4QAM-2/3': (3.034, 0.454),
        '4QAM-3/4': (4.057, 0.465),
        '4QAM-5/6': (5.144, 0.447),
        '16QAM-1/3': (3.214, 0.509),
        '16QAM-1/2': (6.056, 0.423),
        '16QAM-2/3': (8.721, 0.371),
        '16QAM-3/4': (9.98, 0.333),
        '16QAM-5/6': (11.373, 0.382),
        '64QAM-1/3': (6.644, 0.454),
        '64QAM-1/2': (10.327, 0.34),
        '64QAM-2/3': (13.629, 0.364),
        '64QAM-3/4': (15.141, 0.335),
        '64QAM-5/6': (16.808, 0.349),
    },
    4096: {
        '4QAM-1/3': (-1.333, 0.165),
        '4QAM-1/2': (0.951, 0.126),
        '4QAM-2/3': (3.02, 0.119),
        '4QAM-3/4': (4.033, 0.109),
        '4QAM-5/6': (5.135, 0.114),
        '16QAM-1/3': (3.241, 0.084),
        '16QAM-1/2': (6.223, 0.134),
        '16QAM-2/3': (8.735, 0.151),
        '16QAM-3/4': (10.022, 0.129),
        '16QAM-5/6': (11.399, 0.14),
        '64QAM-1/3': (6.817, 0.139),
        '64QAM-1/2': (10.372, 0.147),
        '64QAM-2/3': (13.566, 0.119),
        '64QAM-3/4': (15.203, 0.164),
        '64QAM-5/6': (16.851, 0.119),
    },
    98304: {
        '4QAM-1/3': (-1.385, 0.103),
        '4QAM-1/2': (0.978, 0.104),
        '4QAM-2/3': (3.049, 0.068),
        '4QAM-3/4': (4.026, 0.086),
        '4QAM-5/6': (5.134, 0.117),
        '16QAM-1/3': (3.249, 0.104),
        '16QAM-1/2': (6.223, 0.134),
        '16QAM-2/3': (8.75, 0.093),
        '16QAM-3/4': (10.054, 0.106),
        '16QAM-5/6': (11.377, 0.119),
        '64QAM-1/3': (6.817, 0.139),
        '64QAM-1/2': (10.326, 0.103),
        '64QAM-2/3': (13.599, 0.105),
        '64QAM-3/4': (15.21, 0.136),
        '64QAM-5/6': (16.881, 0.136),
    },
}


# --- link adaptation --------------------------------------------------------------------------------

def _table_for(k: int) -> dict[str, tuple[float, float]]:
    if not THRESHOLDS:
        raise RuntimeError("no measured MCS thresholds; run python -m sccdm.baselines.practical measure")
    ref = min(THRESHOLDS, key=lambda r: abs(math.log(r) - math.log(max(k, 1))))
    return THRESHOLDS[ref]


def _p_cw(snr_db, mu: float, sigma: float) -> np.ndarray:
    from scipy.stats import norm
    return norm.cdf((mu - np.asarray(snr_db, np.float64)) / sigma)


def _geometry(k: int, mcs: Mcs, header_bits: int = HEADER_BITS) -> LinkBudget:
    """:func:`link_budget`'s split of k uses into codewords, with each codeword's length trimmed to a multiple
    of lcm(bits per symbol, rate denominator) so that k_cw / n_cw is exactly the MCS rate (5G's BG1 refuses
    rates below 1/3 by a hair). Raises ValueError when there is no codeword."""
    b = link_budget(k, float(mcs.rate), mcs.bits_per_symbol, CRC, header_bits=header_bits)
    step = math.lcm(mcs.bits_per_symbol, mcs.rate.denominator)
    n_cw = b.n_cw // step * step
    if n_cw == 0:
        raise ValueError(f"k = {k} holds no {mcs.name} codeword")
    return LinkBudget(k, mcs.bits_per_symbol, float(mcs.rate), b.n_codewords, n_cw,
                      n_cw * mcs.rate.numerator // mcs.rate.denominator, b.crc_bits, header_bits)


_BUDGETS: dict = {}


def _budget(k: int, mcs: Mcs) -> LinkBudget | None:
    """The link budget of ``mcs`` at k channel uses, or None when it carries no frame or 5G LDPC has no code."""
    key = (k, mcs)
    if key not in _BUDGETS:
        from sionna.phy.fec.ldpc import LDPC5GEncoder
        try:
            b = _geometry(k, mcs)
            if b.payload_bytes <= 0 or b.k_cw - b.crc_bits < 1 or b.k_cw < 12:
                raise ValueError("no room for a frame")
            LDPC5GEncoder(b.k_cw, b.n_cw, num_bits_per_symbol=b.bits_per_symbol)
        except ValueError:
            b = None
        _BUDGETS[key] = b
    return _BUDGETS[key]


_BICM: dict = {}


def _bicm_curve(m: int) -> tuple[np.ndarray, np.ndarray]:
    """BICM capacity of Sionna's Gray-mapped 2^m-QAM on AWGN, exact bit LLRs, 4,096 samples a point (every
    constellation point equally often, fixed seed): (snr_db grid [G], -20...45 dB in 0.5 dB steps; bits per
    symbol [G], increasing)."""
    if m not in _BICM:
        from scipy.special import logsumexp
        from sionna.phy.mapping import Constellation

        pts = np.asarray(Constellation("qam", m).points, np.complex128)          # [M], index = bits MSB first
        labels = (np.arange(2 ** m)[:, None] >> np.arange(m - 1, -1, -1)) & 1    # [M, m]
        rng = np.random.default_rng(12345)
        d = 4096 // 2 ** m
        w = (rng.standard_normal((d, 2 ** m)) + 1j * rng.standard_normal((d, 2 ** m))) * math.sqrt(0.5)
        grid = np.arange(-20.0, 45.01, 0.5)
        mi = []
        for s in grid:
            no = 10 ** (-s / 10)
            y = (pts[None, :] + w * math.sqrt(no)).reshape(-1)                    # [d M]
            metric = -np.abs(y[:, None] - pts[None, :]) ** 2 / no                  # [d M, M]
            sent = np.tile(labels, (d, 1))                                         # [d M, m]
            loss = 0.0
            for i in range(m):
                one, zero = labels[:, i] == 1, labels[:, i] == 0
                llr = logsumexp(metric[:, one], axis=1) - logsumexp(metric[:, zero], axis=1)  # ln p(1)/p(0)
                loss += np.mean(np.logaddexp(0, -(2 * sent[:, i] - 1) * llr)) / math.log(2)
            mi.append(m - loss)
        mi = np.maximum.accumulate(np.clip(np.array(mi), 0, m))
        mi = mi + np.arange(len(mi)) * 1e-9  # strictly increasing for the inverse
        _BICM[m] = (grid, mi)
    return _BICM[m]


def _deterministic(channel: ChannelConfig) -> bool:
    return channel.kind == "awgn" and channel.erasure_prob == 0


_STATS: dict = {}


def _gains_db(rx) -> tuple[np.ndarray, np.ndarray]:
    """Per-symbol SNR in dB |h|^2 / sigma^2, float64 [B, k], and the arrival mask, bool [B, k], of a channel draw."""
    g = rx.h.abs().double().pow(2).clamp_min(1e-12) / rx.noise_var.double().reshape(-1, 1)
    return 10 * np.log10(g.numpy()), rx.mask.numpy()


def _codeword_snr(snr_db: np.ndarray, mask: np.ndarray, b: LinkBudget) -> np.ndarray:
    """MIESM: each codeword's effective AWGN SNR in dB, float64 [B, n_codewords], from its symbols' mean BICM
    mutual information (erased symbols carry none)."""
    grid, mi_curve = _bicm_curve(b.bits_per_symbol)
    per_cw = b.n_cw // b.bits_per_symbol
    info = np.interp(snr_db[:, :b.n_codewords * per_cw], grid, mi_curve) * mask[:, :b.n_codewords * per_cw]
    return np.interp(info.reshape(len(info), b.n_codewords, per_cw).mean(axis=2), mi_curve, grid)


def _codeword_snr_draws(channel: ChannelConfig, k: int, b: LinkBudget, draws: int) -> np.ndarray:
    """Effective SNR in dB per codeword [draws, n_codewords] over fixed-seed draws of the channel statistics."""
    gen = torch.Generator().manual_seed(7_919)
    out = []
    chunk = max(1, min(draws, 4_000_000 // max(k, 1)))
    for i in range(0, draws, chunk):
        rx = apply_channel(torch.zeros(min(chunk, draws - i), k, dtype=torch.complex64), channel, gen)
        out.append(_codeword_snr(*_gains_db(rx), b))
    return np.concatenate(out)


def predicted_bler(channel: ChannelConfig, k: int, mcs: Mcs) -> float:
    """The transmitter's predicted probability that an image is lost on ``mcs`` (1.0 if it carries no frame)."""
    b = _budget(k, mcs)
    if b is None:
        return 1.0
    mu, sigma = _table_for(k)[mcs.name]
    if _deterministic(channel):
        return float(1 - (1 - _p_cw(channel.snr_db, mu, sigma)) ** b.n_codewords)
    key = (channel.kind, float(channel.snr_db), channel.fading, channel.block_size, channel.csi,
           float(channel.erasure_prob), k, mcs)
    if key not in _STATS:
        snr = _codeword_snr_draws(channel, k, b, STAT_DRAWS)
        _STATS[key] = float(1 - np.prod(1 - _p_cw(snr, mu, sigma), axis=1).mean())
    return _STATS[key]


def select_mcs(channel: ChannelConfig, k: int, target: float = TARGET_BLER) -> tuple[int, float]:
    """Link adaptation: (index into :data:`MCS_TABLE`, predicted image BLER) of the highest-throughput MCS
    predicted below ``target`` (equal throughput: the lower measured threshold ``mu``); the most robust MCS
    when none is."""
    blers = [predicted_bler(channel, k, m) for m in MCS_TABLE]
    ok = [i for i, p in enumerate(blers) if p < target]
    if ok:
        table = _table_for(k)
        i = max(ok, key=lambda j: (MCS_TABLE[j].efficiency, -table[MCS_TABLE[j].name][0]))
    else:
        i = min(range(len(MCS_TABLE)), key=lambda j: (blers[j], MCS_TABLE[j].efficiency))
    return i, blers[i]


# --- source coding ----------------------------------------------------------------------------------

_FILES: OrderedDict = OrderedDict()
_FILES_MAX = 4096


def _settings(codec: str) -> list[int]:
    return list(range(1, MAX_QUALITY + 1)) if codec == "jpeg-payload" else list(range(0, 101))


def _encode(img: np.ndarray, digest: str, codec: str, quality: int) -> bytes:
    key = (digest, img.shape, codec, quality)
    hit = _FILES.get(key)
    if hit is None:
        hit = _FILES[key] = encode_option(img, codec, quality)[0]
        if len(_FILES) > _FILES_MAX:
            _FILES.popitem(last=False)
    else:
        _FILES.move_to_end(key)
    return hit


def best_fitting_file(img: np.ndarray, codec: str, max_bytes: int) -> tuple[int, bytes] | None:
    """uint8 [H, W, 3] -> (quality, file) of the highest quality whose file fits ``max_bytes``, or None.

    Binary search (sizes grow with quality), then a look at the next 2 settings since growth is not strictly
    monotone. Files are cached per image content, codec and quality."""
    digest = hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest()
    qs = _settings(codec)
    best = highest_fitting(len(qs), lambda i: len(_encode(img, digest, codec, qs[i])), max_bytes)
    if best is None:
        return None
    return qs[best], _encode(img, digest, codec, qs[best])


def _decode_file(data: bytes, codec: str, quality: int, hgt: int, wid: int) -> np.ndarray:
    """Raises ValueError when ``data`` does not decode to an H x W image."""
    if codec == "jpeg-payload":
        return decode_payload(data, quality, hgt, wid)
    return decode_rgb(data, f"{codec} file", hgt, wid)


def _to_bits(value: int, n: int) -> np.ndarray:
    return np.array([(value >> (n - 1 - j)) & 1 for j in range(n)], np.uint8)


def _from_bits(bits: np.ndarray) -> int:
    return int("".join(str(int(b)) for b in bits) or "0", 2)


# --- the scheme -------------------------------------------------------------------------------------

class PracticalChain:
    """AVIF (or the first available of ``codecs``) + CRC16 + 5G LDPC + QAM with link adaptation.

    mcs: ``"adaptive"`` (link adaptation, the practical scheme), ``"best"`` (per-image genie over all MCSs, an
    upper reference) or an int index into :data:`MCS_TABLE` (fixed). Call it like every entry of
    :data:`sccdm.baselines.SCHEMES`.
    """

    def __init__(self, mcs="adaptive", codecs=SOURCE_CODECS, fit_fallback: bool = False,
                 target_bler: float = TARGET_BLER):
        if not (mcs in ("adaptive", "best") or (isinstance(mcs, int) and 0 <= mcs < len(MCS_TABLE))):
            raise ValueError(f"mcs must be 'adaptive', 'best' or an index < {len(MCS_TABLE)}, got {mcs!r}")
        self.mcs, self.fit_fallback, self.target = mcs, fit_fallback, target_bler
        self.preference = tuple(codecs)
        bad = [c for c in self.preference if c not in SOURCE_CODECS]
        if bad:
            raise ValueError(f"unknown codecs {bad}; expected some of {SOURCE_CODECS}")

    @property
    def codecs(self) -> tuple[str, ...]:
        """The codecs in use, first = the scheme's codec (decided lazily: Pillow's features at call time)."""
        have = set(available_codecs())
        use = tuple(c for c in self.preference if c in have)
        if not use:
            raise RuntimeError(f"none of the codecs {self.preference} is available in this Pillow")
        return use if self.fit_fallback else use[:1]

    def _frame(self, img: np.ndarray, b: LinkBudget) -> tuple[np.ndarray, str, int, bytes] | None:
        for codec in self.codecs:
            pick = best_fitting_file(img, codec, b.payload_bytes)
            if pick is not None:
                q, data = pick
                bits = np.zeros(b.data_bits, np.uint8)
                bits[:HEADER_BITS] = np.concatenate([_to_bits(SOURCE_CODECS.index(codec), CODEC_BITS),
                                                     _to_bits(q, QUALITY_BITS), _to_bits(len(data), LENGTH_BITS)])
                body = np.unpackbits(np.frombuffer(data, np.uint8))
                bits[HEADER_BITS:HEADER_BITS + body.size] = body
                return bits, codec, q, data
        return None

    def _send(self, u8: np.ndarray, rows: np.ndarray, mi: int, channel: ChannelConfig, k: int, seed: int,
              res: dict) -> np.ndarray:
        """Send images ``rows`` on MCS ``mi``; fill ``res`` for those that arrive. Returns bool [N] (arrived)."""
        n, hgt, wid = u8.shape[:3]
        arrived = np.zeros(n, bool)
        b = _budget(k, MCS_TABLE[mi])
        if b is None:
            return arrived
        frames = np.zeros((n, b.data_bits), np.uint8)
        sent = np.zeros(n, bool)
        meta = {}
        for i in rows:
            fr = self._frame(u8[i], b)
            if fr is None:
                continue
            frames[i], sent[i], meta[i] = fr[0], True, fr[1:]
            res["codec"][i], res["quality"][i] = CODECS.index(fr[1]), fr[2]
            res["bits"][i], res["mcs"][i], res["channel_uses"][i] = HEADER_BITS + 8 * len(fr[3]), mi, b.symbols_used
        if not sent.any():
            return arrived
        out = transmit_bits(torch.from_numpy(frames).float(), torch.from_numpy(sent), channel, b,
                            torch.Generator().manual_seed(int(seed)), crc=CRC, num_iter=NUM_ITER)
        bits_hat = out["bits_hat"].round().to(torch.uint8).numpy()
        ok = out["crc_ok"].numpy() & sent
        res["crc_ok"][rows] = ok[rows]
        for i in np.flatnonzero(ok):
            h = bits_hat[i]
            ci, q = _from_bits(h[:CODEC_BITS]), _from_bits(h[CODEC_BITS:CODEC_BITS + QUALITY_BITS])
            length = _from_bits(h[CODEC_BITS + QUALITY_BITS:HEADER_BITS])
            if ci >= len(SOURCE_CODECS) or length > b.payload_bytes:
                continue
            data = np.packbits(h[HEADER_BITS:HEADER_BITS + 8 * length]).tobytes()
            try:
                rec = _decode_file(data, SOURCE_CODECS[ci], q, hgt, wid)
            except ValueError:
                continue
            res["x_hat"][i], arrived[i] = from_uint8(rec), True
        return arrived

    @staticmethod
    def _realised_success(channel: ChannelConfig, realised, n: int, k: int, mi: int) -> np.ndarray:
        """The BLER model's success probability per image on the realised channel (the genie's pruning);
        realised: :func:`_gains_db` of the shared draws, None on AWGN without erasures."""
        b = _budget(k, MCS_TABLE[mi])
        if b is None:
            return np.zeros(n)
        mu, sigma = _table_for(k)[MCS_TABLE[mi].name]
        if realised is None:
            return np.full(n, float((1 - _p_cw(channel.snr_db, mu, sigma)) ** b.n_codewords))
        return np.prod(1 - _p_cw(_codeword_snr(*realised, b), mu, sigma), axis=1)

    def __call__(self, images: torch.Tensor, channel: ChannelConfig, k: int, seed: int) -> dict:
        """images: float32 [N, 3, H, W] in [0, 1]. Returns x_hat float32 [N, 3, H, W], lost bool [N],
        channel_uses int64 [N] (0 = nothing sent: no file fits), mcs int64 [N] (index into :data:`MCS_TABLE`: the
        link adaptation's choice; for ``"best"`` the MCS that decoded, -1 = none), bits_per_symbol int64 [N],
        code_rate float64 [N] (0 where mcs is -1), codec int64 [N] (index into
        :data:`sccdm.baselines.separation.CODECS`, -1 = nothing sent), quality int64 [N], bits int64 [N]
        (frame bits used), crc_ok bool [N], bler_pred float64 [N] (the predicted loss probability of the
        MCS; NaN for ``"best"``)."""
        channel.validate()
        u8 = to_uint8(images)
        n, hgt, wid = u8.shape[:3]
        res = {"x_hat": fallback_images(n, hgt, wid), "channel_uses": np.zeros(n, np.int64),
               "mcs": np.full(n, -1, np.int64), "codec": np.full(n, -1, np.int64),
               "quality": np.zeros(n, np.int64), "bits": np.zeros(n, np.int64), "crc_ok": np.zeros(n, bool),
               "bler_pred": np.full(n, np.nan)}
        arrived = np.zeros(n, bool)
        if self.mcs == "best":
            order = sorted(range(len(MCS_TABLE)), key=lambda j: (-MCS_TABLE[j].efficiency,
                                                                  _table_for(k)[MCS_TABLE[j].name][0]))
            todo = np.ones(n, bool)
            realised = None if _deterministic(channel) else _gains_db(apply_channel(
                torch.zeros(n, k, dtype=torch.complex64), channel, torch.Generator().manual_seed(int(seed))))
            for mi in order:
                rows = np.flatnonzero(todo & (self._realised_success(channel, realised, n, k, mi) >= 1e-3))
                if rows.size == 0:
                    continue
                got = self._send(u8, rows, mi, channel, k, seed, res)
                arrived |= got
                todo &= ~got
                if not todo.any():
                    break
            res["crc_ok"] = arrived.copy()
            res["mcs"][~arrived] = -1  # no MCS decoded (codec, quality, uses: of the last one tried)
        else:
            if self.mcs == "adaptive":
                mi, p = select_mcs(channel, k, self.target)
            else:
                mi, p = int(self.mcs), predicted_bler(channel, k, MCS_TABLE[int(self.mcs)])
            res["bler_pred"][:] = p
            res["mcs"][:] = mi  # also where no file fits the MCS (then channel_uses and codec say so)
            arrived = self._send(u8, np.arange(n), mi, channel, k, seed, res)
        mcs = res["mcs"]
        return {"x_hat": res["x_hat"], "lost": torch.from_numpy(~arrived),
                "channel_uses": torch.from_numpy(res["channel_uses"]), "mcs": torch.from_numpy(mcs),
                "bits_per_symbol": torch.from_numpy(np.array([MCS_TABLE[j].bits_per_symbol if j >= 0 else 0
                                                              for j in mcs], np.int64)),
                "code_rate": torch.from_numpy(np.array([float(MCS_TABLE[j].rate) if j >= 0 else 0.0
                                                        for j in mcs], np.float64)),
                "codec": torch.from_numpy(res["codec"]), "quality": torch.from_numpy(res["quality"]),
                "bits": torch.from_numpy(res["bits"]), "crc_ok": torch.from_numpy(res["crc_ok"]),
                "bler_pred": torch.from_numpy(res["bler_pred"])}


# --- measuring the thresholds -----------------------------------------------------------------------

def measure_threshold(mcs: Mcs, k_ref: int, seed: int = 0, coarse_n: int = 16, fine_n: int = 32,
                      step: float = 0.1, log=None) -> dict:
    """AWGN codeword error rate of ``mcs`` on the codeword geometry of an image of ``k_ref`` uses: a 0.5 dB
    bracket from all-fail to none-fail (``coarse_n`` codewords a point), ``step`` dB points inside it
    (``fine_n`` each), a probit fitted by maximum likelihood. Returns {"mu", "sigma", "points": [[snr, n, fails]]}."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    b0 = _geometry(k_ref, mcs, header_bits=0)
    one = LinkBudget(b0.n_cw // mcs.bits_per_symbol, mcs.bits_per_symbol, float(mcs.rate), 1, b0.n_cw, b0.k_cw,
                     b0.crc_bits, 0)
    gen = torch.Generator().manual_seed(seed)
    pts: dict[float, list[int]] = {}

    def run(snr: float, count: int) -> float:
        snr = round(snr, 2)
        bits = torch.randint(0, 2, (count, one.data_bits), generator=gen).float()
        out = transmit_bits(bits, torch.ones(count, dtype=torch.bool), ChannelConfig("awgn", snr), one, gen,
                            crc=CRC, num_iter=NUM_ITER)
        f = int((~out["crc_ok"]).sum())
        pts.setdefault(snr, [0, 0])
        pts[snr][0] += count
        pts[snr][1] += f
        if log:
            log(f"  {mcs.name} k_ref={k_ref} {snr:6.2f} dB: {f}/{count} codewords failed")
        return f / count

    start = round(10 * math.log10(2 ** mcs.efficiency - 1) + 1.0, 1)
    hi = start
    while run(hi, coarse_n) > 0:
        hi += 0.5
    lo = start - 0.5 if hi == start else hi - 0.5
    while run(lo, coarse_n) < 1:
        lo -= 0.5
    for s in np.arange(lo + step, hi - step / 2, step):
        run(float(s), fine_n)
    snr = np.array(sorted(pts))
    tot = np.array([pts[s][0] for s in snr])
    fails = np.array([pts[s][1] for s in snr])

    def nll(p):
        q = np.clip(norm.cdf((p[0] - snr) / math.exp(p[1])), 1e-12, 1 - 1e-12)
        return -float(np.sum(fails * np.log(q) + (tot - fails) * np.log(1 - q)))

    fit = minimize(nll, [float(np.interp(0.5, 1 - fails / tot, snr)), math.log(0.1)], method="Nelder-Mead")
    return {"mu": round(float(fit.x[0]), 3), "sigma": round(max(float(math.exp(fit.x[1])), 0.02), 3),
            "k_cw": b0.k_cw, "n_cw": b0.n_cw,
            "points": [[float(s), int(t), int(f)] for s, t, f in zip(snr, tot, fails)]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sccdm.baselines.practical", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="measure the AWGN codeword-error probits of MCS_TABLE (prints THRESHOLDS)")
    m.add_argument("--k", type=int, nargs="+", default=[256, 4096, 98304])
    m.add_argument("--mcs", nargs="*", default=None, help="MCS names (default: all)")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--out", default=None, help="also write the raw points as JSON here")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    table, raw = {}, {}
    for k in a.k:
        table[k], raw[k] = {}, {}
        for mcs in MCS_TABLE:
            if a.mcs and mcs.name not in a.mcs:
                continue
            t = time.time()
            r = measure_threshold(mcs, k, seed=a.seed, log=lambda s: print(s, file=sys.stderr, flush=True))
            table[k][mcs.name], raw[k][mcs.name] = (r["mu"], r["sigma"]), r
            print(f"{mcs.name} k_ref={k} (k_cw {r['k_cw']}, n_cw {r['n_cw']}): mu {r['mu']} dB sigma {r['sigma']} dB"
                  f"  [{time.time() - t:.0f} s]", file=sys.stderr, flush=True)
            if a.out:
                with open(a.out, "w") as f:
                    json.dump(raw, f, indent=1)
    print("THRESHOLDS = {")
    for k, rows in table.items():
        print(f"    {k}: {{")
        for name, (mu, sigma) in rows.items():
            print(f"        {name!r}: ({mu}, {sigma}),")
        print("    },")
    print("}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
