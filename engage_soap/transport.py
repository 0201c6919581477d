"""HTTP for engage_soap: one pooled ``requests.Session`` per client, bounded in time and size.

Everything the network can throw becomes a :class:`~engage_soap.errors.TransportError`
here, with ``request_sent`` telling whether the request may have reached the server.
Proxy settings from the environment are resolved once per transport, not per call.
"""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from . import __version__
from .errors import ConfigurationError, ProtocolError, RequestTimeoutError, TransportError

__all__ = ["DEFAULT_MAX_REPLY_BYTES", "HttpReply", "HttpTransport"]

log = logging.getLogger("engage_soap")

DEFAULT_MAX_REPLY_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024
_CONNECT_TIMEOUT = 10.0


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


class HttpTransport:
    """POSTs envelopes over one pooled session; thread-safe.

    ``timeout`` is the deadline of a whole call (connect, send and the complete reply);
    ``max_reply_bytes`` caps a reply's size after decompression.
    """

    def __init__(self, username: str, password: str, *, timeout: float = 30.0,
                 session: requests.Session | None = None, verify: bool | str | None = None,
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
                 proxy_url: str | None = None) -> None:
        if not (isinstance(timeout, (int, float)) and 0 < timeout < float("inf")):
            raise ConfigurationError(f"timeout must be a finite number of seconds > 0, "
                                     f"got {timeout!r}")
        if not isinstance(max_reply_bytes, int) or max_reply_bytes <= 0:
            raise ConfigurationError("max_reply_bytes must be a positive int")
        self.timeout = float(timeout)
        self.max_reply_bytes = max_reply_bytes
        self._own_session = session is None
        self.session = session if session is not None else requests.Session()
        self._authorization = basic_auth_header(username, password)
        self._verify_arg = verify
        self._settings_url: str | None = proxy_url
        self._settings: dict[str, Any] | None = None
        self._base_headers = {
            "User-Agent": f"engage-soap/{__version__}",
            "Accept-Encoding": "gzip, deflate",
            "Accept": "text/xml, */*;q=0.1",
            "Connection": "keep-alive",
        }

    def __repr__(self) -> str:
        return f"HttpTransport(timeout={self.timeout}, max_reply_bytes={self.max_reply_bytes})"

    def _send_settings(self, url: str) -> dict[str, Any]:
        """Proxies, TLS verification and certs for ``url``: resolved once, then reused."""
        settings = self._settings
        if settings is None or self._settings_url != url:
            merged = self.session.merge_environment_settings(
                url, {}, False, self._verify_arg, None)
            settings = {"proxies": merged["proxies"], "verify": merged["verify"],
                        "cert": merged["cert"]}
            if settings["verify"] is None:
                settings["verify"] = True
            self._settings, self._settings_url = settings, url
        return settings

    @property
    def verify(self) -> bool | str:
        verify: bool | str = self._send_settings(self._settings_url or "https://x/")["verify"]
        return verify

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        """Send one request and read the whole reply, or raise a TransportError."""
        started = time.monotonic()
        deadline = started + self.timeout
        all_headers = dict(self._base_headers)
        if headers:
            all_headers.update(headers)
        all_headers["Authorization"] = self._authorization
        req = requests.Request(method, url, data=body, headers=all_headers)
        try:
            prepared = self.session.prepare_request(req)
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"invalid endpoint URL {url!r}", retryable=False,
                                 request_sent=False) from exc
        settings = self._send_settings(url)
        try:
            resp = self.session.send(
                prepared, stream=True, allow_redirects=False,
                timeout=(min(_CONNECT_TIMEOUT, self.timeout), self.timeout), **settings)
        except requests.exceptions.RequestException as exc:
            raise translate_requests_error(exc, url) from exc
        try:
            payload = self._read_body(resp, url, deadline)
        finally:
            resp.close()
        return HttpReply(resp.status_code, resp.headers, payload, time.monotonic() - started)

    def _read_body(self, resp: requests.Response, url: str, deadline: float) -> bytes:
        raw = resp.raw
        sock = _socket_of(raw)
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
            if isinstance(exc, (socket.timeout, TimeoutError,
                                urllib3.exceptions.ReadTimeoutError)):
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
        return b"".join(chunks)

    def close(self) -> None:
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


def _socket_of(raw: Any) -> socket.socket | None:
    conn = getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None
