"""A small fault-injecting loopback HTTP server for the reliability tests.

Each request is recorded (method, path, headers, body) and answered by a ``responder``
callable.  A responder returns a :class:`Reply` (sent in ONE write, so no delayed-ACK
stalls), or a callable ``action(handler)`` that takes over the connection (trickle, reset,
hang, ...).  ``stop`` interrupts every action that waits on ``server.stopping``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from engage_soap import EngageClient
from engage_soap.envelope import ECM_NS as ECM
from engage_soap.envelope import SOAP11_NS as SOAP_ENV
from engage_soap.testing import HttpReply, HttpRequest, MockTransport


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "text/xml; charset=utf-8"
    close: bool = False


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Action = Callable[["Handler"], None]
Responder = Callable[[Recorded], Reply | Action]


def envelope(inner: str, *, prefix: str = "S") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><{prefix}:Envelope xmlns:{prefix}="{SOAP_ENV}">'
            f"<{prefix}:Body>{inner}</{prefix}:Body></{prefix}:Envelope>").encode()


def contact_reply(value: str = "j@example.com", contact_id: int = 33457,
                  op: str = "contactGet") -> bytes:
    from xml.sax.saxutils import escape
    return envelope(f'<ns2:{op}Response xmlns:ns2="{ECM}"><contact><contactId>{contact_id}'
                    f"</contactId><emailAddress>{escape(value)}</emailAddress></contact>"
                    f"</ns2:{op}Response>")


SEND_OK = envelope(f'<ns2:messageSendSingleResponse xmlns:ns2="{ECM}"/>')
VERSION_OK = envelope(f'<ns2:systemGetApiVersionResponse xmlns:ns2="{ECM}"><version>v8'
                      f"</version></ns2:systemGetApiVersionResponse>")


def fault(detail_name: str | None = "UnexpectedErrorException", *, actor: str = "SERVER",
          code: str = "UNEXPECTED_ERROR", message: str = "Unexpected error",
          faultstring: str | None = None, extra: str = "") -> bytes:
    detail = ""
    if detail_name:
        detail = (f'<detail><ns2:{detail_name} xmlns:ns2="{ECM}"><errorActor>{actor}</errorActor>'
                  f"<errorCode>{code}</errorCode><message>{message}</message>{extra}"
                  f"</ns2:{detail_name}></detail>")
    return envelope(f"<S:Fault><faultcode>S:Server</faultcode><faultstring>"
                    f"{faultstring or message}</faultstring>{detail}</S:Fault>")


THROTTLE_FAULT = envelope("<S:Fault><faultcode>S:Server</faultcode><faultstring>Database "
                          "Access Limit Exceeded</faultstring></S:Fault>")


def operation_of(body: bytes) -> str:
    for op in ("contactGet", "contactCreate", "messageSendSingle", "systemGetApiVersion"):
        if f":{op}>".encode() in body or f":{op} ".encode() in body or f":{op}/>".encode() in body:
            return op
    return "?"


def default_responder(req: Recorded) -> Reply:
    op = operation_of(req.body)
    if op == "messageSendSingle":
        return Reply(body=SEND_OK)
    if op == "systemGetApiVersion":
        return Reply(body=VERSION_OK)
    if op in ("contactGet", "contactCreate"):
        return Reply(body=contact_reply(op=op))
    return Reply(404, b"not found", content_type="text/plain")


def in_memory(responder: Responder = default_responder) -> MockTransport:
    """A MockTransport answered by ``responder`` as the server would answer (no socket).

    Only for replies: an ``action`` that takes over the connection needs the server.
    """
    def answer(request: HttpRequest) -> HttpReply:
        path = request.url.split("://", 1)[-1].partition("/")[2]
        reply = responder(Recorded(request.method, "/" + path, dict(request.headers),
                                   request.body))
        assert isinstance(reply, Reply), "socket actions need the FakeServer"
        headers = dict(reply.headers)
        if reply.content_type:
            headers.setdefault("Content-Type", reply.content_type)
        return HttpReply(reply.status, headers, reply.body)

    return MockTransport(answer)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.untrack(self.connection)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
        self.server.record(rec)
        result = self.server.responder(rec)
        if isinstance(result, Reply):
            self.send_reply(result)
        else:
            result(self)

    do_GET = do_POST = do_PUT = _handle

    def send_reply(self, reply: Reply) -> None:
        self.wfile.write(self.reply_bytes(reply))
        if reply.close:
            self.close_connection = True

    def reply_bytes(self, reply: Reply, *, length: int | None = None) -> bytes:
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('X',))[0]}"]
        if reply.content_type:
            lines.append(f"Content-Type: {reply.content_type}")
        headers = dict(reply.headers)
        if "Transfer-Encoding" not in headers:
            headers.setdefault("Content-Length", str(len(reply.body) if length is None
                                                     else length))
        if reply.close:
            headers["Connection"] = "close"
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + reply.body

    # ---- actions
    def reset(self) -> None:
        """Drop the connection with RST."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))

    def trickle(self, data: bytes, every: float) -> None:
        """Send ``data`` one byte at a time (then more forever, if data is an iterator)."""
        self.close_connection = True
        for i in range(len(data)):
            if self.server.stopping.wait(every):
                return
            try:
                self.wfile.write(data[i:i + 1])
            except OSError:
                return


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # 32 client threads connect at once: with socketserver's backlog of 5 the others' SYNs
    # wait for retransmission, and under load a handshake the kernel dropped from the full
    # accept queue turns into a reset after the request was written
    request_queue_size = 64

    def __init__(self, responder: Responder | None = None, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), Handler)
        self.responder: Responder = responder or default_responder
        self.requests: list[Recorded] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def posts(self, op: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and (op is None or operation_of(r.body) == op)]

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/soap/v8/"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        self.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def client_factory(user: str, password: str,
                   **defaults: Any) -> Iterator[Callable[..., EngageClient]]:
    """Build clients of the fake server with ``defaults``; every one is closed on exit."""
    clients: list[EngageClient] = []

    def make(url: str, **kwargs: Any) -> EngageClient:
        client = EngageClient(url, user, password, **{**defaults, **kwargs})
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for c in clients:
            c.close()
