"""HTTP for engage_soap: one pooled ``requests.Session`` per client, bounded in time and size.

Everything the network can throw becomes a :class:`~engage_soap.errors.TransportError`
here, with ``request_sent`` telling whether the request may have reached the server.
Proxy settings from the environment are resolved once per transport, not per call.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
import requests.auth
import requests.utils
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from . import __version__
from .errors import ConfigurationError, ProtocolError, RequestTimeoutError, TransportError
from .http_pool import WATCHDOG as _WATCHDOG
from .http_pool import HttpPool

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "HttpReply", "HttpTransport"]

log = logging.getLogger("engage_soap")

DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 10.0
# URLs the fast path sends as they are: printable ASCII that needs no quoting.
_PLAIN_URL = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")


@dataclass(frozen=True)
class HttpReply:
    """A complete HTTP reply, read within the size cap and the deadline."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed: float


def basic_auth_header(username: str, password: str) -> str:
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _connect_failed(exc: BaseException) -> bool:
    """True when ``exc`` shows the request never left this machine (no connection made)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (urllib3.exceptions.NewConnectionError,
                            urllib3.exceptions.ConnectTimeoutError,
                            urllib3.exceptions.NameResolutionError,
                            ConnectionRefusedError, socket.gaierror)):
            return True
        if isinstance(cur, urllib3.exceptions.MaxRetryError) and cur.reason is not None:
            cur = cur.reason
            continue
        nxt = cur.args[0] if cur.args and isinstance(cur.args[0], BaseException) else None
        cur = nxt or cur.__cause__ or cur.__context__
    return False


def translate_requests_error(exc: BaseException, url: str) -> TransportError:
    """Map a requests/urllib3/socket error to our TransportError family."""
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return RequestTimeoutError(f"connecting to {host} timed out", retryable=True,
                                   request_sent=False)
    if isinstance(exc, (requests.exceptions.ReadTimeout, socket.timeout, TimeoutError)):
        return RequestTimeoutError(f"no reply from {host} in time; the request was sent",
                                   retryable=True, request_sent=True)
    if isinstance(exc, requests.exceptions.SSLError):
        return TransportError(f"TLS failure talking to {host}: {type(exc).__name__}",
                              retryable=False, request_sent=False)
    if isinstance(exc, requests.exceptions.ProxyError):
        return TransportError(f"proxy failure on the way to {host}", retryable=True,
                              request_sent=False)
    if _connect_failed(exc):
        return TransportError(f"cannot connect to {host}", retryable=True, request_sent=False)
    if isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        return TransportError(f"invalid endpoint URL {url!r}", retryable=False,
                              request_sent=False)
    return TransportError(f"connection to {host} failed after the request was sent "
                          f"({type(exc).__name__})", retryable=True, request_sent=True)


# ---------------------------------------------------------------- the call deadline
#
# A socket timeout bounds each read, not the call: a server trickling one byte per
# 0.2 s (in the status line and headers as well as in the body) never trips it. So one
# shared daemon thread (http_pool.WATCHDOG) shuts down the socket of any call still
# running at its deadline; the blocked read then fails at once and ``request`` reports
# RequestTimeoutError. The header phase is covered by the connection classes below
# (mounted on sessions this transport creates); the body phase by ``_read_body`` for
# every session.

_call = threading.local()  # .deadline: the monotonic deadline of this thread's call


class _DeadlineMixin:
    """Watches the socket while the status line and headers are read."""

    sock: socket.socket | None

    def getresponse(self) -> Any:
        deadline: float | None = getattr(_call, "deadline", None)
        sock = self.sock
        token = _WATCHDOG.watch(sock, deadline) if deadline is not None and sock else None
        try:
            return super().getresponse()  # type: ignore[misc]
        finally:
            if token is not None:
                _WATCHDOG.unwatch(token)


class _HTTPConnection(_DeadlineMixin, urllib3.connection.HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineMixin, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class _DeadlineAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with pools whose connections honour the call deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class _HeaderAuth(requests.auth.AuthBase):
    """Sets a precomputed Authorization header, or none (``None``).

    Passed as ``auth=`` it also keeps requests from consulting ~/.netrc, which would
    replace our credentials with the ones listed there for the host.
    """

    def __init__(self, authorization: str | None) -> None:
        self._authorization = authorization

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._authorization is not None:
            r.headers["Authorization"] = self._authorization
        return r


class HttpTransport:
    """POSTs envelopes over one pooled session; thread-safe.

    ``timeout`` is the deadline of a whole call (connect, send and the complete reply);
    ``max_reply_bytes`` caps a reply's size after decompression.
    """

    def __init__(self, username: str, password: str, *, timeout: float = 30.0,
                 session: requests.Session | None = None, verify: bool | str | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
                 fast_path: bool = True) -> None:
        if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
                and 0 < timeout < float("inf")):
            raise ConfigurationError(f"timeout must be a finite number of seconds > 0, "
                                     f"got {timeout!r}")
        if not isinstance(max_reply_bytes, int) or max_reply_bytes <= 0:
            raise ConfigurationError("max_reply_bytes must be a positive int")
        self.timeout = float(timeout)
        self.max_reply_bytes = max_reply_bytes
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            for prefix in ("https://", "http://"):
                session.mount(prefix, _DeadlineAdapter())
        self.session = session
        self._authorization = basic_auth_header(username, password)
        self._auth = {True: _HeaderAuth(self._authorization), False: _HeaderAuth(None)}
        self._verify_arg = verify
        # The lean keep-alive pool (http_pool) serves URLs that need no proxy, client
        # cert or verify=False, unless the caller brought a session of their own.
        self._fast = fast_path and self._own_session
        self._routes: dict[str, tuple[HttpPool, str] | None] = {}
        self._pools: dict[tuple[str, str, int], HttpPool] = {}
        self._pool_lock = threading.Lock()
        self._settings: dict[str, dict[str, Any]] = {}
        self._base_headers = {
            "User-Agent": f"engage-soap/{__version__}",
            "Accept-Encoding": "gzip, deflate",
            "Accept": "text/xml, */*;q=0.1",
            "Connection": "keep-alive",
        }
        self._headers: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def __repr__(self) -> str:
        return f"HttpTransport(timeout={self.timeout}, max_reply_bytes={self.max_reply_bytes})"

    def _send_settings(self, url: str) -> dict[str, Any]:
        """Proxies, TLS verification and certs for ``url``: resolved once, then reused."""
        settings = self._settings.get(url)
        if settings is None:
            merged = self.session.merge_environment_settings(
                url, {}, False, self._verify_arg, None)
            settings = {"proxies": merged["proxies"], "verify": merged["verify"],
                        "cert": merged["cert"]}
            if settings["verify"] is None:
                settings["verify"] = True
            if len(self._settings) < 32:
                self._settings[url] = settings
        return settings

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None, *,
                authenticate: bool = True) -> HttpReply:
        """Send one request and read the whole reply, or raise a TransportError.

        With ``authenticate=False`` no Authorization header is sent (nor one from netrc).
        """
        started = time.monotonic()
        deadline = started + self.timeout
        if self._fast:
            route = self._routes.get(url) if url in self._routes else self._route(url)
            if route is not None:
                fast = route[0].request(method, route[1], body, headers, deadline,
                                        authenticate=authenticate)
                return HttpReply(fast.status, fast.headers, fast.body,
                                 time.monotonic() - started)
        req = requests.Request(method, url, data=body, headers=self._headers_for(headers),
                               auth=self._auth[bool(authenticate)])
        try:
            prepared = self.session.prepare_request(req)
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"invalid endpoint URL {url!r}", retryable=False,
                                 request_sent=False) from exc
        settings = self._send_settings(url)
        _call.deadline = deadline
        try:
            resp = self.session.send(
                prepared, stream=True, allow_redirects=False,
                timeout=(min(_CONNECT_TIMEOUT, self.timeout), self.timeout), **settings)
        except requests.exceptions.RequestException as exc:
            if time.monotonic() >= deadline:  # the watchdog cut a trickling reply off
                raise RequestTimeoutError(
                    f"the reply from {urlsplit(url).netloc} did not start within "
                    f"{self.timeout:g} s; the request was sent", retryable=True,
                    request_sent=True) from exc
            raise translate_requests_error(exc, url) from exc
        finally:
            _call.deadline = None
        try:
            payload = self._read_body(resp, url, deadline)
        finally:
            resp.close()
        return HttpReply(resp.status_code, resp.headers, payload, time.monotonic() - started)

    def _headers_for(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """Our headers and the call's, merged once per kind of call (requests copies them)."""
        key = tuple(headers.items()) if headers else ()
        merged = self._headers.get(key)
        if merged is None:
            merged = {**self._base_headers, **(headers or {})}
            if len(self._headers) < 64:
                self._headers[key] = merged
        return merged

    def _read_body(self, resp: requests.Response, url: str, deadline: float) -> bytes:
        raw = resp.raw
        sock = _socket_of(raw)
        token = _WATCHDOG.watch(sock, deadline) if sock is not None else None
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeoutError(
                        f"the reply from {urlsplit(url).netloc} did not complete within "
                        f"{self.timeout:g} s; the request was sent", retryable=True,
                        request_sent=True)
                if sock is not None:
                    sock.settimeout(remaining)
                chunk = raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_reply_bytes:
                    raise TransportError(
                        f"the reply is larger than the {self.max_reply_bytes} byte cap",
                        retryable=False, request_sent=True)
                chunks.append(chunk)
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError,
                OSError) as exc:
            if time.monotonic() >= deadline or isinstance(
                    exc, (socket.timeout, TimeoutError, urllib3.exceptions.ReadTimeoutError)):
                raise RequestTimeoutError(
                    f"the reply from {urlsplit(url).netloc} stalled; the request was sent",
                    retryable=True, request_sent=True) from exc
            if _is_truncation(exc):
                raise ProtocolError("the reply was cut short (fewer bytes than announced)",
                                    retryable=True, request_sent=True) from exc
            if isinstance(exc, urllib3.exceptions.DecodeError):
                raise TransportError("the reply's content encoding is corrupt",
                                     retryable=False, request_sent=True) from exc
            raise TransportError(
                f"the connection broke while reading the reply ({type(exc).__name__}); "
                "the request was sent", retryable=True, request_sent=True) from exc
        finally:
            if token is not None:
                _WATCHDOG.unwatch(token)
        if time.monotonic() >= deadline and not _complete(raw):  # cut off by the watchdog
            raise RequestTimeoutError(
                f"the reply from {urlsplit(url).netloc} did not complete within "
                f"{self.timeout:g} s; the request was sent", retryable=True, request_sent=True)
        return b"".join(chunks)

    def _route(self, url: str) -> tuple[HttpPool, str] | None:
        """The pool and request target for ``url``, or None for the requests path.

        Decided once per URL (proxies from the environment included), then reused.
        """
        with self._pool_lock:
            if url in self._routes:
                return self._routes[url]
            route = self._new_route(url)
            if len(self._routes) < 32:
                self._routes[url] = route
            return route

    def _new_route(self, url: str) -> tuple[HttpPool, str] | None:
        parts = urlsplit(url)
        if (parts.scheme not in ("http", "https") or not parts.hostname
                or parts.username is not None or not _PLAIN_URL.fullmatch(url)):
            return None  # requests quotes, IDNA-encodes or takes credentials from it
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            settings = self._send_settings(url)
        except (ValueError, requests.exceptions.RequestException):
            return None
        verify = settings["verify"]
        if (requests.utils.select_proxy(url, settings["proxies"]) is not None
                or settings["cert"] is not None or verify is False):
            return None
        key = (parts.scheme, parts.hostname, port)
        pool = self._pools.get(key)
        if pool is None:
            pool = HttpPool(parts.scheme, parts.hostname, port, parts.netloc,
                            base_headers=self._base_headers,
                            authorization=self._authorization,
                            timeout=self.timeout,
                            connect_timeout=min(_CONNECT_TIMEOUT, self.timeout),
                            max_reply_bytes=self.max_reply_bytes, verify=verify)
            self._pools[key] = pool
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return pool, target

    def close(self) -> None:
        with self._pool_lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
        if self._own_session:
            self.session.close()


def _is_truncation(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    for _ in range(6):
        if cur is None:
            return False
        if isinstance(cur, (urllib3.exceptions.IncompleteRead, http.client.IncompleteRead)):
            return True
        nxt = cur.args[1] if len(cur.args) > 1 and isinstance(cur.args[1], BaseException) \
            else None
        cur = nxt or cur.__cause__ or cur.__context__
    return False


def _complete(raw: Any) -> bool:
    """True when the reply's announced length was read in full (or none was announced)."""
    length = getattr(raw, "length_remaining", None)
    return not length


def _socket_of(raw: Any) -> socket.socket | None:
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None
