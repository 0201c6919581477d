"""The sandbox's wire format: SOAP 1.1 envelopes in and out, faults, schema validation.

Requests are parsed with a hardened lxml parser (no entities, no network, no DTD) and
their body element is validated against the bundled XSD. Replies are rendered the way the
real JAX-WS service writes them: ``S:`` for the envelope, ``ns2:`` for the payload.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable
from functools import cache

from lxml import etree

from ..envelope import ECM_NS, hardened_parser, shorten_for_log
from ..envelope import SOAP11_NS as SOAP_ENV_NS
from ..resources import bundled_wsdl
from ..validation import bundled_validator

__all__ = [
    "ECM_NS",
    "OPERATIONS",
    "SOAP_ENV_NS",
    "SoapFault",
    "declared_faults",
    "fault_bean",
    "fault_envelope",
    "invalid_request",
    "parse_request",
    "payload_element",
    "reply_envelope",
    "shorten_for_log",
    "sub",
    "validate_payload",
]

_WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"

_ENVELOPE = f"{{{SOAP_ENV_NS}}}Envelope"
_HEADER = f"{{{SOAP_ENV_NS}}}Header"
_BODY = f"{{{SOAP_ENV_NS}}}Body"
# Schema errors about a value (type, enumeration, length...) rather than the structure.
_VALUE_ERRORS = re.compile(r"SCHEMAV_CVC_(DATATYPE|ENUMERATION|MINLENGTH|MAXLENGTH|LENGTH|PATTERN"
                           r"|MININCLUSIVE|MAXINCLUSIVE|TOTALDIGITS|FRACTIONDIGITS)")


@cache
def _wsdl_faults() -> dict[str, frozenset[str]]:
    """Every operation of the bundled WSDL's portType -> the fault detail elements it declares."""
    root = etree.parse(str(bundled_wsdl()), hardened_parser()).getroot()
    # message name -> the element of its (single) part
    elements: dict[str, str] = {}
    for message in root.iterfind(f"{{{_WSDL_NS}}}message"):
        part = message.find(f"{{{_WSDL_NS}}}part")
        if part is not None and part.get("element"):
            elements[str(message.get("name"))] = str(part.get("element")).rpartition(":")[2]
    table: dict[str, frozenset[str]] = {}
    for port_type in root.iterfind(f"{{{_WSDL_NS}}}portType"):
        for operation in port_type.iterfind(f"{{{_WSDL_NS}}}operation"):
            faults = {elements.get(ref, ref) for ref in (
                str(f.get("message")).rpartition(":")[2]
                for f in operation.iterfind(f"{{{_WSDL_NS}}}fault"))}
            table[str(operation.get("name"))] = frozenset(faults)
    return table


#: Every operation of the bundled WSDL (the sandbox models some; the others get a fault).
OPERATIONS: frozenset[str] = frozenset(_wsdl_faults())


def declared_faults(operation: str) -> frozenset[str]:
    """The fault detail elements (``NoSuchObjectException``...) ``operation`` declares."""
    return _wsdl_faults().get(operation, frozenset())


class SoapFault(Exception):
    """A SOAP 1.1 fault the sandbox answers with (HTTP 500).

    ``detail_name`` is the fault bean element (``NoSuchObjectException``...) or None for a
    fault without detail; ``fields`` are its children, in schema order. Every field of a
    bean is required by the schema: a None value is rendered as an empty element.
    """

    def __init__(self, faultstring: str, detail_name: str | None = None,
                 fields: Iterable[tuple[str, str | None]] = (),
                 faultcode: str = "S:Server") -> None:
        super().__init__(faultstring)
        self.faultstring = faultstring
        self.detail_name = detail_name
        self.fields: list[tuple[str, str | None]] = list(fields)
        self.faultcode = faultcode

    @property
    def error_code(self) -> str | None:
        """The bean's errorCode, if any."""
        return dict(self.fields).get("errorCode")

    @classmethod
    def no_such_object(cls, message: str, object_type: str, property_name: str,
                       property_value: str, error_actor: str = "CLIENT") -> SoapFault:
        """A NoSuchObjectException (NO_SUCH_OBJECT)."""
        return cls(message, "NoSuchObjectException", [
            ("errorActor", error_actor), ("errorCode", "NO_SUCH_OBJECT"), ("message", message),
            ("objectType", object_type), ("propertyName", property_name),
            ("propertyValue", property_value)])

    @classmethod
    def already_exists(cls, message: str, object_type: str, property_name: str,
                       property_value: str) -> SoapFault:
        """An ObjectAlreadyExistsException (OBJECT_ALREADY_EXISTS)."""
        return cls(message, "ObjectAlreadyExistsException", [
            ("errorActor", "CLIENT"), ("errorCode", "OBJECT_ALREADY_EXISTS"), ("message", message),
            ("objectType", object_type), ("propertyName", property_name),
            ("propertyValue", property_value)])

    @classmethod
    def invalid_parameter(cls, message: str, error_code: str = "INVALID_PARAMETER", *,
                          parameter_name: str | None = None, property_name: str | None = None,
                          value: str | None = None) -> SoapFault:
        """An InvalidParameterException (INVALID_PARAMETER, INVALID_REQUEST, MISSING_PARAMETER,
        INVALID_ATTRIBUTE)."""
        return cls(message, "InvalidParameterException", [
            ("errorActor", "CLIENT"), ("errorCode", error_code), ("message", message),
            ("parameterName", parameter_name), ("propertyName", property_name), ("value", value)])

    @classmethod
    def unexpected(cls, message: str = "Unexpected error.", error_id: str | None = None,
                   error_code: str = "UNEXPECTED_ERROR",
                   error_actor: str = "SERVER") -> SoapFault:
        """An UnexpectedErrorException (SERVER, UNEXPECTED_ERROR) with a fresh errorId."""
        return cls(message, "UnexpectedErrorException", [
            ("errorActor", error_actor), ("errorCode", error_code), ("message", message),
            ("errorId", error_id or uuid.uuid4().hex)])

    @classmethod
    def not_modeled(cls, operation: str) -> SoapFault:
        """The answer to an operation of the WSDL that the sandbox does not model.

        An UnexpectedErrorException (CLIENT, OPERATION_DISABLED) naming the operation;
        the server sends it without detail to an operation that does not declare it.
        """
        return cls.unexpected(f"The sandbox does not model operation {operation!r}.",
                              error_code="OPERATION_DISABLED", error_actor="CLIENT")

    def without_detail(self) -> SoapFault:
        """The same fault with no detail bean (for an operation that does not declare it)."""
        return SoapFault(self.faultstring, faultcode=self.faultcode)

    def for_operation(self, operation: str | None) -> SoapFault:
        """This fault as ``operation`` may answer it: without detail unless declared."""
        if (operation is None or self.detail_name is None
                or self.detail_name in declared_faults(operation)):
            return self
        return self.without_detail()


def invalid_request(message: str) -> SoapFault:
    """The fault for a request that is not a usable ecmapi SOAP 1.1 request."""
    return SoapFault.invalid_parameter(message, "INVALID_REQUEST")


_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = hardened_parser(remove_pis=True)
        _local.parser = parser
    return parser


def validate_payload(element: etree._Element) -> SoapFault | None:
    """Validate an operation, response or fault-bean element; the fault to answer, or None."""
    entry = bundled_validator().error(element)
    if entry is None:
        return None
    message = f"Invalid request: {entry.message}"
    steps = str(entry.path or "").strip("/").split("/")[1:]  # drop the wrapper's own step
    if steps and _VALUE_ERRORS.match(str(entry.type_name or "")):
        try:
            found = element.xpath("/".join(steps))
        except etree.XPathError:
            found = []
        target = found[0] if isinstance(found, list) and found else None
        names = [re.sub(r"\[\d+\]$", "", step) for step in steps]
        value = target.text if isinstance(target, etree._Element) else None
        return SoapFault.invalid_parameter(message, "INVALID_PARAMETER", parameter_name=names[-1],
                                           property_name=".".join(names), value=value or "")
    return invalid_request(message)


def parse_request(body: bytes) -> tuple[str, etree._Element]:
    """The operation name and the body element of a SOAP 1.1 request, or raise SoapFault.

    Rejects a body that is not XML, carries a DTD, is not a SOAP 1.1 envelope, or names an
    unknown operation. Schema validation is separate (:func:`validate_payload`).
    """
    if not body.strip():
        raise invalid_request("The request body is empty.")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise invalid_request(f"The request is not well-formed XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise invalid_request("DTDs are not allowed in requests.")
    if root.tag != _ENVELOPE:
        raise invalid_request(f"The root element {root.tag} is not a SOAP 1.1 Envelope.")
    parts = [child for child in root if isinstance(child.tag, str)]
    if parts and parts[0].tag == _HEADER:
        parts = parts[1:]
    if len(parts) != 1 or parts[0].tag != _BODY:
        raise invalid_request("The SOAP envelope must hold an optional Header and one Body.")
    payload = [child for child in parts[0] if isinstance(child.tag, str)]
    if len(payload) != 1:
        raise invalid_request("The SOAP Body must hold exactly one element.")
    element = payload[0]
    qname = etree.QName(element)
    if qname.namespace != ECM_NS or qname.localname not in OPERATIONS:
        raise invalid_request(f"Unknown operation {element.tag}.")
    return qname.localname, element


def payload_element(name: str) -> etree._Element:
    """A new ``ns2:<name>`` element (a response wrapper or a fault bean)."""
    return etree.Element(f"{{{ECM_NS}}}{name}", nsmap={"ns2": ECM_NS})


def sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    """Append an unqualified child element with optional text."""
    child = etree.SubElement(parent, name)
    if text is not None:
        child.text = text
    return child


def _envelope() -> tuple[etree._Element, etree._Element]:
    env = etree.Element(_ENVELOPE, nsmap={"S": SOAP_ENV_NS})
    return env, etree.SubElement(env, _BODY)


def _serialize(env: etree._Element) -> bytes:
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def reply_envelope(payload: etree._Element) -> bytes:
    """A serialized reply envelope around ``payload``."""
    env, body = _envelope()
    body.append(payload)
    return _serialize(env)


def fault_bean(fault: SoapFault) -> etree._Element | None:
    """The ``ns2:`` detail element of a fault, or None for a fault without detail."""
    if fault.detail_name is None:
        return None
    bean = payload_element(fault.detail_name)
    for name, value in fault.fields:
        sub(bean, name, value if value is not None else "")
    return bean


def fault_envelope(fault: SoapFault) -> bytes:
    """A serialized SOAP 1.1 fault envelope."""
    env, body = _envelope()
    element = etree.SubElement(body, f"{{{SOAP_ENV_NS}}}Fault")
    sub(element, "faultcode", fault.faultcode)
    sub(element, "faultstring", fault.faultstring)
    bean = fault_bean(fault)
    if bean is not None:
        sub(element, "detail").append(bean)
    return _serialize(env)
