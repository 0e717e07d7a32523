"""Bandwidth per request, end to end: ``cbr`` on gRPC and REST picks the rate of a rate-adaptive model
(SCCDM_RATE_MODEL when the request names none), the report gives the k and CBR actually spent, and
the shipped rate-adaptive photo model trades quality for bandwidth as it was trained to.

Real services on loopback (the session stack of conftest_stack.py); refine off (the paper refiner is
slow on CPU), 128x128 crops of scikit-image's astronaut.
"""
from __future__ import annotations

import base64

import grpc
import pytest
import torch

from sccdm import pipeline, zoo
from sccdm.channels import ChannelConfig
from sccdm.data import decode_image_bytes, image_to_tensor
from sccdm.metrics import psnr
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert
from sccdm.serving.config import DEFAULT_RATE_MODEL, DEFAULT_RATE_THUMB_MODEL, ConfigError, ServiceConfig
from sccdm.serving.models import ModelStore

DEFAULT, PHOTO, RATE, THUMB_RATE = "sc-cdm-cpu", "sc-cdm-paper-photo", "sc-cdm-paper-photo-rate", "sc-cdm-cpu-rate"
CBRS = {8: 1 / 48, 16: 1 / 24, 32: 1 / 12}   # latent channels -> nominal CBR of the rate model


def _encode(stub, arr, cbr=None, model: str = "") -> pb.SymbolFrame:
    req = pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=10.0, model=model)
    if cbr is not None:
        req.cbr = cbr
    return stub.Encode(req, timeout=120)


# ------------------------------------------------------------------ configuration and the rule

def test_rate_model_config():
    assert ServiceConfig.from_env("transmitter", {}).rate_model == DEFAULT_RATE_MODEL == RATE
    assert ServiceConfig.from_env("transmitter", {"SCCDM_RATE_MODEL": ""}).rate_model == ""
    fading_off = {"SCCDM_RAYLEIGH_MODEL": "", "SCCDM_RAYLEIGH_PHOTO_MODEL": "", "SCCDM_RAYLEIGH_FAST_MODEL": "",
                  "SCCDM_RATE_THUMB_MODEL": ""}
    ServiceConfig.from_env("transmitter", {"SCCDM_RATE_MODEL": "", **fading_off}).check_models([DEFAULT, PHOTO])
    with pytest.raises(ConfigError, match="SCCDM_RATE_MODEL='nope'"):
        ServiceConfig.from_env("transmitter", {"SCCDM_RATE_MODEL": "nope", **fading_off}).check_models(
            [DEFAULT, PHOTO, RATE])
    assert ServiceConfig.from_env("transmitter", {}).rate_thumb_model == DEFAULT_RATE_THUMB_MODEL == THUMB_RATE
    assert ServiceConfig.from_env("transmitter", {"SCCDM_RATE_THUMB_MODEL": ""}).rate_thumb_model == ""
    with pytest.raises(ConfigError, match="SCCDM_RATE_THUMB_MODEL='nope'"):
        ServiceConfig.from_env("transmitter", {**fading_off, "SCCDM_RATE_THUMB_MODEL": "nope"}).check_models(
            [DEFAULT, PHOTO, RATE])


def test_zoo_rate_model_is_rate_adaptive():
    cfg = zoo.part_config(RATE)
    assert tuple(cfg.rates) == (8, 16, 32)
    assert {c: cfg.nominal_cbr(c) for c in cfg.rates} == pytest.approx(CBRS)
    assert not zoo.part_config(PHOTO).rates


def test_resolve_with_cbr():
    s = ModelStore(DEFAULT, "cpu", PHOTO, 64, RATE)
    assert s.resolve("", 96, 128) == PHOTO                      # no cbr: unchanged
    assert s.resolve("", 96, 128, cbr=1 / 12) == PHOTO          # the photo model sends 1/12 itself
    assert s.resolve("", 96, 128, cbr=1 / 48) == RATE           # it cannot send 1/48
    assert s.resolve("", 32, 32, cbr=1 / 24) == RATE
    assert s.resolve(PHOTO, 96, 128, cbr=1 / 48) == PHOTO       # an explicit name wins (and is refused later)
    assert ModelStore(DEFAULT, "cpu", PHOTO, 64, "").resolve("", 96, 128, cbr=1 / 48) == PHOTO
    infos = {i["name"]: i for i in s.infos()}
    assert infos[RATE]["is_rate_default"] and not infos[PHOTO]["is_rate_default"]


def test_resolve_with_cbr_gives_a_thumbnail_the_cifar_rate_model():
    s = ModelStore(DEFAULT, "cpu", PHOTO, 64, RATE, rate_thumb=THUMB_RATE)
    assert s.resolve("", 32, 32, cbr=1 / 24) == THUMB_RATE
    assert s.resolve("", 32, 32, cbr=1 / 48, channel="rayleigh") == THUMB_RATE
    assert s.resolve("", 32, 32, cbr=1 / 12) == DEFAULT        # the default sends 1/12 itself
    assert s.resolve("", 96, 128, cbr=1 / 48) == RATE          # photos keep the photo rate model
    assert s.resolve(RATE, 32, 32, cbr=1 / 48) == RATE
    infos = {i["name"]: i for i in s.infos()}
    assert infos[THUMB_RATE]["is_rate_thumb_default"] and not infos[THUMB_RATE]["is_rate_default"]
    assert not infos[RATE]["is_rate_thumb_default"]


# ------------------------------------------------------------------ gRPC

def test_grpc_cbr_sends_the_prefix_and_reports_it(stubs, make_png):
    _, img = make_png(128, 128, seed=3)
    full_k = None
    for c, cbr in CBRS.items():
        f = _encode(stubs["transmitter"], img, cbr=cbr)
        assert f.info.model == (PHOTO if c == 32 else RATE)
        k = c * (128 // 8) * (128 // 8) // 2                   # 128 needs no padding at H/8
        assert f.info.num_symbols == k and tuple(f.symbols.shape) == (1, k)
        assert f.info.cbr == pytest.approx(cbr, rel=1e-9)
        full_k = k
    # named explicitly, the rate model also sends its full rate
    f = _encode(stubs["transmitter"], img, cbr=1 / 12, model=RATE)
    assert f.info.model == RATE and f.info.num_symbols == full_k


def test_grpc_thumbnail_cbr_picks_the_cifar_rate_model(stubs, make_png):
    _, img = make_png(32, 32, seed=8)
    for c, cbr in CBRS.items():
        f = _encode(stubs["transmitter"], img, cbr=cbr)
        assert f.info.model == (DEFAULT if c == 32 else THUMB_RATE)
        assert f.info.num_symbols == c * 4 * 4 // 2 and f.info.cbr == pytest.approx(cbr, rel=1e-9)


@pytest.mark.parametrize("model, cbr, match", [(PHOTO, 1 / 48, "sends only CBR"), ("", 0.0, r"cbr must be in \(0, 1\]"),
                                              ("", 1.5, r"cbr must be in \(0, 1\]"),
                                              ("", float("nan"), r"cbr must be in \(0, 1\]")])
def test_grpc_bad_cbr_is_invalid_argument(stubs, make_png, model, cbr, match):
    _, img = make_png(96, 128, seed=4)
    with pytest.raises(grpc.RpcError) as e:
        _encode(stubs["transmitter"], img, cbr=cbr, model=model)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() and __import__("re").search(match, e.value.details()), e.value.details()
    assert _encode(stubs["transmitter"], img).info.model == PHOTO  # the service is fine


def test_grpc_receiver_decodes_a_prefix_frame(stubs, make_png):
    _, img = make_png(128, 128, seed=5)
    f = _encode(stubs["transmitter"], img, cbr=1 / 48)
    rx = stubs["channel"].Transmit(pb.TransmitRequest(frame=f, channel=pb.ChannelParams(kind="awgn", snr_db=10,
                                                                                        seed=1)), timeout=60)
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=False, want_tensor=True), timeout=120)
    assert out.model == RATE and tuple(convert.proto_to_tensor(out.image, "image").shape) == (1, 3, 128, 128)


# ------------------------------------------------------------------ REST

def _transmit(http, data, **form):
    return http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                     data={"channel": "awgn", "snr_db": "12", "seed": "11", "refine": "false",
                           **{k: str(v) for k, v in form.items()}})


def test_rest_cbr_is_exact_and_matches_the_library(http, make_png):
    data, _ = make_png(128, 128, seed=6)
    x = image_to_tensor(decode_image_bytes(data))[None]
    model = zoo.load(RATE)
    got = {}
    for c, cbr in CBRS.items():
        r = _transmit(http, data, cbr=cbr, model=RATE)
        assert r.status_code == 200, r.text
        rep = r.json()
        ref = pipeline.simulate(model, x, ChannelConfig("awgn", 12.0), torch.Generator().manual_seed(11),
                                refine=False, channels=None if c == 32 else c)
        assert rep["model"] == RATE and rep["channel_uses"] == ref["frame"].symbols.shape[1] == c * 128
        assert rep["cbr"] == pytest.approx(cbr)
        assert rep["psnr_db"] == pytest.approx(float(psnr(ref["x_hat"], x)[0]), abs=1e-6)
        assert base64.b64decode(rep["image"]) == convert.png_bytes(ref["x_hat"])[0]
        got[c] = rep["psnr_db"]
    # trained to use the bandwidth: each doubling of the rate buys quality on a real photo crop
    assert got[8] + 0.5 < got[16] and got[16] + 0.5 < got[32], got


def test_rest_models_names_the_rate_default(http):
    r = http.get("/v1/models").json()
    assert r["rate_default"] == RATE
    assert [m["name"] for m in r["models"] if m["is_rate_default"]] == [RATE]
    assert r["rate_thumb_default"] == THUMB_RATE
    assert [m["name"] for m in r["models"] if m["is_rate_thumb_default"]] == [THUMB_RATE]


def test_rest_cbr_auto_and_refusals(http, make_png):
    data, _ = make_png(96, 128, seed=7)
    r = _transmit(http, data, cbr=1 / 24)           # no model named: the rate model
    assert r.status_code == 200 and r.json()["model"] == RATE, r.text
    r = _transmit(http, data, cbr=1 / 24, model=PHOTO)
    assert r.status_code == 422 and "sends only CBR" in r.text, r.text
    for bad in ("0", "-0.1", "2", "abc"):
        r = _transmit(http, data, cbr=bad)
        assert r.status_code == 422 and "cbr" in r.text, (bad, r.text)
    assert _transmit(http, data).json()["model"] == PHOTO
