"""Faults under load: the receiver process is killed in the middle of a run of concurrent requests.

During the outage every request ends with a 503 and a message (none hangs past its deadline,
none gets another 5xx); once the receiver is back, the gateway is ready again within 5 s and
every later request succeeds."""
from __future__ import annotations

import asyncio
import time

import httpx

CLIENTS = 4
READY_WITHIN_S = 5.0
OUTAGE_FAIL_FAST_S = 10.0   # a request to a dead backend fails at once, far inside SCCDM_REQUEST_TIMEOUT_S


async def one(client, data, log):
    t0 = time.monotonic()
    try:
        r = await client.post("/v1/transmit", files={"image": ("x.png", data)},
                              data={"seed": "2", "refine": "false", "snr_db": "10"})
        body = r.json()
        log.append((t0, time.monotonic() - t0, r.status_code, body.get("detail", "")))
    except httpx.TimeoutException:
        log.append((t0, time.monotonic() - t0, "timeout", ""))


async def load(url, data, log, stop: asyncio.Event, timeout_s: float):
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s) as client:
        async def worker():
            while not stop.is_set():
                await one(client, data, log)
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))


def test_receiver_killed_mid_load_then_restarted(stack, make_png):
    data, _ = make_png(32, 32)
    timeout_s = float(stack.env.get("SCCDM_REQUEST_TIMEOUT_S", 60)) + 5

    async def scenario():
        log: list = []
        stop = asyncio.Event()
        runner = asyncio.ensure_future(load(stack.gateway_url, data, log, stop, timeout_s))
        while sum(1 for e in log if e[2] == 200) < 4:            # the stack is working under load
            await asyncio.sleep(0.05)
        t_kill = time.monotonic()
        stack.procs["receiver"].kill()                              # a crash, not a graceful stop
        await asyncio.to_thread(stack.procs["receiver"].wait, 10)
        while sum(1 for e in log if e[0] > t_kill + 0.2 and e[2] == 503) < 6:
            assert time.monotonic() - t_kill < 30, "no 503s during the outage"
            await asyncio.sleep(0.05)
        t_restart = time.monotonic()
        await asyncio.to_thread(stack.start_service, "receiver")
        await asyncio.to_thread(stack.wait_service, "receiver", 120)  # SERVING over gRPC health
        t_back = time.monotonic()
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=5) as c:
            while (await c.get("/readyz")).status_code != 200:
                assert time.monotonic() - t_back < READY_WITHIN_S, "gateway not ready 5 s after the receiver"
                await asyncio.sleep(0.1)
        t_ready = time.monotonic()
        while sum(1 for e in log if e[0] > t_ready) < 3 * CLIENTS:  # keep the load on after recovery
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(runner, timeout_s)
        return log, t_kill, t_restart, t_ready

    log, t_kill, t_restart, t_ready = asyncio.run(scenario())
    statuses = [e[2] for e in log]
    assert "timeout" not in statuses, "a request hung past its deadline"
    assert set(statuses) <= {200, 503}, statuses
    # started after the kill, ended before the new receiver process was started
    outage = [e for e in log if t_kill + 0.2 < e[0] and e[0] + e[1] < t_restart]
    assert outage and all(e[2] == 503 for e in outage)
    for _, dt, _, detail in outage:
        assert "receiver" in detail and "unavailable" in detail, detail
        assert dt < OUTAGE_FAIL_FAST_S, dt
    after = [e for e in log if e[0] > t_ready]
    assert len(after) >= 3 * CLIENTS and all(e[2] == 200 for e in after), after
    assert not stack.dead(), stack.dead()
