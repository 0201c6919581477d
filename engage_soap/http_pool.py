"""A lean keep-alive HTTP/1.1 client pool over raw sockets.

:class:`~engage_soap.transport.HttpTransport` uses it for endpoints that need no proxy
when the caller passed no ``requests.Session`` of their own. It keeps every safety
property of the requests path and raises the same errors with the same ``request_sent``:

* TLS verification on, with the CA bundle requests would use (``verify`` path or
  ``requests.certs.where()``), hostname checked, SNI sent;
* a finite connect timeout and a deadline for the whole call: every socket timeout is
  set to the time that remains;
* the reply cap counted after gzip/deflate decompression (``decompressobj`` with
  ``max_length``, so a compression bomb never inflates past the cap);
* no redirects followed; thread-safe (idle connections in a list under a lock);
* a pooled connection is checked for a close or stray bytes (a non-blocking poll) before a
  request is written to it, so nothing is ever re-sent: once bytes went out, a failure is
  reported with ``request_sent=True`` and left to the caller's retry policy.
"""

from __future__ import annotations

import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Mapping
from typing import Any

from .errors import ProtocolError, RequestTimeoutError, TransportError

__all__ = ["HttpPool", "PoolReply", "ReplyHeaders"]

_CHUNK = 64 * 1024
_MAX_IDLE = 10
_MAX_HEAD = 64 * 1024
_MAX_HEADERS = 100
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]|[^\x00-\xff]")


class ReplyHeaders(dict[str, str]):
    """Reply headers keyed by lower-cased name; lookups ignore case (like requests')."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class PoolReply:
    """Status, headers and the complete (decompressed) body of one reply."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: ReplyHeaders, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


def _decoder(encoding: str) -> Any:
    enc = encoding.strip().lower()
    if enc in ("gzip", "x-gzip"):
        return _Gzip()
    if enc == "deflate":
        return _Deflate()
    return None


class _Gzip:
    """gzip, including several concatenated members (as urllib3 reads them)."""

    def __init__(self) -> None:
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def decompress(self, data: bytes, limit: int) -> bytes:
        out = self._obj.decompress(data, limit)
        if self._obj.unconsumed_tail:
            raise _OverCap
        while self._obj.eof and self._obj.unused_data:
            rest = self._obj.unused_data
            self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += self._obj.decompress(rest, max(1, limit - len(out)))
            if self._obj.unconsumed_tail:
                raise _OverCap
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
                out = self._obj.decompress(data, limit)
            except zlib.error:
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._obj.decompress(data, limit)
        else:
            out = self._obj.decompress(data, limit)
        if self._obj.unconsumed_tail:
            raise _OverCap
        return out


class _OverCap(Exception):
    """The decompressed reply would exceed the cap."""


def _connection_dropped(sock: socket.socket) -> bool:
    """True when an idle keep-alive socket was closed by the peer (or has stray bytes)."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class HttpPool:
    """Keep-alive connections to one ``scheme://host:port``; safe to share between threads.

    ``base_headers`` are sent with every request (after ``Host``); ``verify`` is True, or
    the path of a CA file or directory. ``timeout`` is the deadline of a whole call and
    ``connect_timeout`` bounds connecting (TCP and TLS).
    """

    def __init__(self, scheme: str, host: str, port: int, netloc: str, *,
                 base_headers: Mapping[str, str], timeout: float, connect_timeout: float,
                 max_reply_bytes: int, verify: bool | str = True) -> None:
        self.host = host
        self.port = port
        self.netloc = netloc
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_reply_bytes = max_reply_bytes
        self._ssl: ssl.SSLContext | None = None
        if scheme == "https":
            self._ssl = _ssl_context(verify)
        lines = [f"Host: {netloc}"] + [f"{k}: {v}" for k, v in base_headers.items()]
        self._head_tail = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._extra: dict[tuple[str, str, tuple[tuple[str, str], ...]], bytes] = {}
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"HttpPool({self.netloc!r}, idle={len(self._idle)})"

    # ------------------------------------------------------------ connections

    def _take(self, deadline: float) -> socket.socket:
        """An idle connection that is still open, or a new one."""
        while True:
            with self._lock:
                if self._closed:
                    raise TransportError("the client is closed", retryable=False,
                                         request_sent=False)
                sock = self._idle.pop() if self._idle else None
            if sock is None:
                return self._connect(deadline)
            if not _connection_dropped(sock):
                return sock
            sock.close()

    def _connect(self, deadline: float) -> socket.socket:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RequestTimeoutError(f"connecting to {self.netloc} timed out",
                                      retryable=True, request_sent=False)
        timeout = min(self.connect_timeout, remaining)
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection((self.host, self.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl is not None:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            return sock
        except BaseException as exc:
            if sock is not None:
                sock.close()
            if isinstance(exc, (TimeoutError, socket.timeout)):
                raise RequestTimeoutError(f"connecting to {self.netloc} timed out",
                                          retryable=True, request_sent=False) from exc
            if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
                raise TransportError(f"TLS failure talking to {self.netloc}: SSLError",
                                     retryable=False, request_sent=False) from exc
            if isinstance(exc, (OSError, UnicodeError)):
                raise TransportError(f"cannot connect to {self.netloc}", retryable=True,
                                     request_sent=False) from exc
            raise

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < _MAX_IDLE:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their call ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for sock in idle:
            sock.close()

    # ------------------------------------------------------------ requests

    def _head(self, method: str, target: str, headers: Mapping[str, str] | None,
              length: int) -> bytes:
        key = (method, target, tuple(headers.items()) if headers else ())
        extra = self._extra.get(key)
        if extra is None:
            lines = [f"{method} {target} HTTP/1.1"]
            for k, v in (headers or {}).items():
                if not _TOKEN.fullmatch(k) or _BAD_VALUE.search(v):
                    raise TransportError(f"invalid HTTP header {k!r}", retryable=False,
                                         request_sent=False)
                lines.append(f"{k}: {v}")
            extra = ("\r\n".join(lines) + "\r\n").encode("latin-1")
            if len(self._extra) < 64:
                self._extra[key] = extra
        return b"%s%sContent-Length: %d\r\n\r\n" % (extra, self._head_tail, length)

    def request(self, method: str, target: str, body: bytes | None,
                headers: Mapping[str, str] | None, deadline: float) -> PoolReply:
        """Send one request and read the whole reply, or raise a TransportError."""
        payload = body or b""
        data = self._head(method, target, headers, len(payload)) + payload
        sock = self._take(deadline)
        keep = False
        try:
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                sock.sendall(data)
            except TimeoutError as exc:
                raise RequestTimeoutError(f"no reply from {self.netloc} in time; the request "
                                          "was sent", retryable=True, request_sent=True) from exc
            except OSError as exc:
                raise self._broken(exc) from exc
            reader = _Reader(sock, deadline, self.netloc, self.timeout)
            reply, keep = self._read(reader, method)
            return reply
        finally:
            if keep:
                self._give_back(sock)
            else:
                sock.close()

    def _broken(self, exc: BaseException) -> TransportError:
        return TransportError(f"connection to {self.netloc} failed after the request was "
                              f"sent (ConnectionError)", retryable=True, request_sent=True)

    def _read(self, reader: _Reader, method: str) -> tuple[PoolReply, bool]:
        """The reply's status, headers and body; and whether the connection may be reused."""
        try:
            while True:
                status, version, headers = reader.head()
                if not 100 <= status < 200 or status == 101:
                    break
        except _Eof as exc:
            raise self._broken(exc) from None
        except _BadReply as exc:
            raise self._broken(exc) from None
        keep = _keep_alive(version, headers.get("connection", ""))
        encodings = [e for e in headers.get("content-encoding", "").split(",") if e.strip()]
        decoders = [d for d in (_decoder(e) for e in reversed(encodings)) if d is not None]
        cap = self.max_reply_bytes
        chunks: list[bytes] = []
        total = 0
        try:
            if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                pieces: Any = ()
            elif "chunked" in headers.get("transfer-encoding", "").lower():
                pieces = reader.chunked()
            elif "content-length" in headers:
                length = _content_length(headers["content-length"])
                pieces = reader.exactly(length)
            else:
                pieces, keep = reader.until_close(), False
            for piece in pieces:
                for dec in decoders:
                    piece = dec.decompress(piece, cap - total + 1)
                total += len(piece)
                if total > cap:
                    raise _OverCap
                if piece:
                    chunks.append(piece)
        except _OverCap:
            raise TransportError(f"the reply is larger than the {cap} byte cap",
                                 retryable=False, request_sent=True) from None
        except (_Eof, _BadReply) as exc:
            raise ProtocolError("the reply was cut short (fewer bytes than announced)",
                                retryable=True, request_sent=True) from exc
        except zlib.error as exc:
            raise TransportError("the reply's content encoding is corrupt", retryable=False,
                                 request_sent=True) from exc
        return PoolReply(status, headers, b"".join(chunks)), keep


class _Eof(Exception):
    """The peer closed the connection."""


class _BadReply(Exception):
    """The reply is not HTTP/1.x as RFC 9112 frames it."""


def _keep_alive(version: str, connection: str) -> bool:
    tokens = {t.strip().lower() for t in connection.split(",")}
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


def _content_length(value: str) -> int:
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise _BadReply("conflicting Content-Length")
    text = values.pop()
    if not text.isdigit():
        raise _BadReply(f"invalid Content-Length {text[:20]!r}")
    return int(text)


class _Reader:
    """Reads one reply off a socket, never past the call's deadline.

    Every ``recv`` waits at most the time that remains, so a peer trickling bytes cannot
    stretch a call beyond its deadline (a socket timeout alone bounds each read, not the
    call).
    """

    __slots__ = ("_buf", "_deadline", "_netloc", "_sock", "_started", "_timeout")

    def __init__(self, sock: socket.socket, deadline: float, netloc: str,
                 timeout: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._netloc = netloc
        self._timeout = timeout
        self._buf = b""
        self._started = False

    def _recv(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            self._sock.settimeout(remaining)
            data = self._sock.recv(_CHUNK)
        except TimeoutError as exc:
            late = time.monotonic() >= self._deadline
            if not self._started:
                msg = (f"the reply from {self._netloc} did not start within "
                       f"{self._timeout:g} s" if late else f"no reply from {self._netloc} in time")
            else:
                msg = (f"the reply from {self._netloc} did not complete within "
                       f"{self._timeout:g} s" if late else f"the reply from {self._netloc} "
                       "stalled")
            raise RequestTimeoutError(f"{msg}; the request was sent", retryable=True,
                                      request_sent=True) from exc
        except OSError as exc:
            if not self._started:
                raise _Eof(type(exc).__name__) from exc
            raise TransportError(f"the connection broke while reading the reply "
                                 f"({type(exc).__name__}); the request was sent",
                                 retryable=True, request_sent=True) from exc
        if not data:
            raise _Eof("closed")
        return data

    def head(self) -> tuple[int, str, ReplyHeaders]:
        """Status, HTTP version and headers of the next reply head."""
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buf) > _MAX_HEAD:
                raise _BadReply("reply head too large")
            self._buf += self._recv()
        head, self._buf = self._buf[:end], self._buf[end + 4:]
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit() or rest[3:4] not in ("", " "):
            raise _BadReply(f"bad status line {lines[0][:40]!r}")
        headers = ReplyHeaders()
        if len(lines) > _MAX_HEADERS:
            raise _BadReply("too many headers")
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadReply(f"bad header line {line[:40]!r}")
            key = name.lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self._started = True
        return int(code), version, headers

    def exactly(self, length: int) -> Any:
        """The body's bytes, ``length`` in all, as they arrive."""
        if self._buf:
            first, self._buf = self._buf[:length], self._buf[length:]
            length -= len(first)
            yield first
        while length > 0:
            data = self._recv()
            if len(data) > length:
                data, self._buf = data[:length], data[length:]
            length -= len(data)
            yield data

    def until_close(self) -> Any:
        if self._buf:
            yield self._buf
            self._buf = b""
        while True:
            try:
                data = self._recv()
            except _Eof:
                return
            yield data

    def _line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line, self._buf = self._buf[:end], self._buf[end + 2:]
                return line
            if len(self._buf) > _MAX_HEAD:
                raise _BadReply("chunk line too long")
            self._buf += self._recv()

    def chunked(self) -> Any:
        """The body of a chunked reply, chunk by chunk (trailers are read and dropped)."""
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadReply(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._line():
                    pass
                return
            yield from self.exactly(size)
            if self._line():
                raise _BadReply("chunk not followed by CRLF")


def _ssl_context(verify: bool | str) -> ssl.SSLContext:
    """A verifying client context with requests' CA bundle (or the ``verify`` path)."""
    import os

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
