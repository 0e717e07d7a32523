#!/usr/bin/python3
"""GNU Radio channel for the SC-CDM link: ZMQ PULL source -> channel_model -> ZMQ PUSH sink.

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
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from gnuradio import channels, gr, zeromq

    nv = args.noise_voltage if args.noise_voltage >= 0 else 10 ** (-args.snr_db / 20.0)
    taps = parse_taps(args.taps)
    tb = gr.top_block("sccdm_channel")
    src = zeromq.pull_source(gr.sizeof_gr_complex, 1, args.tx, args.timeout_ms, False, -1)
    chan = channels.channel_model(noise_voltage=nv, frequency_offset=args.freq_offset, epsilon=args.epsilon,
                                  taps=taps, noise_seed=args.seed, block_tags=False)
    sink = zeromq.push_sink(gr.sizeof_gr_complex, 1, args.rx, args.timeout_ms, False, -1)
    tb.connect(src, chan, sink)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tb.start()
    info = {"tx": args.tx, "rx": args.rx, "noise_voltage": nv, "freq_offset": args.freq_offset,
            "epsilon": args.epsilon, "taps": [[t.real, t.imag] for t in taps], "seed": args.seed,
            "gnuradio": gr.version()}
    print("READY " + json.dumps(info), flush=True)
    stop.wait()
    tb.stop()
    tb.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
