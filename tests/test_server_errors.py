"""How service failures map to gRPC status codes (one place: sccdm.serving.server._classify)."""
import grpc

from sccdm.link.session import LinkTimeout, NoBurstError
from sccdm.serving.server import _classify


def test_link_failures_are_unavailable_not_internal():
    for e in (NoBurstError("no burst found"), LinkTimeout("flowgraph did not answer in 2000 ms")):
        code, msg = _classify(e)
        assert code == grpc.StatusCode.UNAVAILABLE and "radio link" in msg


def test_validation_is_invalid_argument_and_bugs_are_internal():
    assert _classify(ValueError("snr_db must be in [-20, 40]"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, msg = _classify(KeyError("x"))
    assert code == grpc.StatusCode.INTERNAL and "Traceback" not in msg
