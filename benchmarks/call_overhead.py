"""Per-call cost of ``EngageClient.call`` with no network: an in-memory MockTransport.

Run from the repository root::

    python benchmarks/call_overhead.py [--calls 20000] [--repeat 7]

It measures the library's own work per call (argument check, rendering, reading the reply,
the call path) for ``userGetByEmail`` and ``membershipSubscribeByEmail``, and prints the
best and median microseconds per call. To compare two versions, run it against each (e.g.
``PYTHONPATH=/path/to/other/checkout python benchmarks/call_overhead.py``). A script, not a
test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import engage_soap
from engage_soap import EngageClient
from engage_soap.testing import HttpRequest, MockTransport
from engage_soap.transport import HttpReply

ECM = "http://ecircle.com/developer/ecmapi"
_ENV = '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>{}</S:Body></S:Envelope>'
REPLIES = {
    "userGetByEmail": _ENV.format(
        f'<ns2:userGetByEmailResponse xmlns:ns2="{ECM}"><user><id>33457</id>'
        "<email>j.mcexample@example.com</email><mobileNumber/><identifier>x</identifier>"
        "</user></ns2:userGetByEmailResponse>").encode(),
    "membershipSubscribeByEmail": _ENV.format(
        f'<ns2:membershipSubscribeByEmailResponse xmlns:ns2="{ECM}"/>').encode(),
}
CALLS: dict[str, dict[str, Any]] = {
    "userGetByEmail": {"email": "j.mcexample@example.com"},
    "membershipSubscribeByEmail": {"email": "j.mcexample@example.com", "groupId": 4711,
                                   "subscriptionMode": "OPT_IN"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"engage_soap from {engage_soap.__file__}")
    for operation, arguments in CALLS.items():
        reply = HttpReply(200, {"Content-Type": "text/xml"}, REPLIES[operation])

        def answer(_request: HttpRequest, reply: HttpReply = reply) -> HttpReply:
            return reply

        with EngageClient("https://engage.example.com/api/soap/v8/", "api", "secret",
                          transport=MockTransport(answer), rate_limit=None) as client:
            call: Any = client.call
            for _ in range(1000):  # warm up
                call(operation, **arguments)
            rounds = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                for _ in range(args.calls):
                    call(operation, **arguments)
                rounds.append((time.perf_counter() - start) / args.calls * 1e6)
        print(f"{operation:28s} best {min(rounds):7.2f} us/call   "
              f"median {statistics.median(rounds):7.2f} us/call")


if __name__ == "__main__":
    main()
