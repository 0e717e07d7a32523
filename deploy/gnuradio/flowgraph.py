#!/usr/bin/python3
"""GNU Radio channel for the SC-CDM link: ZMQ PULL source -> channel_model -> ZMQ PUSH sink.

With ``--stream-rate R`` the source streams continuously at R samples/s, zeros
between bursts, as an SDR's receive side does; ``--iq-mag-db / --iq-phase-deg``
(channels.iqbal_gen, receiver model) and ``--dc`` (add_const) add the receiver
front-end's IQ imbalance and DC offset after the channel.

Runs under Debian's /usr/bin/python3 (GNU Radio 3.10 with Debian's NumPy 1.x),
never in the project's virtualenv. The project's ``zmq`` backend binds a PUSH
socket (SCCDM_ZMQ_TX) that this flowgraph's PULL source connects to, and
connects a PULL socket to this flowgraph's PUSH sink (SCCDM_ZMQ_RX, bound here).
Samples are raw complex64 (gr_complex) on both sockets, 1 item = 8 bytes.

Every option also reads an environment variable (SCCDM_GR_<OPTION>), the
command line wins. SNR convention: the link sends unit energy per symbol, so
``--snr-db S`` sets noise_voltage = 10 ** (-S / 20) and S is the SNR per symbol
after the matched filter (``--noise-voltage`` overrides it).

    /usr/bin/python3 deploy/gnuradio/flowgraph.py --snr-db 10 --freq-offset 1e-3 \\
        --epsilon 1.0001 --taps "0.9,0.3j,0.1" --seed 7

Prints one line ``READY <json>`` on stdout once the flowgraph runs; stops
cleanly on SIGTERM / SIGINT.
"""
import argparse
import json
import os
import signal
import sys
import threading


def _env(name, default):
    return os.environ.get("SCCDM_GR_" + name, default)


def parse_taps(text):
    """'1, 0.3j, 0.1-0.05j' -> list of complex."""
    try:
        taps = [complex(t.strip().replace(" ", "")) for t in text.split(",") if t.strip()]
    except ValueError:
        raise SystemExit("--taps must be comma-separated complex numbers, e.g. '1,0.3j,0.1', got %r" % text)
    if not taps:
        raise SystemExit("--taps is empty")
    return taps


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tx", default=_env("TX", os.environ.get("SCCDM_ZMQ_TX", "tcp://127.0.0.1:5555")),
                   help="address of the project's PUSH socket to pull samples from (connect)")
    p.add_argument("--rx", default=_env("RX", os.environ.get("SCCDM_ZMQ_RX", "tcp://127.0.0.1:5556")),
                   help="address to bind the PUSH sink on (the project's PULL connects here)")
    p.add_argument("--snr-db", type=float, default=float(_env("SNR_DB", "20")),
                   help="SNR per symbol in dB (noise_voltage = 10^(-snr/20))")
    p.add_argument("--noise-voltage", type=float, default=(float(_env("NOISE_VOLTAGE", "-1"))),
                   help="noise std per complex sample; overrides --snr-db when >= 0")
    p.add_argument("--freq-offset", type=float, default=float(_env("FREQ_OFFSET", "0")),
                   help="frequency offset, cycles per sample")
    p.add_argument("--epsilon", type=float, default=float(_env("EPSILON", "1.0")),
                   help="sample clock ratio (1.0 = no offset)")
    p.add_argument("--taps", default=_env("TAPS", "1"), help="multipath FIR taps, comma-separated complex")
    p.add_argument("--seed", type=int, default=int(_env("SEED", "0")), help="noise seed")
    p.add_argument("--timeout-ms", type=int, default=int(_env("TIMEOUT_MS", "100")), help="ZMQ poll timeout")
    p.add_argument("--stream-rate", type=float, default=float(_env("STREAM_RATE", "0")),
                   help="> 0: stream continuously at this many samples/s, zeros between bursts (as an SDR "
                        "delivers; the channel's noise rides on them); 0: answer bursts only")
    p.add_argument("--iq-mag-db", type=float, default=float(_env("IQ_MAG_DB", "0")),
                   help="receiver IQ amplitude imbalance, dB (channels.iqbal_gen, RX model)")
    p.add_argument("--iq-phase-deg", type=float, default=float(_env("IQ_PHASE_DEG", "0")),
                   help="receiver IQ phase imbalance, degrees")
    p.add_argument("--fading-fdts", type=float, default=float(_env("FADING_FDTS", "0")),
                   help="> 0: flat Rayleigh fading with this normalised Doppler fD*Ts per sample "
                        "(channels.fading_model, 8 sinusoids, no line of sight), before the channel model")
    p.add_argument("--dc", default=_env("DC", "0"), help="DC offset added at the receiver, complex (e.g. 0.2 or 0.1+0.1j)")
    return p


def stream_source(address, timeout_ms):
    """A source block that never stops: the samples PULLed from ``address`` when there are any, zeros otherwise."""
    import collections

    import numpy as np
    import zmq
    from gnuradio import gr

    class StreamSource(gr.sync_block):
        def __init__(self):
            gr.sync_block.__init__(self, name="sccdm_stream_source", in_sig=None, out_sig=[np.complex64])
            self.sock = zmq.Context.instance().socket(zmq.PULL)
            self.sock.setsockopt(zmq.LINGER, 0)
            self.sock.connect(address)
            self.queue = collections.deque()

        def work(self, input_items, output_items):
            out = output_items[0]
            while self.sock.poll(0):
                self.queue.append(np.frombuffer(self.sock.recv(), dtype=np.complex64))
            n = 0
            while self.queue and n < len(out):
                head = self.queue.popleft()
                take = min(len(head), len(out) - n)
                out[n:n + take] = head[:take]
                if take < len(head):
                    self.queue.appendleft(head[take:])
                n += take
            out[n:] = 0
            return len(out)

    return StreamSource()


def main(argv=None):
    args = build_parser().parse_args(argv)
    from gnuradio import channels, gr, zeromq

    nv = args.noise_voltage if args.noise_voltage >= 0 else 10 ** (-args.snr_db / 20.0)
    taps = parse_taps(args.taps)
    tb = gr.top_block("sccdm_channel")
    try:
        dc = complex(args.dc.replace(" ", ""))
    except ValueError:
        raise SystemExit("--dc must be a complex number, e.g. 0.2 or 0.1+0.1j, got %r" % args.dc)
    chain = []
    if args.stream_rate > 0:
        from gnuradio import blocks
        chain += [stream_source(args.tx, args.timeout_ms), blocks.throttle(gr.sizeof_gr_complex, args.stream_rate)]
    else:
        chain.append(zeromq.pull_source(gr.sizeof_gr_complex, 1, args.tx, args.timeout_ms, False, -1))
    if args.fading_fdts > 0:
        chain.append(channels.fading_model(8, args.fading_fdts, False, 4.0, args.seed + 1))
    chain.append(channels.channel_model(noise_voltage=nv, frequency_offset=args.freq_offset, epsilon=args.epsilon,
                                        taps=taps, noise_seed=args.seed, block_tags=False))
    # receiver front-end impairments come after the channel and its noise, as in a radio's mixer / ADC
    if args.iq_mag_db or args.iq_phase_deg:
        chain.append(channels.iqbal_gen(args.iq_mag_db, args.iq_phase_deg, 1))
    if dc:
        from gnuradio import blocks
        chain.append(blocks.add_const_cc(dc))
    chain.append(zeromq.push_sink(gr.sizeof_gr_complex, 1, args.rx, args.timeout_ms, False, -1))
    tb.connect(*chain)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tb.start()
    info = {"tx": args.tx, "rx": args.rx, "noise_voltage": nv, "freq_offset": args.freq_offset,
            "epsilon": args.epsilon, "taps": [[t.real, t.imag] for t in taps], "seed": args.seed,
            "stream_rate": args.stream_rate, "iq_mag_db": args.iq_mag_db, "iq_phase_deg": args.iq_phase_deg,
            "dc": [dc.real, dc.imag], "fading_fdts": args.fading_fdts,
            "gnuradio": gr.version()}
    print("READY " + json.dumps(info), flush=True)
    stop.wait()
    tb.stop()
    tb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
