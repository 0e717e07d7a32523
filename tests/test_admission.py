"""Admission control and lanes of the dynamic batcher (no processes): a full queue refuses at once with a
retry-after hint, cancelled work is never computed, and a large request does not hold up small ones."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sccdm.serving.batcher import DynamicBatcher, LanedBatcher, Overloaded, service_batcher
from sccdm.serving.config import ServiceConfig


def _slow(seconds: float, log: list | None = None):
    def run(items):
        if log is not None:
            log.append(list(items))
        time.sleep(seconds)
        return items
    return run


def test_full_queue_refuses_at_once_with_retry_after():
    async def main():
        b = DynamicBatcher(_slow(0.3), max_batch=1, max_wait_ms=0, name="t", cost=lambda i: i, max_queue_cost=10)
        first = asyncio.ensure_future(b.submit(4))       # computing: not counted as waiting
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(b.submit(4)) for _ in range(2)]   # 8 units waiting
        await asyncio.sleep(0)
        t0 = time.perf_counter()
        with pytest.raises(Overloaded) as e:
            await b.submit(4)                              # 8 + 4 > 10
        refused_in = time.perf_counter() - t0
        done = await asyncio.gather(first, *waiting)
        await b.close()
        return e.value, refused_in, done

    err, refused_in, done = asyncio.run(main())
    assert refused_in < 0.05                       # not after the queue drained
    assert 1 <= err.retry_after_s <= 60 and "SCCDM_MAX_QUEUE_PIXELS" in str(err)
    assert [d[0] for d in done] == [4, 4, 4]       # the admitted ones all finish


def test_one_request_larger_than_the_bound_still_runs_when_nothing_waits():
    async def main():
        b = DynamicBatcher(_slow(0.0), max_batch=1, name="t", cost=lambda i: i, max_queue_cost=10)
        r = await b.submit(100)
        await b.close()
        return r

    assert asyncio.run(main())[0] == 100


def test_cancelled_requests_are_never_computed():
    log = []

    async def main():
        b = DynamicBatcher(_slow(0.2, log), max_batch=1, max_wait_ms=0, name="t")
        first = asyncio.ensure_future(b.submit("a"))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(b.submit("gone"))     # waits behind "a"
        await asyncio.sleep(0.01)
        gone.cancel()                                      # the client left / deadline passed
        last = await b.submit("c")
        await first
        await b.close()
        return last

    assert asyncio.run(main())[0] == "c"
    assert ["gone"] not in log and log == [["a"], ["c"]]


def test_large_lane_does_not_hold_up_small_requests():
    cfg = ServiceConfig("receiver", lane_pixels=(64 * 64,), max_wait_ms=0)
    busy = threading.Event()

    def run(items):
        if items[0] > 64 * 64:        # the large image: 1.5 s of compute
            busy.set()
            time.sleep(1.5)
        return items

    async def main():
        b = service_batcher(run, cfg, name="t", key=lambda i: i, size=lambda i: 1, pixels=lambda i: i,
                            limit=lambda key: 16)
        assert isinstance(b, LanedBatcher)
        big = asyncio.ensure_future(b.submit(2048 * 2048))
        while not busy.is_set():
            await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        await asyncio.gather(*(b.submit(32 * 32) for _ in range(8)))
        small_s = time.perf_counter() - t0
        await big
        await b.close()
        return small_s

    assert asyncio.run(main()) < 0.5   # while the large one still computes


def test_default_lanes_split_thumbnails_photos_and_large_photos():
    from sccdm.serving.config import ConfigError

    cfg = ServiceConfig.from_env("receiver", {})
    b = service_batcher(lambda items: items, cfg, name="rx", key=lambda i: i, size=lambda i: 1,
                        pixels=lambda i: i, limit=lambda key: 16)
    assert [b.lane(s * s) for s in (32, 128, 256, 512, 1024, 2048)] == ["rx", "rx", "rx-1", "rx-1", "rx-2", "rx-2"]
    assert ServiceConfig.from_env("receiver", {"SCCDM_LANE_PIXELS": "4096"}).lane_pixels == (4096,)
    with pytest.raises(ConfigError, match="SCCDM_LANE_PIXELS"):
        ServiceConfig.from_env("receiver", {"SCCDM_LANE_PIXELS": "big"})
