"""Per-call cost of engage_soap's facade against plain zeep, raw requests and http.client.

Run from the repository root::

    python benchmarks/bench.py [--calls 2000] [--json benchmarks/results/latest.json]

Everything runs against local keep-alive HTTP/1.1 servers on loopback that live in a
separate process (so they share no GIL with the measured client), each peer against each:

* ``minimal``  answers every request with one pre-built reply written in a single
               ``sendall`` on a TCP_NODELAY socket (what the client alone costs);
* ``parsing``  a stdlib ``http.server`` handler that reads the request, parses the
               envelope with lxml and writes the reply, as real servers do.

The peers are measured side by side in one process, interleaved in rounds so drift hits
all alike:

* ``facade``      EngageClient.contact_get / message_send_single (rate limit off);
* ``zeep``        plain zeep: ``zeep.Client(wsdl/ecmapi.wsdl)`` with a default Transport
                  over a requests session with basic auth, bound with ``create_service``;
* ``requests``    a requests.Session POSTing a pre-rendered envelope, reply read with lxml;
* ``urllib3``     a urllib3 HTTPConnectionPool with the same envelope and lxml read (the
                  stack the facade itself uses, without anything of ours);
* ``httpclient``  http.client keep-alive with the same envelope and lxml read (the floor).

Also measured, each in a fresh interpreter: client construction from the bundled WSDL
(first and second client in one process), ``engage-soap --help`` wall time, and RSS over
10,000 facade calls. This is a script, not a test: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WSDL = ROOT / "wsdl" / "ecmapi.wsdl"
ECM = "http://ecircle.com/developer/ecmapi"
USER, PASSWORD = "bench-api", "bench-secret"
EMAIL = "j.mcexample@example.com"
PARAMS = {"firstname": "Jo", "voucher": "ABC-123", "city": "Munich"}

# ---------------------------------------------------------------------------- server

_ATTRS = "".join(f"<attributes><name>attr{i}</name><value>value {i}</value></attributes>"
                 for i in range(5))
CONTACT_REPLY = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
    f'<ns2:contactGetResponse xmlns:ns2="{ECM}"><contact><contactId>4711</contactId>'
    f"<emailAddress>{EMAIL}</emailAddress>{_ATTRS}</contact></ns2:contactGetResponse>"
    "</S:Body></S:Envelope>").encode()
SEND_REPLY = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
    f'<ns2:messageSendSingleResponse xmlns:ns2="{ECM}"/></S:Body></S:Envelope>').encode()


def _response(body: bytes) -> bytes:
    head = ("HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


def _serve_connection(conn: socket.socket, replies: dict[bytes, bytes]) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            body, buf = buf[:length], buf[length:]
            key = b"contactGet" if b"contactGet" in body else b"messageSendSingle"
            conn.sendall(replies[key])  # headers and body in ONE write
    except OSError:
        return
    finally:
        conn.close()


def serve_parsing() -> None:
    """Run the parsing server (stdlib http.server + lxml); print the port, serve until
    stdin closes."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from lxml import etree

    replies = {f"{{{ECM}}}contactGet": CONTACT_REPLY,
               f"{{{ECM}}}messageSendSingle": SEND_REPLY}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Tomcat and other real servers do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = replies[etree.fromstring(body)[0][0].tag]
            self.send_response(200)
            self.send_header("Content-Type", "text/xml;charset=utf-8")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()


def serve() -> None:
    """Run the minimal reply server; print the port, serve until stdin closes."""
    replies = {b"contactGet": _response(CONTACT_REPLY),
               b"messageSendSingle": _response(SEND_REPLY)}
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)

    def accept() -> None:
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=_serve_connection, args=(conn, replies),
                             daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print(lsock.getsockname()[1], flush=True)
    sys.stdin.read()  # the parent closes stdin to stop us


class Server:
    """A reply server (``minimal`` or ``parsing``) in a child process."""

    def __init__(self, kind: str = "minimal") -> None:
        self.kind = kind

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", self.kind],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        port = int(self.proc.stdout.readline())
        return f"http://127.0.0.1:{port}/api/soap/v8/"

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# ---------------------------------------------------------------------------- peers

Call = Callable[[], Any]


def _contact_envelope() -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv='
            '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            f'<ecm:contactGet xmlns:ecm="{ECM}"><identifier><type>EMAIL</type>'
            f"<value>{EMAIL}</value></identifier></ecm:contactGet></soapenv:Body>"
            "</soapenv:Envelope>").encode()


def _send_envelope() -> bytes:
    params = "".join(f"<parameters><name>{k}</name><value>{v}</value></parameters>"
                     for k, v in PARAMS.items())
    return ('<?xml version="1.0" encoding="utf-8"?><soapenv:Envelope xmlns:soapenv='
            '"http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            f'<ecm:messageSendSingle xmlns:ecm="{ECM}"><messageId>23541</messageId>'
            "<recipientId>4711</recipientId><additionalContent>"
            f"{params}</additionalContent></ecm:messageSendSingle></soapenv:Body>"
            "</soapenv:Envelope>").encode()


def _lxml_contact(data: bytes) -> dict[str, Any]:
    """A direct lxml read of the contact, as a hand-rolled client would do it."""
    from lxml import etree

    root = etree.fromstring(data)
    contact = root[0][0].find("contact")
    assert contact is not None
    return {"id": int(contact.findtext("contactId") or 0),
            "email": contact.findtext("emailAddress"),
            "attributes": {a.findtext("name"): a.findtext("value")
                           for a in contact.iterfind("attributes")}}


def _lxml_send(data: bytes) -> None:
    from lxml import etree

    root = etree.fromstring(data)
    assert root[0][0].tag == f"{{{ECM}}}messageSendSingleResponse"


def make_peers(url: str) -> tuple[dict[str, dict[str, Call]], Callable[[], None]]:
    """The four peers' calls for each operation, and a function that closes them all."""
    import http.client
    from urllib.parse import urlsplit

    import requests
    import urllib3
    import zeep
    from zeep.transports import Transport

    from engage_soap import EngageClient

    facade = EngageClient(url, USER, PASSWORD, rate_limit=None)

    zsession = requests.Session()
    zsession.auth = (USER, PASSWORD)
    zclient = zeep.Client(str(WSDL), transport=Transport(session=zsession))
    zservice = zclient.create_service(f"{{{ECM}}}EcmWSPortBinding", url)

    rsession = requests.Session()
    rsession.auth = (USER, PASSWORD)
    soap_headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    contact_env, send_env = _contact_envelope(), _send_envelope()

    parts = urlsplit(url)
    hconn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    h_headers = dict(soap_headers, Authorization=auth)

    def raw_requests(body: bytes) -> bytes:
        resp = rsession.post(url, data=body, headers=soap_headers, timeout=30)
        resp.raise_for_status()
        return resp.content

    upool = urllib3.HTTPConnectionPool(parts.hostname or "", parts.port, maxsize=1)

    def raw_urllib3(body: bytes) -> bytes:
        resp = upool.urlopen("POST", parts.path, body, h_headers, retries=False)
        assert resp.status == 200
        return bytes(resp.data)

    def raw_http(body: bytes) -> bytes:
        hconn.request("POST", parts.path, body, h_headers)
        resp = hconn.getresponse()
        data = resp.read()
        assert resp.status == 200
        return data

    params = [{"name": k, "value": v} for k, v in PARAMS.items()]
    peers = {
        "contactGet": {
            "facade": lambda: facade.contact_get(email=EMAIL),
            "zeep": lambda: zservice.contactGet(identifier={"type": "EMAIL", "value": EMAIL}),
            "requests": lambda: _lxml_contact(raw_requests(contact_env)),
            "urllib3": lambda: _lxml_contact(raw_urllib3(contact_env)),
            "httpclient": lambda: _lxml_contact(raw_http(contact_env)),
        },
        "messageSendSingle": {
            "facade": lambda: facade.message_send_single(23541, 4711, parameters=PARAMS),
            "zeep": lambda: zservice.messageSendSingle(
                messageId=23541, recipientId=4711, additionalContent={"parameters": params}),
            "requests": lambda: _lxml_send(raw_requests(send_env)),
            "urllib3": lambda: _lxml_send(raw_urllib3(send_env)),
            "httpclient": lambda: _lxml_send(raw_http(send_env)),
        },
    }

    def close() -> None:
        facade.close()
        zclient.transport.session.close()
        rsession.close()
        upool.close()
        hconn.close()

    return peers, close


def _check_results(peers: dict[str, dict[str, Call]]) -> None:
    contact = peers["contactGet"]["facade"]()
    assert contact.id == 4711 and len(contact.attributes) == 5, contact
    zc = peers["contactGet"]["zeep"]()
    assert zc.contactId == 4711 and len(zc.attributes) == 5, zc
    assert peers["contactGet"]["requests"]()["id"] == 4711
    assert peers["contactGet"]["urllib3"]()["id"] == 4711
    assert peers["contactGet"]["httpclient"]()["id"] == 4711


def measure(peers: dict[str, dict[str, Call]], calls: int,
            rounds: int = 10) -> dict[str, dict[str, dict[str, float]]]:
    """Median, p95 and calls/s per operation and peer, over ``calls`` calls each."""
    results: dict[str, dict[str, dict[str, float]]] = {}
    clock = time.perf_counter
    for op, by_peer in peers.items():
        for fn in by_peer.values():  # warm up connections and caches
            for _ in range(min(200, calls)):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in by_peer}
        totals = dict.fromkeys(by_peer, 0.0)
        per_round = max(1, calls // rounds)
        for _ in range(rounds):
            for name, fn in by_peer.items():
                out = samples[name]
                t_round = clock()
                for _ in range(per_round):
                    t0 = clock()
                    fn()
                    out.append(clock() - t0)
                totals[name] += clock() - t_round
        results[op] = {}
        for name, xs in samples.items():
            xs.sort()
            results[op][name] = {
                "calls": len(xs),
                "median_us": statistics.median(xs) * 1e6,
                "p95_us": xs[int(len(xs) * 0.95) - 1] * 1e6,
                "calls_per_s": len(xs) / totals[name],
            }
    return results


# ---------------------------------------------------------------------------- sub-processes

_CONSTRUCT = r"""
import json, sys, time
t0 = time.perf_counter()
from engage_soap import EngageClient
t1 = time.perf_counter()
a = EngageClient("https://engage.example.invalid/api/soap/v8/", "u", "p")
t2 = time.perf_counter()
b = EngageClient("https://engage.example.invalid/api/soap/v8/", "u", "p")
t3 = time.perf_counter()
a.close(); b.close()
t4 = time.perf_counter()
import zeep
t5 = time.perf_counter()
z1 = zeep.Client(sys.argv[1])
t6 = time.perf_counter()
z2 = zeep.Client(sys.argv[1])
t7 = time.perf_counter()
print(json.dumps({"import_engage_soap_ms": (t1 - t0) * 1e3,
                  "first_client_ms": (t2 - t1) * 1e3, "second_client_ms": (t3 - t2) * 1e3,
                  "zeep_first_client_ms": (t6 - t5) * 1e3,
                  "zeep_second_client_ms": (t7 - t6) * 1e3}))
"""

_RSS = r"""
import gc, json, resource, sys
sys.path.insert(0, sys.argv[3])
import bench
n = int(sys.argv[2])
from engage_soap import EngageClient
c = EngageClient(sys.argv[1], bench.USER, bench.PASSWORD, rate_limit=None)
def rss_kib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() // 1024
marks = []
for i in range(n):
    c.contact_get(email=bench.EMAIL) if i % 2 else c.message_send_single(
        23541, 4711, parameters=bench.PARAMS)
    if (i + 1) % (n // 10) == 0:
        gc.collect()
        marks.append(rss_kib())
c.close()
print(json.dumps({"calls": n, "rss_kib_marks": marks,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _python_json(code: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, cwd=ROOT,
                         capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def construction(repeat: int = 3) -> dict[str, float]:
    runs = [_python_json(_CONSTRUCT, str(WSDL)) for _ in range(repeat)]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def cli_help(repeat: int = 7) -> dict[str, Any]:
    if not (ROOT / "engage_soap" / "cli.py").is_file():
        return {"status": "missing (engage_soap/cli.py does not exist)"}
    exe = shutil.which("engage-soap", path=str(Path(sys.executable).parent)) or ""
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "engage_soap.cli", "--help"]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, cwd=ROOT)
        times.append((time.perf_counter() - t0) * 1e3)
        if proc.returncode != 0:
            return {"status": f"failed (exit {proc.returncode}): "
                              f"{proc.stderr.decode()[-200:]}"}
    return {"status": "ok", "median_ms": statistics.median(times), "min_ms": min(times),
            "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd))}


def rss(url: str, calls: int) -> dict[str, Any]:
    result = _python_json(_RSS, url, str(calls), str(Path(__file__).parent))
    marks = result["rss_kib_marks"]
    result["growth_kib_after_first_10pct"] = marks[-1] - marks[0]
    return result


# ---------------------------------------------------------------------------- report

PEERS = ("facade", "zeep", "requests", "urllib3", "httpclient")


def table(res: dict[str, Any]) -> str:
    lines = [f"engage_soap benchmark  ({res['meta']['calls']} calls/peer/op, "
             f"{res['meta']['cpus']} CPUs, Python {res['meta']['python']})", ""]
    hdr = f"{'operation, server':<26} {'peer':<11} {'median us':>10} {'p95 us':>9} {'calls/s':>9}"
    lines += [hdr, "-" * len(hdr)]
    for op, by_peer in res["per_call"].items():
        for name in PEERS:
            r = by_peer[name]
            lines.append(f"{op:<26} {name:<11} {r['median_us']:>10.1f} {r['p95_us']:>9.1f} "
                         f"{r['calls_per_s']:>9.0f}")
        rt = res["ratios"][op]
        lines.append(f"{'':<26} facade/zeep {rt['facade/zeep']:.2f}x   facade/requests "
                     f"{rt['facade/requests']:.2f}x   facade/urllib3 {rt['facade/urllib3']:.2f}x"
                     f"   facade/httpclient {rt['facade/httpclient']:.2f}x   (medians)")
        lines.append("")
    c = res["construction"]
    lines.append(f"client construction: import engage_soap {c['import_engage_soap_ms']:.1f} ms,"
                 f" first EngageClient {c['first_client_ms']:.1f} ms, second "
                 f"{c['second_client_ms']:.3f} ms  (plain zeep.Client: first "
                 f"{c['zeep_first_client_ms']:.1f} ms, second {c['zeep_second_client_ms']:.1f}"
                 " ms)")
    h = res["cli_help"]
    if h["status"] == "ok":
        lines.append(f"`engage-soap --help`: median {h['median_ms']:.1f} ms "
                     f"(min {h['min_ms']:.1f} ms)")
    else:
        lines.append(f"`engage-soap --help`: {h['status']}")
    r = res["rss"]
    if r:
        lines.append(f"RSS over {r['calls']} facade calls: "
                     f"{r['rss_kib_marks'][0] / 1024:.1f} MiB after 10% -> "
                     f"{r['rss_kib_marks'][-1] / 1024:.1f} MiB at the end (growth "
                     f"{r['growth_kib_after_first_10pct']} KiB), peak "
                     f"{r['peak_rss_kib'] / 1024:.1f} MiB")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per peer and operation")
    ap.add_argument("--rss-calls", type=int, default=10_000)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "latest.json"))
    ap.add_argument("--skip-extras", action="store_true",
                    help="per-call numbers only (no construction, CLI or RSS runs)")
    ap.add_argument("--servers", default="minimal,parsing",
                    help="which reply servers to measure against (comma-separated)")
    ap.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        SERVERS[args.serve]()
        return 0
    res: dict[str, Any] = {"meta": {
        "calls": args.calls, "cpus": os.cpu_count(), "python": platform.python_version(),
        "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
    res["per_call"] = {}
    for kind in args.servers.split(","):
        with Server(kind) as url:
            peers, close = make_peers(url)
            try:
                _check_results(peers)
                gc.collect()
                for op, by_peer in measure(peers, args.calls).items():
                    res["per_call"][f"{op} {kind}"] = by_peer
            finally:
                close()
            if kind == "minimal":
                res["rss"] = {} if args.skip_extras else rss(url, args.rss_calls)
    res.setdefault("rss", {})
    res["ratios"] = {op: {f"facade/{p}": by["facade"]["median_us"] / by[p]["median_us"]
                          for p in PEERS[1:]} for op, by in res["per_call"].items()}
    res["construction"] = construction(1 if args.skip_extras else 3)
    res["cli_help"] = cli_help(1 if args.skip_extras else 7)
    res["peak_rss_kib_bench_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    text = table(res)
    res["table"] = text
    print(text)
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nwrote {path}")
    return 0


SERVERS = {"minimal": serve, "parsing": serve_parsing}


if __name__ == "__main__":
    sys.exit(main())
