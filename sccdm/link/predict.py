"""Data-aided header prediction (issue 12, LinkConfig.predict_header): nothing added on the air.

Frames of a burst go back to back and their headers follow from a neighbour: frame_id +-1 and the same
k, model_id, latent and image geometry; n_images the same, or fewer in the last frame of a burst. Where a
frame at its predicted place fails its header CRC (the whole frame in a deep fade, an outage the genie
channel never has), each candidate header is re-encoded and tested against the received header symbols.
The gain over the header is measured on the known symbols around it only (preamble, training, header and
data pilots, postamble - never the header itself, so the test's null distribution stays exact) and the
header symbols weighted by it, as the Viterbi decoder gets them: u_j, the soft value of air bit j.

    Z(hdr) = sum_j b_j u_j / sqrt(sum_j u_j^2)        (b_j = +-1, hdr's air bit j)

Given the gain estimate the u_j of noise alone are independent and symmetric: Z is about N(0, 1) (measured
std 0.94-1.03). The true header gives Z ~ sqrt(n SNR_bit / (1 + SNR_bit)) over n = 732 (short frame) or
488 (long frame) air bits: it stands out down to an in-fade SNR near -12 dB, far below the -5 dB or so
the Viterbi decoder needs here. But a header that shares most fields with the candidate shares most air
bits too (Z of a header differing in frame_id alone is 0.74 of the true one's), so four tests decide:

1. Z >= ``predict_header_z`` (default 4.5): noise alone passes with P(N(0, 1) > 4.5) = 3.4e-6 per candidate;
2. Z beats the Z of every frame_id within +-4 of the candidate's or 1 or 2 bits from it
   (:func:`rival_ids`: about 140), the other fields the same (all 65536 at once:
   :func:`_frame_id_scores`) - a frame at a wrong place;
3. the Viterbi decision of the same soft values is no valid header other than the candidate;
4. the best code word (the Viterbi decision) explains less than the candidate plus what it makes of noise
   alone: Z_best^2 <= Z^2 + floor^2 - 10, floor the best code word's Z on the same soft values with their
   signs scrambled (the mean of 4 scrambles) - a foreign frame whose fields differ.

Measured at symbol rate on a flat gain (benchmarks/results/csi-header-predict-match.md, ``csi.py
--header-match``): noise alone is never taken (Z std 1.0); the true header is taken at -12 dB in-fade SNR
in most draws and from -10 dB in nearly all; a frame with another frame_id or another transmission's
header only in the few per cent of draws where the truth barely shows. The place in the burst, not the
header, is what says which frame a slot holds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .estimate import block_gains, smooth_gain
from .fec import conv_encode, viterbi_decode
from .framing import (HEADER_BITS, FrameLayout, Header, HeaderError, LinkConfig, header_bit_map, header_pilot_sequence,
                      header_rate_for, pilot_sequence, preamble_symbols, training_symbols)

__all__ = ["HeaderMatch", "header_candidates", "known_around_header", "header_soft", "match_header", "match_headers"]


def header_candidates(nb: Header, way: int, images_per_frame: int) -> list[Header]:
    """Headers the frame next to nb (way +1: after it, -1: before it) can carry, the likeliest first.

    After a frame: the same n_images, or fewer (the last frame of a burst); before one: a full frame
    (nb's n_images, or images_per_frame if that is more: nb may be the short last one)."""
    if way > 0:
        counts = list(range(nb.n_images, 0, -1))
    else:
        counts = sorted({nb.n_images, max(nb.n_images, images_per_frame)}, reverse=True)
    fid = (nb.frame_id + way) & 0xFFFF
    return [Header(fid, n, nb.k, nb.model_id, nb.C, nb.h, nb.w, nb.H, nb.W, nb.version) for n in counts]


def known_around_header(cfg: LinkConfig, lay: FrameLayout) -> tuple[np.ndarray, np.ndarray]:
    """Every known symbol of a frame but its header: (x complex [lay.total], 0 elsewhere; positions int64,
    sorted) - preamble, both trainings, header and data pilots, postamble."""
    x = np.zeros(lay.total, dtype=np.complex128)
    n_pt = cfg.zc_len * cfg.zc_reps
    x[:n_pt] = preamble_symbols(cfg)
    tr = training_symbols(cfg)
    x[lay.train1] = tr
    x[lay.train2] = tr
    x[lay.post] = tr
    x[lay.hpilot_idx] = header_pilot_sequence(len(lay.hpilot_idx))
    x[lay.pilot_idx] = pilot_sequence(len(lay.pilot_idx))
    pos = np.sort(np.concatenate([np.arange(0, lay.train1.stop), np.arange(lay.train2.start, lay.train2.stop),
                                  np.arange(lay.post.start, lay.post.stop), lay.hpilot_idx, lay.pilot_idx]))
    return x, pos.astype(np.int64)


def _air_values(soft: np.ndarray, qpsk: bool) -> np.ndarray:
    """Gain-weighted header symbols complex [n] -> the soft value of every air bit, in-phase first:
    float [2n] with QPSK (interleaved: the order of :func:`header_bit_map`), [n] (the real parts) with BPSK.
    Positive = bit 0."""
    return np.stack([soft.real, soft.imag], axis=1).reshape(-1) if qpsk else soft.real


def header_soft(r: np.ndarray, cfg: LinkConfig, lay: FrameLayout) -> np.ndarray:
    """The header symbols weighted by the gain measured on the known symbols around them (maximum ratio,
    as the Viterbi decoder gets them; the header's own symbols take no part): complex [len(header_idx)].

    r: complex [>= lay.total] symbol-rate matched-filter samples of the frame (CFO removed, the frame's
    first symbol at 0)."""
    x, pos = known_around_header(cfg, lay)
    t, gb, nb = block_gains(r, x, pos, 16)
    gain, _ = smooth_gain(t, gb, nb, lay.header_idx.astype(np.float64))
    return np.conj(gain) * r[lay.header_idx]


# the frame_ids a slot's own must beat: +-4 around it (the ones a frame at a wrong place would carry) and
# every one 1 or 2 bits away (the code words nearest its own); against all 65536 the best of the noise
# wins below about -8 dB in the fade (16 bits need SNR)
ID_WINDOW, ID_BITS = 4, 2


def rival_ids(frame_id: int) -> np.ndarray:
    """The frame_ids a predicted frame_id must match better than: int64 [about 140] (the +-4 window and the
    1- and 2-bit flips overlap), itself included (harmless: it ties)."""
    flips = [0] + [1 << k for k in range(16)] + ([(1 << k) | (1 << j) for k in range(16) for j in range(k)]
                                                 if ID_BITS >= 2 else [])
    near = (frame_id + np.arange(-ID_WINDOW, ID_WINDOW + 1)) & 0xFFFF
    return np.unique(np.concatenate([near, frame_id ^ np.asarray(flips)])).astype(np.int64)
# test 4: the scrambles the noise floor is averaged over, and the margin (in Z^2) the best code word may not
# exceed: a frame of the predicted frame_id with other fields (model, geometry) taken 15 % of the time at
# -8 dB in the fade without it, 7 % with it; the true header at -12 dB 88 % either way (short frames)
N_SCRAMBLES, FLOOR_MARGIN = 4, 10.0


@dataclass
class HeaderMatch:
    """How the weighted header symbols of a slot match a candidate header (module docstring).

    z: the candidate's Z; z_id: the Z of every frame_id with the candidate's other fields, float [65536]
    (z_id[hdr.frame_id] == z); z_best: the Viterbi decision's Z (the best code word); floor: the best code
    word's Z on the same soft values with their signs scrambled (what the Viterbi makes of noise alone);
    decoded: the Viterbi decision where it passes the CRC and checks, else None."""

    hdr: Header
    z: float
    z_id: np.ndarray
    z_best: float
    floor: float
    decoded: Header | None

    def reject_reason(self, z_min: float) -> str | None:
        """None when the slot holds the candidate (all four tests pass), else why not."""
        if self.z < z_min:
            return f"no match (z below {z_min:g})"
        if np.max(self.z_id[rival_ids(self.hdr.frame_id)]) > self.z:
            return "another frame_id matches better"
        if self.decoded is not None and self.decoded != self.hdr:
            return "another valid header"
        if self.z_best ** 2 > self.z ** 2 + self.floor ** 2 - FLOOR_MARGIN:
            return "the best code word is another"
        return None


def _air_bits(hdr: Header, cfg: LinkConfig, hmap: np.ndarray) -> np.ndarray:
    """hdr's air bits 0/1, int64 [len(hmap)], in the order of :func:`_air_values`."""
    return conv_encode(hdr.to_bits())[hmap]


def _frame_id_scores(w: np.ndarray, hdr: Header, cfg: LinkConfig, hmap: np.ndarray) -> np.ndarray:
    """sum_j w_j (-1)^(air bit j of hdr with frame_id f) for every f: float [65536].

    The code, CRC, interleaver and repetition are linear over GF(2) (the CRC affine): flipping frame_id
    bit k flips a fixed set of air bits, so air bit j of frame f is bit j of frame 0 xor <sig_j, f>, sig_j
    the 16-bit set of frame_id bits that flip it. Grouped by sig_j, the sum over every f is one
    Walsh-Hadamard transform of 65536 points."""
    base = _air_bits(Header(0, hdr.n_images, hdr.k, hdr.model_id, hdr.C, hdr.h, hdr.w, hdr.H, hdr.W, hdr.version),
                     cfg, hmap)
    sig = np.zeros(len(hmap), dtype=np.int64)
    for k in range(16):
        flip = _air_bits(Header(1 << k, hdr.n_images, hdr.k, hdr.model_id, hdr.C, hdr.h, hdr.w, hdr.H, hdr.W,
                                hdr.version), cfg, hmap) ^ base
        sig |= flip << k
    a = np.zeros(1 << 16)
    np.add.at(a, sig, w * (1.0 - 2.0 * base))
    h = 1
    while h < len(a):                            # in-place fast Walsh-Hadamard transform
        a = a.reshape(-1, 2, h)
        a = np.stack([a[:, 0] + a[:, 1], a[:, 0] - a[:, 1]], axis=1).reshape(-1)
        h *= 2
    return a


def _best_word(u: np.ndarray, hmap: np.ndarray) -> tuple[np.ndarray, float]:
    """The Viterbi decision for air-bit soft values u (float [len(hmap)]): (bits int [HEADER_BITS + 16],
    sum_j u_j (+-1 of its air bit j))."""
    mother = np.zeros(3 * (HEADER_BITS + 16 + 6))
    np.add.at(mother, hmap, u)
    bits = viterbi_decode(mother, HEADER_BITS + 16)
    return bits, float(np.sum((1.0 - 2.0 * conv_encode(bits)[hmap]) * u))


def match_headers(soft: np.ndarray, cfg: LinkConfig, lay: FrameLayout, hdrs: list[Header]) -> list[HeaderMatch]:
    """soft: complex [len(lay.header_idx)] weighted header symbols (:func:`header_soft`) of a slot whose
    layout is lay -> how they match each of hdrs (:class:`HeaderMatch`; the Viterbi decisions shared)."""
    hmap = header_bit_map(cfg, header_rate_for(cfg, lay.n_data))
    u = _air_values(soft, cfg.header_qpsk)
    den = max(float(np.sqrt(np.sum(u ** 2))), 1e-300)
    bits, m_best = _best_word(u, hmap)
    # fixed scrambles (the same slot always gets the same verdict), averaged: one alone varies by +-0.35
    signs = np.random.default_rng(0x5CC).choice([-1.0, 1.0], (N_SCRAMBLES, len(u)))
    m_floor = float(np.mean([_best_word(u * sg, hmap)[1] for sg in signs]))
    try:
        decoded = Header.from_bits(bits)
    except HeaderError:
        decoded = None
    out = []
    for hdr in hdrs:
        z_id = _frame_id_scores(u, hdr, cfg, hmap) / den
        out.append(HeaderMatch(hdr, float(z_id[hdr.frame_id]), z_id, m_best / den, m_floor / den, decoded))
    return out


def match_header(soft: np.ndarray, cfg: LinkConfig, lay: FrameLayout, hdr: Header) -> HeaderMatch:
    """:func:`match_headers` for one header."""
    return match_headers(soft, cfg, lay, [hdr])[0]
