"""Rules decided once: the SOAP and ecmapi namespaces, the hardened XML parser, and which
HTTP statuses are an AuthenticationError each live in engage_soap.envelope only."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from engage_soap import AuthenticationError, HTTPStatusError
from engage_soap.envelope import hardened_parser, http_status_error

PACKAGE = Path(__file__).resolve().parents[2] / "engage_soap"


@pytest.mark.parametrize("text", [
    '"http://schemas.xmlsoap.org/soap/envelope/"', '"http://ecircle.com/developer/ecmapi"',
    "etree.XMLParser(", "(401, 403)",
])
def test_each_rule_is_written_in_envelope_only(text: str) -> None:
    holders = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if text in p.read_text(encoding="utf-8"))
    assert holders == ["envelope.py"]


def test_the_hardened_parser_resolves_no_entity() -> None:
    data = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<d>&x;</d>")
    root = etree.fromstring(data, hardened_parser())
    assert "root:" not in "".join(root.itertext())


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_authentication_errors_for_calls_and_fetches(status: int) -> None:
    assert isinstance(http_status_error(status, b""), AuthenticationError)
    fetched = http_status_error(status, b"", "fetching the WSDL 'https://x/'")
    assert isinstance(fetched, AuthenticationError)
    assert str(fetched).startswith("fetching the WSDL 'https://x/' gave HTTP")
    assert type(http_status_error(503, b"", "fetching")) is HTTPStatusError
