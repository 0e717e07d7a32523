"""The photo model: a request that names no model gets SCCDM_PHOTO_MODEL for photo-sized images
(smaller side >= SCCDM_PHOTO_MIN_SIDE), SCCDM_MODEL otherwise; an explicit name always wins.

Real services on loopback (the session stack of conftest_stack.py, photo model on by default, and a
lone transmitter with it off); small images and refine=false, the paper refiner being slow on CPU.
"""
from __future__ import annotations

import base64

import pytest
import torch

from sccdm import pipeline
from sccdm.channels import ChannelConfig
from sccdm.data import decode_image_bytes, image_to_tensor
from sccdm.link.framing import MODEL_IDS
from sccdm.metrics import psnr
from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert
from sccdm.serving.config import DEFAULT_PHOTO_MODEL, ConfigError, ServiceConfig
from sccdm.serving.models import ModelStore

PHOTO, DEFAULT = "sc-cdm-paper-photo", "sc-cdm-cpu"
FADING, FADING_PHOTO = "sc-cdm-cpu-rayleigh", "sc-cdm-paper-photo-rayleigh"
FAST = "sc-cdm-cpu-rayleigh-fast"


def _encode(stub, arr, model: str = "") -> pb.SymbolFrame:
    return stub.Encode(pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=10.0,
                                        model=model), timeout=120)


# ------------------------------------------------------------------ configuration

def test_config_defaults_and_values():
    c = ServiceConfig.from_env("transmitter", {})
    assert (c.photo_model, c.photo_min_side) == (DEFAULT_PHOTO_MODEL, 64) and DEFAULT_PHOTO_MODEL == PHOTO
    c = ServiceConfig.from_env("receiver", {"SCCDM_PHOTO_MODEL": "deepjscc-paper-photo", "SCCDM_PHOTO_MIN_SIDE": "100"})
    assert (c.photo_model, c.photo_min_side) == ("deepjscc-paper-photo", 100)
    for off in ("", "  "):  # set but empty: off (unlike the other variables, where empty means the default)
        assert ServiceConfig.from_env("transmitter", {"SCCDM_PHOTO_MODEL": off}).photo_model == ""
    assert ServiceConfig.from_env("transmitter", {"SCCDM_PHOTO_MIN_SIDE": ""}).photo_min_side == 64


@pytest.mark.parametrize("raw", ["abc", "64.5", "0", "-1"])
def test_config_rejects_bad_min_side(raw):
    with pytest.raises(ConfigError, match="SCCDM_PHOTO_MIN_SIDE"):
        ServiceConfig.from_env("transmitter", {"SCCDM_PHOTO_MIN_SIDE": raw})


def test_config_check_models():
    known = ["sc-cdm-cpu", PHOTO, "sc-cdm-paper-photo-rate", FADING, FADING_PHOTO, FAST, "sc-cdm-cpu-rate"]
    ServiceConfig.from_env("transmitter", {}).check_models(known)
    off = {"SCCDM_PHOTO_MODEL": "", "SCCDM_RATE_MODEL": "", "SCCDM_RAYLEIGH_MODEL": "", "SCCDM_RAYLEIGH_PHOTO_MODEL": "",
           "SCCDM_RAYLEIGH_FAST_MODEL": "", "SCCDM_RATE_THUMB_MODEL": ""}
    ServiceConfig.from_env("transmitter", off).check_models(["sc-cdm-cpu"])  # off: not checked
    with pytest.raises(ConfigError, match=r"SCCDM_PHOTO_MODEL='no-such-model'.*sc-cdm-cpu"):
        ServiceConfig.from_env("transmitter", {"SCCDM_PHOTO_MODEL": "no-such-model"}).check_models(known)
    with pytest.raises(ConfigError, match="SCCDM_MODEL='nope'"):
        ServiceConfig.from_env("transmitter", {"SCCDM_MODEL": "nope"}).check_models(known)
    with pytest.raises(ConfigError, match="SCCDM_RAYLEIGH_PHOTO_MODEL='nope'"):
        ServiceConfig.from_env("transmitter", {"SCCDM_RAYLEIGH_PHOTO_MODEL": "nope"}).check_models(known)
    with pytest.raises(ConfigError, match="SCCDM_RAYLEIGH_FAST_MODEL='nope'"):
        ServiceConfig.from_env("transmitter", {"SCCDM_RAYLEIGH_FAST_MODEL": "nope"}).check_models(known)
    c = ServiceConfig.from_env("transmitter", {})
    assert (c.rayleigh_model, c.rayleigh_photo_model, c.rayleigh_fast_model) == (FADING, FADING_PHOTO, FAST)


def test_unknown_photo_model_stops_the_service_at_start(tmp_path):
    from sccdm.stack import Stack
    s = Stack(env={"SCCDM_DEVICE": "cpu", "SCCDM_PHOTO_MODEL": "no-such-model"}, log_dir=tmp_path, metrics=False)
    p = s.start_service("transmitter")
    try:
        assert p.wait(timeout=120) == 2
    finally:
        s.stop_service("transmitter")
    log = s.log_path("transmitter").read_text()
    assert "configuration error" in log and "SCCDM_PHOTO_MODEL='no-such-model'" in log, log


def test_resolve_rule():
    s = ModelStore(DEFAULT, "cpu", PHOTO, 64)
    assert s.resolve("") == s.resolve("", 32, 32) == s.resolve("", 63, 500) == s.resolve("", 500, 63) == DEFAULT
    assert s.resolve("", 64, 64) == s.resolve("", 96, 128) == PHOTO
    assert s.resolve("deepjscc-cpu", 96, 128) == "deepjscc-cpu" and s.resolve(PHOTO, 32, 32) == PHOTO
    assert ModelStore(DEFAULT, "cpu", "", 64).resolve("", 96, 128) == DEFAULT
    with pytest.raises(convert.InvalidInput, match="unknown model"):
        s.resolve("no-such-model", 96, 128)
    infos = {i["name"]: i for i in s.infos()}
    assert infos[PHOTO]["is_photo_default"] and not infos[DEFAULT]["is_photo_default"]


def test_resolve_rule_per_channel():
    """A request that says its channel is Rayleigh gets the fading-trained model of its size class; AWGN or
    unsaid keeps the AWGN ones; an explicit name still wins; an unknown channel is the client's error."""
    s = ModelStore(DEFAULT, "cpu", PHOTO, 64, rayleigh=FADING, rayleigh_photo=FADING_PHOTO)
    for ch in ("", "awgn"):
        assert (s.resolve("", 32, 32, channel=ch), s.resolve("", 96, 128, channel=ch)) == (DEFAULT, PHOTO)
    assert (s.resolve("", 32, 32, channel="rayleigh"), s.resolve("", 96, 128, channel="rayleigh")) == (
        FADING, FADING_PHOTO)
    assert s.resolve(PHOTO, 96, 128, channel="rayleigh") == PHOTO
    only_small = ModelStore(DEFAULT, "cpu", PHOTO, 64, rayleigh=FADING)   # no fading photo model: the AWGN one
    assert only_small.resolve("", 96, 128, channel="rayleigh") == PHOTO
    with pytest.raises(convert.InvalidInput, match="channel must be one of"):
        s.resolve("", 32, 32, channel="ricean")
    infos = {i["name"]: i for i in s.infos()}
    assert infos[FADING_PHOTO]["channel_default_for"] == ["rayleigh"] and infos[PHOTO]["channel_default_for"] == []


def test_resolve_rule_per_fading():
    """On Rayleigh with fading "fast" (one h per symbol) a thumbnail gets the per-symbol-fading model; block
    fading, or unsaid, keeps the block one; photos have no fast model and keep theirs; off falls back to the
    block choice; fading on AWGN changes nothing; an unknown fading is the client's error."""
    s = ModelStore(DEFAULT, "cpu", PHOTO, 64, rayleigh=FADING, rayleigh_photo=FADING_PHOTO, rayleigh_fast=FAST)
    assert [s.resolve("", 32, 32, channel="rayleigh", fading=f) for f in ("", "block", "fast")] == [FADING, FADING, FAST]
    assert s.resolve("", 96, 128, channel="rayleigh", fading="fast") == FADING_PHOTO
    assert s.resolve("", 32, 32, channel="awgn", fading="fast") == DEFAULT
    assert s.resolve(DEFAULT, 32, 32, channel="rayleigh", fading="fast") == DEFAULT
    off = ModelStore(DEFAULT, "cpu", PHOTO, 64, rayleigh=FADING, rayleigh_photo=FADING_PHOTO)
    assert off.resolve("", 32, 32, channel="rayleigh", fading="fast") == FADING
    with pytest.raises(convert.InvalidInput, match="fading must be one of"):
        s.resolve("", 32, 32, channel="rayleigh", fading="slow")
    infos = {i["name"]: i for i in s.infos()}
    assert infos[FAST]["channel_default_for"] == ["rayleigh-fast"] and infos[FADING]["channel_default_for"] == ["rayleigh"]


def test_link_header_model_ids():
    assert MODEL_IDS[PHOTO] == 7 and MODEL_IDS["deepjscc-paper-photo"] == 8
    assert MODEL_IDS["sc-cdm-cpu"] == 1 and MODEL_IDS["deepjscc-paper-rayleigh"] == 6 and MODEL_IDS[FAST] == 11
    assert len(set(MODEL_IDS.values())) == len(MODEL_IDS)


# ------------------------------------------------------------------ the running services (photo model on)

def test_grpc_encode_picks_the_model_by_image_size(stubs, make_png):
    from sccdm import zoo
    tx = stubs["transmitter"]
    _, photo = make_png(96, 128, seed=5)
    _, small = make_png(32, 32, seed=5)
    f = _encode(tx, photo)
    assert f.info.model == PHOTO
    want = zoo.load(PHOTO).cfg.latent_shape(96, 128)  # the photo codec's latent, not sc-cdm-cpu's
    assert tuple(f.info.latent_shape) == tuple(want)
    assert _encode(tx, small).info.model == DEFAULT
    assert _encode(tx, photo, DEFAULT).info.model == DEFAULT           # an explicit name wins
    assert _encode(tx, small, PHOTO).info.model == PHOTO
    assert _encode(tx, photo, "deepjscc-cpu").info.model == "deepjscc-cpu"


def test_grpc_list_models_marks_the_photo_default(stubs):
    for svc in ("transmitter", "receiver"):
        models = {m.name: m for m in stubs[svc].ListModels(pb.ListModelsRequest(), timeout=10).models}
        assert [n for n, m in models.items() if m.is_photo_default] == [PHOTO], svc
        assert [n for n, m in models.items() if m.is_default] == [DEFAULT], svc


def test_rest_models_names_the_photo_default(http):
    r = http.get("/v1/models").json()
    assert r["default"] == DEFAULT and r["photo_default"] == PHOTO
    flags = {m["name"]: m["is_photo_default"] for m in r["models"]}
    assert flags[PHOTO] and not any(v for n, v in flags.items() if n != PHOTO)


def test_rest_transmit_reports_and_uses_the_photo_model(http, make_png):
    from sccdm import zoo
    data, _ = make_png(96, 128, seed=6)
    arr = decode_image_bytes(data)
    seed = 7
    r = http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                  data={"channel": "awgn", "snr_db": "10", "seed": str(seed), "refine": "false"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["model"] == PHOTO and not rep["refine"]
    # the decoded image is the photo model's, bit for bit
    x = image_to_tensor(arr)[None]
    ref = pipeline.simulate(zoo.load(PHOTO), x, ChannelConfig("awgn", 10.0), torch.Generator().manual_seed(seed),
                            refine=False)
    assert rep["channel_uses"] == ref["frame"].symbols.shape[1]
    assert rep["psnr_db"] == float(psnr(ref["x_hat"], x)[0])
    assert base64.b64decode(rep["image"]) == convert.png_bytes(ref["x_hat"])[0]

    small, _ = make_png(32, 32, seed=6)
    for img, model, want in ((small, "", DEFAULT), (data, DEFAULT, DEFAULT)):
        r = http.post("/v1/transmit", files={"image": ("x.png", img, "image/png")},
                      data={"snr_db": "10", "seed": "1", "refine": "false", "model": model})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == want


def test_rest_transmit_on_rayleigh_uses_the_fading_models(http, make_png):
    """The gateway tells the transmitter the request's channel: a photo on Rayleigh crosses with the
    Rayleigh-trained photo codec (bit for bit the in-process result), a thumbnail with sc-cdm-cpu-rayleigh."""
    from sccdm import zoo
    data, _ = make_png(96, 128, seed=11)
    x = image_to_tensor(decode_image_bytes(data))[None]
    r = http.post("/v1/transmit", files={"image": ("x.png", data, "image/png")},
                  data={"channel": "rayleigh", "snr_db": "5", "seed": "4", "refine": "false"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["model"] == FADING_PHOTO
    ref = pipeline.simulate(zoo.load(FADING_PHOTO), x, ChannelConfig("rayleigh", 5.0),
                            torch.Generator().manual_seed(4), refine=False)
    assert rep["psnr_db"] == float(psnr(ref["x_hat"], x)[0])
    small, _ = make_png(32, 32, seed=11)
    r = http.post("/v1/transmit", files={"image": ("x.png", small, "image/png")},
                  data={"channel": "rayleigh", "snr_db": "5", "seed": "4", "refine": "false"})
    assert r.status_code == 200 and r.json()["model"] == FADING, r.text
    listing = http.get("/v1/models").json()
    assert sorted(listing["channel_defaults"]["rayleigh"]) == sorted([FADING, FADING_PHOTO])
    assert listing["channel_defaults"]["rayleigh-fast"] == [FAST]


def test_rest_transmit_on_fast_fading_uses_the_fast_model(http, make_png):
    """The gateway passes the form's fading: a thumbnail on fast Rayleigh fading crosses with the
    per-symbol-fading codec, bit for bit the in-process result; a photo keeps the block-fading photo model."""
    from sccdm import zoo
    small, _ = make_png(32, 32, seed=13)
    x = image_to_tensor(decode_image_bytes(small))[None]
    r = http.post("/v1/transmit", files={"image": ("x.png", small, "image/png")},
                  data={"channel": "rayleigh", "fading": "fast", "snr_db": "5", "seed": "4", "refine": "false"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["model"] == FAST
    ref = pipeline.simulate(zoo.load(FAST), x, ChannelConfig("rayleigh", 5.0, fading="fast"),
                            torch.Generator().manual_seed(4), refine=False)
    assert rep["psnr_db"] == float(psnr(ref["x_hat"], x)[0])
    photo, _ = make_png(96, 128, seed=13)
    r = http.post("/v1/transmit", files={"image": ("x.png", photo, "image/png")},
                  data={"channel": "rayleigh", "fading": "fast", "snr_db": "5", "seed": "4", "refine": "false"})
    assert r.status_code == 200 and r.json()["model"] == FADING_PHOTO, r.text


def test_grpc_encode_rejects_an_unknown_channel(stubs, make_png):
    import grpc
    _, small = make_png(32, 32, seed=12)
    req = pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(small)), snr_db=10.0, channel="ricean")
    with pytest.raises(grpc.RpcError) as e:
        stubs["transmitter"].Encode(req, timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "channel must be one of" in e.value.details()
    req = pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(small)), snr_db=10.0, channel="rayleigh",
                           fading="slow")
    with pytest.raises(grpc.RpcError) as e:
        stubs["transmitter"].Encode(req, timeout=60)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "fading must be one of" in e.value.details()


def test_receiver_resolves_an_unnamed_frame_like_the_transmitter(stubs, make_png):
    _, photo = make_png(96, 128, seed=8)
    f = _encode(stubs["transmitter"], photo)
    rx = stubs["channel"].Transmit(pb.TransmitRequest(frame=f, channel=pb.ChannelParams(kind="awgn", snr_db=10,
                                                                                        seed=1)), timeout=60)
    rx.info.model = ""
    out = stubs["receiver"].Decode(pb.DecodeRequest(frame=rx, refine=False, want_png=True), timeout=120)
    assert out.model == PHOTO


# ------------------------------------------------------------------ photo model off

def test_empty_photo_model_turns_it_off(tmp_path, make_png):
    import grpc

    from sccdm.rpc import sccdm_pb2_grpc as g
    from sccdm.stack import Stack
    s = Stack(env={"SCCDM_DEVICE": "cpu", "SCCDM_PHOTO_MODEL": ""}, log_dir=tmp_path, metrics=False)
    s.start_service("transmitter")
    try:
        s.wait_service("transmitter", 240)
        with grpc.insecure_channel(s.addr("transmitter")) as ch:
            tx = g.TransmitterStub(ch)
            _, photo = make_png(96, 128, seed=9)
            assert _encode(tx, photo).info.model == DEFAULT
            assert _encode(tx, photo, PHOTO).info.model == PHOTO     # still servable by name
            models = tx.ListModels(pb.ListModelsRequest(), timeout=10).models
            assert not any(m.is_photo_default for m in models)
    finally:
        s.stop_service("transmitter")
