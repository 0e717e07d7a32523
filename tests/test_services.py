"""The three gRPC services as real processes: health, reflection, bit-exactness with the in-process pipeline,
streaming, batching, metrics, deadlines."""
import base64
import io
import re
import threading

import grpc
import numpy as np
import pytest
import torch

from sccdm import pipeline, zoo
from sccdm.channels import ChannelConfig
from sccdm.data import decode_image_bytes, image_to_tensor
from sccdm.metrics import psnr, ssim
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert

SERVICES = {"transmitter": "sccdm.v1.Transmitter", "channel": "sccdm.v1.Channel", "receiver": "sccdm.v1.Receiver"}


def reference(model, arr, cfg: ChannelConfig, seed: int, refine: bool, tx_snr=None):
    """sccdm.pipeline.simulate on the uint8 image, with the seeding the services use."""
    x = image_to_tensor(arr)[None]
    out = pipeline.simulate(model, x, cfg, torch.Generator().manual_seed(seed), tx_snr_db=tx_snr, refine=refine,
                            refine_generator=torch.Generator().manual_seed(seed))
    return x, out


def test_health_is_serving_under_both_names(stubs):
    from grpc_health.v1 import health_pb2
    for name, full in SERVICES.items():
        for service in ("", full):
            r = stubs["health"][name].Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING, (name, service)


def test_reflection_lists_the_service_and_health(stubs):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
    for name, full in SERVICES.items():
        db = ProtoReflectionDescriptorDatabase(stubs["channels"][name])
        names = set(db.get_services())
        assert {full, "grpc.health.v1.Health"} <= names
        assert db.FindFileContainingSymbol(full).package == "sccdm.v1"


def test_reflection_v1_answers_like_v1alpha(stubs):
    """grpcurl and grpc-js ask grpc.reflection.v1 first: it lists the services and describes itself."""
    from google.protobuf import descriptor_pb2
    from grpc_reflection.v1alpha import reflection_pb2 as r  # same messages and field numbers as v1

    for name, full in SERVICES.items():
        call = stubs["channels"][name].stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=r.ServerReflectionRequest.SerializeToString,
            response_deserializer=r.ServerReflectionResponse.FromString)
        listed, described = call(iter([r.ServerReflectionRequest(list_services=""),
                                       r.ServerReflectionRequest(file_containing_symbol=
                                                                 "grpc.reflection.v1.ServerReflection")]),
                                 timeout=10)
        names = {s.name for s in listed.list_services_response.service}
        assert {full, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} <= names
        fdp = descriptor_pb2.FileDescriptorProto.FromString(
            described.file_descriptor_response.file_descriptor_proto[0])
        assert fdp.package == "grpc.reflection.v1" and fdp.service[0].name == "ServerReflection"


@pytest.mark.parametrize("cfg,refine", [
    (ChannelConfig("awgn", 10.0), True),
    (ChannelConfig("rayleigh", 5.0, fading="block", csi="mmse", erasure_prob=0.1), True),
    (ChannelConfig("rayleigh", 0.0, fading="fast", csi="zf"), False),
], ids=["awgn-refine", "rayleigh-erasures-refine", "rayleigh-fast-zf"])
def test_grpc_link_is_bit_exact_with_simulate(stubs, ref_model, make_png, cfg, refine):
    _, arr = make_png(40, 48, seed=1)
    seed = 1234
    _, ref = reference(ref_model, arr, cfg, seed, refine)
    frame = stubs["transmitter"].Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)),
                                                         snr_db=cfg.snr_db), timeout=30)
    assert torch.equal(convert.proto_to_tensor(frame.symbols, "s"), ref["frame"].symbols)
    assert list(frame.info.latent_shape) == list(ref["frame"].latent_shape)
    assert (frame.info.geometry.height, frame.info.geometry.width) == (40, 48)
    rx = stubs["channel"].Transmit(pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind=cfg.kind, snr_db=cfg.snr_db, fading=cfg.fading, csi=cfg.csi, erasure_prob=cfg.erasure_prob, seed=seed)),
        timeout=30)
    assert torch.equal(convert.proto_to_tensor(rx.symbols, "y"), ref["rx"].y)
    if cfg.kind == "rayleigh":
        assert torch.equal(convert.proto_to_tensor(rx.csi, "h"), ref["rx"].h)
    assert rx.HasField("erasure_mask") == (cfg.erasure_prob > 0)
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=refine, seed=seed), timeout=30)
    assert torch.equal(convert.proto_to_tensor(out.image, "x"), ref["x_hat"])
    assert torch.equal(torch.tensor(list(out.eff_snr_db)), ref["eff_snr_db"])
    if refine:
        assert torch.equal(convert.proto_to_tensor(out.unrefined, "s"), ref["s_hat"])
    png = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(io.BytesIO(out.png[0])))
    assert png.shape == (40, 48, 3)


def test_receiver_gives_the_fast_fading_model_each_symbols_snr(stubs, make_png):
    """The fast-fading model reads the CSI map; the receiver service builds it from the frame's CSI and
    erasure mask, and the link stays bit-exact with the in-process pipeline."""
    name = "sc-cdm-cpu-rayleigh-fast"
    model = zoo.load(name, device="cpu")
    assert pipeline.reads_csi_map(model)
    cfg = ChannelConfig("rayleigh", 4.0, fading="fast", csi="mmse", erasure_prob=0.05)
    _, arr = make_png(32, 32, seed=3)
    seed = 77
    _, ref = reference(model, arr, cfg, seed, refine=True)
    frame = stubs["transmitter"].Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)),
                                                         snr_db=cfg.snr_db, model=name), timeout=30)
    rx = stubs["channel"].Transmit(pb.TransmitRequest(frame=frame, channel=pb.ChannelParams(
        kind=cfg.kind, snr_db=cfg.snr_db, fading=cfg.fading, csi=cfg.csi, erasure_prob=cfg.erasure_prob, seed=seed)),
        timeout=30)
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=True, seed=seed), timeout=30)
    assert torch.equal(convert.proto_to_tensor(out.unrefined, "s"), ref["s_hat"])
    assert torch.equal(convert.proto_to_tensor(out.image, "x"), ref["x_hat"])


@pytest.mark.parametrize("channel,refine", [("awgn", True), ("rayleigh", True), ("rayleigh", False)])
def test_gateway_psnr_equals_in_process(http, ref_model, make_png, channel, refine):
    data, arr = make_png(48, 40, seed=2)
    arr = decode_image_bytes(data)          # what the gateway sees after the PNG round trip
    seed = 99
    r = http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                  data={"channel": channel, "snr_db": "7.5", "seed": str(seed), "refine": str(refine).lower()})
    assert r.status_code == 200, r.text
    rep = r.json()
    # a request on a fading channel that names no model gets the Rayleigh-trained one
    want = {"awgn": "sc-cdm-cpu", "rayleigh": "sc-cdm-cpu-rayleigh"}[channel]
    assert rep["model"] == want
    model = ref_model if want == ref_model.name else zoo.load(want, device="cpu")
    x, ref = reference(model, arr, ChannelConfig(channel, 7.5), seed, refine)
    assert rep["quality_from"] == "float32"
    assert rep["psnr_db"] == float(psnr(ref["x_hat"], x)[0])
    assert rep["ssim"] == float(ssim(ref["x_hat"], x)[0])
    assert base64.b64decode(rep["image"]) == convert.png_bytes(ref["x_hat"])[0]
    assert rep["channel_uses"] == ref["frame"].symbols.shape[1]
    assert rep["cbr"] == pytest.approx(ref["frame"].symbols.shape[1] / (48 * 40 * 3))
    assert rep["eff_snr_db"] == float(ref["eff_snr_db"][0])
    pts = np.array(rep["received_symbols"])
    assert pts.shape == (512, 2)
    y0 = ref["rx"].y[0]
    assert np.allclose(pts[0], [y0[0].real, y0[0].imag], atol=1e-5)
    assert np.allclose(pts[-1], [y0[-1].real, y0[-1].imag], atol=1e-5)
    if refine:
        assert rep["s_hat"]["psnr_db"] == float(psnr(ref["s_hat"], x)[0])
        assert base64.b64decode(rep["s_hat"]["image"]) == convert.png_bytes(ref["s_hat"])[0]
    else:
        assert "s_hat" not in rep


def test_streams_answer_in_order_and_batch(stubs, ref_model, make_png):
    _, arr = make_png(32, 32, seed=3)
    snrs = [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]
    reqs = [pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=s) for s in snrs]
    frames = list(stubs["transmitter"].EncodeStream(iter(reqs), timeout=60))
    assert [f.info.tx_snr_db[0] for f in frames] == snrs
    rxs = [stubs["channel"].Transmit(pb.TransmitRequest(frame=f, channel=pb.ChannelParams(kind="awgn", snr_db=s, seed=i)))
           for i, (f, s) in enumerate(zip(frames, snrs))]
    outs = list(stubs["receiver"].DecodeStream(iter(pb.DecodeRequest(frame=r, refine=True, seed=i)
                                                    for i, r in enumerate(rxs)), timeout=60))
    assert len(outs) == len(snrs)
    assert max(o.timings.batch_requests for o in outs) > 1, "concurrent stream requests should share a batch"
    for i, (s, o) in enumerate(zip(snrs, outs)):
        _, ref = reference(ref_model, arr, ChannelConfig("awgn", s), i, True)
        # batching may change float rounding, never the random draws
        assert torch.allclose(convert.proto_to_tensor(o.image, "x"), ref["x_hat"], atol=1e-4)


def test_concurrent_gateway_requests_are_batched_and_consistent(http, ref_model, make_png):
    data, arr = make_png(32, 32, seed=4)
    results = [None] * 8

    def go(i):
        results[i] = http.post("/v1/transmit", files={"image": ("x.png", data)},
                               data={"snr_db": "10", "seed": str(i), "refine": "true"}).json()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    x = image_to_tensor(arr)[None]
    for i, rep in enumerate(results):
        _, ref = reference(ref_model, arr, ChannelConfig("awgn", 10.0), i, True)
        assert rep["psnr_db"] == pytest.approx(float(psnr(ref["x_hat"], x)[0]), abs=1e-3)
    assert max(r["timings_ms"]["receiver_batch_requests"] for r in results) > 1, "8 concurrent clients, no batching"


def test_service_metrics_count_requests_and_batches(stack, stubs, make_png):
    import httpx
    _, arr = make_png(32, 32)
    stubs["transmitter"].Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=5))
    text = httpx.get(f"http://127.0.0.1:{stack.metrics_ports['transmitter']}/metrics", timeout=5).text
    m = re.search(r'sccdm_requests_total\{code="OK",method="Encode",service="transmitter"\} (\d+)', text)
    assert m and int(float(m.group(1))) >= 1
    assert 'sccdm_batch_size_count{service="transmitter"}' in text
    assert 'sccdm_request_latency_seconds_bucket' in text
    assert 'sccdm_ready{service="transmitter"} 1.0' in text


def test_deadline_is_honoured_and_service_survives(stubs, make_png):
    _, arr = make_png(256, 256)
    req = pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=5)
    with pytest.raises(grpc.RpcError) as e:
        stubs["transmitter"].Encode(req, timeout=0.001)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stubs["transmitter"].Encode(req, timeout=30).info.num_symbols > 0


def test_list_models(stubs):
    for svc in ("transmitter", "receiver"):
        models = {m.name: m for m in stubs[svc].ListModels(pb.ListModelsRequest(), timeout=10).models}
        assert models["sc-cdm-cpu"].is_default and models["sc-cdm-cpu"].loaded and models["sc-cdm-cpu"].has_refiner
        assert "deepjscc-cpu" in models and not models["deepjscc-cpu"].has_refiner
