"""tensor <-> proto conversion, validation, and the dynamic batcher (no processes)."""
import asyncio
import math

import numpy as np
import pytest
import torch

from sccdm.rpc import sccdm_pb2 as pb
from sccdm.serving import convert
from sccdm.serving.batcher import DynamicBatcher
from sccdm.serving.config import ConfigError, ServiceConfig


@pytest.mark.parametrize("t", [
    torch.randn(2, 5, dtype=torch.complex64), torch.rand(1, 3, 4, 5), torch.randint(0, 255, (3, 4, 3), dtype=torch.uint8),
    torch.rand(2, 7) > 0.5])
def test_tensor_round_trip_is_bit_exact(t):
    back = convert.proto_to_tensor(convert.tensor_to_proto(t), "t")
    assert back.dtype == t.dtype and back.shape == t.shape and torch.equal(back, t)


def test_wrong_payload_length_is_refused_with_sizes():
    msg = convert.tensor_to_proto(torch.zeros(2, 8, dtype=torch.complex64))
    msg.data = msg.data[:-8]
    with pytest.raises(convert.InvalidInput, match=r"120 bytes .* needs 128"):
        convert.proto_to_tensor(msg, "frame.symbols")


def test_unknown_dtype_and_nan_are_refused():
    with pytest.raises(convert.InvalidInput, match="unknown dtype"):
        convert.proto_to_tensor(pb.Tensor(shape=[1], dtype="float64", data=b"\0" * 8), "x")
    z = torch.zeros(1, 4, dtype=torch.complex64)
    z[0, 2] = complex(math.nan, 0)
    with pytest.raises(convert.InvalidInput, match=r"NaN or infinite \(first at index \[0, 2\]\)"):
        convert.require_finite(z, "frame.symbols")


def test_uint8_images_convert_like_the_pipeline():
    from sccdm.data import image_to_tensor
    arr = np.random.default_rng(0).integers(0, 256, (2, 9, 11, 3), dtype=np.uint8)
    req = pb.EncodeRequest(tensor=convert.tensor_to_proto(torch.from_numpy(arr)), snr_db=3)
    assert torch.equal(convert.images_from_encode(req, 10**6), image_to_tensor(arr))
    with pytest.raises(convert.InvalidInput, match="limit is 50"):
        convert.images_from_encode(req, 50)


def test_env_config_defaults_and_errors():
    c = ServiceConfig.from_env("receiver", {})
    assert (c.port, c.metrics_port, c.max_batch, c.max_wait_ms, c.max_message_mb) == (50053, 9103, 16, 2.0, 64.0)
    assert ServiceConfig.from_env("gateway", {"SCCDM_PORT": "8123"}).port == 8123
    with pytest.raises(ConfigError, match="SCCDM_MAX_BATCH"):
        ServiceConfig.from_env("transmitter", {"SCCDM_MAX_BATCH": "many"})


def test_batcher_groups_by_key_caps_size_and_isolates_failures():
    calls = []

    def run(items):
        calls.append(list(items))
        if "bad" in items:
            raise RuntimeError("boom")
        return [i * 2 if isinstance(i, int) else i for i in items]

    async def main():
        b = DynamicBatcher(run, max_batch=3, max_wait_ms=20, key=lambda i: isinstance(i, int), name="test")
        res = await asyncio.gather(*(b.submit(i) for i in [1, 2, "a", 3, 4]), b.submit("bad"),
                                   return_exceptions=True)
        await b.close()
        return res

    res = asyncio.run(main())
    assert [r[0] for r in res[:5]] == [2, 4, "a", 6, 8]
    assert isinstance(res[5], RuntimeError)
    assert max(len(c) for c in calls) == 3                    # max_batch respected
    assert all(len({isinstance(i, int) for i in c}) == 1 for c in calls)  # keys never mixed
    assert res[0][1].requests == 3 and res[0][1].images == 3
    assert ["a", "bad"] in calls and ["a"] in calls and ["bad"] in calls  # failed batch retried one by one


def test_batcher_limit_per_key_keeps_large_images_apart():
    calls = []

    def run(items):
        calls.append(len(items))
        return items

    async def main():
        b = DynamicBatcher(run, max_batch=16, max_wait_ms=20, key=lambda i: i, name="test",
                           limit=lambda key: ServiceConfig("receiver").batch_limit(key, key))
        await asyncio.gather(*(b.submit(256) for _ in range(3)), *(b.submit(32) for _ in range(20)))
        await b.close()

    asyncio.run(main())
    assert sorted(calls) == [1, 1, 1, 4, 16]   # 256x256 alone; 32x32 up to max_batch


def test_batched_receiver_matches_single_requests(ref_model):
    """Per-request seeds survive batching: same noise draws, results equal up to float rounding."""
    from receiver.decode import RxItem, run_batch

    shape = ref_model.cfg.latent_shape(32, 32)
    k = shape[0] * shape[1] * shape[2] // 2
    g = torch.Generator().manual_seed(1)
    items = [RxItem("sc-cdm-cpu", torch.randn(1, k, generator=g).to(torch.complex64), None,
                    torch.tensor([0.1]), None, "none", shape, (32, 32), True, seed) for seed in (5, 6, 7)]
    alone = [run_batch(ref_model, [it], "cpu")[0] for it in items]
    together = run_batch(ref_model, items, "cpu")
    for a, b in zip(alone, together):
        assert torch.allclose(a["x_hat"], b["x_hat"], atol=1e-4)
        assert torch.allclose(a["s_hat"], b["s_hat"], atol=1e-4)
