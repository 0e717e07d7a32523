"""Cross-language contract (issue 11): a Node.js client that knows only proto/sccdm/v1/sccdm.proto
(tests/node/client.mjs: @grpc/grpc-js + @grpc/proto-loader from npm, no Python-generated code) runs
Encode -> Transmit -> Decode against the real stack, gets exactly what the Python client gets, and
its bad inputs are answered INVALID_ARGUMENT with a message."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert

NODE_DIR = Path(__file__).resolve().parent / "node"
T = 60
# The good path of tests/node/client.mjs; keep the two in step.
SIZE, SNR_DB, SEED = 32, 10.0, 18446744073709551557
BAD_INPUTS = ("encode_short_payload", "transmit_snr_nan", "transmit_unknown_kind")


def node_image(h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """The client's image, uint8 [h, w, 3]: pixel (y, x, c) = (7y + 3x + 85c) mod 256 (testImage in client.mjs)."""
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    return ((7 * y + 3 * x + 85 * c) % 256).astype(np.uint8)


def deps_installed() -> bool:
    """npm ci leaves node_modules/.package-lock.json; older than the committed lockfile = stale."""
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    return marker.exists() and marker.stat().st_mtime >= (NODE_DIR / "package-lock.json").stat().st_mtime


def install_node_deps() -> None:
    """Run `npm ci` when node_modules is missing or stale.

    .ci/run installs the deps in CI; doing it here as well means a developer who runs only this test
    (or scripts/test.sh) needs no extra step. The file lock keeps two pytest runs sharing this tree
    from running npm ci (which deletes node_modules first) over each other.
    """
    with open(NODE_DIR / ".npm-ci.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if deps_installed():
            return
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("node is installed but npm is not: cannot install tests/node's dependencies (npm ci)")
        # the same command as .ci/run; no install scripts: none of the deps needs one (protobufjs' only checks its CLI)
        r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=NODE_DIR,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"npm ci in tests/node failed:\n{r.stdout}\n{r.stderr}"


# Session scope, like `stack`: pytest sets up wider-scoped fixtures first, so a module-scoped one would
# start the whole stack before finding out that there is no node to skip for.
@pytest.fixture(scope="session")
def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.skip("Node.js is not installed (no `node` on PATH): the cross-language client cannot run")
    install_node_deps()
    return exe


@pytest.fixture(scope="module")
def node_report(node, stack) -> dict:
    """Run the Node client once against the stack; its JSON report."""
    addrs = [stack.addr(n) for n in ("transmitter", "channel", "receiver")]
    r = subprocess.run([node, str(NODE_DIR / "client.mjs"), *addrs], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"the Node client failed (exit {r.returncode}):\n{r.stderr}\n{r.stdout}"
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def python_run(stubs) -> tuple[pb.SymbolFrame, pb.ReceivedFrame, pb.DecodeResponse]:
    """The same good path through the Python stubs."""
    image = convert.tensor_to_proto(torch.from_numpy(node_image()))
    frame = stubs["transmitter"].Encode(pb.EncodeRequest(tensor=image, snr_db=SNR_DB), timeout=T)
    params = pb.ChannelParams(kind="awgn", snr_db=SNR_DB, seed=SEED)
    received = stubs["channel"].Transmit(pb.TransmitRequest(frame=frame, channel=params), timeout=T)
    decoded = stubs["receiver"].Decode(pb.DecodeRequest(frame=received, want_png=True), timeout=T)
    return frame, received, decoded


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_node_client_decodes_a_png_of_the_image_size(node_report):
    good = node_report["good"]
    assert good["png_count"] == 1 and good["png_magic_ok"], good
    png = base64.b64decode(good["png_base64"])
    assert len(png) == good["png_bytes"] > 0
    assert pixels(png).shape == (SIZE, SIZE, 3)
    assert good["model"] == good["decode_model"] == "sc-cdm-cpu"      # the stack's default model, both ends
    assert good["channel_seed"] == str(SEED)                             # all 64 bits survived JavaScript


def test_node_client_sends_as_many_symbols_as_the_python_client(node_report, python_run):
    good, (frame, _, _) = node_report["good"], python_run
    k = frame.info.num_symbols
    assert k == frame.symbols.shape[1] == 256                            # proto: 32 * 4 * 4 / 2 for a 32x32 image
    assert int(good["num_symbols"]) == k and good["symbols_shape"] == ["1", str(k)]
    assert good["latent_shape"] == [str(d) for d in frame.info.latent_shape]
    # same image bytes in, same symbols out: the JS tensor layout is the one the proto documents
    assert good["symbols_sha256"] == hashlib.sha256(frame.symbols.data).hexdigest()


def test_node_client_image_is_bit_identical_to_the_python_client(node_report, python_run):
    _, received, decoded = python_run
    assert list(received.noise_var) == node_report["good"]["noise_var"]
    node_png = base64.b64decode(node_report["good"]["png_base64"])
    diff = np.abs(pixels(node_png).astype(int) - pixels(decoded.png[0]).astype(int))
    assert not diff.any(), f"Node's image differs from Python's in {np.count_nonzero(diff)} values, by <= {diff.max()}"
    assert node_png == decoded.png[0]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_node_client_bad_input_is_invalid_argument(node_report, case):
    answer = node_report["bad"][case]
    assert answer is not None, f"{case} was accepted"
    assert (answer["code"], answer["status"]) == (3, "INVALID_ARGUMENT"), answer
    assert answer["message"].strip(), answer
