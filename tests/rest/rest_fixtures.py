"""Recorded JSON exchanges under fixtures/rest/ played by an in-memory transport.

The REST counterpart of tests/core/recorded.py: a request is compared with the recorded
one structurally (method, path, query parameters by name, JSON body parsed, the headers
that matter, Basic auth present), never as a raw string.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from engage_soap import EngageClient, RetryPolicy
from engage_soap.testing import HttpRequest, MockTransport
from engage_soap.transport import HttpReply

REST_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rest"
BASE = "https://engage.example.invalid/api/rest/v19/"
USER = "api-user"
PASSWORD = "Tst-pw-9f2c!not-real"


@dataclass(frozen=True)
class Case:
    key: str  # "<operation>/<case>"
    request: dict[str, Any]
    reply: dict[str, Any]

    def http_reply(self) -> HttpReply:
        body = self.reply["body"]
        data = (self.reply.get("text", "").encode() if body is None
                else json.dumps(body).encode())
        return HttpReply(self.reply["status"], dict(self.reply["headers"]), data)


@cache
def load(key: str) -> Case:
    folder = REST_FIXTURES / key
    return Case(key, json.loads((folder / "request.json").read_text(encoding="utf-8")),
                json.loads((folder / "reply.json").read_text(encoding="utf-8")))


def check_request(sent: HttpRequest, case: Case) -> None:
    """``sent`` is the recorded request: same method, path, query, body and headers."""
    want = case.request
    parts = urlsplit(sent.url)
    assert sent.method == want["method"], case.key
    assert parts.path == urlsplit(BASE).path + want["path"], case.key
    query = {k: v[0] if len(v) == 1 else v
             for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    assert query == want["query"], case.key
    body = json.loads(sent.body) if sent.body else None
    assert body == want["body"], case.key
    headers = {k.lower(): v for k, v in sent.headers.items()}
    for name, value in want["headers"].items():
        assert headers.get(name.lower()) == value, f"{case.key}: header {name}"
    if want["body"] is None:
        assert "content-type" not in headers
    scheme, _, token = headers.get("authorization", "").partition(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == f"{USER}:{PASSWORD}"


def replaying(*keys: str, check: bool = True) -> MockTransport:
    """A transport answering the next requests with these cases' replies, in order; with
    ``check`` each request must be its case's recorded request."""
    queue = [load(k) for k in keys]

    def answer(request: HttpRequest) -> HttpReply:
        assert queue, f"unexpected request {request.method} {request.url}"
        case = queue.pop(0)
        if check:
            check_request(request, case)
        return case.http_reply()

    return MockTransport(answer)


def answering(status: int, body: bytes, content_type: str = "application/json"
              ) -> MockTransport:
    """A transport answering every request with one reply."""
    headers = {"Content-Type": content_type} if body else {}

    def answer(_request: HttpRequest) -> HttpReply:
        return HttpReply(status, headers, body)

    return MockTransport(answer)


def rest_client(transport: MockTransport, **kwargs: Any) -> EngageClient:
    kwargs.setdefault("rate_limit", None)
    kwargs.setdefault("retry", RetryPolicy.none())
    return EngageClient(kwargs.pop("endpoint", BASE), USER, PASSWORD, transport=transport,
                        **kwargs)


ClientFactory = Callable[..., EngageClient]
