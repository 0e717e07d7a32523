"""GNU Radio in the loop: deploy/gnuradio/flowgraph.py under Debian's /usr/bin/python3 <-> the zmq backend.

Real processes: the flowgraph (ZMQ PULL -> channels.channel_model -> ZMQ PUSH)
and this test's zmq backend, which frames the symbols, sends the samples and
runs the receiver side (detection, timing, CFO, clock offset, estimated CSI/SNR).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from bounded import run_bounded

REPO = Path(__file__).resolve().parents[1]
FLOWGRAPH = REPO / "deploy" / "gnuradio" / "flowgraph.py"
SYS_PY = "/usr/bin/python3"


def _have_gnuradio() -> str | None:
    if not os.path.exists(SYS_PY):
        return f"{SYS_PY} does not exist"
    r = subprocess.run([SYS_PY, "-c", "from gnuradio import gr, channels, zeromq"], capture_output=True, text=True)
    return None if r.returncode == 0 else f"{SYS_PY} cannot import gnuradio: {r.stderr.strip().splitlines()[-1:]}"


_WHY = _have_gnuradio()
pytestmark = [pytest.mark.gnuradio, pytest.mark.skipif(_WHY is not None, reason=_WHY or "")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Flowgraph:
    """The flowgraph as a child process, with the zmq backend wired to it."""

    def __init__(self, **opts):
        from sccdm.backends.zmq import ZmqBackend

        self.tx, self.rx = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
        args = [SYS_PY, str(FLOWGRAPH), "--tx", self.tx, "--rx", self.rx]
        for k, v in opts.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.proc.kill()
            raise RuntimeError(f"flowgraph did not start: {line!r} {self.proc.stderr.read()[-2000:]}")
        self.info = json.loads(line[6:])
        self.backend = ZmqBackend(self.tx, self.rx, timeout_ms=10000)

    def close(self):
        self.backend.close()
        self.proc.terminate()
        try:
            assert self.proc.wait(10) == 0
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def flowgraph():
    made = []

    def start(**opts):
        fg = Flowgraph(**opts)
        made.append(fg)
        return fg

    yield start
    for fg in made:
        fg.close()


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_snr_estimate_through_gnuradio(flowgraph, snr_db):
    from sccdm.channels import ChannelConfig

    fg = flowgraph(snr_db=snr_db, freq_offset=1e-3, epsilon=1.0001, seed=11)
    g = torch.Generator().manual_seed(0)
    z = (torch.complex(torch.randn(4, 256, generator=g), torch.randn(4, 256, generator=g)) * 0.7071).to(torch.complex64)
    res = fg.backend.transmit(z, ChannelConfig(kind="awgn", snr_db=snr_db), None)
    assert res.extras["frames_received"] == 4
    assert np.all(np.abs(np.array(res.extras["snr_in_db"]) - snr_db) <= 1.0), res.extras["snr_in_db"]
    assert torch.all((res.snr_db - snr_db).abs() <= 1.0), res.snr_db
    assert abs(np.mean(res.extras["cfo"]) - 1e-3) < 3e-5
    # GNU Radio's epsilon = 1.0001 stretches time by 1e-4: the receiver measures it. It times the
    # 32-symbol postamble against the frame start about 580 symbols earlier: at 0 dB that timing alone
    # jitters by about 0.07 symbols rms (Cramer-Rao, RRC 0.35), 1.1e-4 in eps per frame, 5.6e-5 over
    # these 4 frames - the bound is 3 of those at 0 dB (a drift of 1e-4 moves a frame's last symbol
    # by 0.06 symbols: what it costs is far below the noise there)
    tol = 5e-5 if snr_db >= 10 else 1.7e-4
    assert abs(abs(np.mean(res.extras["eps"])) - 1e-4) < tol, res.extras["eps"]


def _png(h, w):
    import io
    from PIL import Image
    from skimage import data as skd
    arr = np.ascontiguousarray(skd.astronaut()[100:100 + h, 180:180 + w])
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue(), arr


def _test_images(n):
    from sccdm.data import load_split
    data = REPO / "data"
    if (data / "test").is_dir():
        arr = load_split(str(data), "test", n)
        return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0
    from skimage import data as skd
    from skimage.transform import resize
    imgs = [skd.astronaut(), skd.chelsea(), skd.coffee(), skd.rocket()]
    return torch.stack([torch.from_numpy(resize(imgs[i % 4], (32, 32))).permute(2, 0, 1).float() for i in range(n)])


def test_image_through_gnuradio_within_1_5db_of_perfect_csi(flowgraph):
    """10 dB, CFO 1e-3, epsilon 1.0001, 3 taps -> estimated CSI and SNR -> image; vs emulated AWGN, perfect CSI."""
    from sccdm import pipeline, zoo
    from sccdm.channels import ChannelConfig, equalize
    from sccdm.link import LinkMeta
    from sccdm.metrics import psnr

    taps = np.array([0.9, 0.3j, 0.1])
    taps = taps / np.linalg.norm(taps)          # unit energy: the channel's SNR stays 10 dB
    fg = flowgraph(snr_db=10, freq_offset=1e-3, epsilon=1.0001, seed=5,
                   taps=",".join(repr(complex(t)).strip("()") for t in taps))
    model = zoo.load("sc-cdm-cpu")
    x = _test_images(16)
    frame = pipeline.encode(model, x, 10.0)
    cfg = ChannelConfig(kind="awgn", snr_db=10)
    res = fg.backend.transmit(frame.symbols, cfg, None, meta=LinkMeta("sc-cdm-cpu", frame.latent_shape,
                                                                      frame.image_size))
    assert res.extras["frames_received"] == 16 and res.csi_source == "estimated"
    z_hat, _ = equalize(res.y, res.h, res.noise_var, "none", res.mask)
    out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, res.snr_db)
    p_radio = psnr(out["x_hat"].clamp(0, 1), x).mean().item()
    ref = pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(5))
    p_ideal = psnr(ref["x_hat"].clamp(0, 1), x).mean().item()
    sym_err = 10 * np.log10(((z_hat - frame.symbols).abs() ** 2).mean().item())
    print(f"GNU Radio: PSNR {p_radio:.2f} dB, symbol error {sym_err:.2f} dB, est SNR "
          f"{res.snr_db.mean():.2f} dB; emulated perfect CSI: {p_ideal:.2f} dB")
    assert abs(p_radio - p_ideal) <= 1.5
    assert sym_err < -8.5            # 10 dB channel: the link itself loses at most 1.5 dB


def test_gateway_through_gnuradio(flowgraph, tmp_path):
    """The whole stack with SCCDM_CHANNEL_BACKEND=zmq: gateway -> transmitter -> channel (zmq) -> GNU Radio
    -> channel (receiver side of the link) -> receiver; the report carries the link's estimated SNR."""
    import httpx
    from sccdm import pipeline, zoo
    from sccdm.channels import ChannelConfig
    from sccdm.metrics import psnr
    from sccdm.stack import Stack, StackError

    fg = flowgraph(snr_db=10, freq_offset=1e-3, epsilon=1.0001, seed=9, taps="0.95,0.3j,0.1")
    env = {"SCCDM_DEVICE": "cpu", "SCCDM_CHANNEL_BACKEND": "zmq", "SCCDM_ZMQ_TX": fg.tx, "SCCDM_ZMQ_RX": fg.rx,
           "SCCDM_ZMQ_TIMEOUT_MS": "10000", "SCCDM_REQUEST_TIMEOUT_S": "60"}
    stack = Stack(gateway_port=0, env=env, log_dir=tmp_path / "logs", metrics=False)
    try:
        try:
            stack.start(timeout=240)
        except StackError as e:
            pytest.fail(f"the stack did not start: {e}\n{stack.log_tail('channel')}")
        data, arr = _png(32, 32)
        with httpx.Client(base_url=stack.gateway_url, timeout=60) as http:
            r = http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                          data={"channel": "awgn", "snr_db": "10", "refine": "false", "seed": "1"})
        assert r.status_code == 200, r.text
        rep = r.json()
    finally:
        stack.stop()
    assert rep["backend"] == "zmq" and rep["csi_source"] == "estimated"
    assert abs(rep["est_snr_db"] - 10) < 1.5, rep["est_snr_db"]
    # the on-air cost with the framing overhead: more channel uses than the codec's k, the CBR to match
    air = rep["on_air"]
    assert air["channel_uses"] > rep["channel_uses"] and air["overhead_factor"] > 1
    assert abs(air["cbr"] - air["channel_uses"] / (3 * 32 * 32)) < 1e-9
    model = zoo.load("sc-cdm-cpu")
    x = torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255.0
    ref = pipeline.simulate(model, x, ChannelConfig(kind="awgn", snr_db=10), torch.Generator().manual_seed(1))
    p_ideal = psnr(ref["x_hat"].clamp(0, 1), x).item()
    assert abs(rep["psnr_db"] - p_ideal) <= 1.5, (rep["psnr_db"], p_ideal)


# ---- a source that never stops (issue 12): zeros or noise between bursts, as an SDR delivers ----------------

@pytest.mark.parametrize("snr_db", [10.0, 60.0])      # 60 dB: practically zeros between bursts
def test_continuous_stream_no_burst_times_out_then_burst_decodes(flowgraph, snr_db):
    """A streaming flowgraph (throttled source, zeros between bursts + the channel's noise): a transmission that
    carries no burst times out within 10 % of the deadline, and the same backend then decodes a real one."""
    from dataclasses import replace

    from sccdm.channels import ChannelConfig
    from sccdm.link import LinkTimeout

    fg = flowgraph(snr_db=snr_db, freq_offset=1e-3, stream_rate=250000, seed=4)
    fg.backend.timeout_ms = deadline_ms = 1500
    cfg = ChannelConfig(kind="awgn", snr_db=10)
    g = torch.Generator().manual_seed(1)
    z = (torch.complex(torch.randn(4, 256, generator=g), torch.randn(4, 256, generator=g)) * 0.7071).to(torch.complex64)
    plan = fg.backend.session.plan(z)
    silent = replace(plan, samples=np.zeros_like(plan.samples))
    box, took = run_bounded(lambda: fg.backend.channel_stream(silent, cfg, None), 3 * deadline_ms / 1000)
    assert isinstance(box.get("error"), LinkTimeout), box
    assert "no burst" in str(box["error"])
    assert 0.95 * deadline_ms / 1000 <= took <= 1.1 * deadline_ms / 1000, took
    # the worker is free: the next transmission takes the lock and comes back well before its deadline
    box, took = run_bounded(lambda: fg.backend.transmit(z, cfg, None), 3 * deadline_ms / 1000)
    assert "error" not in box, box
    res = box["value"]
    assert res.extras["frames_received"] == 4 and took < deadline_ms / 1000, (res.extras["frames_received"], took)
    # the stream keeps flowing around the burst: more samples came back than the burst alone
    assert res.extras["samples_received"] > res.extras["samples_sent"]
    if snr_db == 10.0:
        assert torch.all((res.snr_db - 10).abs() <= 1.0), res.snr_db
        assert abs(-10 * np.log10(((res.y - z).abs() ** 2).mean().item()) - 10) < 1.5


# ---- receiver front-end impairments with GNU Radio's own blocks (iqbal_gen, add_const) -------------------

def _psnr_through(fg, model, x, link=None):
    """PSNR (dB, mean over images) and the ChannelResult of x through the flowgraph, estimated CSI."""
    from sccdm import pipeline
    from sccdm.channels import ChannelConfig, equalize
    from sccdm.link import LinkMeta, LinkSession
    from sccdm.metrics import psnr

    if link is not None:
        fg.backend.session = LinkSession(link)
    frame = pipeline.encode(model, x, 10.0)
    res = fg.backend.transmit(frame.symbols, ChannelConfig(kind="awgn", snr_db=10), None,
                              meta=LinkMeta("sc-cdm-cpu", frame.latent_shape, frame.image_size))
    assert res.extras["frames_received"] == len(x), res.extras["rejected"]
    z_hat, _ = equalize(res.y, res.h, res.noise_var, "none", res.mask)
    out = pipeline.decode(model, z_hat, frame.latent_shape, frame.image_size, res.snr_db)
    return psnr(out["x_hat"].clamp(0, 1), x).mean().item(), res


def test_dc_and_iq_imbalance_through_gnuradio_within_0_3db(flowgraph):
    """10 dB, CFO 1e-3, iqbal_gen 1 dB / 5 deg and a 0.2 DC after the channel: with the receiver's front-end
    correction the images come within 0.3 dB of the same channel without the impairments (same noise seed);
    without it they lose more than 1 dB."""
    from sccdm import zoo
    from sccdm.link import LinkConfig

    model = zoo.load("sc-cdm-cpu")
    x = _test_images(16)
    common = dict(snr_db=10, freq_offset=1e-3, seed=5)
    p_clean, _ = _psnr_through(flowgraph(**common), model, x)
    fg = flowgraph(iq_mag_db=1, iq_phase_deg=5, dc="0.2", **common)
    p_fixed, res = _psnr_through(fg, model, x)
    p_raw, _ = _psnr_through(fg, model, x, LinkConfig(dc_remove=False, iq_correct=False))
    print(f"GNU Radio DC 0.2 + IQ 1 dB / 5 deg: clean {p_clean:.2f}, corrected {p_fixed:.2f}, uncorrected "
          f"{p_raw:.2f} dB; est SNR {res.snr_db.mean():.2f} dB")
    assert p_fixed >= p_clean - 0.3, (p_fixed, p_clean)
    assert p_raw < p_clean - 1.0, (p_raw, p_clean)
    assert torch.all((res.snr_db - 10).abs() <= 0.7), res.snr_db


def test_dc_and_iq_in_a_continuous_stream(flowgraph):
    """The streaming flowgraph with the front-end impairments: the gate finds the burst despite the DC on the
    idle stream, and the receiver corrects both."""
    from sccdm.channels import ChannelConfig

    fg = flowgraph(snr_db=10, freq_offset=1e-3, stream_rate=250000, seed=6, iq_mag_db=1, iq_phase_deg=5, dc="0.2")
    fg.backend.timeout_ms = 3000
    g = torch.Generator().manual_seed(2)
    z = (torch.complex(torch.randn(4, 256, generator=g), torch.randn(4, 256, generator=g)) * 0.7071).to(torch.complex64)
    res = fg.backend.transmit(z, ChannelConfig(kind="awgn", snr_db=10), None)
    assert res.extras["frames_received"] == 4
    # per-frame SNR estimates spread about +-0.5 dB on 4 short frames, impaired or not
    assert torch.all((res.snr_db - 10).abs() <= 1.0), res.snr_db
    assert abs(-10 * np.log10(((res.y - z).abs() ** 2).mean().item()) - 10) < 0.5


def test_whole_burst_comes_back_through_gnuradio(flowgraph):
    """64 one-image frames at 20 dB: every sample sent and most of its flush come back, and every frame decodes.
    The receive loop used to stop at two blocks whose power merely dipped with the frame structure: it read
    210816 of the 247032 samples GNU Radio returned, and frames 55 to 63 were lost unreceived.

    Not all of the flush: once the burst's length (and most of the flush) is in, the loop ends after 100 ms of
    silence, and a flowgraph stalled that long near the end holds back the rest (seen once in CI: 616 of the
    4096 flush samples). Before it may stop it waits for more than half the flush here (`need` in
    sccdm.backends.zmq)."""
    from sccdm.backends.zmq import FLUSH
    from sccdm.channels import ChannelConfig

    fg = flowgraph(snr_db=20, freq_offset=1e-3, seed=7)
    g = torch.Generator().manual_seed(4)
    z = (torch.complex(torch.randn(64, 256, generator=g), torch.randn(64, 256, generator=g)) * 0.7071
         ).to(torch.complex64)
    res = fg.backend.transmit(z, ChannelConfig(kind="awgn", snr_db=20), None)
    assert res.extras["samples_received"] >= res.extras["samples_sent"] + FLUSH // 2, res.extras["samples_received"]
    assert res.extras["lost_images"] == [], res.extras["link_status"]


def test_frames_lost_to_fading_are_reported_per_image(flowgraph):
    """channels.fading_model (fD*Ts 1e-4, issue 12's slow-Doppler case) at 5 dB loses a few frames (fewer than
    the receiver before Doppler tracking): each lost image is 'lost' in image_status, all-false in the mask and
    zero in y; the others are 'ok'. The whole burst comes back, so what is lost is lost to the fading: 1 of 32,
    frame 31, which lies in a fade 15 to 27 dB below the mean gain (block power of the same flowgraph and seed at
    60 dB); 0 of 32 at 10 dB. Before the receive loop waited for the whole burst it stopped in that fade, with
    the last 2 or 3 frames unreceived (it passed on 112640 or 116736 of the 121600 samples sent, depending on how
    the messages arrived), and reported 3 of 32."""
    from sccdm.backends.zmq import FLUSH
    from sccdm.channels import ChannelConfig

    fg = flowgraph(snr_db=5, freq_offset=1e-3, seed=7, fading_fdts=1e-4)
    g = torch.Generator().manual_seed(4)
    z = (torch.complex(torch.randn(32, 256, generator=g), torch.randn(32, 256, generator=g)) * 0.7071
         ).to(torch.complex64)
    res = fg.backend.transmit(z, ChannelConfig(kind="rayleigh", snr_db=5, csi="mmse"), None)
    # the burst's end and at least half its flush arrived: no frame is lost to truncation
    assert res.extras["samples_received"] >= res.extras["samples_sent"] + FLUSH // 2, res.extras["samples_received"]
    st, lost = res.extras["image_status"], res.extras["lost_images"]
    print(f"fading 1e-4, 5 dB: {len(lost)} of 32 lost; {res.extras['link_status']}")
    # 1 of 32 measured (frame 31, deep fade). The earlier 3 (with the header prediction) and 4 (before it)
    # included frames 29-31, cut off by the receive loop stopping early; 7 before the gain tracking.
    # The bound leaves room for receiver changes; the fade at the burst's end keeps at least one loss to report
    assert 1 <= len(lost) <= 6, res.extras["link_status"]
    assert [i for i, s in enumerate(st) if s == "lost"] == lost
    assert set(st) <= {"ok", "lost"}
    assert not res.mask[lost].any() and res.mask[[i for i in range(32) if i not in lost]].all()
    assert torch.all(res.y[lost] == 0)
    assert res.extras["link_status"].startswith(f"{len(lost)} of 32 images lost")


def test_fast_fading_through_gnuradio(flowgraph):
    """channels.fading_model at fD*Ts 1e-3 (issue 12's fast case: the gain turns within a frame), 10 dB, CFO
    1e-3: at most 3 of 32 frames lost (the goal: <= 10 %; 0 here, the receiver before the Doppler work lost 27),
    and the decoded images' symbols hold y = h z + n with the estimated h far better than with the gain held
    from the image start (-8 dB against +0.6 dB here)."""
    from sccdm.channels import ChannelConfig

    fg = flowgraph(snr_db=10, freq_offset=1e-3, seed=3, fading_fdts=1e-3)
    g = torch.Generator().manual_seed(5)
    z = (torch.complex(torch.randn(32, 256, generator=g), torch.randn(32, 256, generator=g)) * 0.7071
         ).to(torch.complex64)
    res = fg.backend.transmit(z, ChannelConfig(kind="rayleigh", snr_db=10, csi="mmse"), None)
    lost = res.extras["lost_images"]
    ok = [i for i in range(32) if i not in lost]
    err = ((res.y[ok] - res.h[ok] * z[ok]).abs() ** 2).mean(dim=1)
    held = ((res.y[ok] - res.h[ok][:, :1] * z[ok]).abs() ** 2).mean(dim=1)
    print(f"fading 1e-3, 10 dB: {len(lost)} of 32 lost; error {10 * np.log10(err.median().item()):.1f} dB, "
          f"gain held {10 * np.log10(held.median().item()):.1f} dB")
    assert len(lost) <= 3, res.extras["link_status"]
    assert err.median() < 0.5 * held.median(), (err.median(), held.median())
