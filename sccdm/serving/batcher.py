"""Dynamic batching: requests that arrive close together share one model call.

The event loop collects requests with the same batch key (same model, image
geometry, ...) until ``max_batch`` images are waiting or the first one has waited
``max_wait_ms``, then runs ``run_batch`` on one worker thread (torch releases the
GIL, so the loop keeps accepting requests meanwhile). While a batch computes,
new requests queue up and form the next batch, so under load batches grow on
their own and an idle service answers after at most ``max_wait_ms``.

Requests whose caller has gone (deadline passed, client cancelled) are dropped
before computing. If a batch fails, its requests are retried one by one so one
bad request cannot fail its neighbours.

Admission control: a batcher with ``max_queue_cost`` refuses a request at once
(:class:`Overloaded`, answered RESOURCE_EXHAUSTED with a retry-after hint) when
the work already waiting would pass that cost, instead of letting the queue
grow past every deadline. :class:`LanedBatcher` gives large requests their own
batcher and compute thread, so a 2048x2048 image does not hold up 32x32 ones.
"""
from __future__ import annotations

import asyncio
import bisect
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from .. import cancel
from . import metrics


@dataclass
class BatchStats:
    queue_ms: float
    compute_ms: float
    requests: int
    images: int


@dataclass
class _Pending:
    key: Hashable
    item: Any
    size: int
    future: asyncio.Future
    t_enqueued: float
    cost: float = 1.0


class Overloaded(RuntimeError):
    """The queue is full: try again in about ``retry_after_s`` seconds."""

    def __init__(self, msg: str, retry_after_s: int):
        super().__init__(msg)
        self.retry_after_s = retry_after_s


class DynamicBatcher:
    """``await batcher.submit(item)`` -> ``(result, BatchStats)``.

    run_batch: ``list[item] -> list[result]`` (same order), called on the worker
    thread; key: ``item -> hashable``, only equal keys share a batch; size: ``item
    -> images it holds``; max_batch: images per batch (a single larger request
    still runs, alone); max_wait_ms: how long the first request of a batch may wait;
    limit: optional ``key -> most images per batch for that key`` (e.g. fewer large images);
    cost: ``item -> work it brings`` (e.g. pixels; default: its size); max_queue_cost: most
    cost waiting (not yet computing) before new requests get :class:`Overloaded` (0 = no bound;
    a request larger than the bound is still taken when nothing waits).
    """

    def __init__(self, run_batch: Callable[[list], list], *, max_batch: int = 16, max_wait_ms: float = 2.0,
                 key: Callable[[Any], Hashable] = lambda item: None, size: Callable[[Any], int] = lambda item: 1,
                 name: str = "batcher", executor: ThreadPoolExecutor | None = None,
                 limit: Callable[[Hashable], int] | None = None, cost: Callable[[Any], float] | None = None,
                 max_queue_cost: float = 0.0):
        self.run_batch, self.key, self.size, self.name = run_batch, key, size, name
        self.limit, self.cost, self.max_queue_cost = limit, cost or size, float(max_queue_cost)
        self._sec_per_cost = 0.0  # running estimate, for the retry-after hint
        self.max_batch, self.max_wait = max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000.0
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-compute")
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def _ensure_started(self):
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"{self.name}-loop")

    def queued_cost(self) -> float:
        return sum(p.cost for p in self._queue if not p.future.done())

    def _admit(self, cost: float) -> None:
        waiting = self.queued_cost()
        if self.max_queue_cost > 0 and waiting > 0 and waiting + cost > self.max_queue_cost:
            metrics.REJECTED.labels(self.name).inc()
            retry = int(min(60, max(1, math.ceil(waiting * self._sec_per_cost))))
            raise Overloaded(f"{self.name} is busy: {waiting:.0f} units of work are already waiting (limit "
                             f"{self.max_queue_cost:.0f}, SCCDM_MAX_QUEUE_PIXELS); retry in about {retry} s",
                             retry)

    async def submit(self, item) -> tuple[Any, BatchStats]:
        """Queue ``item`` and wait for its result; :class:`Overloaded` at once when the queue is full."""
        cost = float(self.cost(item))
        self._admit(cost)
        self._ensure_started()
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(self.key(item), item, self.size(item), fut, time.perf_counter(), cost))
        self._wake.set()
        return await fut

    async def close(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for p in self._queue:
            if not p.future.done():
                p.future.cancel()
        self._queue.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _cap(self, key) -> int:
        return max(1, min(self.max_batch, self.limit(key))) if self.limit is not None else self.max_batch

    def _take(self) -> list[_Pending]:
        """Pop the first live request and those with its key, up to max_batch images."""
        self._queue = [p for p in self._queue if not p.future.done()]
        if not self._queue:
            return []
        first = self._queue[0]
        cap = self._cap(first.key)
        batch, n, rest = [], 0, []
        for p in self._queue:
            if p.key == first.key and (not batch or n + p.size <= cap):
                batch.append(p)
                n += p.size
            else:
                rest.append(p)
        self._queue = rest
        return batch

    def _ready_images(self, key) -> int:
        return sum(p.size for p in self._queue if p.key == key and not p.future.done())

    async def _loop(self):
        loop = asyncio.get_running_loop()
        while True:
            while not any(not p.future.done() for p in self._queue):
                self._queue.clear()
                self._wake.clear()
                await self._wake.wait()
            first = next(p for p in self._queue if not p.future.done())
            deadline = first.t_enqueued + self.max_wait
            cap = self._cap(first.key)
            while self._ready_images(first.key) < cap and not first.future.done():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            await self._run(loop, batch)

    def _call(self, batch: list[_Pending]) -> list:
        """run_batch on the worker thread; long work (tiles) stops once every caller of the batch has gone."""
        with cancel.checking(lambda: all(p.future.done() for p in batch)):
            return self.run_batch([p.item for p in batch])

    async def _run(self, loop, batch: list[_Pending]):
        t0 = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, self._call, batch)
            groups = [(batch, results)]
        except cancel.Cancelled:
            metrics.ABANDONED.labels(self.name).inc()
            return
        except Exception as e:  # noqa: BLE001 - isolate the failing request
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(e)
                return
            groups = []
            for p in batch:
                try:
                    groups.append(([p], await loop.run_in_executor(self.executor, self._call, [p])))
                except Exception as e1:  # noqa: BLE001
                    if not p.future.done():
                        p.future.set_exception(e1)
        compute_ms = (time.perf_counter() - t0) * 1000
        images = sum(p.size for p in batch)
        rate = compute_ms / 1000 / max(1e-9, sum(p.cost for p in batch))
        self._sec_per_cost = rate if self._sec_per_cost == 0 else 0.7 * self._sec_per_cost + 0.3 * rate
        metrics.BATCH_SIZE.labels(self.name).observe(images)
        metrics.BATCH_REQUESTS.labels(self.name).observe(len(batch))
        for members, results in groups:
            for p, r in zip(members, results):
                q = (t0 - p.t_enqueued) * 1000
                metrics.QUEUE_WAIT.labels(self.name).observe(q / 1000)
                if not p.future.done():
                    p.future.set_result((r, BatchStats(q, compute_ms, len(batch), images)))


class LanedBatcher:
    """Several :class:`DynamicBatcher` lanes, each with its own compute thread; ``lane(item)`` picks one.

    ``LanedBatcher({"small": b1, "large": b2}, lane=lambda it: "large" if pixels(it) > n else "small")``
    """

    def __init__(self, lanes: dict[str, DynamicBatcher], lane: Callable[[Any], str]):
        self.lanes, self.lane = lanes, lane

    async def submit(self, item) -> tuple[Any, BatchStats]:
        return await self.lanes[self.lane(item)].submit(item)

    async def close(self):
        for b in self.lanes.values():
            await b.close()


def service_batcher(run_batch, cfg, *, name: str, key, size, pixels, limit) -> LanedBatcher:
    """The transmitter's / receiver's batcher: one lane per size class (cfg.lane_pixels bounds, e.g.
    up to 128^2, up to 512^2, larger), each with its own compute thread and refusing work past
    cfg.max_queue_pixels waiting. Lane names: ``name``, ``name-1``, ``name-2``, ... (metrics labels).

    pixels: ``item -> H * W`` of one image of the item.
    """
    bounds = tuple(cfg.lane_pixels)
    common = dict(key=key, size=size, limit=limit, cost=lambda it: size(it) * pixels(it),
                  max_queue_cost=cfg.max_queue_pixels, max_wait_ms=cfg.max_wait_ms, max_batch=cfg.max_batch)
    names = [name] + [f"{name}-{i}" for i in range(1, len(bounds) + 1)]
    lanes = {n: DynamicBatcher(run_batch, name=n, **common) for n in names}
    return LanedBatcher(lanes, lambda it: names[bisect.bisect_left(bounds, pixels(it))])
