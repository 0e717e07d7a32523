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
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable

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


class DynamicBatcher:
    """``await batcher.submit(item)`` -> ``(result, BatchStats)``.

    run_batch: ``list[item] -> list[result]`` (same order), called on the worker
    thread; key: ``item -> hashable``, only equal keys share a batch; size: ``item
    -> images it holds``; max_batch: images per batch (a single larger request
    still runs, alone); max_wait_ms: how long the first request of a batch may wait;
    limit: optional ``key -> most images per batch for that key`` (e.g. fewer large images).
    """

    def __init__(self, run_batch: Callable[[list], list], *, max_batch: int = 16, max_wait_ms: float = 2.0,
                 key: Callable[[Any], Hashable] = lambda item: None, size: Callable[[Any], int] = lambda item: 1,
                 name: str = "batcher", executor: ThreadPoolExecutor | None = None,
                 limit: Callable[[Hashable], int] | None = None):
        self.run_batch, self.key, self.size, self.name = run_batch, key, size, name
        self.limit = limit
        self.max_batch, self.max_wait = max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000.0
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-compute")
        self._queue: list[_Pending] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def _ensure_started(self):
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"{self.name}-loop")

    async def submit(self, item) -> tuple[Any, BatchStats]:
        self._ensure_started()
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(self.key(item), item, self.size(item), fut, time.perf_counter()))
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

    async def _run(self, loop, batch: list[_Pending]):
        t0 = time.perf_counter()
        try:
            results = await loop.run_in_executor(self.executor, self.run_batch, [p.item for p in batch])
            groups = [(batch, results)]
        except Exception as e:  # noqa: BLE001 - isolate the failing request
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(e)
                return
            groups = []
            for p in batch:
                try:
                    groups.append(([p], await loop.run_in_executor(self.executor, self.run_batch, [p.item])))
                except Exception as e1:  # noqa: BLE001
                    if not p.future.done():
                        p.future.set_exception(e1)
        compute_ms = (time.perf_counter() - t0) * 1000
        images = sum(p.size for p in batch)
        metrics.BATCH_SIZE.labels(self.name).observe(images)
        metrics.BATCH_REQUESTS.labels(self.name).observe(len(batch))
        for members, results in groups:
            for p, r in zip(members, results):
                q = (t0 - p.t_enqueued) * 1000
                metrics.QUEUE_WAIT.labels(self.name).observe(q / 1000)
                if not p.future.done():
                    p.future.set_result((r, BatchStats(q, compute_ms, len(batch), images)))
