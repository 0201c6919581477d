"""Bulk sending at the account's rate: wall time against the physical minimum.

Run from the repository root::

    python benchmarks/bulk.py [--recipients 500] [--latency 0.3] [--rate 10] [--workers 8]

A sandbox in another process answers every call after ``--latency`` seconds and throttles
above ``--rate`` calls per second, like the real service; it is seeded with the
recipients. ``send_bulk`` then looks each one up and sends (2 calls per recipient). The
physical minimum is ``2 * recipients / rate`` seconds; the target is within 1.1x of it with
zero throttle faults. A script, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = r"""
import json, sys
from engage_soap.sandbox import Sandbox
n, latency, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
sb = Sandbox(rate_limit=rate, latency=latency)
for i in range(n):
    sb.state.add_contact(email_address=f"bulk{i}@example.com", save=False)
sb.start()
print(sb.url, flush=True)
sys.stdin.read()
calls = sb.state.calls
print(json.dumps({"calls": len(calls), "outbox": len(sb.state.outbox),
      "distinct": len({e.recipient_id for e in sb.state.outbox}),
      "non_200": sum(c.status != 200 for c in calls)}), flush=True)
sb.stop()
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipients", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.3)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)

    from engage_soap import EngageClient
    from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME

    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(args.recipients),
                             str(args.latency), str(args.rate)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    url = proc.stdout.readline().strip()
    emails = [f"bulk{i}@example.com" for i in range(args.recipients)]
    with tempfile.TemporaryDirectory() as tmp, EngageClient(
            url, DEFAULT_USERNAME, DEFAULT_PASSWORD, rate_limit=args.rate) as client:
        started = time.monotonic()
        report = client.send_bulk(23541, emails, journal=Path(tmp) / "job.sqlite",
                                  workers=args.workers)
        elapsed = time.monotonic() - started
    proc.stdin.close()
    server = json.loads(proc.stdout.readline())
    proc.wait(10)
    minimum = 2 * args.recipients / args.rate
    figures = {"recipients": args.recipients, "latency_s": args.latency, "rate": args.rate,
               "workers": args.workers, "wall_s": round(elapsed, 2),
               "minimum_s": minimum, "ratio": round(elapsed / minimum, 3),
               "calls_per_s": round(server["calls"] / elapsed, 2),
               "sent": report.sent, "failed": report.failed, "unknown": report.unknown,
               "server": server}
    print(f"{args.recipients} recipients, {args.latency * 1000:.0f} ms per call, "
          f"rate {args.rate:g}/s, {args.workers} workers: {elapsed:.1f} s wall, minimum "
          f"{minimum:.0f} s -> {elapsed / minimum:.3f}x; {server['calls']} calls "
          f"({figures['calls_per_s']}/s), {server['non_200']} non-200 replies (throttle "
          f"faults), sent {report.sent}, outbox {server['outbox']} to "
          f"{server['distinct']} distinct recipients")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
