"""Transmitter and receiver of the link: frames <-> a complex sample stream.

:func:`modulate` turns frames into one burst stream (silence between frames);
:class:`Receiver` finds every burst in a stream and returns, per frame, the
received data symbols with ESTIMATED channel gain, noise variance and SNR.
Receiver steps per burst (see :mod:`.sync` and :mod:`.estimate`):

1. Schmidl-Cox candidate -> coarse CFO; preamble+training cross-correlation ->
   confirm, fractional timing; training repeat -> fine CFO.
2. LS taps on preamble + training (CFO residual from the two halves), MMSE
   equalise; the gain over each header copy from the known runs and pilots
   near it (smoothed, window by cross-validation), soft bits weighted by it,
   both copies added, Viterbi (also each copy alone, with decision-directed
   retries; the second copy at either of its two places); CRC -> accept or reject. A still channel
   whose CFO left turns across the header falls back to training 2's phase.
3. Postamble timing -> sample-clock offset; resample the whole frame.
4. LS taps and noise variance on all known symbols (preamble, training,
   re-encoded header); DC / IQ correction where the channel holds still; MMSE
   FIR equalisation; the gain over the frame from every known run and pilot
   block (a straight line when it holds still, the smoothed trajectory with
   the taps refitted along it when it moves); SNR = SINR x |gain|^2.

The data come back as ``y = h z + n`` with ``n ~ CN(0, noise_var)``: ``h`` is the
estimated per-symbol gain (real |h| after the equaliser, times the tracked
residual), so :func:`sccdm.channels.equalize` works on it as on genie CSI.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import gamma

from .estimate import (_regressors, block_gains, cfo_from_halves, equalize_fir, lin_db, ls_channel, mmse_equalizer,
                       smooth_gain, snr_from_repeat)
from .fec import viterbi_decode
from .frontend import frontend_ls, image_significant, remove_image
from .framing import (HEADER_BITS, Header, HeaderError, LinkConfig, build_frame, coded_header_symbols,
                      header_bit_map, header_pilot_sequence, header_rate_for, header_symbols, layout, pilot_sequence,
                      preamble_symbols, training_symbols)
from .predict import header_candidates, header_soft, match_header
from .pulse import matched_filter, rrc_taps, shape
from .sync import derotate, find_candidates, peak_time, profile_delay, sample_symbols, schmidl_cox

__all__ = ["modulate", "Receiver", "RxFrame", "DemodResult"]
# delay-spread sizing (see Receiver._size_taps): a tap counts down to -30 dB of the strongest (an echo left
# out is noise: at -20 dB it cost a 20 dB link 1 to 2 dB on a 15-sample spread) and the MMSE equaliser spans
# four times the channel's half-length (twice left 1 dB at 20 dB; its cost is a longer FIR, not more pilots)
_TAP_FLOOR, _EQ_PER_TAP = 1e-3, 4


def modulate(frames: list[tuple[np.ndarray, Header]], cfg: LinkConfig) -> tuple[np.ndarray, list[int]]:
    """frames: [(data complex [n_images * k], header)] -> (samples complex64 [n], start sample of each frame).

    Each frame is preceded and the stream followed by ``cfg.guard`` symbols of
    silence; samples carry unit energy per symbol (see :mod:`.pulse`).
    """
    cfg.validate()
    taps = rrc_taps(cfg.sps, cfg.rolloff, cfg.span)
    gap = np.zeros(cfg.guard * cfg.sps, dtype=np.complex128)
    parts, starts, pos = [], [], 0
    for data, hdr in frames:
        parts.append(gap)
        pos += len(gap)
        starts.append(pos)
        s = shape(build_frame(np.asarray(data), hdr, cfg), cfg.sps, taps)
        parts.append(s)
        pos += len(s)
    parts.append(gap)
    return np.concatenate(parts).astype(np.complex64), starts


@dataclass
class RxFrame:
    """One received frame.

    y, h: complex128 [n_images, k] (y = h z + n); noise_var: float, per complex
    symbol; snr_db: float [n_images], the SNR the decoder should assume
    (mean |h|^2 / noise_var); sinr_db: the equaliser's SINR; snr_in_db: channel
    SNR before equalisation (sum |g|^2 / noise_var); snr_rep_db: the SNR from the
    training repeat; start: sample of the first symbol (matched-filter time);
    cfo: cycles per sample; eps: sample-clock offset; taps: the LS estimate.
    """

    header: Header
    y: np.ndarray
    h: np.ndarray
    noise_var: float
    snr_db: np.ndarray
    sinr_db: float
    snr_in_db: float
    snr_rep_db: float
    start: float
    cfo: float
    eps: float
    taps: np.ndarray
    image_db: float = -120.0
    dc: complex = 0j
    fix: tuple = (0j, 0j)        # (DC, image coefficient w) of the raw stream, 0 where not significant
    chan_taps: int = 0           # channel taps modelled for this frame (2D + 1, from its delay spread)
    header_predicted: bool = False   # its header failed; taken from its neighbours (LinkConfig.predict_header)


@dataclass
class DemodResult:
    frames: list[RxFrame]
    candidates: int
    rejected: list[dict] = field(default_factory=list)
    n_samples: int = 0
    dc: complex = 0j             # the raw stream's DC offset and IQ image coefficient, as removed
    iq_w: complex = 0j


class _Reject(Exception):
    pass


class Receiver:
    """The receiver side of the link for one :class:`LinkConfig`."""

    def __init__(self, cfg: LinkConfig):
        self.cfg = cfg.validate()
        self.taps = rrc_taps(cfg.sps, cfg.rolloff, cfg.span)
        self.pre = preamble_symbols(cfg)
        self.train = training_symbols(cfg)
        self.ref = np.concatenate([self.pre, self.train])
        self.lag = cfg.zc_len * cfg.sps
        self.window = (cfg.zc_reps - 1) * self.lag
        self.d = (cfg.chan_taps - 1) // 2
        self.q = (cfg.eq_taps - 1) // 2
        # where the header copies can lie and their code (see _header_pass): (layout, bit map)
        self.hyps = [(layout(cfg, n), header_bit_map(cfg, header_rate_for(cfg, n)))
                     for n in ([0, cfg.header_split] if cfg.header_split else [0])]

    # ---- helpers -------------------------------------------------------------
    def _mf(self, raw: np.ndarray, a: int, b: int, f: float) -> np.ndarray:
        """Matched-filter output for absolute samples [a, b) after removing CFO f."""
        a0 = max(0, a - len(self.taps) + 1)
        seg = derotate(raw[a0:b].astype(np.complex128), f, a0)
        return matched_filter(seg, self.taps)[a - a0:]

    def demodulate(self, samples: np.ndarray) -> DemodResult:
        """samples: complex [n] (any rate-consistent stream) -> every frame found, in order.

        With dc_remove / iq_correct, a first pass measures the front-end's DC and IQ image on every
        frame found; where they are significant the raw stream is corrected once and searched again,
        so detection, timing and CFO work on clean samples too (twice the work only then).
        """
        raw = np.asarray(samples).astype(np.complex64).astype(np.complex128)
        res = self._demodulate(raw)
        fixes = [fr.fix for fr in res.frames]
        if not fixes or not any(abs(v) for fx in fixes for v in fx):
            return res
        dc = complex(np.mean([fx[0] for fx in fixes]))
        w = complex(np.mean([fx[1] for fx in fixes]))
        clean = raw - dc
        clean = clean - w * np.conj(clean)       # (mu r + nu r*) - w (mu r + nu r*)* = (mu - w nu*) r
        res2 = self._demodulate(clean)
        if len(res2.frames) < len(res.frames):
            return res                           # never lose a frame to a bad correction
        res2.dc, res2.iq_w = dc, w
        return res2

    def _demodulate(self, raw: np.ndarray) -> DemodResult:
        mf = matched_filter(raw, self.taps)
        metric, p = schmidl_cox(mf, self.lag, self.window)
        cands = find_candidates(metric, self.cfg.detect_threshold, self.lag)
        res = DemodResult([], len(cands), [], len(raw))
        free = 0
        offs = []
        for d in cands:
            if d < free:
                continue
            try:
                fr = self._burst(raw, d, p[d])
            except _Reject as e:
                res.rejected.append({"at": int(d), "reason": str(e)})
                continue
            res.frames.append(fr)
            offs.append(d - fr.start)
            lay = layout(self.cfg, fr.header.n_images * fr.header.k)
            free = int(fr.start + (lay.total - 2 * self.cfg.train_len) * self.cfg.sps)
        if self.cfg.predict_missing and res.frames:
            self._fill_gaps(raw, res, float(np.median(offs)))
        return res

    def _frame_step(self, fr: RxFrame) -> float:
        """Samples from fr's start to the start of a frame sent right after it (modulate: the shaped frame,
        then the guard), at the receiver's clock."""
        c = self.cfg
        n = layout(c, fr.header.n_images * fr.header.k).total
        return ((n + c.guard) * c.sps + (len(self.taps) - 1 if c.sps > 1 else 0)) * (1 + fr.eps)

    def _frame_span(self, fr: RxFrame) -> float:
        """Samples a frame like fr takes from its start (matched-filter time) to the end of its shaped
        symbols: :meth:`_frame_step` without the guard."""
        c = self.cfg
        return self._frame_step(fr) - c.guard * c.sps * (1 + fr.eps)

    def _fill_gaps(self, raw: np.ndarray, res: DemodResult, off: float) -> None:
        """predict_missing: frames of a burst follow each other at a known step, so where the frame after a
        found one (or before the first) was not detected - its preamble in a fade below the detection
        threshold - the receiver tries it where it must lie, with its neighbour's CFO (the same radios);
        confirmation and the header CRC still decide. off: the detection sample minus the start, as found.
        With predict_header, a slot whose header fails is tested against the header its neighbour predicts
        (:meth:`_predicted_frame`), and the slots before every found frame are tried too: a run of lost
        frames is then reached from both ends."""
        frames = sorted(res.frames, key=lambda fr: fr.start)
        tol = self.lag / 2
        ways = (+1, -1) if self.cfg.predict_header else (+1,)
        todo = [(fr, w) for fr in frames for w in ways]
        if not self.cfg.predict_header:
            todo.append((frames[0], -1))
        tried: list[float] = []
        while todo:
            fr, way = todo.pop()
            t = fr.start + way * self._frame_step(fr)
            # the frame must fit (the last one of a stream has only the guard after it, no next frame's step)
            if (t < 0 or t + self._frame_span(fr) > len(raw) or any(abs(g.start - t) < tol for g in frames)
                    or any(abs(s - t) < tol for s in tried)):
                continue
            tried.append(t)
            new = self._retry(raw, t, off, fr, way, res.rejected,
                              lambda x: any(abs(g.start - x) < tol for g in frames))
            if new is None:
                continue
            frames.append(new)
            todo.append((new, way))
        res.frames[:] = sorted(frames, key=lambda fr: fr.start)

    def _retry(self, raw: np.ndarray, t: float, off: float, nb: RxFrame, way: int, rejected: list,
               taken) -> RxFrame | None:
        """The frame at start t (matched-filter time) next to nb (way +-1), found as any other with nb's CFO,
        else (predict_header) with the header nb predicts; None where neither holds (reasons in rejected).
        taken(start): is there a frame found at that start already (the search near t can lock on one)."""
        at = int(round(t + off))
        try:
            fr = self._burst(raw, at, np.exp(2j * np.pi * nb.cfo * self.lag))
            if not taken(fr.start):
                return fr
            rejected.append({"at": at, "reason": "predicted: a frame found already"})
        except _Reject as e:
            rejected.append({"at": at, "reason": f"predicted: {e}"})
        if not self.cfg.predict_header:
            return None
        try:
            return self._predicted_frame(raw, t, nb, way)
        except _Reject as e:
            rejected.append({"at": at, "reason": f"header prediction: {e}", "z": getattr(e, "z", None)})
        return None

    def _predicted_frame(self, raw: np.ndarray, t0: float, nb: RxFrame, way: int) -> RxFrame:
        """predict_header: the frame at start t0 next to nb (way +-1) with the header nb predicts, when the
        received header symbols match it (:class:`sccdm.link.predict.HeaderMatch`; the best of the
        candidates); decoded with nb's CFO, clock offset and channel length, the gain tracked as
        moving (the frame lies in a fade: its own CFO and front-end estimates would be noise)."""
        c, sps = self.cfg, self.cfg.sps
        cands = header_candidates(nb.header, way, c.images_per_frame)
        a = max(0, int(t0) - 4 * sps)
        n_max = max(layout(c, h.n_images * h.k).total for h in cands)
        b = min(len(raw), int(t0 + (n_max + 8) * sps * (1 + abs(nb.eps))) + len(self.taps))
        mf = self._mf(raw, a, b, nb.cfo)
        best = None
        for hdr in cands:
            lay = layout(c, hdr.n_images * hdr.k)
            if t0 - a + (lay.total + 2) * sps * (1 + abs(nb.eps)) > len(mf):
                continue
            soft = header_soft(sample_symbols(mf, t0 - a, sps * (1 + nb.eps), np.arange(lay.total)), c, lay)
            m = match_header(soft, c, lay, hdr)
            if best is None or m.z > best.z:
                best = m
        why = "truncated" if best is None else best.reject_reason(c.predict_header_z)
        if why:
            e = _Reject(why)
            e.z = None if best is None else round(best.z, 2)
            raise e
        dd = max((nb.chan_taps - 1) // 2, self.d) if nb.chan_taps else self.d
        q = max(self.q, 2 * dd) if dd <= self.d else max(self.q, _EQ_PER_TAP * dd)
        fr = self._frame(raw, a, t0, nb.cfo, dd, q, best.hdr, True, nb.eps)
        fr.header_predicted = True
        return fr

    # ---- one burst -----------------------------------------------------------
    def _resolve_period(self, raw: np.ndarray, a: int, t0: float, f: float) -> tuple[float, float]:
        """The preamble is one Zadoff-Chu period repeated: under fading its coherent correlation can
        peak a period or two early or late (a fade on part of it, the phase turning across it). Among
        t0 + k * period (k = -2..2), the one whose 5 segments (4 periods + training 1) each correlate
        best, magnitudes summed (non-coherent: the phase may turn between segments), is the start.
        t0: sample of the first symbol in raw (matched-filter time); f: the coarse CFO (cycles per
        sample). Returns (start, CFO): both measured again at a start that moved."""
        c = self.cfg
        n_pt = len(self.ref)
        b = min(len(raw), int(t0 + (n_pt + 2 * c.zc_len + 8) * c.sps) + len(self.taps))
        mf = self._mf(raw, a, b, f)
        segs = np.split(np.arange(n_pt), np.arange(c.zc_len, n_pt, c.zc_len)[:c.zc_reps])
        best, t_best = -1.0, t0
        for k in (0, 1, -1, 2, -2):
            tk = t0 + k * self.lag
            if tk < a:
                continue
            r = sample_symbols(mf, tk - a, c.sps, np.arange(n_pt))
            m = sum(abs(np.vdot(self.ref[sg], r[sg])) for sg in segs)
            if m > best * (1 + 1e-6):
                best, t_best = m, tk
        if t_best == t0:
            return t0, f
        # a candidate detected away from the burst also took its coarse CFO from the wrong samples:
        # again from the repeats at the new start, then the coherent peak near it (it may have sat on an echo)
        r = sample_symbols(mf, t_best - a, c.sps, np.arange(c.zc_len * c.zc_reps))
        rep = np.vdot(r[:-c.zc_len], r[c.zc_len:])
        f = f + float(np.angle(rep)) / (2 * np.pi * self.lag)
        mf = self._mf(raw, a, b, f)
        lo = int(np.floor(t_best - a)) - self.lag // 2
        t, _, _ = peak_time(mf, self.ref, c.sps, max(lo, 0), lo + self.lag)
        return t + a, f

    def _size_taps(self, raw: np.ndarray, a: int, t0: float, f: float) -> tuple[int, int, float]:
        """Channel and equaliser half-lengths (D, q) and the sampling time for this frame from its
        measured delay spread.

        LS taps over +-(max_chan_taps - 1) / 2 symbols on the preamble + training 1 (coarse CFO, which
        is enough to see where the energy is); the farthest tap above both 10x its estimation noise
        and -30 dB of the strongest, plus one for the pulse's residue, sets D (never below
        chan_taps); the equaliser then spans four times the channel (q = 4 D). With D above chan_taps
        the start t0 moves to the sampling phase (t0 + k samples, |k| <= sps / 2) with the best MMSE
        SINR. Fixed sizes and t0 when max_chan_taps <= chan_taps. Returns (D, q, t0).
        """
        c = self.cfg
        if c.max_chan_taps <= c.chan_taps:
            return self.d, self.q, t0
        d_max = (c.max_chan_taps - 1) // 2
        n_pt = len(self.ref)
        b = int(t0 + (n_pt + d_max + 16) * c.sps) + len(self.taps)
        if b + c.sps > len(raw) or n_pt - d_max < 4 * (2 * d_max + 1):
            return self.d, self.q, t0
        mf = self._mf(raw, a, b + c.sps, f)
        r = sample_symbols(mf, t0 - a, c.sps, np.arange(n_pt + d_max))
        rows = np.arange(0, n_pt - d_max)
        # a DC term beside the taps: a receiver's DC offset would otherwise pose as echoes everywhere
        dc_turn = np.exp(-2j * np.pi * f * c.sps * np.arange(len(r)))
        g, _, _, s = frontend_ls(r, self.ref, rows, d_max, None, dc_turn)
        e = np.abs(g) ** 2
        strong = np.flatnonzero((e > 10 * s / len(rows)) & (e > _TAP_FLOOR * e.max()))
        spread = int(np.max(np.abs(strong - d_max))) + 1 if len(strong) else 0
        dd = min(max(self.d, spread), d_max)
        if dd <= self.d:
            return dd, max(self.q, 2 * dd), t0
        q = max(self.q, _EQ_PER_TAP * dd)
        # a symbol-spaced equaliser depends on where in the symbol it samples: with echoes the correlation
        # peak need not be the best place (on a 15-sample spread the worst of the 4 phases loses 2 dB
        # against the best, some frames 5). The quarter-symbol offsets around the peak are tried and
        # the one whose LS taps promise the highest MMSE SINR kept; a single path never gets here
        best, t_best = -np.inf, t0
        for k in range(-(c.sps // 2), c.sps // 2 + 1):
            rk = sample_symbols(mf, t0 - a + k, c.sps, np.arange(n_pt + d_max))
            gk, _, _, sk = frontend_ls(rk, self.ref, rows, dd, None, dc_turn)
            _, beta = mmse_equalizer(gk, sk, 2 * q + 1)
            if beta > best:
                best, t_best = beta, t0 + k
        return dd, q, t_best

    def _burst(self, raw: np.ndarray, d: int, p: complex) -> RxFrame:
        c, sps, dd, q = self.cfg, self.cfg.sps, self.d, self.q
        f = float(np.angle(p)) / (2 * np.pi * self.lag)
        n_pt = len(self.ref)
        lo, hi = d - 2 * self.lag - 4, d + 2 * self.lag + 4
        a = max(0, lo - 8)
        b = min(len(raw), hi + (n_pt + 8) * sps)
        mfl = self._mf(raw, a, b, f)
        t, rho, _ = peak_time(mfl, self.ref, sps, max(lo - a, 0), hi - a)
        if rho < c.confirm_threshold:
            raise _Reject(f"weak preamble correlation {rho:.3f}")
        t0, f = self._resolve_period(raw, a, t + a, f)
        dd, q, t0 = self._size_taps(raw, a, t0, f)
        hdr, f, moving = self._header_pass(raw, a, t0, f, dd, q)
        return self._frame(raw, a, t0, f, dd, q, hdr, moving)

    def _frame(self, raw: np.ndarray, a: int, t0: float, f: float, dd: int, q: int, hdr: Header, moving: bool,
               eps: float | None = None) -> RxFrame:
        """The frame of header hdr starting at sample t0 (matched-filter time) of raw, the matched filter run
        from sample a <= t0 with CFO f (cycles per sample); dd / q: channel and equaliser half-lengths;
        moving: the channel moves within the frame (no CFO from the trainings' halves, no front-end
        correction); eps: the sample-clock offset, measured on the postamble when None."""
        c, sps, n_pt = self.cfg, self.cfg.sps, len(self.ref)
        # the whole frame, resampled for the clock offset
        lay = layout(c, hdr.n_images * hdr.k)
        n_total = lay.total + q + dd
        # the clock-offset margin (max_eps of the frame) only as far as the stream goes: on a frame of
        # 65k symbols it outgrows the guard, and a frame that fits without it is whole
        b3 = min(int(t0 + (n_total + 16) * sps * (1 + c.max_eps)) + len(self.taps), len(raw))
        if int(t0 + (n_total + 16) * sps) + len(self.taps) > len(raw):
            raise _Reject("truncated frame")
        mff = self._mf(raw, a, b3, f)
        if eps is None and sps > 1:
            # the channel at the frame start seen on preamble + training 1 (more symbols than the postamble:
            # less jitter), against the postamble's: their whole correlation profiles aligned, not their
            # peaks - under multipath each peak may pick a different path (see profile_delay)
            base = int(round(t0 - a))
            dist = lay.post.start * sps
            span = int(np.ceil(dist * c.max_eps)) + 2
            shift, rho_p = profile_delay(mff, self.ref, base, self.train, base + dist, sps, (dd + 2) * sps, span)
            eps = float(np.clip(shift / dist, -c.max_eps, c.max_eps)) if rho_p >= c.confirm_threshold else 0.0
        eps = eps or 0.0
        idx = np.arange(n_total)
        r = sample_symbols(mff, t0 - a, sps * (1 + eps), idx)
        x = np.zeros(lay.total, dtype=np.complex128)
        x[:n_pt] = self.ref
        x[lay.header_idx] = header_symbols(hdr, c)
        x[lay.hpilot_idx] = header_pilot_sequence(len(lay.hpilot_idx))
        x[lay.train2] = self.train
        rows = np.arange(0, lay.n_known - dd)
        w_res = 0.0 if moving else cfo_from_halves(r, x[:lay.n_known], rows, dd)
        r = r * np.exp(-1j * w_res * idx)
        f_mf = f                                 # what the matched-filter stage removed: the raw phase reference
        f += w_res / (2 * np.pi * sps)
        g, s2, _ = ls_channel(r, x[:lay.n_known], rows, dd)
        image_db, dc, fix = -120.0, 0j, (0j, 0j)
        # the front-end estimate fits one static channel to the known symbols: on a channel that moves
        # within the frame the misfit would pose as DC and image, and removing those corrupts the frame
        moving = moving or self._moves(r, x, lay, g, s2, q)
        if (c.iq_correct or c.dc_remove) and not moving:
            r, image_db, dc, fix = self._clean_frontend(r, x, lay, rows, f, f_mf * t0, eps, dd, q)
            g, s2, _ = ls_channel(r, x[:lay.n_known], rows, dd)
        snr_rep, _ = snr_from_repeat(r[lay.train1], r[lay.train2])
        g, s2, w, beta, v, gain = self._track_frame(r, x, lay, rows, dd, q, g, s2)
        sinr = beta / (1 - beta)
        if gain is None:
            gain = np.ones(len(lay.data_idx), dtype=np.complex128)
        h_eff = np.sqrt(sinr * s2)
        shape_ = (hdr.n_images, hdr.k)
        y = (h_eff * v[lay.data_idx]).reshape(shape_)
        h = (h_eff * gain).reshape(shape_)
        snr_img = lin_db(np.mean(np.abs(h) ** 2, axis=1) / s2)
        return RxFrame(hdr, y, h, s2, snr_img, float(lin_db(sinr)), float(lin_db(np.sum(np.abs(g) ** 2) / s2)),
                       float(lin_db(snr_rep)), t0, f, eps, g, image_db, dc, fix, 2 * dd + 1)

    def _decode_header(self, soft_sym: np.ndarray, hmap: np.ndarray) -> Header:
        """Gain-weighted header symbols in air order (complex [n_header_symbols], every copy) -> the
        Header; HeaderError when the CRC or the checks fail."""
        return Header.from_bits(self._header_bits(soft_sym, hmap))

    def _header_bits(self, soft_sym: np.ndarray, hmap: np.ndarray) -> np.ndarray:
        """As :meth:`_decode_header`, the Viterbi decision before any check: bits int [HEADER_BITS + 16].
        Every air bit's soft value (in-phase, and quadrature with QPSK; positive = bit 0) adds to its
        mother-code bit: copies combine (maximum ratio: the symbols come weighted by the gain), punctured
        bits stay 0 (erasures)."""
        z = np.asarray(soft_sym)
        soft = np.stack([z.real, z.imag], axis=1).reshape(-1) if self.cfg.header_qpsk else np.real(z)
        mother = np.zeros(3 * (HEADER_BITS + 16 + 6))
        np.add.at(mother, hmap, soft.astype(np.float64))
        return viterbi_decode(mother, HEADER_BITS + 16)

    def _header_pass(self, raw: np.ndarray, a: int, t0: float, f: float, dd: int, q: int) -> tuple:
        """Decode the header of the burst starting at sample t0 (matched-filter time) of raw, the
        matched filter run from sample a with the coarse CFO f (cycles per sample); dd / q: channel and
        equaliser half-lengths. Returns (Header, f refined, whether the channel moves); _Reject if not.
        With header_split the second copy lies right after training 2 (a frame shorter than the split)
        or after header_split data symbols: both places are tried (the CRC decides).
        """
        first = None
        for lay0, hmap in self.hyps:
            try:
                return self._header_try(raw, a, t0, f, dd, q, lay0, hmap)
            except _Reject as e:
                first = first or e
        raise first

    def _header_try(self, raw: np.ndarray, a: int, t0: float, f: float, dd: int, q: int, lay0,
                    hmap: np.ndarray) -> tuple:
        """:meth:`_header_pass` for the header positions of lay0 (a layout of this config) and the code
        of hmap (:func:`header_bit_map`)."""
        c, sps, n_pt = self.cfg, self.cfg.sps, len(self.ref)
        tr2 = lay0.train2
        # taps from preamble + training 1; the gain over the header from its pilots and the
        # trainings (or, on a still channel, the phase drift from training 2); a second copy lies
        # header_split data symbols later, with the data pilots around it
        reach = lay0.hdr_end
        b2 = int(t0 + (reach + q + dd + 16) * sps * (1 + c.max_eps)) + len(self.taps)
        if b2 > len(raw):
            raise _Reject("truncated before the header")
        mfh = self._mf(raw, a, b2, f)
        idx = np.arange(reach + q + dd)
        r = sample_symbols(mfh, t0 - a, sps, idx)
        x = np.zeros(reach, dtype=np.complex128)
        x[:n_pt] = self.ref
        x[tr2] = self.train
        x[lay0.pilot_idx[lay0.pilot_idx < reach]] = pilot_sequence(int(np.sum(lay0.pilot_idx < reach)))
        rows = np.arange(0, n_pt - dd)
        w_res = cfo_from_halves(r, x[:n_pt], rows, dd)
        r = r * np.exp(-1j * w_res * idx)
        g1, s1, _ = ls_channel(r, x[:n_pt], rows, dd)
        rows2 = np.arange(tr2.start + dd, tr2.stop - dd)
        model2 = _regressors(x, rows2, dd) @ g1
        c2 = np.vdot(model2, r[rows2])
        gap = np.mean(rows2) - np.mean(rows)
        w1, beta1 = mmse_equalizer(g1, s1, 2 * q + 1)
        x[lay0.hpilot_idx] = header_pilot_sequence(len(lay0.hpilot_idx))
        hdr, w2, err, moving = (self._header_tracked(r, x, lay0, hmap, rows, dd, w1, beta1) if len(lay0.hpilot_idx)
                                else (None, 0.0, None, False))
        # a still channel whose coarse CFO left turns across the header: the phase of training 2 is
        # known modulo 2 pi and the CRC picks the right turn (low SNR, long header)
        for turn in ((0, -1, 1) if hdr is None else ()):
            w2 = (float(np.angle(c2)) + 2 * np.pi * turn) / gap
            rr = r * np.exp(-1j * w2 * (idx - np.mean(rows)))
            try:
                hdr = self._decode_header(equalize_fir(rr, w1, lay0.header_idx) / beta1, hmap)
                break
            except HeaderError as e:
                err = err or e
        if hdr is None:
            raise _Reject(f"header: {err}")
        # a fading channel's phase drift is no frequency offset: taken for one it would add to the
        # Doppler the pilots must follow (the gain tracking takes up whatever CFO is left)
        f += 0.0 if moving else (w_res + w2) / (2 * np.pi * sps)
        return hdr, f, moving

    def _header_tracked(self, r: np.ndarray, x: np.ndarray, lay0, hmap: np.ndarray, rows: np.ndarray, dd: int,
                        w1: np.ndarray, beta1: float) -> tuple[Header | None, float, HeaderError | None, bool]:
        """The header through a channel that may move within it (Doppler).

        r: complex [>= hdr_end] symbol-rate samples; x: complex [hdr_end] known symbols (preamble,
        training 1 and 2, header pilots, the data pilots up to the second copy; 0 elsewhere); rows / dd: the LS rows on preamble +
        training 1 and the channel half-length; w1 / beta1: the equaliser from the start of the frame. The complex gain is measured on runs of known symbols and the header
        pilot blocks, smoothed (:func:`smooth_gain`: the window follows the measured variation) and
        interpolated over the coded symbols, whose soft values are then weighted by it (maximum
        ratio: a faded symbol counts little in the Viterbi metric instead of misleading it).
        Returns (header or None, the mean phase slope over the header in radians per symbol, error,
        whether the gain moves beyond a straight line).
        """
        reach = lay0.hdr_end
        known = np.sort(np.concatenate([np.arange(0, lay0.train1.stop), lay0.hpilot_idx,
                                        np.arange(lay0.train2.start, lay0.train2.stop),
                                        lay0.pilot_idx[lay0.pilot_idx < reach]]))
        for it in range(2):
            v = equalize_fir(r, w1, np.arange(reach)) / beta1
            a, a_rows, width = self._copy_gains(v, x, known, lay0, rows, beta1 / (1 - beta1))
            if not np.isfinite(width) or it == 1:
                break
            # it moves: taps refitted along the gain trajectory (as in _track_frame), so the
            # equaliser is not built from a fade averaged over the preamble
            reg = _regressors(x, rows, dd) * a_rows[:, None]
            g1, *_ = np.linalg.lstsq(reg, r[rows], rcond=None)
            s1 = float(np.sum(np.abs(r[rows] - reg @ g1) ** 2) / max(len(rows) - len(g1), 1))
            w1, beta1 = mmse_equalizer(g1, s1, len(w1))
        hdr, err = None, None
        # decision-directed passes: in a fade the 2-symbol header pilots say little, the header
        # symbols say more - the Viterbi decision (right where the channel was good), re-encoded,
        # serves as known symbols for the next gain estimate. A copy whose gain is badly estimated
        # (a fast fade between sparse pilots) can spoil the sum of the copies: each is also tried alone
        first = (lay0.header_idx < lay0.n_known).astype(np.float64)
        alone = [first, 1.0 - first] if lay0.header_idx[-1] >= lay0.n_known else []
        for _ in range(3):
            soft = np.conj(a) * v[lay0.header_idx]
            for m in [None] + alone:
                bits = self._header_bits(soft if m is None else soft * m, hmap)
                try:
                    hdr = Header.from_bits(bits)
                    break
                except HeaderError as e:
                    err = err or e
            if hdr is not None:
                break
            xd = x.copy()
            xd[lay0.header_idx] = coded_header_symbols(self._header_bits(soft, hmap), self.cfg, hmap)
            a, _, width = self._copy_gains(v, xd, np.sort(np.concatenate([known, lay0.header_idx])), lay0,
                                           rows[:0], None)
        if hdr is None:
            return None, 0.0, err, False
        # the CFO left over shows as the gain's mean phase slope (fading adds a drift of its own), over the
        # first copy: across the gap to a second one the phase could turn by more than pi
        first = lay0.header_idx < lay0.n_known
        slope = float(np.polyfit(lay0.header_idx[first], np.unwrap(np.angle(a[first])), 1)[0])
        return hdr, slope, None, bool(np.isfinite(width))

    def _copy_gains(self, v: np.ndarray, x: np.ndarray, known: np.ndarray, lay0, rows: np.ndarray,
                    sinr: float | None) -> tuple[np.ndarray, np.ndarray, float]:
        """The complex gain at every coded header symbol (complex [n_header]) and at rows, each copy's from
        the known symbols near it only: a width chosen on the well-known start of the frame would smear a
        second copy that only sparse pilots surround, and theirs would blur the first. v: equalised
        unit-gain symbols; x / known: known symbols and their sorted positions. Returns (gain at the
        header, gain at rows, the first copy's smoothing width: inf = no variation seen)."""
        h = lay0.header_idx
        first = h < lay0.n_known
        n1 = int(first.sum())
        t, gb, nb = block_gains(v, x, known[known < lay0.n_known], 16)
        a1, width = smooth_gain(t, gb, nb, np.concatenate([h[first], rows]).astype(np.float64), sinr=sinr)
        a = np.empty(len(h), dtype=np.complex128)
        a[first] = a1[:n1]
        if n1 < len(h):
            lo = h[n1] - 3 * (self.cfg.pilot_every + self.cfg.pilot_len)
            t, gb, nb = block_gains(v, x, known[known >= lo], 16)
            a[~first] = smooth_gain(t, gb, nb, h[~first].astype(np.float64), sinr=sinr)[0]
        return a, a1[n1:], width

    def _moves(self, r: np.ndarray, x: np.ndarray, lay, g: np.ndarray, s2: float, q: int) -> bool:
        """Does the channel move within this frame beyond a straight line? The whole frame's known
        symbols and pilots (more than the header pass sees) through :func:`smooth_gain`'s test.
        r: complex [>= lay.total]; x: complex [lay.total] known up to training 2; g / s2: LS taps."""
        w, beta = mmse_equalizer(g, s2, 2 * q + 1)
        xk = x.copy()
        xk[lay.pilot_idx] = pilot_sequence(len(lay.pilot_idx))
        xk[lay.post] = self.train
        known = np.sort(np.concatenate([np.arange(0, lay.n_known), lay.late_known, lay.pilot_idx,
                                        np.arange(lay.post.start, lay.post.stop)]))
        t, gb, nb = block_gains(equalize_fir(r, w, np.arange(lay.total)) / beta, xk, known, 16)
        return bool(np.isfinite(smooth_gain(t, gb, nb, t[:1], sinr=beta / (1 - beta))[1]))

    def _track_frame(self, r: np.ndarray, x: np.ndarray, lay, rows: np.ndarray, dd: int, q: int, g: np.ndarray,
                     s2: float) -> tuple:
        """Equalise a frame and follow its channel over time.

        r: complex [>= lay.total] symbol-rate samples; x: complex [lay.total] known symbols up to
        training 2 (0 elsewhere); rows: int, the LS rows; g / s2: LS taps and noise variance from them.
        The gain is measured on runs of known symbols (preamble, training, the re-encoded header,
        header pilots, postamble) and on the pilot blocks and smoothed (:func:`smooth_gain`). When it
        moves, the taps are refitted with the gain trajectory (r[n] = a(n) (X g)[n]), so neither the
        taps nor the noise variance average the fading in, and the gain is measured again.
        Returns (g, s2, w, beta, v complex [lay.total] equalised unit-gain symbols, gain complex
        [n_data] at the data; None with tracking off). A still channel gets one straight line
        through all the known symbols' gains (residual CFO), a moving one the smoothed trajectory.
        """
        c = self.cfg
        xk = x.copy()
        xk[lay.pilot_idx] = pilot_sequence(len(lay.pilot_idx))
        xk[lay.post] = self.train
        known = np.sort(np.concatenate([np.arange(0, lay.n_known), lay.late_known, lay.pilot_idx,
                                        np.arange(lay.post.start, lay.post.stop)]))
        out_t = np.concatenate([lay.data_idx, rows]).astype(np.float64)
        gain = None
        for it in range(2):
            w, beta = mmse_equalizer(g, s2, 2 * q + 1)
            v = equalize_fir(r, w, np.arange(lay.total)) / beta
            if not c.track:
                break
            t, gb, nb = block_gains(v, xk, known, 16)
            a, width = smooth_gain(t, gb, nb, out_t, sinr=beta / (1 - beta))
            gain = a[:len(lay.data_idx)]
            if not np.isfinite(width) and np.sum(nb * beta / (1 - beta) * np.abs(gb - 1) ** 2) < gamma.ppf(0.99, len(gb)):
                gain = None                      # n SINR |g_b - 1|^2 ~ Exp(1): nothing to track, add no noise
            if not np.isfinite(width) or it == 1:
                break                            # a still channel: one line through every known symbol
            reg = _regressors(x[:lay.n_known], rows, dd) * a[len(lay.data_idx):, None]
            g, *_ = np.linalg.lstsq(reg, r[rows], rcond=None)
            s2 = float(np.sum(np.abs(r[rows] - reg @ g) ** 2) / max(len(rows) - len(g), 1))
        return g, s2, w, beta, v, gain

    def _clean_frontend(self, r: np.ndarray, x: np.ndarray, lay, rows: np.ndarray, f: float, turn0: float,
                        eps: float, dd: int, q: int) -> tuple[np.ndarray, float, complex, tuple]:
        """Remove the receiver's DC offset and IQ-imbalance image from one frame's symbol-rate samples.

        r: complex [n]; x: complex [lay.total] known symbols (0 elsewhere); f: the CFO removed (cycles per
        sample), turn0: the CFO phase (cycles) removed at the frame's first symbol, eps: clock offset;
        dd / q: the frame's channel and equaliser half-lengths. Removing the CFO
        turned the DC by -f per sample and the image (a conjugate) by -2f. The stream's mean cannot serve
        as the DC: the BPSK header of mostly-zero fields has a mean of its own.
        Returns (r, image-to-signal ratio in dB as estimated, DC at symbol rate, (DC, w) of the raw
        stream where significant - see :meth:`demodulate`). r keeps an image no larger than the
        estimate's own noise.
        """
        c = self.cfg
        n = np.arange(len(r))
        f_sym = f * self.cfg.sps * (1 + eps)
        dc_turn = np.exp(-2j * np.pi * f_sym * n) if c.dc_remove else None
        rot = np.exp(-4j * np.pi * f_sym * n) if c.iq_correct else None
        g_wl, g2, dc, s_wl = frontend_ls(r, x[:lay.n_known], rows, dd, rot, dc_turn)
        e_g = max(float(np.sum(np.abs(g_wl) ** 2)), 1e-30)
        ratio_db = float(lin_db(np.sum(np.abs(g2) ** 2) / e_g)) if len(g2) else -120.0
        # back to the raw stream (see demodulate): the matched filter passes a DC times the taps' sum;
        # the image tap g2 = w conj(g) turned by the CFO phase at t0
        dc_sig = dc_turn is not None and abs(dc) ** 2 > 10 * s_wl / len(rows)
        im_sig = rot is not None and image_significant(g2, s_wl, len(rows))
        fix = (dc * np.exp(2j * np.pi * turn0) / np.sum(self.taps) if dc_sig else 0j,
               complex(np.sum(g2 * g_wl) / e_g * np.exp(4j * np.pi * turn0)) if im_sig else 0j)
        if dc_turn is not None:
            r = r - dc * dc_turn
        if not im_sig:
            return r, ratio_db, complex(dc), fix
        # soft estimates of the data from an equaliser trained without the image, known symbols elsewhere
        w, beta = mmse_equalizer(g_wl, s_wl, 2 * q + 1)
        x_hat = x.copy()
        x_hat[lay.data_idx] = equalize_fir(r, w, lay.data_idx) / beta
        x_hat[lay.pilot_idx] = pilot_sequence(len(lay.pilot_idx))
        x_hat[lay.post] = self.train
        return remove_image(r, x_hat, g2, rot), ratio_db, complex(dc), fix
