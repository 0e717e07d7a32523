"""``sigmf``: record every burst stream of a radio backend as SigMF, or replay recordings.

Record mode wraps another link backend (``emulated_link`` or ``zmq``): each
transmission writes two SigMF recordings, ``NNNNNN-tx`` (what was sent) and
``NNNNNN-rx`` (what came back), as ``.sigmf-meta`` + ``.sigmf-data`` (cf32_le),
with one annotation per frame and, under the ``sccdm`` extension namespace,
everything needed to replay it (the link configuration, the frame plan, the
channel configuration). Replay mode feeds the recorded rx streams, in order
(skipping recordings whose batch shape differs from the call's), through the
receiver side: same samples in, same symbols out.

Environment:

* ``SCCDM_SIGMF_DIR`` - the folder of recordings (required).
* ``SCCDM_SIGMF_MODE`` - ``record`` (default) or ``replay``.
* ``SCCDM_SIGMF_INNER`` - the backend to record (default ``emulated_link``).
* ``SCCDM_LINK_SAMPLE_RATE`` - the nominal sample rate written to the
  recordings in Hz (default 1e6; the link itself is rate-agnostic).
"""
from __future__ import annotations

import datetime
import os
import threading
from pathlib import Path

import numpy as np
from sigmf import SigMFFile, sigmffile

from . import get_backend, register
from ..link.backend import LinkBackend
from ..link.framing import LinkConfig, layout
from ..link.session import LinkSession, TxPlan

__all__ = ["SigmfBackend", "write_recording", "read_recording"]

EXTENSION = {"name": "sccdm", "version": "1.0.0", "optional": True}


def write_recording(base: Path, samples: np.ndarray, info: dict, annotations: list[dict], sample_rate: float,
                    description: str) -> Path:
    """Write base.sigmf-data (cf32_le) + base.sigmf-meta; info goes to the global object as sccdm:*.

    samples: complex [n]; annotations: [{"start", "count", "label", ...sccdm fields}]. Returns the meta path.
    """
    data = Path(str(base) + ".sigmf-data")
    np.asarray(samples).astype("<c8").tofile(data)
    glob = {"core:datatype": "cf32_le", "core:sample_rate": float(sample_rate), "core:description": description,
            "core:recorder": "sccdm", "core:extensions": [EXTENSION]}
    glob.update({f"sccdm:{k}": v for k, v in info.items()})
    meta = SigMFFile(data_file=str(data), global_info=glob)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    meta.add_capture(0, metadata={"core:datetime": now})
    for a in annotations:
        extra = {f"sccdm:{k}": v for k, v in a.items() if k not in ("start", "count", "label")}
        meta.add_annotation(int(a["start"]), int(a["count"]), metadata={"core:label": a["label"], **extra})
    meta.validate()
    meta.tofile(str(base))
    return Path(str(base) + ".sigmf-meta")


def read_recording(base: Path) -> tuple[np.ndarray, dict]:
    """-> (samples complex64 [n], global metadata dict); validates the recording first."""
    rec = sigmffile.fromfile(str(base))
    rec.validate()
    return np.asarray(rec.read_samples(), dtype=np.complex64), rec.get_global_info()


class SigmfBackend(LinkBackend):
    name = "sigmf"

    def __init__(self, directory: str | None = None, mode: str | None = None, inner: str | None = None):
        d = directory or os.environ.get("SCCDM_SIGMF_DIR")
        if not d:
            raise ValueError("the sigmf backend needs SCCDM_SIGMF_DIR (a folder for the recordings)")
        self.dir = Path(d)
        self.mode = (mode or os.environ.get("SCCDM_SIGMF_MODE", "record")).lower()
        if self.mode not in ("record", "replay"):
            raise ValueError(f"SCCDM_SIGMF_MODE must be 'record' or 'replay', got {self.mode!r}")
        self.sample_rate = float(os.environ.get("SCCDM_LINK_SAMPLE_RATE", "1e6"))
        self._lock = threading.Lock()
        self._replay_pos = 0
        if self.mode == "record":
            name = inner or os.environ.get("SCCDM_SIGMF_INNER", "emulated_link")
            if name == "sigmf":
                raise ValueError("SCCDM_SIGMF_INNER cannot be sigmf itself")
            self.inner = get_backend(name)
            if not isinstance(self.inner, LinkBackend):
                raise ValueError(f"backend {name!r} has no sample stream to record; use emulated_link or zmq")
            self.session = self.inner.session
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            if not self.dir.is_dir():
                raise ValueError(f"SCCDM_SIGMF_DIR {self.dir} does not exist: nothing to replay")
            self.inner = None
            self.session = None

    def recordings(self) -> list[Path]:
        """Bases (without suffix) of the rx recordings, in order."""
        return sorted(Path(str(p)[: -len("-rx.sigmf-meta")]) for p in self.dir.glob("*-rx.sigmf-meta"))

    def check(self, cfg) -> None:
        if self.inner is not None:
            self.inner.check(cfg)
        else:
            cfg.validate()

    def transmit(self, symbols, cfg, generator=None, meta=None):
        self.check(cfg)
        if self.mode == "replay":
            return self._replay(symbols, cfg, generator)
        plan = self.session.plan(symbols, meta)
        rx = self.inner.channel_stream(plan, cfg, generator)
        res = self.inner.finish(rx, plan, cfg, generator)
        with self._lock:
            idx = len(list(self.dir.glob("*-rx.sigmf-meta")))
            base = self.dir / f"{idx:06d}"
            info = {"plan": plan.describe(), "link": self.session.cfg.to_dict(), "channel": cfg.to_dict(),
                    "backend": self.inner.name}
            sps = self.session.cfg.sps
            ann_tx = [{"start": s, "count": layout(self.session.cfg, n * plan.row_k).total * sps,
                       "label": f"frame {(plan.first_id + j) & 0xFFFF}", "frame_id": (plan.first_id + j) & 0xFFFF,
                       "images": n} for j, ((_, n), s) in enumerate(zip(plan.frames, plan.starts))]
            ex = res.extras
            ann_rx = [{"start": max(int(st), 0), "count": ann_tx[(fid - plan.first_id) & 0xFFFF]["count"],
                       "label": f"frame {fid}", "frame_id": fid, "cfo": cfo, "eps": eps, "snr_in_db": snr}
                      for fid, st, cfo, eps, snr in zip(ex.get("frame_ids", []), ex["start"], ex["cfo"], ex["eps"],
                                                        ex["snr_in_db"])]
            write_recording(Path(str(base) + "-tx"), plan.samples, {**info, "role": "tx"}, ann_tx,
                            self.sample_rate, "SC-CDM link: transmitted burst stream")
            write_recording(Path(str(base) + "-rx"), rx, {**info, "role": "rx"}, ann_rx, self.sample_rate,
                            f"SC-CDM link: received burst stream ({self.inner.name})")
        res.extras["recording"] = str(base)
        return res

    def _replay(self, symbols, cfg, generator):
        recs = self.recordings()
        if not recs:
            raise ValueError(f"no *-rx.sigmf-meta recordings in {self.dir}")
        want = tuple(symbols.shape)
        with self._lock:
            # the next recording (in order, wrapping round) that holds a batch of this shape
            for step in range(len(recs)):
                base = recs[(self._replay_pos + step) % len(recs)]
                rx, glob = read_recording(Path(str(base) + "-rx"))
                d = glob["sccdm:plan"]
                if (d["batch"], d["k"]) == want:
                    self._replay_pos += step + 1
                    break
            else:
                raise ValueError(f"no recording in {self.dir} holds a batch of {want[0]} x {want[1]} symbols")
        tx, _ = read_recording(Path(str(base) + "-tx"))
        plan = TxPlan.from_description(d, tx)
        session = LinkSession(LinkConfig(**glob["sccdm:link"]))
        res = session.receive(rx, plan, cfg, generator, source="sigmf-replay")
        res.extras["recording"] = str(base)
        return res


register("sigmf", SigmfBackend)
