"""Recorded exchanges under fixtures/ and the checks every replayed request goes through.

fixtures/<operation>/ holds exchanges in the one recording format of the package
(``engage_soap.testing.Cassette``), named by case: ``<case>.request.xml``, one
``<case>.response.<ext>`` and an optional ``<case>.meta.json`` (status, content type).
Requests are compared with the package's ``xml_differences``.
"""

from __future__ import annotations

import base64
from functools import cache
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request

from engage_soap.testing import Cassette, RecordedExchange, xml_differences

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
PATH = "/api/soap/v8/"
USER = "api-user"
PASSWORD = "Tst-pw-9f2c!not-real"  # a test password; tests/core checks no fixture holds it
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
XML_CONTENT_TYPE = "text/xml;charset=utf-8"


@cache
def load(key: str) -> RecordedExchange:
    """The exchange ``<operation>/<case>`` of fixtures/."""
    operation, case = key.split("/")
    return Cassette(FIXTURES / operation).read(case)


def all_keys() -> list[str]:
    return sorted(f"{p.parent.name}/{p.name.removesuffix('.request.xml')}"
                  for p in FIXTURES.glob("*/*.request.xml") if p.parent.name != "exchanges")


def serve(httpserver: HTTPServer, *keys: str) -> None:
    """Answer the next POSTs to the endpoint with these recorded replies, in this order."""
    for key in keys:
        rec = load(key)
        httpserver.expect_ordered_request(PATH, method="POST").respond_with_data(
            rec.response, rec.status, content_type=rec.content_type)


def check_request(request: Request, rec: RecordedExchange) -> None:
    """The request carries Basic auth, text/xml utf-8, a SOAPAction and the recorded body."""
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    assert scheme == "Basic", f"no Basic auth on the request: {auth!r}"
    assert base64.b64decode(token).decode() == f"{USER}:{PASSWORD}"
    media, _, params = request.headers.get("Content-Type", "").partition(";")
    assert media.strip() == "text/xml"
    charset = dict(p.strip().split("=", 1) for p in params.split(";") if "=" in p)
    assert charset.get("charset", "").strip('"').lower() == "utf-8"
    assert "SOAPAction" in request.headers
    assert request.headers["SOAPAction"] == '""'  # the WSDL's soapAction=""
    diff = xml_differences(request.get_data(), rec.request)
    assert diff is None, f"the request differs from {rec.name}:\n{diff}"


def assert_sent(httpserver: HTTPServer, *keys: str) -> None:
    """Exactly these recorded requests were made, in this order."""
    sent = [req for req, _ in httpserver.log]
    assert len(sent) == len(keys), f"expected {len(keys)} requests, got {len(sent)}"
    for req, key in zip(sent, keys, strict=True):
        check_request(req, load(key))
