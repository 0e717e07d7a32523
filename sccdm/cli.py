"""The ``sccdm`` command: train, eval, stack, send."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmds = {
        "train": "sccdm.train",
        "eval": "sccdm.evaluate",
        "stack": "sccdm.stack",
        "send": "sccdm.send",
    }
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in cmds:
        print("usage: sccdm {train,eval,stack,send} ...\n\n"
              "  train   train a model stage (codec, deepjscc, refine1, refine2), or all of them: train recipe\n"
              "  eval    evaluate schemes over a channel and SNRs, print a table, write JSON\n"
              "  stack   run the networked testbed (transmitter, channel, receiver, gateway)\n"
              "  send    send an image through the gateway and print the report", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    import importlib
    # `train recipe` drives the train stages, so it is dispatched here rather than from inside sccdm.train
    name, rest = (("sccdm.recipe", argv[2:]) if argv[:2] == ["train", "recipe"] else (cmds[argv[0]], argv[1:]))
    return int(importlib.import_module(name).main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
