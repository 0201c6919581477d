"""Test helpers for code built on engage_soap: a mock transport, and cassettes.

:class:`MockTransport` is an in-memory :class:`~engage_soap.transport.Transport` (the
idea of httpx's MockTransport): pass it as ``EngageClient(..., transport=...)`` and a
function of yours answers every request, with no socket at all::

    def answer(request: HttpRequest) -> HttpReply:
        return HttpReply(200, {"Content-Type": "text/xml"}, recorded_envelope)

    client = EngageClient(url, "user", "secret", transport=MockTransport(answer))

Recorded exchanges have one format, for cassettes and for the project's own fixtures: an
exchange is ``<name>.request.xml``, exactly one ``<name>.response.<ext>`` (``xml``;
``html`` or ``txt`` for what proxies send) and, where the reply is not a 200 with
text/xml, ``<name>.meta.json`` (``{"status": 500, "content_type": "..."}``). A
**cassette** is a folder of exchanges named ``NNN-<operation>``, with a
``cassette.json`` naming the redaction key it was recorded with (an id, not the key).
:class:`ReplayServer` serves one on loopback; :class:`RecordingTransport` writes one while
a real tenant (or a sandbox) answers, pseudonymised by a :class:`Redactor` (see
:mod:`engage_soap.redaction` for what is kept and what is replaced). The pytest plugin's
``engage_replay`` fixture puts both together. :func:`xml_differences` is the one XML
comparison of the project (recorded fixtures are checked with it too).
"""

from __future__ import annotations

import contextlib
import difflib
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from .envelope import SOAP11_NS, parse_xml
from .errors import ConfigurationError, ProtocolError
from .redaction import Redactor, key_id, redaction_key
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
_NAME = re.compile(r"^(\d{3})-([A-Za-z0-9_]+)$")
_EXCHANGE_FILE = re.compile(r"^.+\.(request\.xml|response\.[a-z]+|meta\.json)$")
_CASSETTE_FILE = "cassette.json"


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


# ---------------------------------------------------------------- XML comparison


def operation_of(body: bytes) -> str:
    """The operation an envelope is for (the local name of its Body's first element)."""
    try:
        root = parse_xml(body)
    except ProtocolError:
        return "unknown"
    soap_body = root.find(f"{{{_SOAP_ENV}}}Body")
    if soap_body is None or not len(soap_body):
        return "unknown"
    name = etree.QName(soap_body[0]).localname
    return name.removesuffix("Response") if name.endswith("Response") else name


class _Bindings:
    """Fakes of a recording bound to the values a test sent in their place, one to one.

    With ``verify`` (a Redactor holding the key the cassette was recorded with), a value
    binds only to the very fake it makes; without, any value binds (by position).
    """

    def __init__(self, verify: Redactor | None = None) -> None:
        self.verify = verify
        self.real: dict[str, str] = {}  # fake -> value sent
        self.fake: dict[str, str] = {}  # value sent -> fake

    def copy(self) -> _Bindings:
        other = _Bindings(self.verify)
        other.real, other.fake = dict(self.real), dict(self.fake)
        return other

    def bind(self, fake: str, value: str) -> bool:
        if self.real.get(fake, value) != value or self.fake.get(value, fake) != fake:
            return False
        if self.verify is not None and self.verify.fake_like(fake, value) != fake:
            return False
        self.real[fake], self.fake[value] = value, fake
        return True


def _same_text(sent: str | None, recorded: str | None, bindings: _Bindings | None) -> bool:
    want, got = (recorded or "").strip(), (sent or "").strip()
    if want in (got, ANY):
        return True
    return bindings is not None and Redactor.is_fake(want) and bindings.bind(want, got)


def _same(sent: etree._Element, recorded: etree._Element, bindings: _Bindings | None
          ) -> bool:
    if sent.tag != recorded.tag or len(sent) != len(recorded) \
            or set(sent.attrib) != set(recorded.attrib):
        return False
    if not all(_same_text(sent.get(k), recorded.get(k), bindings) for k in recorded.attrib):
        return False
    if not _same_text(sent.text, recorded.text, bindings) \
            or not _same_text(sent.tail, recorded.tail, None):
        return False
    return all(_same(a, r, bindings) for a, r in zip(sent, recorded, strict=True))


def _outline(element: etree._Element, recorded: etree._Element | None,
             bindings: _Bindings | None, depth: int = 0) -> list[str]:
    """A line per element (indented tag, attributes, text, then its tail); where the
    recording holds ``{{any}}`` or a fake the sent value may take, the recorded text."""
    def shown(sent: str | None, rec: str | None) -> str:
        if rec is not None and _same_text(sent, rec, bindings.copy() if bindings else None):
            return (rec or "").strip()
        return (sent or "").strip()

    attrs = "".join(f' {etree.QName(k).localname}="'
                    f'{shown(str(v), recorded.get(k) if recorded is not None else None)}"'
                    for k, v in sorted(element.items()))
    text = shown(element.text, recorded.text if recorded is not None else None)
    lines = [f"{'  ' * depth}<{etree.QName(element).localname}{attrs}>{text}"]
    kids = list(recorded) if recorded is not None else []
    for i, child in enumerate(element):
        lines += _outline(child, kids[i] if i < len(kids) and kids[i].tag == child.tag
                          else None, bindings, depth + 1)
    tail = shown(element.tail, recorded.tail if recorded is not None else None)
    if tail:
        lines.append(f"{'  ' * depth}{tail}")
    return lines


def _matches(sent: bytes, recorded: bytes, bindings: _Bindings | None) -> bool:
    """Whether ``sent`` matches ``recorded`` (binding fakes into ``bindings``)."""
    try:
        a, r = parse_xml(sent), parse_xml(recorded)
    except ProtocolError:
        return sent.strip() == recorded.strip()
    return _same(a, r, bindings)


def _differences(sent: bytes, recorded: bytes, bindings: _Bindings | None) -> str | None:
    if _matches(sent, recorded, bindings.copy() if bindings is not None else None):
        return None
    try:
        a, r = parse_xml(sent), parse_xml(recorded)
    except ProtocolError:
        return "\n".join(difflib.unified_diff(
            recorded.decode("utf-8", "replace").splitlines(),
            sent.decode("utf-8", "replace").splitlines(), "recorded", "sent", lineterm=""))
    return "\n".join(difflib.unified_diff(_outline(r, r, None), _outline(a, r, bindings),
                                          "recorded", "sent", lineterm=""))


def xml_differences(actual: bytes, recorded: bytes) -> str | None:
    """None when ``actual`` matches ``recorded`` canonically (namespaces, not prefixes;
    attribute order and whitespace-only text ignored; text, tails and element order
    compared; ``{{any}}`` matching any text), else a unified diff of the two."""
    return _differences(actual, recorded, None)


# ---------------------------------------------------------------- cassettes


@dataclass(frozen=True)
class RecordedExchange:
    """One recorded exchange: ``NNN-<operation>`` in a cassette, or ``label`` (a fixture)."""

    index: int
    operation: str
    request: bytes
    response: bytes
    status: int = 200
    content_type: str = _XML_TYPE
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or f"{self.index:03d}-{self.operation}"


def _meta(path: Path) -> tuple[int, str]:
    """Status and content type from a ``meta.json`` (ConfigurationError naming it)."""
    if not path.exists():
        return 200, _XML_TYPE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path}: not a JSON object: {exc}") from exc
    if not isinstance(meta, dict) or set(meta) - {"status", "content_type"}:
        raise ConfigurationError(f"{path}: expected {{\"status\": 100-599, \"content_type\": "
                                 f"\"...\"}}, got {str(meta)[:80]}")
    status, content_type = meta.get("status", 200), meta.get("content_type", _XML_TYPE)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigurationError(f"{path}: status must be an HTTP status 100-599, got "
                                 f"{status!r}")
    if not isinstance(content_type, str) or not content_type.isprintable() \
            or not content_type.strip():
        raise ConfigurationError(f"{path}: content_type must be a media type, got "
                                 f"{content_type!r}")
    return status, content_type


def _extension(content_type: str) -> str:
    media = content_type.split(";")[0].strip().lower()
    return "xml" if "xml" in media else "html" if media == "text/html" else "txt"


class Cassette:
    """A folder of recorded exchanges (see the module docstring for the format)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def read(self, name: str, index: int = 0) -> RecordedExchange:
        """The exchange ``name`` (ConfigurationError naming the file that is wrong)."""
        request = self.folder / f"{name}.request.xml"
        replies = sorted(self.folder.glob(f"{_glob_escape(name)}.response.*"))
        if len(replies) != 1:
            raise ConfigurationError(f"{request}: the recording needs exactly one "
                                     f"{name}.response.<ext>, found {len(replies)}")
        body = request.read_bytes()
        try:
            parse_xml(body)
        except ProtocolError as exc:
            raise ConfigurationError(f"{request}: not a well-formed request without DTD or "
                                     f"entity references: {exc}") from exc
        status, content_type = _meta(self.folder / f"{name}.meta.json")
        m = _NAME.match(name)
        return RecordedExchange(index, m.group(2) if m else operation_of(body), body,
                                replies[0].read_bytes(), status, content_type,
                                None if m else name)

    def load(self) -> list[RecordedExchange]:
        """The exchanges ``NNN-<operation>`` of the cassette, in order."""
        if not self.folder.is_dir():
            raise ConfigurationError(f"no cassette folder {str(self.folder)!r} (record one "
                                     "with pytest --engage-record)")
        names = sorted(p.name.removesuffix(".request.xml")
                       for p in self.folder.glob("*.request.xml"))
        return [self.read(n, int(m.group(1))) for n in names if (m := _NAME.match(n))]

    @property
    def key_id(self) -> str | None:
        """The id of the redaction key the cassette was recorded with (None: unknown)."""
        path = self.folder / _CASSETTE_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigurationError(f"{path}: not a JSON object: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("redaction_key"), str):
            raise ConfigurationError(f"{path}: expected {{\"redaction_key\": \"<id>\"}}")
        return str(data["redaction_key"])

    def write(self, exchange: RecordedExchange) -> None:
        stem = self.folder / exchange.name
        Path(f"{stem}.request.xml").write_bytes(exchange.request)
        Path(f"{stem}.response.{_extension(exchange.content_type)}").write_bytes(
            exchange.response)
        meta: dict[str, Any] = {}
        if exchange.status != 200:
            meta["status"] = exchange.status
        if exchange.content_type.replace(" ", "").lower() != _XML_TYPE:
            meta["content_type"] = exchange.content_type
        if meta:
            Path(f"{stem}.meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True)
                                                 + "\n")


def _glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


class RecordingTransport:
    """Wraps a real Transport and records every exchange, pseudonymised, for a cassette.

    The exchanges go to a new folder beside the cassette; :meth:`commit` (the plugin
    calls it when the test passed) replaces the cassette with it, :meth:`discard` drops
    it, so a failed re-recording leaves the old cassette as it was. Nothing is written
    before it is redacted; output that would still hold the password raises
    ConfigurationError instead of being written.
    """

    def __init__(self, inner: Transport, cassette: Cassette, redactor: Redactor) -> None:
        self.inner = inner
        self.cassette = cassette
        self.redactor = redactor
        self.recorded = 0
        self._lock = threading.Lock()
        cassette.folder.parent.mkdir(parents=True, exist_ok=True)
        self._staging: Cassette | None = Cassette(tempfile.mkdtemp(
            prefix=f".{cassette.folder.name}.recording-", dir=cassette.folder.parent))

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        reply = self.inner.request(method, url, body, headers)
        if method == "POST" and body:
            request = self.redactor.redact(body)
            response = self.redactor.redact(reply.body, pretty=False)
            with self._lock:
                if self._staging is None:
                    raise ConfigurationError("this recording was already committed or "
                                             "discarded")
                exchange = RecordedExchange(self.recorded + 1, operation_of(body), request,
                                            response, reply.status,
                                            reply.headers.get("Content-Type") or _XML_TYPE)
                self.redactor.check(request, f"{exchange.name}.request.xml")
                self.redactor.check(response, f"{exchange.name}.response.xml")
                self._staging.write(exchange)
                self.recorded = exchange.index
        return reply

    def commit(self) -> None:
        """Replace the cassette with this recording (other files in its folder stay)."""
        with self._lock:
            staging, self._staging = self._staging, None
        if staging is None:
            return
        (staging.folder / _CASSETTE_FILE).write_text(json.dumps(
            {"redaction_key": key_id(self.redactor.key)}, indent=2) + "\n")
        old = self.cassette.folder
        if old.is_dir():
            for path in old.iterdir():  # a README or notes beside the exchanges
                if not _EXCHANGE_FILE.match(path.name) and path.name != _CASSETTE_FILE:
                    shutil.copy2(path, staging.folder / path.name) if path.is_file() \
                        else shutil.copytree(path, staging.folder / path.name)
            backup = Path(tempfile.mkdtemp(prefix=f".{old.name}.old-", dir=old.parent))
            old.rename(backup / old.name)
            staging.folder.rename(old)
            shutil.rmtree(backup)
        else:
            staging.folder.rename(old)

    def discard(self) -> None:
        """Drop this recording; the cassette stays as it was."""
        with self._lock:
            staging, self._staging = self._staging, None
        if staging is not None:
            shutil.rmtree(staging.folder, ignore_errors=True)

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------- replay


class ReplayServer:
    """Serves a cassette on 127.0.0.1, checking each request against it.

    Each request gets the reply of the first exchange not yet used whose recorded
    request it matches canonically, so calls made concurrently replay in any order. A
    fake in the recording matches the value the test sends in its place, the same fake
    always the same value; that value is put back into the replies wherever the fake
    shows. With the redaction key the cassette was recorded with (ENGAGE_REDACT_KEY or
    the key file, see :mod:`engage_soap.redaction`), a value matches only the fake it
    makes, so a changed value fails; without it, fakes match by position. A request
    matching no exchange is answered with a SOAP fault and listed in :attr:`problems`
    with a diff against the next exchange of its operation; :attr:`unused` lists the
    exchanges never asked for. Use as a context manager.
    """

    def __init__(self, folder: str | Path, *, redactor: Redactor | None = None) -> None:
        cassette = Cassette(folder)
        self.exchanges = cassette.load()
        recorded_with = cassette.key_id
        key = redactor.key if redactor is not None else redaction_key(create=False)
        verify = redactor or (Redactor(key=key) if key else None)
        same_key = recorded_with is not None and key is not None and key_id(key) == recorded_with
        self._bindings = _Bindings(verify if same_key else None)
        self.problems: list[str] = []
        self.served = 0
        self._used: set[int] = set()
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
        return [e.name for i, e in enumerate(self.exchanges) if i not in self._used]

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

    def _restore(self, response: bytes, bindings: _Bindings) -> bytes:
        """``response`` with each bound fake replaced by the value the test sent."""
        for fake, value in bindings.real.items():
            response = response.replace(f">{fake}<".encode(),
                                        f">{escape(value)}<".encode())
        return response

    def answer(self, body: bytes) -> tuple[int, str, bytes]:
        """The reply to a request: a recorded one, or a fault saying why not."""
        with self._lock:
            self.served += 1
            number = self.served
            unused = [i for i in range(len(self.exchanges)) if i not in self._used]
            for i in unused:
                trial = self._bindings.copy()
                recorded = self.exchanges[i]
                if _matches(body, recorded.request, trial):
                    self._used.add(i)
                    self._bindings = trial
                    return (recorded.status, recorded.content_type,
                            self._restore(recorded.response, trial))
            operation = operation_of(body)
            near = next((i for i in unused if self.exchanges[i].operation == operation),
                        unused[0] if unused else None)
            if near is None:
                problem = (f"request {number} ({operation}) has no recorded exchange left "
                           f"(the cassette holds {len(self.exchanges)})")
            else:
                diff = _differences(body, self.exchanges[near].request, self._bindings)
                problem = (f"request {number} differs from the recording "
                           f"{self.exchanges[near].name}:\n{diff}")
            self.problems.append(problem)
        fault = (f'<S:Envelope xmlns:S="{_SOAP_ENV}"><S:Body><S:Fault><faultcode>S:Client'
                 f"</faultcode><faultstring>engage_replay: {escape(problem.splitlines()[0])}"
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
