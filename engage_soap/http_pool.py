"""A lean keep-alive pool of standard-library ``http.client`` connections.

:class:`~engage_soap.transport.HttpTransport` uses it for endpoints that need no proxy
when the caller passed no ``requests.Session`` of their own. http.client frames the
HTTP/1.1 exchange; this module adds what the requests path guarantees, and raises the
same errors with the same ``request_sent``:

* TLS verification on, with the CA bundle requests would use (``verify`` path or
  ``certifi.where()``), hostname checked, SNI sent;
* a finite connect timeout and a deadline for the whole call: every read waits at most
  the time that remains, and :data:`WATCHDOG` shuts the socket down at the deadline (a
  peer trickling a byte at a time never trips a socket timeout);
* the reply cap counted after gzip/deflate decompression (``decompressobj`` with
  ``max_length``, so a compression bomb never inflates past the cap);
* no redirects followed; thread-safe (idle connections in a list under a lock);
* a pooled connection is checked for a close or stray bytes (a non-blocking poll) before a
  request is written to it, so nothing is ever re-sent: once bytes went out, a failure is
  reported with ``request_sent=True`` and left to the caller's retry policy.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import os
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import ProtocolError, RequestTimeoutError, TransportError

__all__ = ["WATCHDOG", "HttpPool", "PoolReply", "ReplyHeaders", "Watchdog"]

_CHUNK = 64 * 1024
_MAX_IDLE = 10


class Watchdog:
    """Shuts down the socket of any call still running at its deadline; one daemon thread.

    A finished call only drops its socket; its heap entry goes lazily, and the heap is
    rebuilt once stale entries outnumber live ones, so it holds O(calls in flight) entries
    whatever the timeout and call rate.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._active: dict[int, socket.socket] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Entries tracked (live and stale)."""
        return len(self._heap)

    def watch(self, sock: socket.socket, deadline: float) -> int:
        with self._cond:
            token = next(self._ids)
            self._active[token] = sock
            if len(self._heap) > 2 * len(self._active) + 32:
                self._heap = [e for e in self._heap if e[1] in self._active]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (deadline, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="engage-soap-deadline",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()
            return token

    def unwatch(self, token: int) -> None:
        with self._cond:
            self._active.pop(token, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][0] <= now or heap[0][1] not in self._active):
                    _, token = heapq.heappop(heap)
                    sock = self._active.pop(token, None)
                    if sock is not None:  # still running at its deadline: cut it off
                        with contextlib.suppress(OSError):
                            sock.shutdown(socket.SHUT_RDWR)
                self._cond.wait(heap[0][0] - now if heap else None)


WATCHDOG = Watchdog()


class ReplyHeaders(dict[str, str]):
    """Reply headers keyed by lower-cased name; lookups ignore case (like requests')."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class PoolReply(NamedTuple):
    """Status, headers and the complete (decompressed) body of one reply."""

    status: int
    headers: ReplyHeaders
    body: bytes


# ---------------------------------------------------------------- content decoding
# http.client does not decompress. Each decoder yields at most ``limit`` bytes per call;
# the caller passes (cap - bytes so far + 1), so reaching the limit means over the cap.


class _Gzip:
    """gzip, including several concatenated members (as urllib3 reads them)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def decompress(self, data: bytes, limit: int) -> bytes:
        out = self._obj.decompress(data, limit)
        while self._obj.eof and self._obj.unused_data and len(out) < limit:
            rest = self._obj.unused_data
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._obj.decompress(rest, limit - len(out))
        return out


class _Deflate:
    """deflate: zlib-wrapped as the RFC says, or raw (as some servers send it)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes, limit: int) -> bytes:
        if self._first:
            self._first = False
            try:
                return self._obj.decompress(data, limit)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._obj.decompress(data, limit)


def _decoders(content_encoding: str | None) -> list[_Gzip | _Deflate]:
    """Decoders for a Content-Encoding, in the order to apply them (unknown ones: none)."""
    decoders: list[_Gzip | _Deflate] = []
    for enc in reversed((content_encoding or "").lower().split(",")):
        enc = enc.strip()
        if enc in ("gzip", "x-gzip"):
            decoders.append(_Gzip())
        elif enc == "deflate":
            decoders.append(_Deflate())
    return decoders


# ---------------------------------------------------------------- connections


_Conn = http.client.HTTPConnection  # HTTPSConnection is a subclass


def _connection_dropped(sock: socket.socket | None) -> bool:
    """True when an idle keep-alive socket was closed by the peer (or has stray bytes)."""
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _time_left(sock: socket.socket, deadline: float) -> None:
    """Let the next socket operation wait at most until ``deadline``."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)


class HttpPool:
    """Keep-alive connections to one ``scheme://host:port``; safe to share between threads.

    ``base_headers`` are sent with every request, and ``authorization`` (as the
    Authorization header) with every request made with ``authenticate=True``; ``verify``
    is True, or the path of a CA file or directory. ``timeout`` is the deadline of a whole
    call and ``connect_timeout`` bounds connecting (TCP and TLS).
    """

    def __init__(self, scheme: str, host: str, port: int, netloc: str, *,
                 base_headers: Mapping[str, str], timeout: float, connect_timeout: float,
                 max_reply_bytes: int, verify: bool | str = True,
                 authorization: str | None = None) -> None:
        self.host = host
        self.port = port
        self.netloc = netloc
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_reply_bytes = max_reply_bytes
        self._ssl = _ssl_context(verify) if scheme == "https" else None
        self._base = {"Host": netloc, **base_headers}
        self._authorization = authorization
        self._headers: dict[tuple[tuple[tuple[str, str], ...], bool], dict[str, str]] = {}
        self._idle: list[_Conn] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"HttpPool({self.netloc!r}, idle={len(self._idle)})"

    def _take(self, deadline: float) -> _Conn:
        """An idle connection that is still open, or a new one."""
        while True:
            with self._lock:
                if self._closed:
                    raise TransportError("the client is closed", retryable=False,
                                         request_sent=False)
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect(deadline)
            if not _connection_dropped(conn.sock):
                return conn
            conn.close()

    def _connect(self, deadline: float) -> _Conn:
        remaining = deadline - time.monotonic()
        timeout = min(self.connect_timeout, remaining)
        conn: _Conn
        if self._ssl is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        else:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=self._ssl)
        try:
            if remaining <= 0:
                raise TimeoutError
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return conn
        except BaseException as exc:
            conn.close()
            if isinstance(exc, TimeoutError):
                raise RequestTimeoutError(f"connecting to {self.netloc} timed out",
                                          retryable=True, request_sent=False) from exc
            if isinstance(exc, ssl.SSLError | ssl.CertificateError):
                raise TransportError(f"TLS failure talking to {self.netloc}: SSLError",
                                     retryable=False, request_sent=False) from exc
            if isinstance(exc, OSError | UnicodeError):
                raise TransportError(f"cannot connect to {self.netloc}", retryable=True,
                                     request_sent=False) from exc
            raise

    def _give_back(self, conn: _Conn) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their call ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _request_headers(self, headers: Mapping[str, str] | None,
                         authenticate: bool) -> dict[str, str]:
        """The request's headers (Content-Length aside), merged once per kind of call."""
        key = (tuple(headers.items()) if headers else (), authenticate)
        merged = self._headers.get(key)
        if merged is None:
            merged = {**self._base, **(headers or {})}
            if authenticate and self._authorization:
                merged["Authorization"] = self._authorization
            if len(self._headers) < 64:
                self._headers[key] = merged
        return merged

    def request(self, method: str, target: str, body: bytes | None,
                headers: Mapping[str, str] | None, deadline: float, *,
                authenticate: bool = True) -> PoolReply:
        """Send one request and read the whole reply, or raise a TransportError."""
        head = self._request_headers(headers, authenticate)
        conn = self._take(deadline)
        sock = conn.sock
        assert sock is not None
        token = WATCHDOG.watch(sock, deadline)
        resp: http.client.HTTPResponse | None = None
        stage = "send"
        keep = False
        try:
            try:
                _time_left(sock, deadline)
            except TimeoutError as exc:
                raise RequestTimeoutError(f"no time left to call {self.netloc}",
                                          retryable=True, request_sent=False) from exc
            try:
                # Host and Accept-Encoding are in ``head``; with TCP_NODELAY the head and
                # the body going out in two sends costs no delayed-ACK stall.
                conn.request(method, target, body, head)
            except ValueError as exc:  # http.client checks these before sending a byte
                raise TransportError("invalid HTTP request target or header",
                                     retryable=False, request_sent=False) from exc
            stage = "head"
            _time_left(sock, deadline)
            resp = conn.getresponse()
            stage = "body"
            reply_headers = _reply_headers(resp)
            reply = PoolReply(resp.status, reply_headers,
                              self._read_body(resp, reply_headers, sock, deadline))
            keep = not resp.will_close and conn.sock is not None
            return reply
        except (OSError, http.client.HTTPException) as exc:
            raise self._failure(exc, stage, deadline) from exc
        finally:
            WATCHDOG.unwatch(token)
            if resp is not None:
                resp.close()
            if keep:
                self._give_back(conn)
            else:
                conn.close()

    def _read_body(self, resp: http.client.HTTPResponse, headers: ReplyHeaders,
                   sock: socket.socket, deadline: float) -> bytes:
        """The whole body, decompressed, within the cap; each read waits until the deadline."""
        decoders = _decoders(headers.get("content-encoding"))
        cap = self.max_reply_bytes
        chunks: list[bytes] = []
        total = 0
        while True:
            _time_left(sock, deadline)
            piece = resp.read1(_CHUNK)
            if not piece:
                break
            try:
                for dec in decoders:
                    piece = dec.decompress(piece, cap - total + 1)
            except zlib.error as exc:
                raise TransportError("the reply's content encoding is corrupt",
                                     retryable=False, request_sent=True) from exc
            total += len(piece)
            if total > cap:
                raise TransportError(f"the reply is larger than the {cap} byte cap",
                                     retryable=False, request_sent=True)
            chunks.append(piece)
        if resp.length:  # the peer closed before the announced Content-Length
            raise http.client.IncompleteRead(b"", resp.length)
        return b"".join(chunks)

    def _failure(self, exc: BaseException, stage: str,
                 deadline: float) -> TransportError | ProtocolError:
        """The TransportError for a failure after the request started going out."""
        if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
            what = ("did not complete" if stage == "body" else "did not start")
            return RequestTimeoutError(f"the reply from {self.netloc} {what} within "
                                       f"{self.timeout:g} s; the request was sent",
                                       retryable=True, request_sent=True)
        if isinstance(exc, http.client.IncompleteRead):
            return ProtocolError("the reply was cut short (fewer bytes than announced)",
                                 retryable=True, request_sent=True)
        if stage == "body":
            return TransportError(f"the connection broke while reading the reply "
                                  f"({type(exc).__name__}); the request was sent",
                                  retryable=True, request_sent=True)
        return TransportError(f"connection to {self.netloc} failed after the request was "
                              f"sent ({type(exc).__name__})", retryable=True,
                              request_sent=True)


def _reply_headers(resp: http.client.HTTPResponse) -> ReplyHeaders:
    headers = ReplyHeaders()
    for name, value in resp.msg.raw_items():
        key = name.lower()
        prev = headers.get(key)
        headers[key] = value if prev is None else f"{prev}, {value}"
    return headers


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """A verifying client context with requests' CA bundle (or the ``verify`` path)."""
    if verify is True:
        import certifi  # requests' CA bundle (requests.certs.where)

        verify = certifi.where()
    if not isinstance(verify, str):
        raise ValueError("the fast path always verifies TLS")
    if os.path.isdir(verify):
        ctx = ssl.create_default_context(capath=verify)
    else:
        ctx = ssl.create_default_context(cafile=verify)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx
