"""Test helpers for code built on engage_soap.

:class:`MockTransport` is an in-memory :class:`~engage_soap.transport.Transport` (the
idea of httpx's MockTransport): pass it as ``EngageClient(..., transport=...)`` and a
function of yours answers every request, with no socket at all::

    def answer(request: HttpRequest) -> HttpReply:
        return HttpReply(200, {"Content-Type": "text/xml"}, recorded_envelope)

    client = EngageClient(url, "user", "secret", transport=MockTransport(answer))
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .transport import HttpReply

__all__ = ["HttpReply", "HttpRequest", "MockTransport"]


@dataclass(frozen=True)
class HttpRequest:
    """One request as the client made it (headers include Authorization)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class MockTransport:
    """A Transport whose replies come from ``handler(request)``; it keeps every request.

    The handler returns an :class:`HttpReply` or raises an engage_soap error (for
    example ``TransportError(..., request_sent=False)`` to play a refused connection).
    """

    def __init__(self, handler: Callable[[HttpRequest], HttpReply]) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False
        self._lock = threading.Lock()

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        request = HttpRequest(method, url, dict(headers or {}), body or b"")
        with self._lock:
            self.requests.append(request)
        return self.handler(request)

    def close(self) -> None:
        self.closed = True

    def __repr__(self) -> str:
        return f"MockTransport(requests={len(self.requests)})"
