"""Where a call's time goes: the same call peeled layer by layer, CPU per call.

Run from the repository root::

    python benchmarks/layers.py [contactGet|messageSendSingle] [minimal|parsing] [--rounds 12]

Against one of bench.py's servers (in a process of its own), interleaved in rounds, CPU
(``time.process_time``) and wall medians per call of:

* ``http.client``   the floor: a pre-rendered envelope, the reply parsed with lxml;
* ``raw urllib3``   the same through a urllib3 HTTPConnectionPool;
* ``transport``     the same through our HttpTransport (deadline watch, bounded read);
* ``+ envelope``    our own envelope rendered and our reply reader, on that transport;
* ``wire.call``     the SOAP wire (adds the exchange record);
* ``facade``        EngageClient.contact_get / message_send_single (rate limit off).

To peel the layers apart it reaches into the client's wire (private attributes): a
measuring script, not an example. Nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", nargs="?", default="messageSendSingle",
                        choices=["contactGet", "messageSendSingle"])
    parser.add_argument("server", nargs="?", default="minimal", choices=["minimal", "parsing"])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--calls", type=int, default=400, help="calls per peer per round")
    args = parser.parse_args(argv)

    import http.client

    import urllib3

    from engage_soap import EngageClient
    from engage_soap.envelope import read_reply, render_request
    from engage_soap.transport import HttpTransport

    op = args.operation
    contact = op == "contactGet"
    envelope = bench._contact_envelope() if contact else bench._send_envelope()
    parse = bench._lxml_contact if contact else bench._lxml_send
    auth = "Basic " + base64.b64encode(f"{bench.USER}:{bench.PASSWORD}".encode()).decode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""',
               "Authorization": auth}
    arguments: dict[str, Any] = (
        {"identifier": {"type": "EMAIL", "value": bench.EMAIL}} if contact else
        {"messageId": 23541, "recipientId": 4711, "additionalContent": {
            "parameters": [{"name": k, "value": v} for k, v in bench.PARAMS.items()],
            "attachments": []}})
    with bench.Server(args.server) as url:
        parts = urlsplit(url)
        floor = http.client.HTTPConnection(parts.hostname or "", parts.port)
        pool = urllib3.HTTPConnectionPool(parts.hostname or "", parts.port, maxsize=1)
        transport = HttpTransport()
        client = EngageClient(url, bench.USER, bench.PASSWORD, rate_limit=None)
        wire: Any = client._wire
        plan, send_headers = wire._ops[op], wire._send_headers[op]

        def floor_call() -> None:
            floor.request("POST", parts.path, envelope, headers)
            parse(floor.getresponse().read())

        def facade() -> None:
            if contact:
                client.contact_get(email=bench.EMAIL)
            else:
                client.message_send_single(23541, 4711, parameters=bench.PARAMS)

        def ours() -> None:
            reply = wire._http.request("POST", url, render_request(plan, arguments),
                                       send_headers)
            read_reply(plan, reply.status, reply.body)

        peers: list[tuple[str, Callable[[], None]]] = [
            ("http.client", floor_call),
            ("raw urllib3", lambda: parse(pool.urlopen("POST", parts.path, envelope, headers,
                                                       retries=False).data)),
            ("transport", lambda: parse(transport.request("POST", url, envelope,
                                                          headers).body)),
            ("+ envelope", ours),
            ("wire.call", lambda: wire.call(op, arguments)),
            ("facade", facade),
        ]
        for _, fn in peers:  # warm up connections and caches
            for _ in range(args.calls):
                fn()
        cpu: dict[str, list[float]] = {name: [] for name, _ in peers}
        wall: dict[str, list[float]] = {name: [] for name, _ in peers}
        for _ in range(args.rounds):
            for name, fn in peers:
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(args.calls):
                    fn()
                cpu[name].append((time.process_time() - c0) / args.calls)
                wall[name].append((time.perf_counter() - w0) / args.calls)
        print(f"{op}, {args.server} server: microseconds per call (medians of "
              f"{args.rounds} rounds of {args.calls})")
        base = statistics.median(cpu["raw urllib3"])
        for name, _ in peers:
            c = statistics.median(cpu[name])
            w = statistics.median(wall[name])
            print(f"  {name:12s} cpu {c * 1e6:7.1f}  wall {w * 1e6:7.1f}"
                  f"  cpu over raw urllib3 {(c - base) * 1e6:+7.1f}")
        floor.close()
        pool.close()
        transport.close()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
