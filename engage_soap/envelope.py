"""SOAP 1.1 envelopes: schema-compiled writers and readers, hardened parsing, fault reading.

The plans here are compiled once from the WSDL's schema (see ``zeep_binding``) and then
render and read envelopes with lxml directly, so no per-call work goes through zeep's
generic machinery. Nothing here imports zeep.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
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
    fault_from_detail,
    throttled,
)
from .models import check_text

__all__ = [
    "ECM_NS",
    "SOAP11_NS",
    "ComplexPlan",
    "Field",
    "OperationPlan",
    "SimplePlan",
    "describe_operations",
    "parse_xml",
    "read_fields",
    "read_reply",
    "render_request",
    "shorten_for_log",
    "simple_plan",
]

SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
ECM_NS = "http://ecircle.com/developer/ecmapi"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_ENV = f"{{{SOAP11_NS}}}Envelope"
_BODY = f"{{{SOAP11_NS}}}Body"
_FAULT = f"{{{SOAP11_NS}}}Fault"
_NSMAP = {"soapenv": SOAP11_NS}
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


# ---------------------------------------------------------------- logs

_LOG_CONTENT = re.compile(r"(<(?:[\w.-]+:)?content\b[^>]*>)([^<]{33,})(</(?:[\w.-]+:)?content>)")
MAX_LOG_CHARS = 100_000


def _shorten_content(match: re.Match[str]) -> str:
    text = match.group(2)
    return f"{match.group(1)}{text[:32]}...[{len(text)} chars]{match.group(3)}"


def shorten_for_log(body: bytes | str) -> str:
    """An envelope as text for the log, with long ``<content>`` (base64) cut to 32 characters.

    ``JVBERi0x...`` becomes ``JVBERi0xLjQKJcfsj6IKNSAwIG9iago8...[27962016 chars]``; what is
    left is capped at MAX_LOG_CHARS characters.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = _LOG_CONTENT.sub(_shorten_content, text)
    if len(text) > MAX_LOG_CHARS:
        text = f"{text[:MAX_LOG_CHARS]}...[{len(text) - MAX_LOG_CHARS} more chars]"
    return text


# ---------------------------------------------------------------- plans


@dataclass(frozen=True)
class SimplePlan:
    """How one XSD simple type converts between Python values and element text.

    ``type_name`` is the schema's name for it (``long``, ``string``, ``subscriptionMode``);
    ``choices`` the enumeration values a request may carry (None: any); replies are read
    as open strings, since newer servers add values.
    """

    type_name: str
    to_text: Callable[[Any, str], str]
    from_text: Callable[[str, str], Any]
    choices: frozenset[str] | None = None

    def render(self, value: Any, where: str) -> str:
        text = self.to_text(value, where)
        if self.choices is not None and text not in self.choices:
            raise InvalidInputError(f"{where} must be one of {', '.join(sorted(self.choices))}"
                                    f", got {text!r}")
        return text


@dataclass(frozen=True)
class Field:
    """One child element of a complex type."""

    name: str
    tag: str
    min_occurs: int
    max_occurs: int | None  # None: unbounded
    plan: SimplePlan | ComplexPlan
    nillable: bool = False
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

    def describe(self) -> dict[str, Any]:
        """This field as plain data: name, type, occurrence, and its fields or choices."""
        out: dict[str, Any] = {"name": self.name, "type": self.plan.type_name,
                               "required": bool(self.min_occurs), "repeated": self.repeated}
        if self.nillable:
            out["nillable"] = True
        if isinstance(self.plan, ComplexPlan):
            out["fields"] = [f.describe() for f in self.plan.fields]
        elif self.plan.choices is not None:
            out["choices"] = sorted(self.plan.choices)
        return out


@dataclass(frozen=True)
class ComplexPlan:
    """A complex type as an ordered sequence of fields.

    Replies may carry children the plan does not declare (newer servers append some):
    the reader skips them. ``open`` says the schema itself ends in a wildcard.
    """

    type_name: str
    fields: tuple[Field, ...]
    open: bool = False
    by_tag: Mapping[str, Field] = field(init=False, repr=False)
    by_name: Mapping[str, Field] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_tag", {f.tag: f for f in self.fields})
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    def find(self, path: str) -> Field | None:
        """The field at ``path`` (names joined by ``/``), or None."""
        plan: ComplexPlan | None = self
        found: Field | None = None
        for name in path.split("/"):
            found = plan.by_name.get(name) if plan is not None else None
            if found is None:
                return None
            plan = found.complex
        return found


@dataclass(frozen=True)
class OperationPlan:
    """Everything needed to call one operation without zeep."""

    name: str
    soap_action: str
    request_tag: str
    request: ComplexPlan
    response_tag: str
    response: ComplexPlan


def describe_operations(operations: Mapping[str, OperationPlan],
                        is_read: Callable[[str], bool]) -> dict[str, dict[str, Any]]:
    """Every operation as plain data: read or write, its arguments and its reply fields."""
    return {name: {"read": is_read(name),
                   "arguments": [f.describe() for f in op.request.fields],
                   "returns": [f.describe() for f in op.response.fields]}
            for name, op in sorted(operations.items())}


# Converters, chosen by the XSD builtin a simple type derives from.

def _int_range(lo: int, hi: int) -> Callable[[Any, str], str]:
    def to_text(value: Any, path: str) -> str:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"{path} must be an int, not {type(value).__name__}")
        if not lo <= value <= hi:
            raise InvalidInputError(f"{path} must be between {lo} and {hi}, got {value}")
        return str(value)
    return to_text


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
    """bytes are encoded; a str must already be base64 text (sent as it is)."""
    if isinstance(value, str):
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError(f"{path} must be bytes, or a str of base64 text") from None
        return value
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


_INT_BOUNDS = {"long": 63, "int": 31, "short": 15, "byte": 7}


def simple_plan(kind: str, type_name: str,
                choices: frozenset[str] | None = None) -> SimplePlan:
    """The plan for a simple type named ``type_name`` deriving from builtin ``kind``."""
    if kind in _INT_BOUNDS:
        bits = _INT_BOUNDS[kind]
        return SimplePlan(type_name, _int_range(-(2**bits), 2**bits - 1), _int_from_text)
    if kind == "integer":
        return SimplePlan(type_name, _int_range(-(2**1000), 2**1000), _int_from_text)
    if kind == "boolean":
        return SimplePlan(type_name, _bool_to_text, _bool_from_text)
    if kind == "decimal":
        return SimplePlan(type_name, _decimal_to_text, _decimal_from_text)
    if kind == "base64Binary":
        return SimplePlan(type_name, _b64_to_text, _b64_from_text)
    return SimplePlan(type_name, _str_to_text, _str_from_text, choices)


# ---------------------------------------------------------------- writing


def _render_fields(parent: etree._Element, plan: ComplexPlan, value: Mapping[str, Any],
                   path: str) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{path} must be a mapping, not {type(value).__name__}")
    by_name = plan.by_name
    if not by_name.keys() >= value.keys():
        unknown = next(k for k in value if k not in by_name)
        known = ", ".join(by_name) or "none"
        raise InvalidInputError(f"{path} has no field {unknown!r} in the WSDL in use "
                                f"(fields: {known})")
    sub = etree.SubElement
    for f in plan.fields:
        v = value.get(f.name)
        items: Iterable[Any]
        if v is None:
            if not f.min_occurs:
                continue
            if f.repeated or not f.nillable:
                raise InvalidInputError(f"{path}/{f.name} is required")
            items = (None,)  # a required nillable element: sent as xsi:nil
        elif not f.repeated:
            items = (v,)
        elif type(v) is list or type(v) is tuple:
            items = v
        elif isinstance(v, (str, bytes, Mapping)) or not isinstance(v, Iterable):
            raise InvalidInputError(f"{path}/{f.name} must be a list")
        else:
            items = list(v)
        if f.repeated and (len(items) < f.min_occurs
                           or (f.max_occurs is not None
                               and len(items) > f.max_occurs)):
            raise InvalidInputError(f"{path}/{f.name} must have between {f.min_occurs} "
                                    f"and {f.max_occurs or 'any number of'} items")
        where = f"{path}/{f.name}"
        complex_plan = f.complex
        for item in items:
            child = sub(parent, f.tag)
            if item is None:
                if not f.nillable:
                    raise InvalidInputError(f"{where} must not be None")
                child.set(XSI_NIL, "true")
            elif complex_plan is not None:
                _render_fields(child, complex_plan, item, where)
            else:
                child.text = f.plan.render(item, where)  # type: ignore[union-attr]


Check = Callable[[etree._Element, str], None]


def render_request(op: OperationPlan, args: Mapping[str, Any],
                   validate: Check | None = None) -> bytes:
    """The request envelope for ``op`` with ``args`` (plain data shaped like the schema).

    Raises InvalidInputError naming the element path when ``args`` do not fit the schema;
    ``validate(wrapper, operation)`` may check the rendered payload further.
    """
    env = etree.Element(_ENV, nsmap=_NSMAP)
    body = etree.SubElement(env, _BODY)
    wrapper = etree.SubElement(body, op.request_tag, nsmap={"ecm": ECM_NS})
    _render_fields(wrapper, op.request, args, op.name)
    if validate is not None:
        validate(wrapper, op.name)
    data: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
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
    if len(out) != len(plan.fields):  # fill in what is absent, in the schema's order
        out = {f.name: out.get(f.name, [] if f.repeated else None)
               for f in plan.fields}
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
    hint = ("; check the endpoint: it has the form https://<host>/api/soap/v<N>/, with the "
            "trailing /") if status == 404 else ""
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
    if status in (401, 403):
        raise _http_error(status, body)
    if not body.strip():
        if 200 <= status < 300:
            raise ProtocolError(f"{op.name}: HTTP {status} with an empty body",
                                request_sent=True)
        raise _http_error(status, body)
    if status == 500 and not body.lstrip().startswith(b"<") and throttled(
            body.decode("utf-8", "replace")):
        raise fault_from_detail(fault_code=None, fault_string=body.decode("utf-8", "replace"),
                                detail_name=None, fields={}, detail_xml=None,
                                http_status=status, operation=op.name)
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
    if validate is not None:
        validate(payload, op.name)
    return read_fields(payload, op.response, op.name)
