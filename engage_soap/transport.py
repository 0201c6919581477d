"""HTTP for engage_soap: one urllib3 stack per client, bounded in time and size, fork-safe.

:class:`Transport` is the seam: one ``request`` method returning an :class:`HttpReply`.
:class:`HttpTransport` is the real one, urllib3 used directly:

* a ``PoolManager`` (or a ``ProxyManager``, chosen once per origin from the environment's
  proxy settings and ``NO_PROXY``), TLS verified with certifi's CA bundle by default;
* one deadline per attempt covering name resolution (in a helper thread, so a DNS server
  that never answers cannot outlast it), connect, TLS handshake, sending, the status line,
  headers and body: a shared watchdog thread shuts the socket down at the deadline;
* one capped read loop with urllib3's bounded decompression; no redirects followed;
* one function, :func:`_failure`, that turns every urllib3/socket error into ours and
  decides ``request_sent`` from what really happened: nothing is "sent" before the first
  byte of the request was written to a connected socket;
* after ``os.fork()`` a child drops every connection it inherited (closing only its own
  file descriptors) and starts its own watchdog; a transport dropped without ``close()``
  releases its sockets through ``weakref.finalize``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import heapq
import itertools
import os
import socket
import ssl
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.util
from urllib3.util import connection as _u3_connection
from urllib3.util.ssl_ import is_ipaddress

from . import __version__, defaults
from .errors import (
    ConfigurationError,
    EngageError,
    ProtocolError,
    RequestTimeoutError,
    TransportError,
)
from .forking import renew_after_fork

__all__ = [
    "DEFAULT_MAX_REPLY_BYTES",
    "DEFAULT_POOL_SIZE",
    "DEFAULT_TIMEOUT",
    "HttpReply",
    "HttpTransport",
    "Transport",
    "basic_auth_header",
    "display_url",
    "failure_after_sending",
    "reply_too_large",
]

DEFAULT_TIMEOUT = defaults.TIMEOUT
DEFAULT_MAX_REPLY_BYTES = defaults.MAX_REPLY_BYTES
DEFAULT_POOL_SIZE = defaults.POOL_SIZE
_CHUNK = 64 * 1024
_NO_RETRIES = urllib3.Retry(total=False, redirect=False)
_BASE_HEADERS = {"User-Agent": f"engage-soap/{__version__}", "Accept-Encoding": "gzip, deflate"}


class HttpReply(NamedTuple):
    """A complete HTTP reply: status, headers (case-insensitive), the decoded body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float = 0.0


@runtime_checkable
class Transport(Protocol):
    """What the client needs from HTTP: send one request, return the complete reply.

    ``request`` raises only engage_soap errors (:class:`TransportError` and its kind, with
    ``request_sent`` saying whether the request may have reached the server). Tests can
    pass any object with these two methods as ``EngageClient(..., transport=...)``.
    """

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply: ...

    def close(self) -> None: ...


def basic_auth_header(username: str, password: str) -> str:
    """The value of an HTTP Basic ``Authorization`` header (UTF-8, as RFC 7617 advises).

    urllib3's ``make_headers`` would encode as Latin-1 and fail on other characters.
    """
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def display_url(url: str) -> str:
    """``url`` as it may be shown (reprs, messages, logs): user info masked as ``***@``.

    Every URL engage_soap puts in a message passes through here, so a password written
    into a URL (``https://user:pass@host/``) never shows.
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


# ---------------------------------------------------------------- one attempt's state


class _Attempt:
    """One request attempt: its deadline, whether a byte went out, the socket watched."""

    __slots__ = ("cut", "deadline", "sent", "watched")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.sent = False  # a byte of the request was written to a connected socket
        self.cut = False  # the watchdog shut the socket down at the deadline
        self.watched: tuple[int, socket.socket | None] | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def watch(self, sock: socket.socket | None, *, duplicate: bool = False) -> None:
        """Put this attempt's socket under the watchdog (once).

        A new connection's socket is watched through a duplicate of its descriptor, since
        TLS wrapping detaches the original before the handshake; a reused connection's
        socket object is watched itself (a closed socket object never touches a reused
        descriptor number).
        """
        if self.watched is not None or sock is None:
            return
        if duplicate:
            try:
                sock = socket.socket(fileno=os.dup(sock.fileno()))
            except OSError:
                return
        self.watched = (WATCHDOG.watch(self, sock), sock if duplicate else None)

    def release(self) -> None:
        if self.watched is not None:
            token, dup = self.watched
            WATCHDOG.unwatch(token)  # after this the watchdog cannot cut it any more
            if dup is not None:
                dup.close()
            self.watched = None


_current = threading.local()  # .attempt: the _Attempt this thread is making, or None


def _attempt() -> _Attempt | None:
    attempt: _Attempt | None = getattr(_current, "attempt", None)
    return attempt


class Watchdog:
    """Shuts down the socket of any attempt still running at its deadline; one daemon thread.

    A finished attempt only drops its entry from ``_active``; heap entries go lazily and the
    heap is rebuilt once stale ones outnumber live ones, so it stays O(attempts in flight).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._active: dict[int, tuple[_Attempt, socket.socket]] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        """Entries tracked (live and stale)."""
        return len(self._heap)

    def watch(self, attempt: _Attempt, sock: socket.socket) -> int:
        with self._cond:
            token = next(self._ids)
            self._active[token] = (attempt, sock)
            if len(self._heap) > 2 * len(self._active) + 32:
                self._heap = [e for e in self._heap if e[1] in self._active]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (attempt.deadline, token))
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
        cond = self._cond
        with cond:
            while cond is self._cond:
                now = time.monotonic()
                heap = self._heap
                while heap and (heap[0][0] <= now or heap[0][1] not in self._active):
                    _, token = heapq.heappop(heap)
                    entry = self._active.pop(token, None)
                    if entry is not None:  # still running at its deadline: cut it off
                        entry[0].cut = True
                        with contextlib.suppress(OSError):  # EBADF once closed: fine
                            # the plain socket's shutdown, also for an SSLSocket (whose own
                            # would drop its SSL object under the reading thread)
                            socket.socket.shutdown(entry[1], socket.SHUT_RDWR)
                cond.wait(heap[0][0] - now if heap else None)

    def _after_fork(self) -> None:
        # The thread did not survive the fork and its lock may be held by a thread that
        # no longer exists: start from scratch (a new thread starts on the next watch).
        self._reset()


WATCHDOG = Watchdog()
renew_after_fork(WATCHDOG)


# ---------------------------------------------------------------- name resolution


def _resolve(host: str, port: int, deadline: float) -> list[str]:
    """The addresses of ``host``, or TimeoutError if the resolver does not answer in time.

    getaddrinfo cannot be interrupted, so it runs in a daemon thread; a resolver that
    never answers leaves that thread waiting, not the caller.
    """
    if is_ipaddress(host):
        return [host]  # an address literal needs no lookup
    box: list[Any] = []
    done = threading.Event()
    family = _u3_connection.allowed_gai_family()

    def lookup() -> None:
        try:
            box.append(socket.getaddrinfo(host, port, family, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the caller below
            box.append(exc)
        done.set()

    threading.Thread(target=lookup, name="engage-soap-resolve", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise TimeoutError(f"resolving {host} did not finish in time")
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return list(dict.fromkeys(str(info[4][0]) for info in result))


# ---------------------------------------------------------------- connections


class _ConnectionMixin:
    """Resolves and connects within the attempt's deadline, and marks the first byte sent."""

    host: str
    port: int
    timeout: Any
    sock: socket.socket | None
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str
    _engage_connecting = False
    _engage_live: weakref.WeakSet[Any] | None = None  # the owning transport's connections

    def _new_conn(self) -> socket.socket:
        attempt = _attempt()
        deadline = attempt.deadline if attempt else time.monotonic() + float(self.timeout)
        try:
            addresses = _resolve(self._dns_host, self.port, deadline)
        except socket.gaierror as exc:
            raise urllib3.exceptions.NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"resolving {self._dns_host} did not finish in time") from exc
        error: OSError | None = None
        for address in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                sock = _u3_connection.create_connection(
                    (address, self.port), remaining, source_address=self.source_address,
                    socket_options=self.socket_options)
            except OSError as exc:
                error = exc
                continue
            sys.audit("http.client.connect", self, self.host, self.port)
            if attempt is not None:
                attempt.watch(sock, duplicate=True)  # covers the TLS handshake as well
            if self._engage_live is not None:
                self._engage_live.add(self)
            return sock
        if error is None or isinstance(error, TimeoutError):
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"connecting to {self.host} did not finish in time")
        raise urllib3.exceptions.NewConnectionError(self, str(error)) from error  # type: ignore[arg-type]

    def connect(self) -> None:
        self._engage_connecting = True  # a proxy's CONNECT is not the request
        try:
            super().connect()  # type: ignore[misc]
        finally:
            self._engage_connecting = False

    def send(self, data: Any) -> None:
        if self.sock is None:  # http.client connects lazily on the first send
            self.connect()
        attempt = _attempt()
        if attempt is not None and not self._engage_connecting and not attempt.sent:
            attempt.watch(self.sock)  # a reused connection: watched from here on
            attempt.sent = True
        super().send(data)  # type: ignore[misc]


class _HTTPConnection(_ConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_ConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


def _pool_classes(live: weakref.WeakSet[Any]) -> dict[str, type[Any]]:
    """Pool classes whose connections register in ``live`` (to be dropped after a fork)."""
    http_conn = type("HTTPConnection", (_HTTPConnection,), {"_engage_live": live})
    https_conn = type("HTTPSConnection", (_HTTPSConnection,), {"_engage_live": live})
    return {
        "http": type("HTTPConnectionPool", (urllib3.connectionpool.HTTPConnectionPool,),
                     {"ConnectionCls": http_conn}),
        "https": type("HTTPSConnectionPool", (urllib3.connectionpool.HTTPSConnectionPool,),
                      {"ConnectionCls": https_conn}),
    }


# ---------------------------------------------------------------- TLS


def ssl_context(verify: bool | str | os.PathLike[str] | None = None,
                cert: str | tuple[str, str] | None = None) -> ssl.SSLContext:
    """The client TLS context: verifying by default, with a CA bundle and a client cert.

    ``verify`` None (or True) uses ``$REQUESTS_CA_BUNDLE`` or ``$CURL_CA_BUNDLE`` when set,
    else certifi's bundle; a path is a CA file or directory; False turns verification
    off. Contexts are built once per process for each setting and shared (loading a CA
    bundle takes milliseconds).
    """
    if verify is None or verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    where = False if verify is False else (os.fspath(verify) if verify else None)
    return _context(where, cert if cert is None or isinstance(cert, str) else tuple(cert))


@functools.lru_cache(maxsize=16)
def _context(verify: str | bool | None, cert: str | tuple[str, ...] | None) -> ssl.SSLContext:
    ctx = urllib3.util.ssl_.create_urllib3_context(
        cert_reqs=ssl.CERT_NONE if verify is False else ssl.CERT_REQUIRED)
    if verify is False:
        ctx.check_hostname = False
    else:
        if verify is None:
            import certifi

            verify = certifi.where()
        path = str(verify)
        try:
            if os.path.isdir(path):
                ctx.load_verify_locations(capath=path)
            else:
                ctx.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the CA bundle {path!r}: {exc}") from exc
    if cert is not None:
        certfile, keyfile = (cert, None) if isinstance(cert, str) else (cert[0], cert[1])
        try:
            ctx.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(f"cannot load the client certificate: {exc}") from exc
    return ctx


# ---------------------------------------------------------------- the transport


def check_limits(timeout: object, **sizes: object) -> None:
    """Refuse a transport's deadline unless a finite number of seconds > 0, and each of
    ``sizes`` unless a positive int (ConfigurationError naming it); every transport's check."""
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
            and 0 < timeout < float("inf")):
        raise ConfigurationError(f"timeout must be a finite number of seconds > 0, "
                                 f"got {timeout!r}")
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigurationError(f"{name} must be a positive int, got {value!r}")


class HttpTransport:
    """The default transport: urllib3 pools shared by all threads of one client.

    ``timeout`` is the deadline of one attempt (name resolution to the last byte of the
    reply); ``max_reply_bytes`` caps a reply after decompression; ``pool_size`` is how
    many connections per origin are kept alive; ``verify``/``cert`` as in
    :func:`ssl_context`. Proxy settings are read from the environment once.
    """

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT,
                 verify: bool | str | os.PathLike[str] | None = None,
                 cert: str | tuple[str, str] | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        check_limits(timeout, max_reply_bytes=max_reply_bytes, pool_size=pool_size)
        if verify is not None and not isinstance(verify, (bool, str, os.PathLike)):
            raise ConfigurationError("verify must be True, False or a CA bundle path")
        self.timeout = float(timeout)
        self._timeouts = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        self.max_reply_bytes = max_reply_bytes
        self.pool_size = pool_size
        self._ssl = ssl_context(verify, cert)
        self._proxies = urllib.request.getproxies_environment()
        self._lock = threading.Lock()
        self._closed = False
        self._start()
        self._finalizer = weakref.finalize(self, _close_all, self._managers)
        renew_after_fork(self)

    def _start(self) -> None:
        self._connections: weakref.WeakSet[Any] = weakref.WeakSet()
        self._pool_classes = _pool_classes(self._connections)
        self._managers: dict[str | None, urllib3.PoolManager] = {}  # by proxy URL
        # url -> (connection pool, request target): decided once, then reused
        self._routes: dict[str, tuple[urllib3.HTTPConnectionPool, str]] = {}

    def __repr__(self) -> str:
        return (f"HttpTransport(timeout={self.timeout:g}, max_reply_bytes="
                f"{self.max_reply_bytes}, pool_size={self.pool_size})")

    # ------------------------------------------------------------ pools

    def _route(self, url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
        """The pool for ``url`` and the request target to send it (decided once per URL).

        Through an HTTP proxy an http URL is requested in absolute form; https goes
        through a CONNECT tunnel and, like a direct request, uses the path.
        """
        with self._lock:
            if self._closed:
                raise TransportError("the client is closed", retryable=False,
                                     request_sent=False)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TransportError(f"not an http(s) URL: {display_url(url)!r}", retryable=False,
                                     request_sent=False)
            proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
            bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
            if proxy and bypass(parts.netloc, self._proxies):
                proxy = None
            manager = self._managers.get(proxy)
            if manager is None:
                manager = self._managers[proxy] = self._new_manager(proxy)
            pool = manager.connection_from_url(url)
            absolute = proxy is not None and parts.scheme == "http"
            route = (pool, url if absolute else urllib3.util.parse_url(url).request_uri)
            if len(self._routes) >= 64:
                self._routes.clear()
            self._routes[url] = route
            return route

    def _new_manager(self, proxy: str | None) -> urllib3.PoolManager:
        # TCP_NODELAY on proxy connections too (urllib3 leaves them without it): the head
        # and body go out in two writes, which Nagle would hold for a delayed ACK.
        options: dict[str, Any] = {
            "num_pools": 64, "maxsize": self.pool_size, "block": False,
            "retries": _NO_RETRIES, "ssl_context": self._ssl,
            "socket_options": urllib3.connection.HTTPConnection.default_socket_options}
        manager: urllib3.PoolManager
        if proxy is None:
            manager = urllib3.PoolManager(**options)
        else:
            parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            headers = None
            if parts.username is not None:
                headers = urllib3.util.make_headers(
                    proxy_basic_auth=f"{unquote(parts.username)}:{unquote(parts.password or '')}")
            bare = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            manager = urllib3.ProxyManager(bare, proxy_headers=headers, **options)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager

    # ------------------------------------------------------------ one request

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        """Send one request and read the whole reply, or raise a TransportError."""
        started = time.monotonic()
        attempt = _Attempt(started + self.timeout)
        _current.attempt = attempt
        resp: Any = None
        try:
            pool, target = self._routes.get(url) or self._route(url)
            resp = pool.urlopen(
                method, target, body=body, headers={**_BASE_HEADERS, **(headers or {})},
                retries=_NO_RETRIES, redirect=False, preload_content=False,
                decode_content=True, assert_same_host=False,
                timeout=self._timeouts)
            data = self._read_body(resp)
            if attempt.cut:  # the peer closed a length-less body at our deadline
                raise TimeoutError("cut off at the deadline")
            return HttpReply(resp.status, resp.headers, data, time.monotonic() - started)
        except EngageError:
            raise
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if resp is not None:
                resp.close()
            raise _failure(exc, attempt, url, self.timeout) from exc
        finally:
            _current.attempt = None
            attempt.release()
            if resp is not None:
                resp.release_conn()

    def _read_body(self, resp: Any) -> bytes:
        """The whole body, decoded, at most ``max_reply_bytes``.

        Read until urllib3 says the end (an empty read) or, for a body without a content
        encoding, until the announced length has come (the read after it could only be
        empty); a body cut short ends in urllib3's error either way.
        """
        cap = self.max_reply_bytes
        whole = "content-encoding" not in resp.headers  # nothing held back by a decoder
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = resp.read1(_CHUNK, decode_content=True)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                resp.close()
                raise reply_too_large(cap)
            chunks.append(chunk)
            if whole and resp.length_remaining == 0:
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close every pooled connection; later requests raise TransportError."""
        with self._lock:
            self._closed = True
            self._routes = {}
        self._finalizer()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _after_fork(self) -> None:
        # In a forked child: close our copies of the inherited sockets (the parent's stay
        # open) and start from new pools; the old ones' locks may be held by threads that
        # no longer exist, so they are left untouched.
        for conn in list(self._connections):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        self._lock = threading.Lock()
        self._finalizer.detach()
        self._start()
        self._finalizer = weakref.finalize(self, _close_all, self._managers)


def _close_all(managers: dict[str | None, urllib3.PoolManager]) -> None:
    for manager in list(managers.values()):
        manager.clear()
    managers.clear()


# ---------------------------------------------------------------- errors


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the errors behind it (causes, contexts, wrapped reasons)."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cur = todo.pop(0)
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        todo += [a for a in cur.args if isinstance(a, BaseException)]
        reason = getattr(cur, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo += [e for e in (cur.__cause__, cur.__context__) if e is not None]


def _find(exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
          ) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, kind)), None)


def _reason(exc: BaseException) -> str:
    """The most specific human reason in the chain (an OS or TLS message)."""
    tls = _find(exc, ssl.SSLError)
    if isinstance(tls, ssl.SSLCertVerificationError) and tls.verify_message:
        return f"certificate verify failed: {tls.verify_message}"
    if isinstance(tls, ssl.SSLError):
        return str(tls.reason or tls.strerror or tls)
    os_error = _find(exc, OSError)
    if isinstance(os_error, OSError) and os_error.strerror:
        return str(os_error.strerror)
    return str(exc) or type(exc).__name__


def reply_too_large(cap: int) -> TransportError:
    """The error for a reply over ``cap`` bytes (counted after decompression)."""
    return TransportError(f"the reply is larger than the {cap} byte cap", retryable=False,
                          request_sent=True)


def failure_after_sending(exc: BaseException, url: str, timeout: float) -> EngageError:
    """The error :class:`HttpTransport` raises for ``exc`` once the request was sent
    (for in-memory transports that play a reset, a short reply or a timeout)."""
    attempt = _Attempt(0.0)
    attempt.sent = True
    return _failure(exc, attempt, url, timeout)


def _failure(exc: BaseException, attempt: _Attempt, url: str, timeout: float) -> EngageError:
    """The engage_soap error for a failed attempt; the one place ``request_sent`` is decided.

    Before the first byte of the request was written (DNS, refused, connect or TLS
    timeouts, a proxy refusing the tunnel) nothing was sent and a retry is always safe.
    """
    host = urlsplit(display_url(url)).netloc
    sent = attempt.sent
    timed_out = attempt.cut or any(
        isinstance(e, (TimeoutError, urllib3.exceptions.TimeoutError))
        and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _chain(exc))
    if not sent:
        if timed_out:
            return RequestTimeoutError(
                f"could not connect to {host} within {timeout:g} s; nothing was sent",
                retryable=True, request_sent=False)
        if _find(exc, urllib3.exceptions.NameResolutionError) or _find(exc, socket.gaierror):
            return TransportError(
                f"the name {urlsplit(url).hostname!r} does not resolve ({_reason(exc)}); "
                "nothing was sent", retryable=True, request_sent=False)
        if _find(exc, urllib3.exceptions.ProxyError):
            return TransportError(f"the proxy failed on the way to {host} ({_reason(exc)}); "
                                  "nothing was sent", retryable=True, request_sent=False)
        if _find(exc, (ssl.SSLError, ssl.CertificateError)):
            return TransportError(f"TLS failure talking to {host}: {_reason(exc)}",
                                  retryable=False, request_sent=False)
        if isinstance(exc, ValueError):
            return TransportError(f"invalid request to {display_url(url)!r}: {exc}",
                                  retryable=False, request_sent=False)
        return TransportError(f"cannot connect to {host} ({_reason(exc)}); nothing was sent",
                              retryable=True, request_sent=False)
    if timed_out:
        return RequestTimeoutError(
            f"no complete reply from {host} within {timeout:g} s; the request was sent",
            retryable=True, request_sent=True)
    if _find(exc, (urllib3.exceptions.IncompleteRead, urllib3.exceptions.InvalidChunkLength)):
        return ProtocolError("the reply was cut short (fewer bytes than announced)",
                             retryable=True, request_sent=True)
    if _find(exc, urllib3.exceptions.DecodeError):
        return TransportError("the reply's content encoding is corrupt", retryable=False,
                              request_sent=True)
    return TransportError(f"the connection to {host} broke after the request was sent "
                          f"({_reason(exc)})", retryable=True, request_sent=True)
