"""Header protection: CRC-16/CCITT and a K=7, rate-1/3 convolutional code with soft Viterbi decoding.

The header is sent as BPSK; at 0 dB per symbol an uncoded 116-bit header would
fail most of the time, so it is coded (rate 1/3, generators 133/171/165 octal,
the LTE set) and zero-terminated. Rate 1/2 drops the third output: what is left
is the classic (133, 171) K=7 code (free distance 10), decoded by the same
Viterbi with the dropped bits as erasures (soft value 0). :func:`interleaver`
spreads neighbouring coded bits apart on the air, so a fade over a run of
symbols costs scattered bits the code can correct, not a burst. The CRC catches what Viterbi gets wrong, so a
bad header is rejected, never misread.
"""
from __future__ import annotations

import numpy as np

__all__ = ["crc16", "conv_encode", "viterbi_decode", "bits_to_int", "int_to_bits", "puncture", "depuncture",
           "interleaver"]

K = 7
GENS = (0o133, 0o171, 0o165)
N_STATES = 1 << (K - 1)


def int_to_bits(value: int, width: int) -> list[int]:
    if not 0 <= value < (1 << width):
        raise ValueError(f"{value} does not fit in {width} bits")
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def bits_to_int(bits) -> int:
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def crc16(bits) -> list[int]:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a bit list, MSB first -> 16 bits."""
    reg = 0xFFFF
    for b in bits:
        top = ((reg >> 15) & 1) ^ int(b)
        reg = (reg << 1) & 0xFFFF
        if top:
            reg ^= 0x1021
    return int_to_bits(reg, 16)


def _parity(x: np.ndarray) -> np.ndarray:
    x = x.copy()
    out = np.zeros_like(x)
    while np.any(x):
        out ^= x & 1
        x >>= 1
    return out


# trellis: state = last K-1 input bits, newest in the top bit
_STATES = np.arange(N_STATES)
_OUT = np.zeros((N_STATES, 2, len(GENS)), dtype=np.int64)
for _b in (0, 1):
    _reg = (_b << (K - 1)) | _STATES
    for _g, _gen in enumerate(GENS):
        _OUT[:, _b, _g] = _parity(_reg & _gen)


def conv_encode(bits) -> np.ndarray:
    """bits: 0/1 [n] -> coded bits int [3 * (n + 6)], zero-terminated."""
    state = 0
    out = []
    for b in list(bits) + [0] * (K - 1):
        out.extend(_OUT[state, b])
        state = (b << (K - 2)) | (state >> 1)
    return np.asarray(out, dtype=np.int64)


def viterbi_decode(soft: np.ndarray, n_bits: int) -> np.ndarray:
    """soft: float [3 * (n_bits + 6)], positive means coded bit 0 (BPSK +1) -> bits int [n_bits]."""
    n_steps = n_bits + K - 1
    if len(soft) != len(GENS) * n_steps:
        raise ValueError(f"expected {len(GENS) * n_steps} soft values, got {len(soft)}")
    soft = np.asarray(soft, dtype=np.float64).reshape(n_steps, len(GENS))
    sgn = 1.0 - 2.0 * _OUT  # [S, 2, G]
    ns = _STATES
    b_in = ns >> (K - 2)
    p0 = (ns & (N_STATES // 2 - 1)) << 1
    p1 = p0 | 1
    pm = np.full(N_STATES, -np.inf)
    pm[0] = 0.0
    decisions = np.zeros((n_steps, N_STATES), dtype=np.int8)
    for t in range(n_steps):
        bm = sgn @ soft[t]  # [S, 2]
        m0 = pm[p0] + bm[p0, b_in]
        m1 = pm[p1] + bm[p1, b_in]
        choose1 = m1 > m0
        decisions[t] = choose1
        pm = np.where(choose1, m1, m0)
    state = 0
    bits = np.zeros(n_steps, dtype=np.int64)
    for t in range(n_steps - 1, -1, -1):
        bits[t] = state >> (K - 2)
        prev = ((state & (N_STATES // 2 - 1)) << 1) | int(decisions[t, state])
        state = prev
    return bits[:n_bits]


def puncture(coded: np.ndarray, rate: int) -> np.ndarray:
    """coded: [3 m] rate-1/3 output -> [rate * m]: rate 3 keeps all, rate 2 the first two of each triple."""
    if rate not in (2, 3):
        raise ValueError(f"header code rate must be 1/2 or 1/3 (rate 2 or 3), got {rate}")
    return np.asarray(coded).reshape(-1, len(GENS))[:, :rate].reshape(-1)


def depuncture(soft: np.ndarray, rate: int) -> np.ndarray:
    """soft: float [rate * m] -> float [3 m] for :func:`viterbi_decode`, dropped bits as 0 (erasures)."""
    soft = np.asarray(soft, dtype=np.float64).reshape(-1, rate)
    out = np.zeros((len(soft), len(GENS)))
    out[:, :rate] = soft
    return out.reshape(-1)


def interleaver(n: int) -> np.ndarray:
    """Permutation int64 [n]: symbol j on the air carries coded bit perm[j] = (j * s) mod n, s the first
    integer >= sqrt(n) coprime with n, so coded bits i and i + 1 lie about s symbols apart."""
    s = max(1, int(np.ceil(np.sqrt(n))))
    while np.gcd(s, n) != 1:
        s += 1
    return (np.arange(n, dtype=np.int64) * s) % n
