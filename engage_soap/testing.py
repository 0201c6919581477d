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

A REST exchange is the same files with JSON: ``<name>.request.json`` (the JSON body,
``null`` for none), one ``<name>.response.<ext>`` (``json``; ``txt`` for an empty or plain
reply) and a ``<name>.meta.json`` that is always there, saying ``method``, ``path``
(relative to the REST base ``/api/rest/v<N>/``) and ``query`` (parameters by name), plus
``status`` and ``content_type`` (default ``application/json``; null: none) where they
differ. :func:`json_differences` is its one comparison: structural, object member order
ignored, ``{{any}}`` matching any value.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from lxml import etree

from .envelope import SOAP11_NS, parse_xml
from .errors import ConfigurationError, ProtocolError
from .redaction import Redactor, key_id, redaction_key
from .rest_routes import route_for
from .transport import HttpReply, Transport
from .wires import PROTOCOLS

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
    "json_differences",
    "xml_differences",
]

ANY = "{{any}}"  # a recorded element with this text matches any value
_SOAP_ENV = SOAP11_NS
_XML_TYPE = "text/xml;charset=utf-8"
_JSON_TYPE = "application/json"
_NAME = re.compile(r"^(\d{3})-([A-Za-z0-9_]+)$")
_EXCHANGE_FILE = re.compile(r"^.+\.(request\.(?:xml|json)|response\.[a-z]+|meta\.json)$")
_REQUEST_FILE = re.compile(r"\.request\.(?:xml|json)$")
_REST_BASE = re.compile(re.escape(PROTOCOLS["rest"]) + r"v[^/]+/")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
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


def _same_value(sent: str, recorded: str, bindings: _Bindings | None) -> bool:
    """The one rule for a recorded value: equal, ``{{any}}``, or a fake bound to it."""
    if recorded in (sent, ANY):
        return True
    return bindings is not None and Redactor.is_fake(recorded) and bindings.bind(recorded, sent)


def _same_text(sent: str | None, recorded: str | None, bindings: _Bindings | None) -> bool:
    return _same_value((sent or "").strip(), (recorded or "").strip(), bindings)


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


def _diff(recorded: list[str], sent: list[str]) -> str:
    return "\n".join(difflib.unified_diff(recorded, sent, "recorded", "sent", lineterm=""))


def _text_lines(data: bytes) -> list[str]:
    return data.decode("utf-8", "replace").splitlines()


def _differences(sent: bytes, recorded: bytes, bindings: _Bindings | None) -> str | None:
    if _matches(sent, recorded, bindings.copy() if bindings is not None else None):
        return None
    try:
        a, r = parse_xml(sent), parse_xml(recorded)
    except ProtocolError:
        return _diff(_text_lines(recorded), _text_lines(sent))
    return _diff(_outline(r, r, None), _outline(a, r, bindings))


def xml_differences(actual: bytes, recorded: bytes) -> str | None:
    """None when ``actual`` matches ``recorded`` canonically (namespaces, not prefixes;
    attribute order and whitespace-only text ignored; text, tails and element order
    compared; ``{{any}}`` matching any text), else a unified diff of the two."""
    return _differences(actual, recorded, None)


# ---------------------------------------------------------------- JSON comparison


def _same_json(sent: Any, recorded: Any, bindings: _Bindings | None) -> bool:
    """Whether the JSON value ``sent`` matches ``recorded``: objects by member name (order
    ignored), arrays in order, strings by :func:`_same_value`, other values by type and
    value; ``{{any}}`` matches any value, an object or an array too."""
    if isinstance(recorded, str):
        return recorded == ANY or (isinstance(sent, str)
                                   and _same_value(sent, recorded, bindings))
    if isinstance(recorded, dict):
        return isinstance(sent, dict) and set(sent) == set(recorded) and all(
            _same_json(sent[k], v, bindings) for k, v in recorded.items())
    if isinstance(recorded, list):
        return isinstance(sent, list) and len(sent) == len(recorded) and all(
            _same_json(a, r, bindings) for a, r in zip(sent, recorded, strict=True))
    return type(sent) is type(recorded) and sent == recorded


_MISSING = object()


def _shown(sent: Any, recorded: Any, bindings: _Bindings | None) -> Any:
    """``sent`` with each value the recording accepts (``{{any}}``, a fake the sent value
    may take) shown as recorded, so the diff shows only what differs."""
    if isinstance(sent, dict) and isinstance(recorded, dict):
        return {k: _shown(v, recorded.get(k, _MISSING), bindings) for k, v in sent.items()}
    if isinstance(sent, list) and isinstance(recorded, list):
        return [_shown(v, recorded[i] if i < len(recorded) else _MISSING, bindings)
                for i, v in enumerate(sent)]
    if recorded is not _MISSING and _same_json(
            sent, recorded, bindings.copy() if bindings is not None else None):
        return recorded
    return sent


def _json_lines(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _json_diff(sent: Any, recorded: Any, bindings: _Bindings | None) -> str | None:
    if _same_json(sent, recorded, bindings.copy() if bindings is not None else None):
        return None
    return _diff(_json_lines(recorded), _json_lines(_shown(sent, recorded, bindings)))


def json_differences(actual: bytes, recorded: bytes) -> str | None:
    """None when the JSON ``actual`` matches ``recorded`` structurally (object member
    order and layout ignored; arrays in order; types and values compared; ``{{any}}``
    matching any value), else a unified diff of the two (line by line when either is
    not JSON)."""
    try:
        a, r = json.loads(actual), json.loads(recorded)
    except ValueError:
        if actual.strip() == recorded.strip():
            return None
        return _diff(_text_lines(recorded), _text_lines(actual))
    return _json_diff(a, r, None)


def _rest_target(url: str) -> tuple[str, dict[str, Any]] | None:
    """(path relative to the REST base ``/api/rest/v<N>/``, query parameters by name: a
    value, or a list when repeated) of a REST URL; None for any other URL."""
    parts = urlsplit(url)
    base = _REST_BASE.search(parts.path)
    if base is None:
        return None
    query = {k: v[0] if len(v) == 1 else v
             for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return parts.path[base.end():], query


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


# ---------------------------------------------------------------- cassettes


@dataclass(frozen=True)
class RecordedExchange:
    """One recorded exchange: ``NNN-<operation>`` in a cassette, or ``label`` (a fixture).

    A SOAP exchange has ``method`` None and ``request`` an envelope; a REST one has the
    HTTP ``method``, the ``path`` under the REST base, the ``query`` parameters by name and
    ``request`` the JSON body (``null`` for none). ``content_type`` None: none was sent.
    """

    index: int
    operation: str
    request: bytes
    response: bytes
    status: int = 200
    content_type: str | None = _XML_TYPE
    label: str | None = None
    method: str | None = None
    path: str = ""
    query: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or f"{self.index:03d}-{self.operation}"

    @cached_property
    def document(self) -> dict[str, Any]:
        """A REST request as one JSON value: method, path, query and body (what replay
        compares)."""
        return {"method": self.method, "path": self.path, "query": dict(self.query),
                "body": json.loads(self.request)}


def _json_file(path: Path) -> Any:
    """A hand-editable JSON file of a cassette, parsed (ConfigurationError naming it)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path}: not a JSON document: {exc}") from exc


def _meta(path: Path, *, rest: bool) -> dict[str, Any]:
    """Status and content type (and a REST request's method, path and query) from a
    ``meta.json``, with their defaults (ConfigurationError naming it)."""
    meta: dict[str, Any] = {"status": 200, "content_type": _JSON_TYPE if rest else _XML_TYPE,
                            "query": {}}
    if not path.exists():
        if rest:
            raise ConfigurationError(f"{path}: a REST exchange needs it, saying method, "
                                     "path and query")
        return meta
    data = _json_file(path)
    keys = {"status", "content_type"} | ({"method", "path", "query"} if rest else set())
    if not isinstance(data, dict) or set(data) - keys:
        shape = ('"method": "GET", "path": "user/get", "query": {...}, ' if rest else "")
        raise ConfigurationError(f"{path}: expected {{{shape}\"status\": 100-599, "
                                 f"\"content_type\": \"...\"}}, got {str(data)[:80]}")
    meta.update(data)
    status, content_type = meta["status"], meta["content_type"]
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigurationError(f"{path}: status must be an HTTP status 100-599, got "
                                 f"{status!r}")
    if not (rest and content_type is None) and (
            not isinstance(content_type, str) or not content_type.isprintable()
            or not content_type.strip()):
        raise ConfigurationError(f"{path}: content_type must be a media type"
                                 f"{' or null' if rest else ''}, got {content_type!r}")
    if rest:
        query = meta["query"]
        if meta.get("method") not in _METHODS or not isinstance(meta.get("path"), str):
            raise ConfigurationError(f"{path}: method must be one of {', '.join(_METHODS)} "
                                     "and path the path under the REST base")
        if not isinstance(query, dict) or not all(
                isinstance(v, str) or (isinstance(v, list)
                                       and all(isinstance(i, str) for i in v))
                for v in query.values()):
            raise ConfigurationError(f"{path}: query must map each parameter name to its "
                                     "value (a string, or a list of strings)")
    return meta


def _extension(content_type: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    return ("xml" if "xml" in media else "json" if "json" in media else
            "html" if media == "text/html" else "txt")


class Cassette:
    """A folder of recorded exchanges (see the module docstring for the format)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def read(self, name: str, index: int = 0) -> RecordedExchange:
        """The exchange ``name`` (ConfigurationError naming the file that is wrong)."""
        requests = [p for p in (self.folder / f"{name}.request.xml",
                                self.folder / f"{name}.request.json") if p.exists()]
        replies = sorted(self.folder.glob(f"{_glob_escape(name)}.response.*"))
        if len(requests) != 1 or len(replies) != 1:
            raise ConfigurationError(f"{self.folder / name}: the recording needs exactly one "
                                     f"{name}.request.xml or .json and one "
                                     f"{name}.response.<ext>, found {len(requests)} and "
                                     f"{len(replies)}")
        request, reply = requests[0], replies[0]
        rest = request.suffix == ".json"
        meta = _meta(self.folder / f"{name}.meta.json", rest=rest)
        body = request.read_bytes()
        m = _NAME.match(name)
        if rest:
            for path in (request, reply) if reply.suffix == ".json" else (request,):
                _json_file(path)
            route = route_for(meta["method"], meta["path"])
            operation = route.operation if route is not None else "unknown"
        else:
            try:
                parse_xml(body)
            except ProtocolError as exc:
                raise ConfigurationError(f"{request}: not a well-formed request without DTD "
                                         f"or entity references: {exc}") from exc
            operation = operation_of(body)
        return RecordedExchange(index, m.group(2) if m else operation, body,
                                reply.read_bytes(), meta["status"], meta["content_type"],
                                None if m else name, meta.get("method"), meta.get("path", ""),
                                meta["query"])

    def load(self) -> list[RecordedExchange]:
        """The exchanges ``NNN-<operation>`` of the cassette, in order."""
        if not self.folder.is_dir():
            raise ConfigurationError(f"no cassette folder {str(self.folder)!r} (record one "
                                     "with pytest --engage-record)")
        names = sorted(_REQUEST_FILE.sub("", p.name) for p in self.folder.glob("*.request.*")
                       if _REQUEST_FILE.search(p.name))
        return [self.read(n, int(m.group(1))) for n in dict.fromkeys(names)
                if (m := _NAME.match(n))]

    @property
    def key_id(self) -> str | None:
        """The id of the redaction key the cassette was recorded with (None: unknown)."""
        path = self.folder / _CASSETTE_FILE
        if not path.exists():
            return None
        data = _json_file(path)
        if not isinstance(data, dict) or not isinstance(data.get("redaction_key"), str):
            raise ConfigurationError(f"{path}: expected {{\"redaction_key\": \"<id>\"}}")
        return str(data["redaction_key"])

    @staticmethod
    def files(exchange: RecordedExchange) -> dict[str, bytes]:
        """The files that hold ``exchange``, by name, with their bytes."""
        rest = exchange.method is not None
        files = {f"{exchange.name}.request.{'json' if rest else 'xml'}": exchange.request,
                 f"{exchange.name}.response.{_extension(exchange.content_type)}":
                     exchange.response}
        meta: dict[str, Any] = ({"method": exchange.method, "path": exchange.path,
                                 "query": dict(exchange.query)} if rest else {})
        if exchange.status != 200:
            meta["status"] = exchange.status
        default = _JSON_TYPE if rest else _XML_TYPE
        if (exchange.content_type or "").replace(" ", "").lower() != default:
            meta["content_type"] = exchange.content_type
        if meta:
            files[f"{exchange.name}.meta.json"] = json.dumps(
                meta, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        return files

    def write(self, exchange: RecordedExchange) -> None:
        for name, data in self.files(exchange).items():
            (self.folder / name).write_bytes(data)


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
        target = _rest_target(url)
        if target is not None:
            self._stage(self._rest_exchange(method, *target, body or b"", reply))
        elif method == "POST" and body:
            self._stage(RecordedExchange(
                0, operation_of(body), self.redactor.redact(body),
                self.redactor.redact(reply.body, pretty=False), reply.status,
                reply.headers.get("Content-Type") or _XML_TYPE))
        return reply

    def _rest_exchange(self, method: str, path: str, query: dict[str, Any], body: bytes,
                       reply: HttpReply) -> RecordedExchange:
        """A REST exchange, redacted: the query parameters as the request's top-level
        fields and the body as its route's body argument, the reply as its element."""
        route = route_for(method, path)
        operation = route.operation if route is not None else "unknown"
        arguments = {q.name: q.argument for q in route.query} if route is not None else {}
        body_name = route.body.argument if route is not None and route.body else "body"
        values = {arguments.get(k, k): v for k, v in query.items()}
        if body.strip():
            try:
                values[body_name] = json.loads(body)
            except ValueError as exc:
                raise ConfigurationError(f"cannot record {method} {path}: the request body "
                                         "is not JSON") from exc
        values = self.redactor.redact_json(operation, values, reply=False)
        request = _json_bytes(values.get(body_name) if body.strip() else None)
        query = {k: values[arguments.get(k, k)] for k in query}
        content_type = reply.headers.get("Content-Type")
        try:
            data = json.loads(reply.body) if "json" in (content_type or "").lower() else None
        except ValueError:
            data = None
        if data is None:  # no body, plain text, a proxy page
            response = self.redactor.redact(reply.body, pretty=False)
        else:
            name = (route.reply if route is not None and route.reply is not None
                    and 200 <= reply.status < 300 else None)
            wrapped = {name: data} if name else data if isinstance(data, dict) else \
                {"body": data}
            redacted = self.redactor.redact_json(operation if name else None, wrapped,
                                                 reply=True)
            response = _json_bytes(redacted[name] if name else redacted
                                   if isinstance(data, dict) else redacted["body"])
        return RecordedExchange(0, operation, request, response, reply.status, content_type,
                                method=method, path=self.redactor.redact(
                                    path.encode()).decode(), query=query)

    def _stage(self, exchange: RecordedExchange) -> None:
        """Number ``exchange`` and write it to the staging folder, once no file of it
        holds the password."""
        with self._lock:
            if self._staging is None:
                raise ConfigurationError("this recording was already committed or discarded")
            exchange = dataclasses.replace(exchange, index=self.recorded + 1)
            files = self._staging.files(exchange)
            for name, data in files.items():
                self.redactor.check(data, name)
            self._staging.write(exchange)
            self.recorded = exchange.index

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


@dataclass(frozen=True)
class _Sent:
    """A request as the replay server got it, in the form its protocol compares: a SOAP
    envelope (``xml``) or a REST request as one JSON value (``document``)."""

    operation: str
    xml: bytes = b""
    document: dict[str, Any] | None = None

    def matches(self, recorded: RecordedExchange, bindings: _Bindings) -> bool:
        if self.document is None:
            return recorded.method is None and _matches(self.xml, recorded.request, bindings)
        return recorded.method is not None and _same_json(self.document, recorded.document,
                                                          bindings)

    def differences(self, recorded: RecordedExchange, bindings: _Bindings) -> str | None:
        if (self.document is None) != (recorded.method is None):
            return f"{recorded.name} is a {'SOAP' if recorded.method is None else 'REST'} " \
                   "exchange"
        if self.document is None:
            return _differences(self.xml, recorded.request, bindings)
        return _json_diff(self.document, recorded.document, bindings)

    def refusal(self, problem: str) -> tuple[int, str, bytes]:
        """What the client gets for a request matching no exchange: a fault it raises."""
        if self.document is not None:
            return 400, _JSON_TYPE, json.dumps(
                {"errorActor": "CLIENT", "errorCode": "INVALID_REQUEST",
                 "message": f"engage_replay: {problem}"}).encode()
        fault = (f'<S:Envelope xmlns:S="{_SOAP_ENV}"><S:Body><S:Fault><faultcode>S:Client'
                 f"</faultcode><faultstring>engage_replay: {escape(problem)}"
                 "</faultstring></S:Fault></S:Body></S:Envelope>")
        return 500, _XML_TYPE, fault.encode()


def _restore(recorded: RecordedExchange, bindings: _Bindings) -> bytes:
    """The recorded reply with each bound fake replaced by the value the test sent (a
    whole element text in XML, a whole string in JSON)."""
    response = recorded.response
    for fake, value in bindings.real.items():
        if recorded.method is None:
            response = response.replace(f">{fake}<".encode(), f">{escape(value)}<".encode())
        else:
            response = response.replace(f'"{fake}"'.encode(),
                                        json.dumps(value, ensure_ascii=False).encode())
    return response


class ReplayServer:
    """Serves a cassette on 127.0.0.1, checking each request against it.

    Each request gets the reply of the first exchange not yet used whose recorded
    request it matches canonically, so calls made concurrently replay in any order. A
    fake in the recording matches the value the test sends in its place, the same fake
    always the same value; that value is put back into the replies wherever the fake
    shows. With the redaction key the cassette was recorded with (ENGAGE_REDACT_KEY or
    the key file, see :mod:`engage_soap.redaction`), a value matches only the fake it
    makes, so a changed value fails; without it, fakes match by position. A request
    matching no exchange is answered with a fault (SOAP, or a REST error bean) and
    listed in :attr:`problems` with a diff against the next exchange of its operation;
    :attr:`unused` lists the exchanges never asked for. A REST cassette is served under
    :attr:`url` ``.../api/rest/v8/`` (requests compared by method, path, query parameters
    by name and JSON body, structurally), a SOAP one under ``.../api/soap/v8/``. Use as a
    context manager.
    """

    def __init__(self, folder: str | Path, *, redactor: Redactor | None = None) -> None:
        cassette = Cassette(folder)
        self.exchanges = cassette.load()
        kinds = {e.method is not None for e in self.exchanges}
        if len(kinds) > 1:
            raise ConfigurationError(f"{cassette.folder}: a cassette holds the exchanges of "
                                     "one endpoint, SOAP or REST, not both")
        self.protocol = "rest" if kinds == {True} else "soap"
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
        """The endpoint to give the client: SOAP or REST, as the cassette holds."""
        return (f"http://127.0.0.1:{self._server.server_address[1]}"
                f"{PROTOCOLS[self.protocol]}v8/")

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

    def answer(self, body: bytes) -> tuple[int, str | None, bytes]:
        """The reply to a SOAP request: a recorded one, or a fault saying why not."""
        return self._answer(_Sent(operation_of(body), xml=body))

    def answer_rest(self, method: str, target: str, body: bytes
                    ) -> tuple[int, str | None, bytes]:
        """The reply to a REST request (``target``: its path and query under the REST
        base): a recorded one, or an error bean saying why not."""
        path, query = _rest_target(target) or ("", {})
        route = route_for(method, path)
        try:
            data = json.loads(body) if body.strip() else None
        except ValueError:
            data = body.decode("utf-8", "replace")  # matches no recorded JSON
        return self._answer(_Sent(route.operation if route is not None else "unknown",
                                  document={"method": method, "path": path, "query": query,
                                            "body": data}))

    def _answer(self, sent: _Sent) -> tuple[int, str | None, bytes]:
        with self._lock:
            self.served += 1
            number = self.served
            unused = [i for i in range(len(self.exchanges)) if i not in self._used]
            for i in unused:
                trial = self._bindings.copy()
                recorded = self.exchanges[i]
                if sent.matches(recorded, trial):
                    self._used.add(i)
                    self._bindings = trial
                    return recorded.status, recorded.content_type, _restore(recorded, trial)
            near = next((i for i in unused if self.exchanges[i].operation == sent.operation),
                        unused[0] if unused else None)
            if near is None:
                problem = (f"request {number} ({sent.operation}) has no recorded exchange "
                           f"left (the cassette holds {len(self.exchanges)})")
            else:
                diff = sent.differences(self.exchanges[near], self._bindings)
                problem = (f"request {number} differs from the recording "
                           f"{self.exchanges[near].name}:\n{diff}")
            self.problems.append(problem)
        return sent.refusal(problem.splitlines()[0])


class _ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 64  # concurrent clients (send_bulk workers) connect at once

    def __init__(self, replay: ReplayServer) -> None:
        self.replay = replay
        super().__init__(("127.0.0.1", 0), _ReplayHandler)


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ReplayHTTPServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        replay = self.server.replay
        if _rest_target(self.path) is not None:
            status, content_type, data = replay.answer_rest(self.command, self.path, body)
        elif self.command == "POST":
            status, content_type, data = replay.answer(body)
        else:
            status, content_type, data = 405, "text/plain", b"Method Not Allowed\n"
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass
