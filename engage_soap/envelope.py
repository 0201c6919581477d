"""SOAP 1.1 envelopes: schema-compiled writers and readers, hardened parsing, fault reading.

Each operation's SOAP binding (:class:`OperationPlan`: action, wrapper elements) and the
schema plans (:mod:`engage_soap.schema`) are compiled once from the WSDL (see
``zeep_binding``); envelopes are then written and read with lxml directly, so no per-call
work goes through zeep's generic machinery. Nothing here imports zeep.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .errors import (
    AuthenticationError,
    EngageError,
    HTTPStatusError,
    ProtocolError,
    fault_from_detail,
    throttled,
)
from .schema import ComplexPlan, Field, complete, write_fields

__all__ = [
    "ECM_NS",
    "SOAP11_NS",
    "OperationPlan",
    "hardened_parser",
    "http_status_error",
    "parse_xml",
    "read_fields",
    "read_reply",
    "render_request",
    "shorten_for_log",
]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ECM_NS = "http://ecircle.com/developer/ecmapi"
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
XSI_NIL = f"{{{_XSI_NS}}}nil"
_ENV = f"{{{SOAP11_NS}}}Envelope"
_BODY = f"{{{SOAP11_NS}}}Body"
_FAULT = f"{{{SOAP11_NS}}}Fault"

# ---------------------------------------------------------------- hardened parsing

_parsers = threading.local()


def hardened_parser(**options: Any) -> etree.XMLParser:
    """A new lxml parser for untrusted XML, the one way engage_soap builds one: no DTD
    loaded, no entity resolved, no network, no huge trees; ``options`` add to these
    (e.g. ``remove_comments=True``). A parser is not thread-safe: keep one per thread."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, **options)


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = hardened_parser(remove_comments=True, remove_pis=True, collect_ids=False)
        _parsers.parser = parser
    return parser


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD at all, no entities, no network. Raises ProtocolError."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise ProtocolError("the reply carries a DTD; refused", request_sent=True)
    try:
        root = etree.fromstring(data, _parser())
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ProtocolError(f"the reply is not well-formed XML: {exc}", request_sent=True,
                            retryable=False) from exc
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise ProtocolError("the reply carries a DTD; refused", request_sent=True)
    return root


# ---------------------------------------------------------------- logs

_LOG_CONTENT = re.compile(r"(<(?:[\w.-]+:)?content\b[^>]*>)([^<]{33,})(</(?:[\w.-]+:)?content>)"
                          r'|("content"\s*:\s*")([^"]{33,})(")')
MAX_LOG_CHARS = 100_000


def _shorten_content(match: re.Match[str]) -> str:
    start, text, end = (match.group(1, 2, 3) if match.group(1) is not None
                        else match.group(4, 5, 6))
    return f"{start}{text[:32]}...[{len(text)} chars]{end}"


def shorten_for_log(body: bytes | str) -> str:
    """A request or reply (SOAP envelope or JSON) as text for the log, with long attachment
    ``<content>`` or ``"content": "..."`` (base64) cut to 32 characters.

    ``JVBERi0x...`` becomes ``JVBERi0xLjQKJcfsj6IKNSAwIG9iago8...[27962016 chars]``; what is
    left is capped at MAX_LOG_CHARS characters.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _LOG_CONTENT.sub(_shorten_content, text)
    if len(text) > MAX_LOG_CHARS:
        text = f"{text[:MAX_LOG_CHARS]}...[{len(text) - MAX_LOG_CHARS} more chars]"
    return text


# ---------------------------------------------------------------- SOAP binding


@dataclass(frozen=True)
class OperationPlan:
    """One operation's SOAP binding: its action, wrapper elements and their plans."""

    name: str
    soap_action: str
    request_tag: str
    request: ComplexPlan
    response_tag: str
    response: ComplexPlan


# ---------------------------------------------------------------- writing


# prefix -> tag -> (start tag, end tag, xsi:nil element), built once per tag of a schema
_TAGS: dict[str, dict[str, tuple[str, str, str]]] = {"ns0": {}, "ecm": {}}
_HEAD = ('<?xml version="1.0" encoding="utf-8"?>'
         f'<soapenv:Envelope xmlns:soapenv="{SOAP11_NS}"><soapenv:Body>')
_TAIL = "</soapenv:Body></soapenv:Envelope>"


def _tags(tag: str, prefix: str = "ns0") -> tuple[str, str, str]:
    """The start tag, end tag and xsi:nil element for ``tag`` (``{ns}local`` or ``local``)."""
    found = _TAGS[prefix].get(tag)
    if found is None:
        ns, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
        name = f"{prefix}:{local}" if ns else local
        uri = _text(ns).replace('"', "&quot;")
        decl = f' xmlns:{prefix}="{uri}"' if ns else ""
        found = (f"<{name}{decl}>", f"</{name}>",
                 f'<{name}{decl} xmlns:xsi="{_XSI_NS}" xsi:nil="true"/>')
        _TAGS[prefix][tag] = found
    return found


def _text(text: str) -> str:
    """Element text escaped as lxml writes it (a carriage return as &#13;, so it survives
    parsing); every value was checked XML-safe by its plan before."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


class _XmlWriter:
    """Writes checked fields as XML text into a list of strings (see schema.write_fields):
    a request is small and written once, so no element tree is built for it."""

    def text(self, parent: list[str], f: Field, text: str) -> None:
        start, end, _nil = _tags(f.tag)
        parent += (start, _text(text), end)

    def nil(self, parent: list[str], f: Field) -> None:
        parent.append(_tags(f.tag)[2])

    def complex(self, parent: list[str], f: Field) -> list[str]:
        parent.append(_tags(f.tag)[0])
        return parent

    def end(self, parent: list[str], f: Field) -> None:
        parent.append(_tags(f.tag)[1])

    def empty(self, parent: list[str], f: Field) -> None:
        pass  # an empty list is no element at all


_XML_WRITER = _XmlWriter()


Check = Callable[[etree._Element, str], None]


def render_request(op: OperationPlan, args: Mapping[str, Any],
                   validate: Check | None = None) -> bytes:
    """The request envelope for ``op`` with ``args`` (plain data shaped like the schema).

    Raises InvalidInputError naming the element path when ``args`` do not fit the schema;
    ``validate(wrapper, operation)`` may check the rendered payload further (the text is
    parsed back for it).
    """
    start, end, _nil = _tags(op.request_tag, "ecm")
    out = [_HEAD, start]
    write_fields(_XML_WRITER, out, op.request, args, op.name)
    out += (end, _TAIL)
    data = "".join(out).encode("utf-8")
    if validate is not None:
        validate(etree.fromstring(data, _parser())[0][0], op.name)
    return data


# ---------------------------------------------------------------- reading


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def read_fields(elem: etree._Element, plan: ComplexPlan, path: str) -> dict[str, Any]:
    """Read ``elem``'s children into a dict keyed by field name.

    Repeated fields become lists; absent fields are None (or []), even where the schema
    calls them required (JAX-WS leaves out an element whose value is null); elements the
    schema does not declare are skipped (newer server versions add some); a value of the
    wrong type, or a single element given twice, raises ProtocolError.
    """
    out: dict[str, Any] = {}
    by_tag = plan.by_tag
    for child in elem:
        f = by_tag.get(child.tag)  # comments and PIs have non-str tags: never found
        if f is None:
            continue
        name = f.name
        if child.items() and child.get(XSI_NIL) in ("true", "1"):  # most have no attribute
            value: Any = None
        elif f.complex is not None:
            value = read_fields(child, f.complex, f"{path}/{name}")
        else:
            value = f.from_text(child.text or "", f"{path}/{name}")  # type: ignore[misc]
        if f.repeated:
            items = out.get(name)
            if items is None:
                out[name] = [value]
            else:
                items.append(value)
        elif name in out:
            raise ProtocolError(f"{path}/{name} occurs more than once", request_sent=True)
        else:
            out[name] = value
    return complete(plan, out)


# HTTP statuses that mean the credentials (or the user's type) were refused, whatever the
# body: AuthenticationError on every wire, before anything else is read.
AUTH_STATUSES = (401, 403)
SOAP_ENDPOINT_FORM = "https://<host>/api/soap/v<N>/"
_EXCERPT = 300


def http_status_error(status: int, body: bytes, fetching: str = "", *,
                      endpoint_form: str = SOAP_ENDPOINT_FORM) -> HTTPStatusError:
    """The error for an HTTP status that is not an answer, for every wire (SOAP, REST):
    the one place 401 and 403 become AuthenticationError. ``fetching`` names a document
    that was fetched (a WSDL), else the reply is to a call; ``endpoint_form`` is the
    endpoint's shape for the hint given with a 404."""
    excerpt = body[:_EXCERPT].decode("utf-8", "replace")
    what = f"{fetching} gave " if fetching else ""
    if status in AUTH_STATUSES:
        return AuthenticationError(
            f"{what}HTTP {status}: the server refused the credentials (or the user is not an "
            "API user)", status_code=status, body_excerpt=excerpt, retryable=False)
    if fetching:
        return HTTPStatusError(f"{what}HTTP {status}", status_code=status,
                               body_excerpt=excerpt)
    kind = "an empty reply" if not body.strip() else "a reply that is not the API's"
    hint = (f"; check the endpoint: it has the form {endpoint_form}, with the trailing /"
            if status == 404 else "")
    return HTTPStatusError(f"HTTP {status} with {kind}{hint}", status_code=status,
                           body_excerpt=excerpt)


def _fault(fault: etree._Element, status: int, operation: str) -> EngageError:
    code = fault.findtext("faultcode")
    text = fault.findtext("faultstring")
    detail = fault.find("detail")
    bean = None
    if detail is not None:
        bean = next((c for c in detail if isinstance(c.tag, str)), None)
    fields: dict[str, str] = {}
    name = None
    if bean is not None:
        name = _local(bean.tag)
        for c in bean:
            if isinstance(c.tag, str):
                fields[_local(c.tag)] = "".join(str(t) for t in c.itertext())
    raw = etree.tostring(detail) if detail is not None else None
    return fault_from_detail(fault_code=code, fault_string=text, detail_name=name,
                             fields=fields, detail_xml=raw, http_status=status,
                             operation=operation)


def read_reply(op: OperationPlan, status: int, body: bytes,
               validate: Check | None = None) -> dict[str, Any]:
    """Read a reply to ``op``: its payload as plain data, or raise the typed error.

    ``validate(payload, operation)`` may check a successful reply's payload first.
    """
    if status in AUTH_STATUSES:
        raise http_status_error(status, body)
    if not body.strip():
        if 200 <= status < 300:
            raise ProtocolError(f"{op.name}: HTTP {status} with an empty body",
                                request_sent=True)
        raise http_status_error(status, body)
    if status == 500 and not body.lstrip().startswith(b"<") and throttled(
            body.decode("utf-8", "replace")):
        raise fault_from_detail(fault_code=None, fault_string=body.decode("utf-8", "replace"),
                                detail_name=None, fields={}, detail_xml=None,
                                http_status=status, operation=op.name)
    try:
        root = parse_xml(body)
    except ProtocolError:
        if not 200 <= status < 300:
            raise http_status_error(status, body) from None
        raise
    if root.tag != _ENV:
        if root.tag == f"{{{SOAP12_NS}}}Envelope":
            raise ProtocolError(f"{op.name}: the reply is a SOAP 1.2 envelope; the service "
                                "speaks SOAP 1.1", request_sent=True)
        if not 200 <= status < 300:
            raise http_status_error(status, body)
        raise ProtocolError(f"{op.name}: the reply's root is {root.tag!r}, not a SOAP 1.1 "
                            "Envelope", request_sent=True)
    soap_body = root.find(_BODY)
    if soap_body is None:
        raise ProtocolError(f"{op.name}: the reply has no SOAP Body", request_sent=True)
    payload = next((c for c in soap_body if isinstance(c.tag, str)), None)
    if payload is not None and payload.tag == _FAULT:
        raise _fault(payload, status, op.name)
    if not 200 <= status < 300:
        raise http_status_error(status, body)
    if payload is None or payload.tag != op.response_tag:
        found = "nothing" if payload is None else repr(payload.tag)
        raise ProtocolError(f"{op.name}: expected {op.response_tag!r} in the reply, found "
                            f"{found}", request_sent=True)
    if validate is not None:
        validate(payload, op.name)
    return read_fields(payload, op.response, op.name)
