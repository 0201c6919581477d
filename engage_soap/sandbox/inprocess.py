"""A transport that calls the sandbox application directly: no socket, same errors.

``sandbox.transport()`` returns one; give it to a client::

    sandbox = Sandbox()
    client = EngageClient(sandbox.inprocess_url, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                          transport=sandbox.transport())

The application's socket actions end the call as the socket would have ended it for the
built-in transport, with the very error it raises (decided by
:func:`engage_soap.transport.failure_after_sending`): a reset and a reply cut short after
the request was sent, and a delay past ``timeout`` (a RequestTimeoutError raised at the
deadline, the request sent). Replies over ``max_reply_bytes`` raise as they would there.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import urllib3
import urllib3.exceptions

from .. import defaults
from ..errors import TransportError
from ..transport import HttpReply, check_limits, failure_after_sending, reply_too_large
from .app import Application, Request

__all__ = ["InProcessTransport"]


class InProcessTransport:
    """A :class:`~engage_soap.transport.Transport` answered by a sandbox application.

    The URL's path routes the request (its scheme and host are not used). ``timeout``
    (default 30 s, the client's default) is the deadline of one request; ``requests``
    counts the requests made.
    """

    def __init__(self, app: Application, *, timeout: float | None = None,
                 max_reply_bytes: int | None = None) -> None:
        timeout = defaults.TIMEOUT if timeout is None else timeout
        cap = defaults.MAX_REPLY_BYTES if max_reply_bytes is None else max_reply_bytes
        check_limits(timeout, max_reply_bytes=cap)
        self.app = app
        self.timeout = float(timeout)
        self.max_reply_bytes = cap
        self.requests = 0
        self.closed = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"InProcessTransport(timeout={self.timeout:g}, "
                f"max_reply_bytes={self.max_reply_bytes})")

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        """Hand the request to the application; its reply, or the transport's error."""
        started = time.monotonic()
        with self._lock:
            if self.closed:
                raise TransportError("the client is closed", retryable=False,
                                     request_sent=False)
            self.requests += 1
        parts = urlsplit(url)
        reply = self.app.handle(Request(method.upper(), parts.path or "/", parts.query,
                                        dict(headers or {}), body or b""))
        if reply.delay > 0:
            remaining = started + self.timeout - time.monotonic()
            if reply.delay >= remaining:
                time.sleep(max(0.0, remaining))
                raise failure_after_sending(TimeoutError("no reply within the deadline"),
                                            url, self.timeout)
            time.sleep(reply.delay)
        if reply.reset:
            raise failure_after_sending(urllib3.exceptions.ProtocolError(
                "Connection aborted.",
                ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")),
                url, self.timeout)
        if reply.truncate_at is not None:
            partial, expected = reply.truncate_at, len(reply.body)
            raise failure_after_sending(urllib3.exceptions.ProtocolError(
                f"Connection broken: IncompleteRead({partial} bytes read, "
                f"{expected - partial} more expected)",
                urllib3.exceptions.IncompleteRead(partial, expected - partial)),
                url, self.timeout)
        data = b"" if method.upper() == "HEAD" else reply.body
        if len(data) > self.max_reply_bytes:
            raise reply_too_large(self.max_reply_bytes)
        head = urllib3.HTTPHeaderDict(reply.headers)
        head["Content-Length"] = str(len(reply.body))
        return HttpReply(reply.status, head, data, time.monotonic() - started)

    def close(self) -> None:
        """Later requests raise TransportError, as the built-in transport's do."""
        with self._lock:
            self.closed = True
