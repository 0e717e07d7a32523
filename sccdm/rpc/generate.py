"""Generate the Python gRPC stubs in this folder from ``proto/sccdm/v1/sccdm.proto``.

Run ``python -m sccdm.rpc.generate`` after editing the .proto (and commit the
result); ``--check`` exits 1 when the committed stubs differ from a fresh
generation. The stubs are committed so nothing at run time needs grpc_tools.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_ROOT = HERE.parents[1] / "proto"
PROTO = "sccdm/v1/sccdm.proto"
OUTPUTS = ("sccdm_pb2.py", "sccdm_pb2.pyi", "sccdm_pb2_grpc.py")


def generate(out_dir: Path) -> dict[str, str]:
    """Run protoc into a temporary folder; return {file name: text} for :data:`OUTPUTS`."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        rc = protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={tmp}",
                          f"--pyi_out={tmp}", f"--grpc_python_out={tmp}", str(PROTO_ROOT / PROTO)])
        if rc != 0:
            raise RuntimeError(f"protoc failed with exit code {rc}")
        texts = {}
        for name in OUTPUTS:
            text = (Path(tmp) / "sccdm" / "v1" / name).read_text()
            # protoc writes absolute imports of the proto package path; the stubs live in sccdm.rpc
            text = re.sub(r"^from sccdm\.v1 import sccdm_pb2 as", "from . import sccdm_pb2 as", text, flags=re.M)
            texts[name] = text
    out_dir.mkdir(parents=True, exist_ok=True)
    return texts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args(argv)
    texts = generate(args.out)
    stale = [n for n, t in texts.items() if not (args.out / n).exists() or (args.out / n).read_text() != t]
    if args.check:
        if stale:
            print(f"stale generated stubs: {', '.join(stale)}; run python -m sccdm.rpc.generate", file=sys.stderr)
            return 1
        print("generated stubs are up to date")
        return 0
    for n, t in texts.items():
        (args.out / n).write_text(t)
    print(f"wrote {', '.join(texts)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
