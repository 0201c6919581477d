"""SOAP 1.1 envelopes: schema-compiled writers and readers, hardened parsing, fault reading.

The plans here are compiled once from the WSDL's schema (see ``zeep_binding``) and then
render and read envelopes with lxml directly, so no per-call work goes through zeep's
generic machinery. Nothing here imports zeep.
"""

from __future__ import annotations

import base64
import binascii
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from .errors import (
    AuthenticationError,
    EngageError,
    HTTPStatusError,
    InvalidInputError,
    ProtocolError,
    RateLimitedError,
    fault_from_detail,
)
from .models import check_text

__all__ = [
    "ECM_NS",
    "SOAP11_NS",
    "ComplexPlan",
    "Field",
    "OperationPlan",
    "SimplePlan",
    "parse_xml",
    "read_reply",
    "render_request",
]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ECM_NS = "http://ecircle.com/developer/ecmapi"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_ENV = f"{{{SOAP11_NS}}}Envelope"
_BODY = f"{{{SOAP11_NS}}}Body"
_FAULT = f"{{{SOAP11_NS}}}Fault"
_NSMAP = {"soapenv": SOAP11_NS}
RATE_LIMIT_TEXT = b"Database Access Limit Exceeded"
_EXCERPT = 300

# ---------------------------------------------------------------- hardened parsing

_parsers = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False, remove_comments=True, remove_pis=True,
                                 collect_ids=False)
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


# ---------------------------------------------------------------- plans


@dataclass(frozen=True)
class SimplePlan:
    """How one XSD simple type converts between Python values and element text."""

    type_name: str
    to_text: Callable[[Any, str], str]
    from_text: Callable[[str, str], Any]


@dataclass(frozen=True)
class Field:
    """One child element of a complex type."""

    name: str
    tag: str
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    plan: SimplePlan | ComplexPlan
    repeated: bool = field(init=False, repr=False, compare=False)
    # The plan again, split by kind, so the reader needs no isinstance per element.
    complex: ComplexPlan | None = field(init=False, repr=False, compare=False)
    from_text: Callable[[str, str], Any] | None = field(init=False, repr=False,
                                                          compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "repeated", self.max_occurs is None or self.max_occurs > 1)
        plan = self.plan
        complex_plan = plan if isinstance(plan, ComplexPlan) else None
        object.__setattr__(self, "complex", complex_plan)
        object.__setattr__(self, "from_text",
                           plan.from_text if isinstance(plan, SimplePlan) else None)


@dataclass(frozen=True)
class ComplexPlan:
    """A complex type as an ordered sequence of fields; unknown children are skipped."""

    type_name: str
    fields: tuple[Field, ...]
    by_tag: Mapping[str, Field] = field(init=False, repr=False)
    by_name: Mapping[str, Field] = field(init=False, repr=False)

    required: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_tag", {f.tag: f for f in self.fields})
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})
        object.__setattr__(self, "required", tuple(
            f.name for f in self.fields if f.min_occurs and not f.repeated))


@dataclass(frozen=True)
class OperationPlan:
    """Everything needed to call one operation without zeep."""

    name: str
    soap_action: str
    request_tag: str
    request: ComplexPlan
    response_tag: str
    response: ComplexPlan


# Converters, chosen by the XSD builtin a simple type derives from.

def _int_to_text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{path} must be an int, not {type(value).__name__}")
    return str(value)


def _int_from_text(text: str, path: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ProtocolError(f"{path} should be an integer, got {text[:40]!r}",
                            request_sent=True) from None


def _bool_to_text(value: Any, path: str) -> str:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{path} must be a bool, not {type(value).__name__}")
    return "true" if value else "false"


def _bool_from_text(text: str, path: str) -> bool:
    t = text.strip()
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise ProtocolError(f"{path} should be a boolean, got {text[:40]!r}", request_sent=True)


def _decimal_to_text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInputError(f"{path} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{path} must be finite")
    return str(value)


def _decimal_from_text(text: str, path: str) -> Decimal:
    try:
        return Decimal(text.strip())
    except InvalidOperation:
        raise ProtocolError(f"{path} should be a number, got {text[:40]!r}",
                            request_sent=True) from None


def _b64_to_text(value: Any, path: str) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise InvalidInputError(f"{path} must be bytes, not {type(value).__name__}")
    return base64.b64encode(bytes(value)).decode("ascii")


def _b64_from_text(text: str, path: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{path} is not valid base64", request_sent=True) from None


def _str_to_text(value: Any, path: str) -> str:
    return check_text(value, path, allow_blank=True)


def _str_from_text(text: str, path: str) -> str:
    return text


INT_PLAN = SimplePlan("integer", _int_to_text, _int_from_text)
BOOL_PLAN = SimplePlan("boolean", _bool_to_text, _bool_from_text)
DECIMAL_PLAN = SimplePlan("decimal", _decimal_to_text, _decimal_from_text)
BASE64_PLAN = SimplePlan("base64Binary", _b64_to_text, _b64_from_text)
STRING_PLAN = SimplePlan("string", _str_to_text, _str_from_text)


# ---------------------------------------------------------------- writing


def _render_fields(parent: etree._Element, plan: ComplexPlan, value: Mapping[str, Any],
                   path: str) -> None:
    unknown = value.keys() - plan.by_name.keys()
    if unknown:
        raise InvalidInputError(f"{path} has no field {sorted(unknown)[0]!r} in the WSDL in use")
    sub = etree.SubElement
    for f in plan.fields:
        v = value.get(f.name)
        where = f"{path}/{f.name}"
        if v is None:
            if f.min_occurs:
                raise InvalidInputError(f"{where} is required")
            continue
        items: Iterable[Any]
        if f.repeated:
            if isinstance(v, (str, bytes, Mapping)):
                raise InvalidInputError(f"{where} must be a list")
            items = list(v)
            if f.max_occurs is not None and len(items) > f.max_occurs:
                raise InvalidInputError(f"{where} allows at most {f.max_occurs} items")
        else:
            items = (v,)
        for item in items:
            child = sub(parent, f.tag)
            if isinstance(f.plan, ComplexPlan):
                if not isinstance(item, Mapping):
                    raise InvalidInputError(f"{where} must be a mapping")
                _render_fields(child, f.plan, item, where)
            else:
                child.text = f.plan.to_text(item, where)


def render_request(op: OperationPlan, args: Mapping[str, Any]) -> bytes:
    """The request envelope for ``op`` with ``args`` (plain data shaped like the schema)."""
    env = etree.Element(f"{{{SOAP11_NS}}}Envelope", nsmap=_NSMAP)
    body = etree.SubElement(env, _BODY)
    wrapper = etree.SubElement(body, op.request_tag, nsmap={"ecm": ECM_NS})
    _render_fields(wrapper, op.request, args, op.name)
    data: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return data


# ---------------------------------------------------------------- reading


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def read_fields(elem: etree._Element, plan: ComplexPlan, path: str) -> dict[str, Any]:
    """Read ``elem``'s children into a dict keyed by field name.

    Repeated fields become lists; absent optional fields are None; elements the schema
    does not declare are skipped (newer server versions add some); a value of the wrong
    type, or a missing required element, raises ProtocolError.
    """
    out: dict[str, Any] = {}
    by_tag = plan.by_tag
    for child in elem:
        f = by_tag.get(child.tag)  # comments and PIs have non-str tags: never found
        if f is None:
            continue
        name = f.name
        if child.get(XSI_NIL) in ("true", "1"):
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
    if len(out) != len(plan.fields):
        for name in plan.required:
            if name not in out:
                raise ProtocolError(f"{path}/{name} is missing from the reply",
                                    request_sent=True)
        for f in plan.fields:
            if f.name not in out:
                out[f.name] = [] if f.repeated else None
    return out


def _excerpt(body: bytes) -> str:
    return body[:_EXCERPT].decode("utf-8", "replace")


def _http_error(status: int, body: bytes) -> EngageError:
    excerpt = _excerpt(body)
    if status in (401, 403):
        return AuthenticationError(
            f"HTTP {status}: the server refused the credentials (or the user is not an "
            "API user)", status_code=status, body_excerpt=excerpt, retryable=False)
    kind = "an empty reply" if not body.strip() else "a reply that is not a SOAP envelope"
    return HTTPStatusError(f"HTTP {status} with {kind}", status_code=status,
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
    if (text and RATE_LIMIT_TEXT.decode() in text) or (
            RATE_LIMIT_TEXT.decode() in fields.get("message", "")):
        return RateLimitedError(f"{operation}: the account's call rate was exceeded "
                                "(Database Access Limit Exceeded)", request_sent=True)
    raw = etree.tostring(detail) if detail is not None else None
    return fault_from_detail(fault_code=code, fault_string=text, detail_name=name,
                             fields=fields, detail_xml=raw, http_status=status,
                             operation=operation)


def read_reply(op: OperationPlan, status: int, body: bytes) -> dict[str, Any]:
    """Read a reply to ``op``: its payload as plain data, or raise the typed error."""
    if status in (401, 403):
        raise _http_error(status, body)
    if not body.strip():
        if 200 <= status < 300:
            raise ProtocolError(f"{op.name}: HTTP {status} with an empty body",
                                request_sent=True)
        raise _http_error(status, body)
    if status == 500 and RATE_LIMIT_TEXT in body and not body.lstrip().startswith(b"<"):
        raise RateLimitedError(f"{op.name}: the account's call rate was exceeded "
                               "(Database Access Limit Exceeded)", request_sent=True)
    try:
        root = parse_xml(body)
    except ProtocolError:
        if not 200 <= status < 300:
            raise _http_error(status, body) from None
        raise
    if root.tag != _ENV:
        if root.tag == f"{{{SOAP12_NS}}}Envelope":
            raise ProtocolError(f"{op.name}: the reply is a SOAP 1.2 envelope; the service "
                                "speaks SOAP 1.1", request_sent=True)
        if not 200 <= status < 300:
            raise _http_error(status, body)
        raise ProtocolError(f"{op.name}: the reply's root is {root.tag!r}, not a SOAP 1.1 "
                            "Envelope", request_sent=True)
    soap_body = root.find(_BODY)
    if soap_body is None:
        raise ProtocolError(f"{op.name}: the reply has no SOAP Body", request_sent=True)
    payload = next((c for c in soap_body if isinstance(c.tag, str)), None)
    if payload is not None and payload.tag == _FAULT:
        raise _fault(payload, status, op.name)
    if not 200 <= status < 300:
        raise _http_error(status, body)
    if payload is None or payload.tag != op.response_tag:
        found = "nothing" if payload is None else repr(payload.tag)
        raise ProtocolError(f"{op.name}: expected {op.response_tag!r} in the reply, found "
                            f"{found}", request_sent=True)
    return read_fields(payload, op.response, op.name)
