"""Fixtures for the sandbox tests: a sandbox and a SOAP helper that posts raw envelopes.

``soap`` posts through the sandbox's in-process transport (no socket); ``http_soap`` posts
with plain requests to the HTTP server, for what only a socket shows (resets, keep-alive,
framing). The ``sandbox`` fixture starts its HTTP server only when a test asks for its
port or URL.

Every reply that ``soap.call`` receives is checked for the real wire shape (``S:``
envelope, ``ns2:`` payload, text/xml) and validated against the bundled XSD, with a
schema compiled here independently of the sandbox's own copy; a fault detail must be one
the operation declares in the bundled WSDL (read here independently too).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from xml.sax.saxutils import escape

import pytest
import requests
from lxml import etree

from engage_soap.envelope import ECM_NS as ECM
from engage_soap.envelope import SOAP11_NS as SOAP_ENV
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
from engage_soap.transport import basic_auth_header

XSD = etree.XMLSchema(etree.parse(str(bundled_xsd())))
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def _declared_faults() -> dict[str, set[str]]:
    """operation -> the fault elements it declares, read from the WSDL's portType."""
    root = etree.parse(str(bundled_wsdl())).getroot()
    parts = {m.get("name"): m.find(f"{{{WSDL_NS}}}part").get("element").split(":")[1]
             for m in root.iter(f"{{{WSDL_NS}}}message")}
    return {op.get("name"): {parts[f.get("message").split(":")[1]]
                             for f in op.iter(f"{{{WSDL_NS}}}fault")}
            for op in root.find(f"{{{WSDL_NS}}}portType")}


DECLARED_FAULTS = _declared_faults()


def envelope(body: str) -> bytes:
    """A SOAP 1.1 request envelope around ``body`` (the ``ecm:`` prefix is declared)."""
    return (f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}" xmlns:ecm="{ECM}">'
            f"<soapenv:Header/><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
            ).encode()


def contact_get(id_type: str, value: str) -> str:
    return (f"<ecm:contactGet><identifier><type>{id_type}</type><value>{value}</value>"
            f"</identifier></ecm:contactGet>")


def op(name: str, *children: tuple[str, object] | str) -> str:
    """``<ecm:name>`` with children: (element, text) pairs (text escaped) or raw XML strings.

    ``op("userGet", ("userId", 33457))`` -> ``<ecm:userGet><userId>33457</userId></ecm:userGet>``
    """
    inner = "".join(c if isinstance(c, str) else f"<{c[0]}>{escape(str(c[1]))}</{c[0]}>"
                    for c in children)
    return f"<ecm:{name}>{inner}</ecm:{name}>"


def attributes(values: Mapping[str, str], element: str = "attributes") -> str:
    """Repeated ``<attributes><name/><value/></attributes>`` for a dict."""
    return "".join(f"<{element}><name>{escape(n)}</name><value>{escape(v)}</value></{element}>"
                   for n, v in values.items())


def send_single(message_id: object, recipient_id: object, content: str = "") -> str:
    return (f"<ecm:messageSendSingle><messageId>{message_id}</messageId>"
            f"<recipientId>{recipient_id}</recipientId>"
            f"<additionalContent>{content}</additionalContent></ecm:messageSendSingle>")


@dataclass
class Reply:
    """A parsed SOAP reply: the payload element, or the fault's parts."""

    status: int
    text: str
    payload: etree._Element | None = None
    faultcode: str | None = None
    faultstring: str | None = None
    detail_name: str | None = None
    detail: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fields(self) -> dict[str, str]:
        return dict(self.detail)


class Response(Protocol):
    """What the checks read of a reply: requests' Response, or :class:`LocalResponse`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...


@dataclass
class LocalResponse:
    """A reply of the in-process transport, shaped like requests' Response."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


def check_reply(response: Response) -> Reply:
    """Check the wire shape of a SOAP reply and validate its payload against the XSD."""
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert int(response.headers["Content-Length"]) == len(response.content)
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    assert root.prefix == "S"
    assert len(root) == 1 and root[0].tag == f"{{{SOAP_ENV}}}Body" and root[0].prefix == "S"
    assert len(root[0]) == 1
    child = root[0][0]
    reply = Reply(response.status_code, response.text)
    if child.tag == f"{{{SOAP_ENV}}}Fault":
        assert response.status_code == 500
        assert child.prefix == "S"
        assert [c.tag for c in child][:2] == ["faultcode", "faultstring"]
        reply.faultcode = child.findtext("faultcode")
        reply.faultstring = child.findtext("faultstring")
        detail = child.find("detail")
        if detail is not None:
            assert len(detail) == 1
            bean = detail[0]
            assert bean.prefix == "ns2" and etree.QName(bean).namespace == ECM
            XSD.assertValid(bean)
            reply.detail_name = etree.QName(bean).localname
            reply.detail = [(str(c.tag), c.text or "") for c in bean]
    else:
        assert response.status_code == 200
        assert child.prefix == "ns2" and etree.QName(child).namespace == ECM
        # Children are unqualified.
        assert all(etree.QName(c).namespace is None for c in child.iter() if c is not child)
        XSD.assertValid(child)
        reply.payload = child
    return reply


class Soap:
    """Posts hand-written envelopes to a sandbox: in-process, or with plain requests when
    it has a ``session`` (as the default user)."""

    def __init__(self, sandbox: Sandbox, session: requests.Session | None = None) -> None:
        self.sandbox = sandbox
        self.session = session
        self._local = sandbox.transport(timeout=30)
        self._auth = basic_auth_header(DEFAULT_USERNAME, DEFAULT_PASSWORD)

    def post(self, data: bytes, *, url: str | None = None, **kwargs: object) -> Response:
        """POST raw bytes; the response is read fully and closed."""
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
        if self.session is None and not kwargs:
            reply = self._local.request("POST", url or self.sandbox.inprocess_url, data,
                                        {**headers, "Authorization": self._auth})
            return LocalResponse(reply.status, reply.headers, reply.body)
        with contextlib.ExitStack() as stack:
            session = self.session
            if session is None:
                session = stack.enter_context(requests.Session())
                session.auth = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
            with session.post(url or self.sandbox.url, data=data, headers=headers,
                              timeout=30, **kwargs) as response:  # type: ignore[arg-type]
                _ = response.content
                return response
        raise AssertionError("unreachable")

    def call(self, body: str) -> Reply:
        """POST ``body`` in an envelope and return the checked reply.

        A fault detail must be one the operation declares in the WSDL.
        """
        reply = check_reply(self.post(envelope(body)))
        try:
            soap_body = etree.fromstring(envelope(body))[1]
        except etree.XMLSyntaxError:
            return reply
        if len(soap_body) != 1 or etree.QName(soap_body[0]).namespace != ECM:
            return reply  # not one operation: the envelope itself is refused
        operation = etree.QName(soap_body[0]).localname
        if reply.detail_name is not None and operation in DECLARED_FAULTS:
            assert reply.detail_name in DECLARED_FAULTS[operation], (operation, reply.detail)
        return reply

    def op(self, name: str, *children: tuple[str, object] | str) -> Reply:
        """Call operation ``name`` (see :func:`op`) and return the checked reply."""
        return self.call(op(name, *children))

    # The request builders and the reply check, for test modules (no conftest imports).
    envelope = staticmethod(envelope)
    contact_get = staticmethod(contact_get)
    send_single = staticmethod(send_single)
    attributes = staticmethod(attributes)
    declared_faults = DECLARED_FAULTS
    check = staticmethod(check_reply)
    schema = XSD


class LazySandbox(Sandbox):
    """A sandbox whose HTTP server starts the first time a test asks for its port."""

    @property
    def port(self) -> int:
        if not self.running:
            self.start()
        return super().port


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A sandbox without the rate ceiling (tests call it quickly); HTTP on demand."""
    sandbox = LazySandbox(rate_limit=None)
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        http.auth = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
        yield http


@pytest.fixture
def soap(sandbox: Sandbox) -> Soap:
    """Raw envelopes through the in-process transport."""
    return Soap(sandbox)


@pytest.fixture
def http_soap(sandbox: Sandbox, session: requests.Session) -> Soap:
    """Raw envelopes over HTTP to the running sandbox."""
    return Soap(sandbox, session)


@pytest.fixture
def make_soap() -> Callable[[Sandbox], Soap]:
    """Build an in-process Soap helper for a sandbox a test makes itself."""
    return Soap
