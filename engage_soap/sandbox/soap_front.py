"""The SOAP 1.1 front of the sandbox application: envelopes in and out, WSDL and XSD.

It answers under the endpoint path: ``POST <endpoint>`` is an operation call,
``GET <endpoint>?wsdl`` the bundled WSDL pointing at the sandbox and
``GET <endpoint>ecmapi.xsd`` the schema it imports (neither needs credentials).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs

from lxml import etree

from ..envelope import hardened_parser
from ..resources import bundled_wsdl, bundled_xsd
from .app import Reply, Request
from .wire import SoapFault, fault_envelope, parse_request, reply_envelope

__all__ = ["SoapFront"]

XML = "text/xml; charset=utf-8"
_WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
_XSD_NS = "http://www.w3.org/2001/XMLSchema"


class SoapFront:
    """SOAP at ``path``; ``url()`` is the endpoint the served WSDL names."""

    def __init__(self, path: str, url: Callable[[], str]) -> None:
        self.path = path
        self._url = url
        self._wsdl: tuple[str, bytes] | None = None  # (endpoint URL, WSDL bytes)

    def direct(self, request: Request) -> Reply | None:
        reading = request.method in ("GET", "HEAD")
        query = {key.lower() for key in parse_qs(request.query, keep_blank_values=True)}
        if request.path == self.path:
            if request.method == "POST":
                return None
            if reading and "wsdl" in query:
                return Reply(200, self.wsdl(), {"Content-Type": XML})
            return Reply.text(405, "Method Not Allowed\n", headers={"Allow": "POST"})
        if request.path == self.path + "ecmapi.xsd" and reading:
            return Reply(200, bundled_xsd().read_bytes(), {"Content-Type": XML})
        return Reply.text(404, "Not Found\n")

    def decode(self, request: Request) -> tuple[str, etree._Element]:
        return parse_request(request.body)

    def encode(self, operation: str, payload: etree._Element) -> Reply:
        return Reply(200, reply_envelope(payload), {"Content-Type": XML})

    def encode_fault(self, fault: SoapFault) -> Reply:
        return Reply(500, fault_envelope(fault), {"Content-Type": XML})

    def wsdl(self) -> bytes:
        """The bundled WSDL with its address and schema import pointing at ``url()``."""
        url = self._url()
        cached = self._wsdl
        if cached is not None and cached[0] == url:
            return cached[1]
        tree = etree.parse(str(bundled_wsdl()), hardened_parser())
        for address in tree.iter(f"{{{_WSDL_SOAP_NS}}}address"):
            address.set("location", url)
        for imported in tree.iter(f"{{{_XSD_NS}}}import"):
            if imported.get("schemaLocation"):
                imported.set("schemaLocation", url + "ecmapi.xsd")
        text = etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
        self._wsdl = (url, text)
        return text
