"""Frame format of the SC-CDM radio link.

One frame (symbol rate, all known parts unit modulus), defaults::

    | preamble: Zadoff-Chu(31) x 4 | training T(32) | header copy 1: [H(32) P(2)] ... H(26) | training T(32) |
    | data with pilot blocks: [P(2) D(<=64)] x 16 | header copy 2: [P(2) H(32)] ... H(26) | [P(2) D(<=64)] ... [P(2)] |
    | postamble: T(32) |

  (a frame with fewer than ``header_split`` = 1024 data symbols carries copy 2 right after training 2,
  and both copies at rate 1/3: 183 symbols each)

* preamble - burst detection, coarse timing and CFO (Schmidl-Cox on the repeats);
* training - fine timing, LS channel estimate, SNR from the repeat; its two
  copies bracket the first header copy, so the phase drift across it (residual
  CFO) is measured, not extrapolated;
* header - frame id, image count, symbols per image, model id, latent and image
  geometry; CRC-16, K=7 convolutional code at rate 1/2 (244 coded bits) in a
  long frame, 1/3 (366) in a short one, interleaved, QPSK (BPSK with
  ``header_qpsk`` off; see :mod:`.fec`), sent twice: in a long frame the second
  copy ``header_split`` data symbols after the first, so a fade over one copy
  (Doppler) leaves the other - the receiver adds the copies' soft bits and tries
  each alone, and tries both places the second copy can lie. A pilot block every
  ``header_pilot_every`` coded symbols tracks a channel that moves within a copy;
* pilots - tracked over the frame for residual CFO and fading;
* postamble - the training again: its arrival time against the frame start
  measures the sample-clock offset (GNU Radio's epsilon).

Overhead with the defaults: 480 + 2 (n_data / 64) symbols from 1024 data symbols up (608 for 16 32x32
images of 256 symbols: 14.8 %; 2528 for one 512x512 image of 65536: 3.9 %), 610 + 2 (n_data / 64)
below (618 for one 32x32 image, as the single rate-1/3 header before). The frame format changed with the two copies
(issue 12): recordings made before (BPSK rate-1/3 header once) do not decode with the defaults; the
old format is ``header_rate=3, header_repeat=1, header_qpsk=False, header_split=0``.

:class:`LinkConfig` holds every knob; :func:`layout` says where everything lies.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, asdict, field

import numpy as np

from .fec import bits_to_int, conv_encode, crc16, int_to_bits, interleaver

__all__ = ["LinkConfig", "Header", "HeaderError", "FrameLayout", "layout", "preamble_symbols",
           "training_symbols", "header_symbols", "coded_header_symbols", "header_len", "header_bit_map",
           "header_n_symbols", "header_rate_for", "header_pilot_sequence", "build_frame", "MODEL_IDS", "model_id",
           "HEADER_FIELDS"]

MODEL_IDS = {"": 0, "sc-cdm-cpu": 1, "deepjscc-cpu": 2, "sc-cdm-paper-awgn": 3, "deepjscc-paper-awgn": 4,
             "sc-cdm-cpu-rayleigh": 5, "deepjscc-paper-rayleigh": 6, "sc-cdm-paper-photo": 7,
             "deepjscc-paper-photo": 8, "sc-cdm-paper-photo-rate": 9, "sc-cdm-paper-photo-rayleigh": 10,
             "sc-cdm-cpu-rayleigh-fast": 11, "sc-cdm-cpu-rate": 12}


def model_id(name: str | None) -> int:
    """Small integer for a zoo model name (255: a model this table does not know)."""
    return MODEL_IDS.get(name or "", 255)


@dataclass
class LinkConfig:
    """Link parameters (shared by transmitter and receiver).

    sps: samples per symbol (1 = no pulse shaping: no clock-offset tracking);
    rolloff / span: RRC roll-off and length in symbols; zc_len / zc_root /
    zc_reps: the preamble; train_len: one training copy; pilot_every /
    pilot_len: data symbols between pilot blocks, pilots per block; chan_taps /
    eq_taps: LS channel-estimate and MMSE-equaliser lengths (odd, symbol
    spaced); guard: silent symbols around each frame; header_repeat: copies
    of the coded header (soft-combined: +3 dB per doubling, for links that must
    survive deeper fades); images_per_frame;
    max_eps: largest sample-clock offset tracked; detect_threshold: Schmidl-Cox
    metric for a candidate (0.03: a preamble faded to about -7 dB SNR is still a candidate; with
    the header's second copy such a frame can survive, and confirmation and CRC reject noise); confirm_threshold: normalised preamble correlation
    to accept one; track: pilot tracking on/off; dc_remove: subtract the
    stream's mean (a receiver's DC offset); iq_correct: estimate and remove
    the IQ-imbalance image per frame (:mod:`sccdm.link.frontend`).

    Header: ``header_rate`` 2 (rate 1/2, 244 coded bits, the default) or 3 (rate 1/3, 366);
    ``header_rate_short`` (default 3) the rate in frames shorter than header_split, whose copies lie
    back to back (no time diversity between them: the stronger code instead);
    ``header_qpsk`` (default on): two coded bits per symbol; ``header_repeat`` copies (2 by default),
    soft-combined; ``header_split`` (default 1024, a multiple of pilot_every, needs header_repeat 2;
    0: the copies back to back): data symbols before the second copy - time diversity against
    fades that outlast one copy; ``header_pilot_every`` coded symbols between header pilot blocks of
    ``pilot_len`` (0: none). The defaults cost what one BPSK rate-1/2 header did (244 symbols + 14
    pilots) with the copies about 1200 symbols (4800 samples at sps 4) apart in frames of at least
    1024 data symbols (see benchmarks/results/csi-doppler-16.md for what that buys under Doppler).

    ``predict_missing`` (receiver only, default on): where the frame after a found one (or before the
    first) was not found - its preamble faded below detection, or its header failed with the CFO and
    timing taken from a faded preamble - try it again at the start it must have in a burst of
    back-to-back frames, with its neighbour's CFO; confirmation and the header CRC still decide. It
    changes nothing on the air (fD Ts 1e-4: 19 -> 16 of 256 one-image frames lost at 5 dB, 5 -> 3 at
    10 dB; see deploy/gnuradio/README.md).

    ``predict_header`` (receiver only, default on, needs predict_missing): where a frame at its predicted
    place fails its header CRC too (the whole frame in a deep fade), the header its neighbour predicts
    (frame_id +-1, the same k and geometry, n_images the same or fewer after it) is re-encoded and
    matched against the received header symbols, weighted by the gain measured on the known symbols
    around them (:mod:`sccdm.link.predict`). The frame is taken with that header, flagged
    RxFrame.header_predicted, when the match statistic Z (about N(0, 1) on noise) reaches
    ``predict_header_z`` (default 4.5: a false accept on noise of 3.4e-6 per candidate) and no nearby
    frame_id or other code word explains the symbols better. The slots before every found frame are tried
    too, so a run of lost frames is reached from both ends. Nothing changes on the air (fD Ts 1e-4, 5 dB:
    15 -> 2 of 256 one-image frames lost, 384 -> 32 of 4096 images at 16 per frame; see
    benchmarks/results/csi-header-predict.md).

    Delay spread: ``chan_taps`` (default 7) is the channel length the
    receiver models, centred on the timing peak, so echoes up to +-(chan_taps
    - 1) / 2 = 3 symbols (12 samples at sps 4) are equalised; beyond that they
    act as noise. ``max_chan_taps`` > chan_taps measures each frame's delay
    spread on its preamble and grows the channel model up to +-(max_chan_taps
    - 1) / 2 symbols and the MMSE equaliser to twice that (eq_taps is the
    minimum); 0 keeps the fixed sizes. The preamble + training must
    outnumber the 2D + 1 taps 4 to 1 and training 2 keep 8 symbols clear of
    them (25 at most with the defaults; default 21: +-10 symbols, 40 samples).
    """

    sps: int = 4
    rolloff: float = 0.35
    span: int = 10
    zc_len: int = 31
    zc_root: int = 7
    zc_reps: int = 4
    train_len: int = 32
    pilot_every: int = 64
    pilot_len: int = 2
    chan_taps: int = 7
    eq_taps: int = 15
    guard: int = 64
    header_repeat: int = 2
    images_per_frame: int = 1
    max_eps: float = 1e-3
    detect_threshold: float = 0.03
    confirm_threshold: float = 0.06
    track: bool = True
    dc_remove: bool = True
    iq_correct: bool = True
    max_chan_taps: int = 21
    header_rate: int = 2
    header_pilot_every: int = 32
    header_qpsk: bool = True
    header_split: int = 1024
    header_rate_short: int = 3
    predict_missing: bool = True
    predict_header: bool = True
    predict_header_z: float = 4.5

    def validate(self) -> "LinkConfig":
        if self.sps < 1 or self.sps > 16:
            raise ValueError(f"sps must be in 1..16, got {self.sps}")
        if self.chan_taps < 1 or self.chan_taps % 2 == 0 or self.eq_taps < 1 or self.eq_taps % 2 == 0:
            raise ValueError("chan_taps and eq_taps must be odd and >= 1")
        if self.zc_reps < 2:
            raise ValueError("the preamble needs at least 2 repeats")
        if self.images_per_frame < 1 or self.images_per_frame > 255:
            raise ValueError(f"images_per_frame must be in 1..255, got {self.images_per_frame}")
        if not 1 <= self.header_repeat <= 8:
            raise ValueError(f"header_repeat must be in 1..8, got {self.header_repeat}")
        known = self.zc_len * self.zc_reps + self.train_len       # symbols the delay spread is measured on
        dm = self.max_chan_taps // 2
        # the LS needs 4 equations per tap; the header pass's phase needs 8 rows of training 2 clear of the taps
        if self.max_chan_taps and (self.max_chan_taps % 2 == 0 or 9 * dm + 4 > known or self.train_len - 2 * dm < 8):
            raise ValueError(f"max_chan_taps must be 0 or odd with 9 (max_chan_taps - 1) / 2 + 4 <= preamble + "
                             f"training = {known} symbols and max_chan_taps <= train_len - 7 = {self.train_len - 7}, "
                             f"got {self.max_chan_taps}")
        if self.pilot_every < 1 or self.pilot_len < 1:
            raise ValueError("pilot_every and pilot_len must be >= 1")
        if self.header_rate not in (2, 3) or self.header_rate_short not in (2, 3):
            raise ValueError(f"header_rate and header_rate_short must be 2 (rate 1/2) or 3 (rate 1/3), got "
                             f"{self.header_rate} and {self.header_rate_short}")
        if self.header_pilot_every < 0:
            raise ValueError(f"header_pilot_every must be >= 0, got {self.header_pilot_every}")
        if not np.isfinite(self.predict_header_z) or self.predict_header_z < 3:
            raise ValueError(f"predict_header_z must be >= 3 (a false accept of 1e-3 per candidate), got "
                             f"{self.predict_header_z}")
        if self.header_split and (self.header_split < 0 or self.header_split % self.pilot_every
                                  or self.header_repeat != 2):
            raise ValueError(f"header_split must be 0 or a multiple of pilot_every ({self.pilot_every}) with "
                             f"header_repeat 2, got {self.header_split} with header_repeat {self.header_repeat}")
        return self

    @classmethod
    def from_env(cls, env=None) -> "LinkConfig":
        """Read ``SCCDM_LINK_<FIELD>`` variables (e.g. SCCDM_LINK_SPS=4, SCCDM_LINK_IMAGES_PER_FRAME=8)."""
        env = os.environ if env is None else env
        kw = {}
        for name, f in cls.__dataclass_fields__.items():
            v = env.get(f"SCCDM_LINK_{name.upper()}")
            if v is None:
                continue
            typ = type(f.default)
            try:
                kw[name] = (v.lower() in ("1", "true", "yes")) if typ is bool else typ(v)
            except ValueError:
                raise ValueError(f"SCCDM_LINK_{name.upper()}={v!r} is not a valid {typ.__name__}") from None
        return cls(**kw).validate()

    def to_dict(self) -> dict:
        return asdict(self)


# ---- header ---------------------------------------------------------------

HEADER_FIELDS = (("version", 4), ("frame_id", 16), ("n_images", 8), ("k", 16), ("model_id", 8),
                 ("C", 8), ("h", 8), ("w", 8), ("H", 12), ("W", 12))
HEADER_BITS = sum(w for _, w in HEADER_FIELDS)
HEADER_CODED = 3 * (HEADER_BITS + 16 + 6)      # at rate 1/3; see header_len
VERSION = 1
# k >= 1 always, so the field holds k - 1: a 512x512 image at CBR 1/12 (k = 65536) fits one frame
_OFFSET = {"k": 1}
MAX_FRAME_K = 1 << 16


class HeaderError(ValueError):
    """A header that failed its CRC or its consistency checks."""


@dataclass
class Header:
    """frame_id (mod 2^16), n_images in this frame, k symbols per image, model_id,
    latent geometry (C, h, w) and image size (H, W); zeros = unknown."""

    frame_id: int
    n_images: int
    k: int
    model_id: int = 0
    C: int = 0
    h: int = 0
    w: int = 0
    H: int = 0
    W: int = 0
    version: int = VERSION

    def to_bits(self) -> list[int]:
        bits = []
        for name, width in HEADER_FIELDS:
            bits += int_to_bits(int(getattr(self, name)) - _OFFSET.get(name, 0), width)
        return bits + crc16(bits)

    @classmethod
    def from_bits(cls, bits) -> "Header":
        bits = [int(b) for b in bits]
        if len(bits) != HEADER_BITS + 16:
            raise HeaderError(f"header has {len(bits)} bits, expected {HEADER_BITS + 16}")
        payload, crc = bits[:HEADER_BITS], bits[HEADER_BITS:]
        if crc16(payload) != crc:
            raise HeaderError("header CRC mismatch")
        vals, pos = {}, 0
        for name, width in HEADER_FIELDS:
            vals[name] = bits_to_int(payload[pos:pos + width]) + _OFFSET.get(name, 0)
            pos += width
        hdr = cls(**vals)
        hdr.check()
        return hdr

    def check(self) -> "Header":
        if self.version != VERSION:
            raise HeaderError(f"header version {self.version}, this receiver speaks {VERSION}")
        if self.n_images < 1 or self.k < 1:
            raise HeaderError(f"header announces {self.n_images} images of {self.k} symbols")
        if self.C * self.h * self.w and self.C * self.h * self.w != 2 * self.k:
            raise HeaderError(f"latent {self.C}x{self.h}x{self.w} does not hold {self.k} complex symbols")
        return self


# ---- known sequences --------------------------------------------------------

def _qpsk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.exp(1j * (np.pi / 4 + np.pi / 2 * rng.integers(0, 4, n)))


def preamble_symbols(cfg: LinkConfig) -> np.ndarray:
    """Zadoff-Chu root zc_root, length zc_len, repeated zc_reps times: complex [zc_len * zc_reps]."""
    n = np.arange(cfg.zc_len)
    zc = np.exp(-1j * np.pi * cfg.zc_root * n * (n + (cfg.zc_len % 2)) / cfg.zc_len)
    return np.tile(zc, cfg.zc_reps)


def training_symbols(cfg: LinkConfig) -> np.ndarray:
    """One training copy, QPSK: complex [train_len]."""
    return _qpsk(cfg.train_len, 0x5CC)


def pilot_sequence(n: int) -> np.ndarray:
    return _qpsk(n, 0x9117)


def header_len(rate: int = 3) -> int:
    """Coded header bits of one copy at rate 1/rate: 366 (rate 3) or 244 (rate 2)."""
    return rate * (HEADER_BITS + 16 + 6)


def header_rate_for(cfg: LinkConfig, n_data: int) -> int:
    """The header code rate (2 or 3) of a frame with n_data data symbols: header_rate_short in a frame
    shorter than header_split (its copies back to back, no time diversity between them: the stronger
    code instead, and the overhead goals concern long frames), header_rate otherwise."""
    return cfg.header_rate_short if cfg.header_split and n_data < cfg.header_split else cfg.header_rate


def header_bit_map(cfg: LinkConfig, rate: int | None = None) -> np.ndarray:
    """Which rate-1/3 mother-code bit each air bit of the header carries: int64 [header_repeat * header_len].

    Punctured to cfg.header_rate, interleaved, repeated per copy; with header_qpsk two air bits make one
    symbol (in-phase first). The receiver adds the soft values of all air bits of one mother bit."""
    m = HEADER_BITS + 16 + 6
    sel = (3 * np.arange(m)[:, None] + np.arange(rate or cfg.header_rate)[None, :]).reshape(-1)
    return np.tile(sel[interleaver(len(sel))], cfg.header_repeat).astype(np.int64)


def header_n_symbols(cfg: LinkConfig, rate: int | None = None) -> int:
    """Air symbols of one header copy: 366 / 244 (BPSK, rate 1/3 / 1/2), 183 / 122 with QPSK."""
    return header_len(rate or cfg.header_rate) // (2 if cfg.header_qpsk else 1)


def bits_to_header_symbols(air_bits: np.ndarray, qpsk: bool) -> np.ndarray:
    """Air bits 0/1 [n] -> BPSK float [n] (+1 for 0) or unit-modulus QPSK complex [n / 2]."""
    s = 1.0 - 2.0 * np.asarray(air_bits, dtype=np.float64)
    return (s[0::2] + 1j * s[1::2]) / np.sqrt(2.0) if qpsk else s


def coded_header_symbols(bits: np.ndarray, cfg: LinkConfig, hmap: np.ndarray) -> np.ndarray:
    """Header bits (int [HEADER_BITS + 16], CRC included) -> their air symbols, every copy in order;
    hmap: :func:`header_bit_map` of the frame's header rate. The receiver re-encodes its decisions with it."""
    return bits_to_header_symbols(conv_encode(bits)[hmap], cfg.header_qpsk)


def header_symbols(hdr: Header, cfg: LinkConfig) -> np.ndarray:
    """The header's air symbols, every copy in order: [header_repeat * header_n_symbols(cfg)]."""
    rate = header_rate_for(cfg, hdr.n_images * hdr.k)
    return coded_header_symbols(hdr.to_bits(), cfg, header_bit_map(cfg, rate))


def header_pilot_sequence(n: int) -> np.ndarray:
    return _qpsk(n, 0x4EAD)


@dataclass
class FrameLayout:
    """Symbol positions in a frame with n_data data symbols.

    All index arrays are int64 into the frame's symbol sequence of length ``total``. ``header``
    spans the header region; its coded symbols lie at ``header_idx``, its pilots at ``hpilot_idx``.
    """

    n_data: int
    pre: slice
    train1: slice
    train2: slice
    header: slice
    data_idx: np.ndarray
    pilot_idx: np.ndarray
    pilot_block: np.ndarray          # block number of each pilot
    post: slice
    total: int
    header_idx: np.ndarray = None
    hpilot_idx: np.ndarray = None
    extra: dict = field(default_factory=dict)
    hdr_end: int = 0                 # symbols the receiver needs for the header: every copy and its pilots
    known_end: int = 0               # end of the known run from the frame start (0: training 2's end)

    @property
    def n_known(self) -> int:
        """Symbols from the frame start that are known once the header is decoded (a second header copy
        right after training 2 among them)."""
        return self.known_end or self.train2.stop

    @property
    def overhead(self) -> int:
        return self.total - self.n_data

    @property
    def late_known(self) -> np.ndarray:
        """Header symbols and header pilots after training 2 (the second copy): int64, sorted."""
        return np.sort(np.concatenate([self.header_idx[self.header_idx >= self.n_known],
                                       self.hpilot_idx[self.hpilot_idx >= self.n_known]]))


def _header_copy(pos: int, n_h: int, every: int, n_p: int, lead: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """n_h coded symbols from pos with a block of n_p pilots before every ``every`` of them (not before the
    first unless lead) -> (coded positions, pilot positions, end)."""
    n_blocks = -(-n_h // every) - (0 if lead else 1)
    at = np.arange(n_h + n_blocks * n_p)
    shifted = at - (n_p if lead else 0)
    is_pilot = (shifted < 0) | (shifted % (every + n_p) >= every)
    return pos + at[~is_pilot], pos + at[is_pilot], pos + len(at)


def layout(cfg: LinkConfig, n_data: int) -> FrameLayout:
    n_pre = cfg.zc_len * cfg.zc_reps
    t = cfg.train_len
    train1 = slice(n_pre, n_pre + t)
    n_sym = header_n_symbols(cfg, header_rate_for(cfg, n_data))
    split = cfg.header_split
    n_h = n_sym * (1 if split else cfg.header_repeat)
    every = cfg.header_pilot_every or n_h
    # [H(every) P(pilot_len)] ... H(rest): training 2 closes the header, so no pilot block last
    h_idx, hp_idx, end = _header_copy(train1.stop, n_h, every, cfg.pilot_len, False)
    header = slice(train1.stop, end)
    train2 = slice(header.stop, header.stop + t)
    pos = train2.stop
    data_idx, pilot_idx, pilot_block, hdr_end, known_end = [], [], [], train2.stop, 0
    # the second copy follows header_split data symbols (or training 2 in a frame with fewer): at one of
    # two places whatever the frame's length, so the receiver finds it before it knows the length
    at = (split if n_data >= split else 0) if split else -1
    s, b = 0, 0
    while True:
        if s == at:
            i2, p2, pos = _header_copy(pos, n_sym, every, cfg.pilot_len, True)
            h_idx, hp_idx = np.concatenate([h_idx, i2]), np.concatenate([hp_idx, p2])
            hdr_end = pos + cfg.pilot_len       # with the data pilot block after it
            known_end = pos if at == 0 else 0
        pilot_idx.extend(range(pos, pos + cfg.pilot_len))
        pilot_block.extend([b] * cfg.pilot_len)
        pos += cfg.pilot_len
        b += 1
        if s == n_data:
            break
        d = min(cfg.pilot_every, n_data - s)
        data_idx.extend(range(pos, pos + d))
        pos, s = pos + d, s + d
    post = slice(pos, pos + t)
    pos += t
    lay = FrameLayout(n_data, slice(0, n_pre), train1, train2, header, np.asarray(data_idx, dtype=np.int64),
                      np.asarray(pilot_idx, dtype=np.int64), np.asarray(pilot_block, dtype=np.int64), post, pos,
                      h_idx.astype(np.int64), hp_idx.astype(np.int64))
    lay.hdr_end, lay.known_end = hdr_end, known_end
    return lay


def build_frame(data: np.ndarray, hdr: Header, cfg: LinkConfig) -> np.ndarray:
    """data: complex [n_images * k] power-normalised symbols -> frame symbols complex128 [layout.total]."""
    lay = layout(cfg, len(data))
    x = np.zeros(lay.total, dtype=np.complex128)
    x[lay.pre] = preamble_symbols(cfg)
    tr = training_symbols(cfg)
    x[lay.train1] = tr
    x[lay.train2] = tr
    x[lay.header_idx] = header_symbols(hdr, cfg)
    x[lay.hpilot_idx] = header_pilot_sequence(len(lay.hpilot_idx))
    x[lay.data_idx] = data
    x[lay.pilot_idx] = pilot_sequence(len(lay.pilot_idx))
    x[lay.post] = tr
    return x
