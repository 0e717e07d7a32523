"""A batch of images over the link: symbols [B, k] -> sample stream -> ChannelResult.

:class:`LinkSession` is what every radio backend shares: it cuts a batch into
frames (``images_per_frame`` images each, consecutive frame ids), modulates
them into one burst stream (:class:`TxPlan`), and turns whatever stream came
back into a :class:`sccdm.backends.ChannelResult` with ESTIMATED CSI and SNR.
Images whose frame was not found come back as erased (mask False, y = 0).

An image of more symbols than one header can announce (k > 65536: a photo larger than
512x512 at CBR 1/12) is cut into ``segments`` equal rows (zero-padded at its end),
each sent as an image of its own; the receiver puts them back together, and a lost
segment erases only its symbols (image_status "erased").
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, asdict

import numpy as np
import torch

from .framing import MAX_FRAME_K, Header, LinkConfig, layout, model_id
from .modem import DemodResult, Receiver, modulate

__all__ = ["LinkMeta", "TxPlan", "LinkSession", "LinkError", "LinkTimeout", "NoBurstError"]


class LinkError(RuntimeError):
    """The radio link failed (nothing usable came back)."""


class LinkTimeout(LinkError, TimeoutError):
    """The far end (flowgraph) did not answer in time."""


class NoBurstError(LinkError):
    """Samples came back but no frame could be found in them."""


@dataclass
class LinkMeta:
    """What the header carries beyond the symbols: model name, latent (C, h, w), image (H, W); zeros = unknown."""

    model: str = ""
    latent_shape: tuple = (0, 0, 0)
    image_size: tuple = (0, 0)


@dataclass
class TxPlan:
    """One transmission: samples complex64 [n]; frame ids first_id..first_id+len(frames)-1 (mod 2^16);
    frames: (first row, row count) per frame; starts: first sample of each frame. The link carries
    ``rows`` = batch * segments rows of ``row_k`` symbols (one row per image unless it is segmented)."""

    samples: np.ndarray
    first_id: int
    batch: int
    k: int
    frames: list
    starts: list
    overhead_symbols: list
    meta: LinkMeta = field(default_factory=LinkMeta)
    segments: int = 1

    @property
    def rows(self) -> int:
        return self.batch * self.segments

    @property
    def row_k(self) -> int:
        return -(-self.k // self.segments)

    def to_rows(self, a: np.ndarray) -> np.ndarray:
        """[batch, k, ...] per image -> [rows, row_k, ...] as the frames carry it (zero-padded)."""
        pad = self.segments * self.row_k - self.k
        if pad:
            a = np.concatenate([a, np.zeros((a.shape[0], pad) + a.shape[2:], dtype=a.dtype)], axis=1)
        return a.reshape((self.rows, self.row_k) + a.shape[2:])

    def to_images(self, a: np.ndarray) -> np.ndarray:
        """[rows, row_k, ...] -> [batch, k, ...] (the padding dropped)."""
        return a.reshape((self.batch, self.segments * self.row_k) + a.shape[2:])[:, :self.k]

    def describe(self) -> dict:
        """JSON-serialisable everything but the samples (what a recording needs to be replayed)."""
        d = {k: v for k, v in asdict(self).items() if k != "samples"}
        d["meta"] = {"model": self.meta.model, "latent_shape": list(self.meta.latent_shape),
                     "image_size": list(self.meta.image_size)}
        d["frames"] = [list(f) for f in self.frames]
        return d

    @classmethod
    def from_description(cls, d: dict, samples: np.ndarray) -> "TxPlan":
        m = d.get("meta") or {}
        meta = LinkMeta(m.get("model", ""), tuple(m.get("latent_shape", (0, 0, 0))), tuple(m.get("image_size", (0, 0))))
        return cls(samples, int(d["first_id"]), int(d["batch"]), int(d["k"]), [tuple(f) for f in d["frames"]],
                   list(d["starts"]), list(d["overhead_symbols"]), meta, int(d.get("segments", 1)))


MAX_ROW = MAX_FRAME_K      # the header's k field: larger images are segmented
MAX_K = 1 << 22            # 4 M symbols per image (a 4096x4096 photo at CBR 1/12; the header's H, W are 12 bits)


def _as_numpy(symbols) -> np.ndarray:
    if isinstance(symbols, torch.Tensor):
        symbols = symbols.detach().cpu().numpy()
    z = np.asarray(symbols)
    if z.ndim != 2 or not np.iscomplexobj(z):
        raise ValueError(f"symbols must be complex [B, k], got {z.dtype} {z.shape}")
    if z.shape[0] < 1 or z.shape[1] < 1 or z.shape[1] > MAX_K:
        raise ValueError(f"symbols shape {z.shape}: need B >= 1 and 1 <= k <= {MAX_K}")
    if not np.all(np.isfinite(z)):
        raise ValueError("symbols contain NaN or inf")
    return z.astype(np.complex128)


def _link_status(got: np.ndarray, n_frames: int, n_seen: int, dem: DemodResult, n_pred: int = 0) -> str:
    """One line for people: how many images and frames arrived, and why the others did not; n_pred: frames
    taken with a predicted header (LinkConfig.predict_header), counted as decoded."""
    lost = int((~got).sum())
    pred = f" ({n_pred} with a predicted header)" if n_pred else ""
    if lost == 0:
        return f"ok: {n_frames} of {n_frames} frames decoded{pred}"
    why = sorted({r["reason"].split(" 0.")[0] for r in dem.rejected}) or ["burst not detected"]
    return (f"{lost} of {len(got)} images lost: {n_frames - n_seen} of {n_frames} frames not decoded "
            f"({dem.candidates} detection candidates; {'; '.join(why)}){pred}")


def _rows_to_images(plan: TxPlan, y, h, mask, nv, snr, got):
    """The frames' rows back into images: y, h complex [rows, row_k] (h may be None), mask bool
    [rows, row_k], nv / snr float [rows], got bool [rows] -> the same per image ([batch, k], [batch]).
    A segmented image's noise variance and SNR are the means over its segments that arrived; it
    counts as got when any did (its lost segments stay erased in the mask)."""
    if plan.segments == 1:
        return y, h, mask, nv, snr, got
    s = plan.segments
    g = got.reshape(plan.batch, s)
    n_ok = np.maximum(g.sum(axis=1), 1)
    nv_img = np.where(g.any(axis=1), (nv.reshape(-1, s) * g).sum(axis=1) / n_ok, 1.0)
    snr_lin = 10.0 ** (snr.reshape(-1, s) / 10.0)
    snr_img = np.where(g.any(axis=1), 10.0 * np.log10(np.maximum((snr_lin * g).sum(axis=1) / n_ok, 1e-12)), 0.0)
    return (plan.to_images(y), None if h is None else plan.to_images(np.asarray(h)), plan.to_images(mask),
            nv_img, snr_img, g.any(axis=1))


class LinkSession:
    """Transmitter and receiver of the link for one :class:`LinkConfig`; thread-safe frame ids."""

    def __init__(self, cfg: LinkConfig | None = None, first_id: int = 0):
        self.cfg = (cfg or LinkConfig()).validate()
        self.receiver = Receiver(self.cfg)
        self._next_id = first_id & 0xFFFF
        self._lock = threading.Lock()

    def overhead(self, n_images: int = 1, k: int = 256) -> int:
        """Non-data symbols of one frame carrying n_images images of k symbols."""
        return layout(self.cfg, n_images * k).overhead

    def plan(self, symbols, meta: LinkMeta | None = None) -> TxPlan:
        """symbols: complex [B, k], power-normalised -> the burst stream for them."""
        z = _as_numpy(symbols)
        meta = meta or LinkMeta()
        b, k = z.shape
        c, hh, ww = (int(v) for v in meta.latent_shape)
        if c * hh * ww and c * hh * ww != 2 * k:
            raise ValueError(f"latent shape {meta.latent_shape} does not hold {k} complex symbols")
        seg = -(-k // MAX_ROW)
        shape = TxPlan(np.zeros(0, np.complex64), 0, b, k, [], [], [], meta, seg)
        z = shape.to_rows(z)
        rows, rk = z.shape
        if seg > 1 or max(c, hh, ww) > 255:
            c = hh = ww = 0          # a segment is no whole latent (or it outgrows 8 bits): the header says only k
        img_h, img_w = (int(v) for v in meta.image_size)
        if max(img_h, img_w) > 4095:
            img_h = img_w = 0        # informational only: 12 bits
        per = self.cfg.images_per_frame
        groups = [(i, min(per, rows - i)) for i in range(0, rows, per)]
        with self._lock:
            first = self._next_id
            self._next_id = (first + len(groups)) & 0xFFFF
        frames, ovh = [], []
        for j, (i0, n) in enumerate(groups):
            hdr = Header((first + j) & 0xFFFF, n, rk, model_id(meta.model), c, hh, ww,
                         img_h, img_w).check()
            frames.append((z[i0:i0 + n].reshape(-1), hdr))
            ovh.append(self.overhead(n, rk))
        samples, starts = modulate(frames, self.cfg)
        return TxPlan(samples, first, b, k, groups, starts, ovh, meta, seg)

    def demodulate(self, rx: np.ndarray) -> DemodResult:
        return self.receiver.demodulate(rx)

    def receive(self, rx: np.ndarray, plan: TxPlan, chan, generator: torch.Generator | None = None,
                source: str = "link"):
        """rx: complex [n] received stream; chan: the ChannelConfig (its kind / csi say how the
        receiver will equalise) -> :class:`sccdm.backends.ChannelResult` with estimated CSI."""
        from ..backends import ChannelResult

        rx = np.asarray(rx).astype(np.complex64)
        dem = self.demodulate(rx)
        b, k = plan.rows, plan.row_k         # rows of the frames; images are put back together below
        y = np.zeros((b, k), dtype=np.complex128)
        h = np.zeros((b, k), dtype=np.complex128)
        nv = np.ones(b)
        snr = np.zeros(b)
        got = np.zeros(b, dtype=bool)
        info = {"cfo": [], "eps": [], "snr_in_db": [], "snr_rep_db": [], "sinr_db": [], "start": [], "image_db": [], "chan_taps": []}
        seen, frame_ids, dc_est, predicted, n_pred = set(), [], [], np.zeros(b, dtype=bool), 0
        for fr in dem.frames:
            j = (fr.header.frame_id - plan.first_id) & 0xFFFF
            if j >= len(plan.frames) or j in seen:
                continue  # a frame of another transmission (stale samples), or a duplicate
            i0, n = plan.frames[j]
            if fr.header.n_images != n or fr.header.k != k:
                continue
            seen.add(j)
            y[i0:i0 + n], h[i0:i0 + n] = fr.y, fr.h
            nv[i0:i0 + n], snr[i0:i0 + n], got[i0:i0 + n] = fr.noise_var, fr.snr_db, True
            predicted[i0:i0 + n] = fr.header_predicted
            n_pred += int(fr.header_predicted)
            for key in info:
                info[key].append(round(float(getattr(fr, key)), 7))
            frame_ids.append(int(fr.header.frame_id))
            dc_est.append([round(fr.dc.real, 6), round(fr.dc.imag, 6)])   # symbol rate, after the matched filter
        mask = np.repeat(got[:, None], k, axis=1)
        csi = chan.csi if chan.kind != "awgn" else "none"
        h_out = h
        if chan.kind == "awgn":
            # the receiver will not equalise: hand over unit-gain symbols
            safe = np.where(np.abs(h) > 1e-9, h, 1.0)
            y = np.where(mask, y / safe, 0)
            nv = np.where(got, nv / np.maximum(np.mean(np.abs(h) ** 2, axis=1), 1e-12), 1.0)
            h_out = None
        elif csi == "abs":
            ph = np.exp(-1j * np.angle(h))
            y, h_out = y * ph, np.abs(h).astype(np.complex128)
        elif csi == "none":
            h_out = None
        y, h_out, mask, nv, snr, got = _rows_to_images(plan, y, h_out, mask, nv, snr, got)
        predicted = predicted.reshape(plan.batch, plan.segments).any(axis=1)
        b, k = plan.batch, plan.k
        if chan.erasure_prob > 0:
            lost = torch.rand(b, k, generator=generator).numpy() < chan.erasure_prob
            mask = mask & ~lost
            y = np.where(mask, y, 0)
        ovh_img = float(sum(plan.overhead_symbols)) / b
        from ..backends import image_status
        status = image_status(torch.from_numpy(mask), b)
        extras = {
            "link": source, "frames": len(plan.frames), "frames_received": len(seen),
            "lost_images": [int(i) for i in np.flatnonzero(~got)], "image_status": status,
            # images whose frame came with a predicted header (not lost: decoded on a header taken from its
            # neighbours, LinkConfig.predict_header; its symbols lay in a deep fade)
            "header_predicted_images": [int(i) for i in np.flatnonzero(predicted)],
            "link_status": _link_status(got, len(plan.frames), len(seen), dem, n_pred),
            "segments_per_image": plan.segments,
            "overhead_symbols": int(sum(plan.overhead_symbols)), "overhead_symbols_per_frame": plan.overhead_symbols,
            "overhead_symbols_per_image": ovh_img, "symbols_per_image_on_air": k + ovh_img,
            # cbr_with_overhead = cbr * overhead_factor, for callers that know the image size
            "overhead_factor": (k + ovh_img) / k,
            "samples_sent": int(len(plan.samples)), "samples_received": int(len(rx)),
            "detect_candidates": dem.candidates, "rejected": dem.rejected[:20], **info,
            "frame_ids": frame_ids, "dc": dc_est,
            "link_config": self.cfg.to_dict(),
        }
        hh, ww = plan.meta.image_size
        if hh and ww:
            extras["cbr"] = k / (3.0 * hh * ww)
            extras["cbr_with_overhead"] = (k + ovh_img) / (3.0 * hh * ww)
        return ChannelResult(
            y=torch.from_numpy(y.astype(np.complex64)),
            h=None if h_out is None else torch.from_numpy(np.asarray(h_out).astype(np.complex64)),
            noise_var=torch.from_numpy(nv.astype(np.float32)),
            snr_db=torch.from_numpy(snr.astype(np.float32)),
            csi_source="estimated", mask=torch.from_numpy(mask), extras=extras)
