"""Bad input, each its own case: a clear 4xx / INVALID_ARGUMENT, and the next good request still works."""
import math
import struct
import zlib

import grpc
import pytest
import torch

from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert


@pytest.fixture
def still_works(http, stubs, make_png):
    """Runs after the test: a good request through the gateway succeeds, all services still SERVING."""
    yield
    data, _ = make_png(32, 32)
    r = http.post("/v1/transmit", files={"image": ("ok.png", data)}, data={"seed": "1"})
    assert r.status_code == 200, r.text
    assert http.get("/readyz").status_code == 200


def upload(http, payload, name="x.png", **form):
    return http.post("/v1/transmit", files={"image": (name, payload)}, data={k: str(v) for k, v in form.items()})


def png_header_only(w, h):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def good_frame(stubs, make_png):
    _, arr = make_png(32, 32)
    return stubs["transmitter"].Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)),
                                                        snr_db=10), timeout=30)


def rpc_error(fn, *a, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, timeout=30, **kw)
    return e.value


# ------------------------------------------------------------------ uploads through the gateway

def test_empty_upload(http, still_works):
    r = upload(http, b"")
    assert r.status_code == 400 and "empty" in r.json()["detail"]


def test_text_file(http, still_works):
    r = upload(http, b"hello, this is not an image\n" * 10, name="notes.txt")
    assert r.status_code == 422 and "not an image" in r.json()["detail"]


def test_truncated_png(http, make_png, still_works):
    data, _ = make_png(64, 64)
    r = upload(http, data[: len(data) // 2])
    assert r.status_code == 422 and "truncated" in r.json()["detail"]


def test_decompression_bomb_header(http, still_works):
    r = upload(http, png_header_only(30000, 30000))
    assert r.status_code == 413 and ("30000" in r.json()["detail"] or "bomb" in r.json()["detail"])


def test_image_over_pixel_limit(http, still_works):
    r = upload(http, png_header_only(1000, 1000))        # under PIL's bomb limit, over SCCDM_MAX_PIXELS
    assert r.status_code == 413 and "SCCDM_MAX_PIXELS" in r.json()["detail"]


def test_upload_over_size_limit(http, still_works):
    r = upload(http, b"\x89PNG" + b"\0" * (3 << 20))       # SCCDM_MAX_UPLOAD_MB is 2 in the test stack
    assert r.status_code == 413 and "SCCDM_MAX_UPLOAD_MB" in r.json()["detail"]


def test_missing_image_field(http, still_works):
    r = http.post("/v1/transmit", data={"snr_db": "10"})
    assert r.status_code == 422 and "image" in r.json()["detail"]


# ------------------------------------------------------------------ parameters

def test_unknown_model(http, make_png, still_works):
    r = upload(http, make_png(32, 32)[0], model="no-such-model")
    assert r.status_code == 422
    assert "unknown model 'no-such-model'" in r.json()["detail"] and "sc-cdm-cpu" in r.json()["detail"]


def test_unknown_model_grpc(stubs, make_png, still_works):
    _, arr = make_png(32, 32)
    e = rpc_error(stubs["transmitter"].Encode, pb.EncodeRequest(
        tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=10, model="nope"))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "available models" in e.details()


@pytest.mark.parametrize("snr", ["41", "-25", "nan"])
def test_snr_out_of_range(http, make_png, snr, still_works):
    r = upload(http, make_png(32, 32)[0], snr_db=snr)
    assert r.status_code == 422 and "snr_db" in r.json()["detail"]


def test_snr_out_of_range_grpc(stubs, make_png, still_works):
    frame = good_frame(stubs, make_png)
    e = rpc_error(stubs["channel"].Transmit, pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind="awgn", snr_db=100)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "snr_db must be a number in [-20.0, 40.0]" in e.details()
    _, arr = make_png(32, 32)
    e = rpc_error(stubs["transmitter"].Encode, pb.EncodeRequest(
        tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=-50))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "snr_db" in e.details()
    e = rpc_error(stubs["transmitter"].Encode, pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr))))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "snr_db is required" in e.details()


@pytest.mark.parametrize("p", ["1.0", "-0.1", "2"])
def test_erasure_prob_out_of_range(http, make_png, p, still_works):
    r = upload(http, make_png(32, 32)[0], erasure_prob=p)
    assert r.status_code == 422 and "erasure_prob must be in [0, 1)" in r.json()["detail"]


def test_erasure_prob_out_of_range_grpc(stubs, make_png, still_works):
    frame = good_frame(stubs, make_png)
    e = rpc_error(stubs["channel"].Transmit, pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind="rayleigh", snr_db=10, erasure_prob=1.5)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "erasure_prob" in e.details()


def test_refine_on_a_model_without_refiner(http, make_png, still_works):
    # not an error (issue 11): the model decodes without refinement and the report says so
    r = upload(http, make_png(32, 32)[0], model="deepjscc-cpu", refine="true")
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["refine"] is True and rep["refined"] is False and "s_hat" not in rep
    assert upload(http, make_png(32, 32)[0], model="deepjscc-cpu", refine="false").status_code == 200


# ------------------------------------------------------------------ corrupted frames over gRPC

def received(stubs, make_png):
    frame = good_frame(stubs, make_png)
    return stubs["channel"].Transmit(pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind="awgn", snr_db=10, seed=0)), timeout=30)


def test_symbol_frame_with_nan(stubs, make_png, still_works):
    frame = good_frame(stubs, make_png)
    z = convert.proto_to_tensor(frame.symbols, "s")
    z[0, 5] = complex(math.nan, 0.0)
    frame.symbols.CopyFrom(convert.tensor_to_proto(z))
    e = rpc_error(stubs["channel"].Transmit, pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind="awgn", snr_db=10)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in e.details() and "[0, 5]" in e.details()
    rx = received(stubs, make_png)
    rx.symbols.CopyFrom(convert.tensor_to_proto(z))
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "NaN" in e.details()


def test_frame_with_wrong_length(stubs, make_png, still_works):
    rx = received(stubs, make_png)
    y = convert.proto_to_tensor(rx.symbols, "y")
    short = rx.__class__()
    short.CopyFrom(rx)
    short.symbols.CopyFrom(convert.tensor_to_proto(y[:, :-10]))      # consistent payload, too few symbols
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=short))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "truncated or padded" in e.details()
    rx.symbols.data = rx.symbols.data[:-8]                          # payload shorter than its shape
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "needs" in e.details() and "bytes" in e.details()


def test_frame_whose_noise_var_is_missing(stubs, make_png, still_works):
    rx = received(stubs, make_png)
    del rx.noise_var[:]
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "noise_var" in e.details()


def test_oversize_grpc_message(stubs, still_works):
    # 5 MiB of payload against SCCDM_MAX_MESSAGE_MB=4: refused by gRPC before any handler runs
    big = pb.EncodeRequest(tensor=pb.Tensor(shape=[1, 3, 1024, 448], dtype="float32", data=b"\0" * (3 * 1024 * 448 * 4)),
                           snr_db=10)
    e = rpc_error(stubs["transmitter"].Encode, big)
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in e.details()
