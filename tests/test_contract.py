"""The gRPC contract of issue 11, against the real stack (conftest_stack.py: SCCDM_MAX_MESSAGE_MB=4,
SCCDM_MAX_PIXELS=512*512): transmit power, tx_snr_db counts, snr_db vs noise_var, refine on a model
without a refiner, Decode replies over the size limit, and what a bad item does to a stream."""
import math

import grpc
import pytest
import torch

from sccdm.backends import EmulatedBackend
from sccdm.channels import ChannelConfig
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert

T = 60


def rpc_error(fn, *a, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, timeout=T, **kw)
    return e.value


def unit_symbols(b: int, k: int, seed: int) -> torch.Tensor:
    """complex64 [b, k], each image normalised to average power 1."""
    g = torch.Generator().manual_seed(seed)
    z = torch.complex(torch.randn(b, k, generator=g), torch.randn(b, k, generator=g))
    return (z / z.abs().pow(2).mean(dim=1, keepdim=True).sqrt()).to(torch.complex64)


def hand_frame(z: torch.Tensor, power: float | None, tx_snr=(10.0,)) -> pb.SymbolFrame:
    """A SymbolFrame built by a client (the channel needs only symbols and info)."""
    info = pb.FrameInfo(num_symbols=z.shape[1], tx_snr_db=list(tx_snr))
    if power is not None:
        info.transmit_power = power
    return pb.SymbolFrame(symbols=convert.tensor_to_proto(z), info=info)


def transmit(stubs, frame, snr_db=10.0, seed=7, kind="awgn") -> pb.ReceivedFrame:
    return stubs["channel"].Transmit(pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind=kind, snr_db=snr_db, seed=seed)), timeout=T)


def encode(stubs, make_png, h=32, w=32, batch=1, model="", snr_db=10.0) -> pb.SymbolFrame:
    imgs = torch.stack([torch.from_numpy(make_png(h, w, seed=i)[1]) for i in range(batch)])
    return stubs["transmitter"].Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(imgs), snr_db=snr_db,
                                                        model=model), timeout=T)


def image(out: pb.DecodeResponse) -> torch.Tensor:
    return convert.proto_to_tensor(out.image, "image")


# ------------------------------------------------------------------ 1. transmit power

def test_channel_noise_variance_is_relative_to_transmit_power(stubs):
    k = 16384
    z1 = unit_symbols(1, k, 0)
    rx4 = transmit(stubs, hand_frame(2 * z1, 4.0))       # power 4, SNR 10 dB -> sigma^2 = 0.4
    assert rx4.noise_var[0] == pytest.approx(0.4, rel=1e-6) and rx4.snr_db[0] == 10.0
    y4 = convert.proto_to_tensor(rx4.symbols, "y")
    measured = float((y4 - 2 * z1).abs().pow(2).mean())
    assert measured == pytest.approx(0.4, rel=0.05), measured  # ignoring P would give 0.1 (true SNR 16 dB)
    # the same draws: y at power 4 is sqrt(4) times y at power 1 for the unit-power symbols
    y1 = convert.proto_to_tensor(transmit(stubs, hand_frame(z1, 1.0)).symbols, "y")
    assert torch.allclose(y4, 2 * y1, atol=1e-5)


def test_unit_and_unset_power_are_bit_identical_to_the_emulator(stubs):
    z = unit_symbols(2, 1000, 1)
    cfg = ChannelConfig("rayleigh", 5.0)
    ref = EmulatedBackend().transmit(z, cfg, torch.Generator().manual_seed(3))
    for power in (1.0, None):                           # None: the field never set (reads 0 = 1.0)
        rx = transmit(stubs, hand_frame(z, power, tx_snr=(5.0,)), snr_db=5.0, seed=3, kind="rayleigh")
        assert torch.equal(convert.proto_to_tensor(rx.symbols, "y"), ref.y)
        assert torch.equal(torch.tensor(list(rx.noise_var)), ref.noise_var)


@pytest.mark.parametrize("power", [-1.0, math.nan, math.inf, -math.inf])
def test_bad_transmit_power_is_invalid_argument(stubs, make_png, power):
    e = rpc_error(stubs["channel"].Transmit, pb.TransmitRequest(
        frame=hand_frame(unit_symbols(1, 64, 0), power), channel=pb.ChannelParams(kind="awgn", snr_db=10)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "transmit_power" in e.details()
    rx = transmit(stubs, encode(stubs, make_png))
    rx.info.transmit_power = power
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx, want_png=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "transmit_power" in e.details()


def test_a_frame_sent_at_power_4_decodes_like_one_at_power_1(stubs, make_png):
    f1 = encode(stubs, make_png)
    f4 = pb.SymbolFrame()
    f4.CopyFrom(f1)
    f4.symbols.CopyFrom(convert.tensor_to_proto(2 * convert.proto_to_tensor(f1.symbols, "z")))
    f4.info.transmit_power = 4.0
    out1 = stubs["receiver"].Decode(pb.DecodeRequest(frame=transmit(stubs, f1), want_tensor=True), timeout=T)
    out4 = stubs["receiver"].Decode(pb.DecodeRequest(frame=transmit(stubs, f4), want_tensor=True), timeout=T)
    # the receiver scales back to unit power: same channel draws, same image up to float rounding
    assert list(out4.eff_snr_db) == pytest.approx(list(out1.eff_snr_db), abs=1e-4)
    assert torch.allclose(image(out4), image(out1), atol=1e-3)


# ------------------------------------------------------------------ 2. tx_snr_db count

@pytest.mark.parametrize("count", [0, 3])
def test_tx_snr_db_count_must_be_one_or_batch(stubs, make_png, count):
    frame = encode(stubs, make_png, batch=2)
    assert len(frame.info.tx_snr_db) == 2
    rx = transmit(stubs, frame)
    bad = pb.SymbolFrame()
    bad.CopyFrom(frame)
    del bad.info.tx_snr_db[:]
    bad.info.tx_snr_db.extend([10.0] * count)
    e = rpc_error(stubs["channel"].Transmit, pb.TransmitRequest(frame=bad, channel=pb.ChannelParams(
        kind="awgn", snr_db=10)))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "tx_snr_db" in e.details()
    del rx.info.tx_snr_db[:]
    rx.info.tx_snr_db.extend([10.0] * count)
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx, want_png=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "tx_snr_db" in e.details()
    # one value shared by the batch is fine on both
    del bad.info.tx_snr_db[:]
    bad.info.tx_snr_db.append(10.0)
    rx = transmit(stubs, bad)
    assert len(stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, want_png=True), timeout=T).png) == 2


# ------------------------------------------------------------------ 3. snr_db vs noise_var

def test_noise_var_wins_and_a_disagreeing_snr_db_is_refused(stubs, make_png):
    rx = transmit(stubs, encode(stubs, make_png), seed=11)
    assert rx.csi_source == "none" and len(rx.snr_db) == 1
    ref = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, want_tensor=True), timeout=T)
    # snr_db is optional: without it the decode is the same, bit for bit (noise_var is what is used)
    alone = pb.ReceivedFrame()
    alone.CopyFrom(rx)
    del alone.snr_db[:]
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=alone, want_tensor=True), timeout=T)
    assert torch.equal(image(out), image(ref)) and list(out.eff_snr_db) == list(ref.eff_snr_db)
    # within 0.01 dB: the same channel, accepted
    rx.snr_db[0] += 0.005
    stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, want_png=True), timeout=T)
    # 3 dB off: two different SNRs in one frame, refused rather than silently ignored
    rx.snr_db[0] += 3.0
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx, want_png=True))
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "snr_db" in e.details() and "noise_var" in e.details()


def test_snr_db_agreement_counts_the_transmit_power(stubs):
    rx = transmit(stubs, hand_frame(2 * unit_symbols(1, 64, 0), 4.0))
    # noise_var 0.4 at P = 4 is 10 dB, which the frame says: consistent
    assert convert.received_noise_var(rx, 1, 4.0).tolist() == pytest.approx([0.4])
    # the same numbers read at P = 1 would be 4 dB: refused
    with pytest.raises(convert.InvalidInput, match="snr_db"):
        convert.received_noise_var(rx, 1, 1.0)


# ------------------------------------------------------------------ 4. refine without a refiner

def test_refine_on_a_model_without_refiner_decodes_unrefined(stubs, make_png):
    rx = transmit(stubs, encode(stubs, make_png, model="deepjscc-cpu"))
    plain = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=False, seed=5), timeout=T)
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=True, seed=5), timeout=T)
    assert out.model == "deepjscc-cpu" and not out.refined and out.seed == 0
    assert not out.unrefined_png and not out.HasField("unrefined")
    assert torch.equal(image(out), image(plain)) and list(out.png) == list(plain.png)


# ------------------------------------------------------------------ 5. replies over the message limit

def test_decode_reply_over_the_limit_is_refused_before_computing(stubs, make_png):
    # a 500 x 500 image (the stack allows 512 x 512 pixels, and a 4 MiB message); the cpu model, whose
    # refiner is cheap enough should the refusal fail to come
    rx = transmit(stubs, encode(stubs, make_png, 500, 500, model="sc-cdm-cpu"))
    # refined, both outputs: 2 x (2.9 MiB float32 + 0.7 MiB PNG) cannot fit
    e = rpc_error(stubs["receiver"].Decode, pb.DecodeRequest(frame=rx, refine=True))
    assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "SCCDM_MAX_MESSAGE_MB" in e.details() and "4 MiB" in e.details()
    assert "want_tensor=false" in e.details() and "refine=false" in e.details()
    # the same frame, one float32 output (2.9 MiB): within the limit, and within the bound
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=False, want_tensor=True), timeout=120)
    assert tuple(out.image.shape) == (1, 3, 500, 500)
    assert out.ByteSize() <= convert.decode_reply_bytes(1, 500, 500, png=False, tensor=True, refined=False)


def test_reply_bound_covers_real_replies(stubs, make_png):
    rx = transmit(stubs, encode(stubs, make_png, 40, 48, batch=2))
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=True, seed=1), timeout=120)
    assert out.refined and len(out.png) == 2 and len(out.unrefined_png) == 2
    assert out.ByteSize() <= convert.decode_reply_bytes(2, 40, 48, png=True, tensor=True, refined=True)


# ------------------------------------------------------------------ 6. a bad item in a stream

def test_a_bad_item_ends_the_stream_after_the_good_ones(stubs, make_png):
    rx = transmit(stubs, encode(stubs, make_png))
    bad = pb.ReceivedFrame()
    bad.CopyFrom(rx)
    del bad.noise_var[:]
    reqs = [pb.DecodeRequest(frame=f, want_png=True) for f in (rx, bad, rx)]
    got = []
    with pytest.raises(grpc.RpcError) as e:
        for out in stubs["receiver"].DecodeStream(iter(reqs), timeout=T):
            got.append(out)
    assert len(got) == 1
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("request #1 of the stream: ") and "noise_var" in e.value.details()
