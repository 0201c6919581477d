"""AsyncEngageClient: loop latency and throughput of concurrent calls (not a test).

Run from the repository root::

    python benchmarks/async_client.py [--calls 100] [--rounds 5]

A sandbox runs in a separate process (no shared GIL), once without latency and once with
50 ms per reply (closer to a real tenant). For each setting: ``calls`` concurrent
``contact_get`` gathered on one loop, while a heartbeat task ticks every 5 ms and records
how late each tick woke (the loop's stall). Peers: AsyncEngageClient with 8 and 16
workers, and ``asyncio.to_thread(sync_client.contact_get)`` on the loop's default
executor; the sync client called in a plain loop gives the one-thread baseline. Also: the
loop's stall while ``AsyncEngageClient.create`` loads the bundled WSDL (first client in
the process), and while ``aclose`` stops the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from engage_soap import AsyncEngageClient, EngageClient
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

CONTACT = 33457


def _serve(latency: float, urls: Any, stop: Any) -> None:
    with Sandbox(rate_limit=None, latency=latency) as sb:
        urls.put(sb.url)
        stop.wait()


class Beat:
    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.lags.append(time.perf_counter() - before - 0.005)


async def _measure(work: Callable[[], Awaitable[Any]]) -> tuple[float, float, float]:
    """(seconds, worst stall ms, p99 stall ms) of ``work`` under a heartbeat."""
    beat = Beat()
    task = asyncio.create_task(beat.run())
    await asyncio.sleep(0.02)
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    task.cancel()
    lags = sorted(beat.lags) or [0.0]
    return elapsed, lags[-1] * 1000, lags[int(len(lags) * 0.99)] * 1000


def _row(name: str, runs: list[tuple[float, float, float]], calls: int) -> None:
    secs = statistics.median(r[0] for r in runs)
    worst, p99 = max(r[1] for r in runs), statistics.median(r[2] for r in runs)
    print(f"  {name:<34} {calls / secs:8.0f} calls/s   worst stall {worst:5.1f} ms   "
          f"p99 {p99:4.1f} ms")


def bench(url: str, calls: int, rounds: int) -> None:
    sync = EngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, rate_limit=None)
    sync.api_version()
    started = time.perf_counter()
    for _ in range(calls):
        sync.contact_get(contact_id=CONTACT)
    print(f"  {'sync client, one thread':<34} {calls / (time.perf_counter() - started):8.0f} "
          "calls/s")

    async def gather(call: Callable[[], Awaitable[Any]]) -> None:
        await asyncio.gather(*(call() for _ in range(calls)))

    for workers in (8, 16):
        client = AsyncEngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, rate_limit=None,
                                   max_workers=workers)

        async def run(c: AsyncEngageClient = client) -> list[tuple[float, float, float]]:
            await c.api_version()
            out = [await _measure(lambda: gather(lambda: c.contact_get(contact_id=CONTACT)))
                   for _ in range(rounds)]
            closing = await _measure(c.aclose)
            print(f"  (aclose with {c.max_workers} workers: worst stall {closing[1]:.1f} ms)")
            return out

        _row(f"AsyncEngageClient, {workers} workers", asyncio.run(run()), calls)

    async def to_thread() -> list[tuple[float, float, float]]:
        return [await _measure(lambda: gather(
            lambda: asyncio.to_thread(sync.contact_get, contact_id=CONTACT)))
            for _ in range(rounds)]

    _row("asyncio.to_thread(sync client)", asyncio.run(to_thread()), calls)
    sync.close()


async def _create(url: str) -> None:
    client: AsyncEngageClient | None = None

    async def make() -> None:
        nonlocal client
        client = await AsyncEngageClient.create(url, DEFAULT_USERNAME, DEFAULT_PASSWORD)

    took = await _measure(make)
    print(f"create() from the bundled WSDL: {took[0] * 1000:.0f} ms, worst loop "
          f"stall {took[1]:.1f} ms")
    assert client is not None
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    for latency in (0.0, 0.05):
        urls, stop = ctx.Queue(), ctx.Event()
        server = ctx.Process(target=_serve, args=(latency, urls, stop), daemon=True)
        server.start()
        url = urls.get(timeout=30)
        if latency == 0.0:
            asyncio.run(_create(url))
        print(f"{args.calls} concurrent contact_get, sandbox latency {latency * 1000:.0f} ms "
              f"(median of {args.rounds} rounds):")
        bench(url, args.calls, args.rounds)
        stop.set()
        server.join()


if __name__ == "__main__":
    main()
