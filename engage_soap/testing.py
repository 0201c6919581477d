"""Test helpers for code built on engage_soap: a mock transport, and cassettes.

:class:`MockTransport` is an in-memory :class:`~engage_soap.transport.Transport` (the
idea of httpx's MockTransport): pass it as ``EngageClient(..., transport=...)`` and a
function of yours answers every request, with no socket at all::

    def answer(request: HttpRequest) -> HttpReply:
        return HttpReply(200, {"Content-Type": "text/xml"}, recorded_envelope)

    client = EngageClient(url, "user", "secret", transport=MockTransport(answer))

A **cassette** is a folder of recorded exchanges, ``NNN-<operation>.request.xml``,
``NNN-<operation>.response.xml`` and, where the reply is not a 200 with text/xml,
``NNN-<operation>.meta.json``. :class:`ReplayServer` serves one on loopback, in order,
checking each request against the recording; :class:`RecordingTransport` writes one
while a real tenant (or a sandbox) answers, redacted by a :class:`Redactor`. The pytest
plugin's ``engage_replay`` fixture puts both together.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from .envelope import SOAP11_NS, hardened_parser
from .errors import ConfigurationError
from .transport import HttpReply, Transport

__all__ = [
    "ANY",
    "Cassette",
    "HttpReply",
    "HttpRequest",
    "MockTransport",
    "RecordedExchange",
    "RecordingTransport",
    "Redactor",
    "ReplayServer",
    "xml_differences",
]

ANY = "{{any}}"  # a recorded element with this text matches any value
_SOAP_ENV = SOAP11_NS
_XML_TYPE = "text/xml;charset=utf-8"
_NAME = re.compile(r"^(\d{3})-([A-Za-z0-9_]+)\.request\.xml$")


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


# ---------------------------------------------------------------- XML helpers


def _parser() -> etree.XMLParser:
    return hardened_parser(remove_blank_text=True, remove_comments=True, remove_pis=True)


def _parse(data: bytes) -> etree._Element | None:
    try:
        return etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError):
        return None


def _pretty(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True,
                                 encoding="utf-8")
    return data


def operation_of(body: bytes) -> str:
    """The operation an envelope is for (the local name of its Body's first element)."""
    root = _parse(body)
    soap_body = root.find(f"{{{_SOAP_ENV}}}Body") if root is not None else None
    if soap_body is None or not len(soap_body):
        return "unknown"
    name = etree.QName(soap_body[0]).localname
    return name.removesuffix("Response") if name.endswith("Response") else name


def _outline(element: etree._Element, recorded: etree._Element | None, depth: int = 0
             ) -> list[str]:
    """A line per element: path-like indentation, tag, text; ``{{any}}`` where recorded."""
    text = (element.text or "").strip()
    if recorded is not None and (recorded.text or "").strip() == ANY:
        text = ANY
    lines = [f"{'  ' * depth}<{etree.QName(element).localname}>{text}"]
    kids = list(recorded) if recorded is not None else []
    for i, child in enumerate(element):
        lines += _outline(child, kids[i] if i < len(kids) and kids[i].tag == child.tag
                          else None, depth + 1)
    return lines


def _same(actual: etree._Element, recorded: etree._Element) -> bool:
    if actual.tag != recorded.tag or sorted(actual.items()) != sorted(recorded.items()):
        return False
    want = (recorded.text or "").strip()
    if want != ANY and (actual.text or "").strip() != want:
        return False
    if len(actual) != len(recorded):
        return False
    return all(_same(a, r) for a, r in zip(actual, recorded, strict=True))


def xml_differences(actual: bytes, recorded: bytes) -> str | None:
    """None when ``actual`` matches ``recorded`` after canonicalisation (namespaces, not
    prefixes; whitespace-only text ignored; ``{{any}}`` matching any text), else a
    unified diff of the two."""
    a, r = _parse(actual), _parse(recorded)
    if a is None or r is None:
        if actual.strip() == recorded.strip():
            return None
        return "\n".join(difflib.unified_diff(
            recorded.decode("utf-8", "replace").splitlines(),
            actual.decode("utf-8", "replace").splitlines(), "recorded", "sent", lineterm=""))
    if _same(a, r):
        return None
    return "\n".join(difflib.unified_diff(_outline(r, r), _outline(a, r), "recorded", "sent",
                                          lineterm=""))


# ---------------------------------------------------------------- redaction


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"^(?:\+|00)\d[\d /()-]{5,20}\d$")


class Redactor:
    """Replaces secrets and personal data in envelopes with stable fakes.

    E-mail addresses (anywhere in text) become ``user-<hash>@example.com``; mobile numbers
    (elements named like mobile or phone, a MOBILE identifier's value, and any text that
    is a phone number starting with + or 00) become ``+1555<7 digits>``; the text of
    elements named in ``elements`` becomes ``REDACTED-<hash>``. The same real value always
    gives the same fake, in every run, so lookups and sends line up in a replay. The
    password, if given, is replaced wherever it shows; :meth:`check` refuses output that
    still holds it.
    """

    def __init__(self, *, password: str | None = None, elements: Iterable[str] = ()) -> None:
        self.password = password or None
        self.elements = {e.strip().lower() for e in elements if e.strip()}

    @staticmethod
    def _hash(value: str) -> str:
        return hashlib.sha256(f"engage_soap:{value}".encode()).hexdigest()

    def email(self, value: str) -> str:
        return f"user-{self._hash(value.lower())[:10]}@example.com"

    def mobile(self, value: str) -> str:
        digits = re.sub(r"\D", "", value)
        return f"+1555{int(self._hash(digits), 16) % 10**7:07d}"

    def _text(self, element: etree._Element, text: str) -> str:
        name = etree.QName(element).localname.lower()
        if name in self.elements:
            return f"REDACTED-{self._hash(text)[:10]}"
        parent = element.getparent()
        mobile_value = name == "value" and parent is not None and (
            parent.findtext("type") or "") == "MOBILE"
        phone = "mobile" in name or "phone" in name or mobile_value
        if text.strip() and (phone or _PHONE.match(text.strip())):
            return self.mobile(text)
        text = _EMAIL.sub(lambda m: self.email(m.group()), text)
        if self.password and self.password in text:
            text = text.replace(self.password, "REDACTED-PASSWORD")
        return text

    def redact(self, body: bytes) -> bytes:
        """``body`` redacted and, if it is XML, pretty-printed (stable bytes)."""
        root = _parse(body)
        if root is None:
            text = _EMAIL.sub(lambda m: self.email(m.group()), body.decode("utf-8", "replace"))
            if self.password:
                text = text.replace(self.password, "REDACTED-PASSWORD")
            return text.encode("utf-8")
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            if element.text and element.text.strip():
                element.text = self._text(element, element.text)
            for key, value in element.attrib.items():
                element.set(key, _EMAIL.sub(lambda m: self.email(m.group()), str(value)))
        return _pretty(root)

    def check(self, data: bytes, what: str) -> None:
        """Refuse ``data`` if it still holds the password (plain, or in Basic form)."""
        if not self.password:
            return
        needles = {self.password.encode(), escape(self.password).encode(),
                   escape(self.password, {'"': "&quot;"}).encode()}
        if any(n in data for n in needles):
            raise ConfigurationError(f"refusing to record {what}: it would still contain "
                                     "the password")


# ---------------------------------------------------------------- cassettes


@dataclass(frozen=True)
class RecordedExchange:
    """One recorded exchange of a cassette."""

    index: int
    operation: str
    request: bytes
    response: bytes
    status: int = 200
    content_type: str = _XML_TYPE

    @property
    def name(self) -> str:
        return f"{self.index:03d}-{self.operation}"


class Cassette:
    """A folder of recorded exchanges, in order."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def load(self) -> list[RecordedExchange]:
        """The exchanges in the folder (ConfigurationError if one is incomplete)."""
        if not self.folder.is_dir():
            raise ConfigurationError(f"no cassette folder {str(self.folder)!r} (record one "
                                     "with pytest --engage-record)")
        out = []
        for path in sorted(self.folder.iterdir()):
            m = _NAME.match(path.name)
            if not m:
                continue
            stem = path.name.removesuffix(".request.xml")
            reply = self.folder / f"{stem}.response.xml"
            if not reply.is_file():
                raise ConfigurationError(f"{stem}: the recording has no {reply.name}")
            meta_file = self.folder / f"{stem}.meta.json"
            meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
            out.append(RecordedExchange(int(m.group(1)), m.group(2), path.read_bytes(),
                                reply.read_bytes(), int(meta.get("status", 200)),
                                str(meta.get("content_type", _XML_TYPE))))
        return out

    def clear(self) -> None:
        """Remove the recorded exchanges (before a new recording)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in self.folder.iterdir():
            if re.match(r"^\d{3}-.+\.(request\.xml|response\.xml|meta\.json)$", path.name):
                path.unlink()

    def write(self, exchange: RecordedExchange) -> None:
        stem = self.folder / exchange.name
        Path(f"{stem}.request.xml").write_bytes(exchange.request)
        Path(f"{stem}.response.xml").write_bytes(exchange.response)
        meta: dict[str, Any] = {}
        if exchange.status != 200:
            meta["status"] = exchange.status
        if exchange.content_type.replace(" ", "").lower() != _XML_TYPE:
            meta["content_type"] = exchange.content_type
        if meta:
            Path(f"{stem}.meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True)
                                                 + "\n")


class RecordingTransport:
    """Wraps a real Transport and writes every exchange into a cassette, redacted.

    Nothing is written before it is redacted; output that would still hold the password
    raises ConfigurationError instead of being written.
    """

    def __init__(self, inner: Transport, cassette: Cassette, redactor: Redactor) -> None:
        self.inner = inner
        self.cassette = cassette
        self.redactor = redactor
        self.recorded = 0
        self._lock = threading.Lock()
        cassette.clear()

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        reply = self.inner.request(method, url, body, headers)
        if method == "POST" and body:
            request = self.redactor.redact(body)
            response = self.redactor.redact(reply.body)
            with self._lock:
                exchange = RecordedExchange(self.recorded + 1, operation_of(body), request,
                                            response, reply.status,
                                            reply.headers.get("Content-Type") or _XML_TYPE)
                self.redactor.check(request, f"{exchange.name}.request.xml")
                self.redactor.check(response, f"{exchange.name}.response.xml")
                self.cassette.write(exchange)
                self.recorded = exchange.index
        return reply

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------- replay


class ReplayServer:
    """Serves a cassette on 127.0.0.1, in order, checking each request against it.

    A request that differs from its recording (after canonicalisation and redaction)
    is answered with a SOAP fault and listed in :attr:`problems` with a readable diff;
    :attr:`unused` lists the exchanges never asked for. Use as a context manager.
    """

    def __init__(self, folder: str | Path, *, redactor: Redactor | None = None) -> None:
        self.exchanges = Cassette(folder).load()
        self.redactor = redactor or Redactor()
        self.problems: list[str] = []
        self.served = 0
        self._lock = threading.Lock()
        self._server = _ReplayHTTPServer(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="engage-soap-replay")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/soap/v8/"

    @property
    def unused(self) -> list[str]:
        return [e.name for e in self.exchanges[self.served:]]

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, body: bytes) -> tuple[int, str, bytes]:
        """The reply to the next request: the recorded one, or a fault saying why not."""
        with self._lock:
            index = self.served
            self.served += 1
        if index >= len(self.exchanges):
            problem = (f"request {index + 1} ({operation_of(body)}) has no recorded exchange "
                       f"left (the cassette holds {len(self.exchanges)})")
        else:
            recorded = self.exchanges[index]
            diff = xml_differences(self.redactor.redact(body), recorded.request)
            if diff is None:
                return recorded.status, recorded.content_type, recorded.response
            problem = f"request {index + 1} differs from the recording {recorded.name}:\n{diff}"
        with self._lock:
            self.problems.append(problem)
        fault = (f'<S:Envelope xmlns:S="{_SOAP_ENV}"><S:Body><S:Fault><faultcode>S:Client'
                 f"</faultcode><faultstring>engage_replay: {problem.splitlines()[0]}"
                 "</faultstring></S:Fault></S:Body></S:Envelope>")
        return 500, _XML_TYPE, fault.encode()


class _ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(("127.0.0.1", 0), _ReplayHandler)


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ReplayHTTPServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status, content_type, body = self.server.replay.answer(self.rfile.read(length))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
