"""The recorded fixtures themselves: schema-valid, real-server shaped, free of secrets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree
from recorded import FIXTURES, PASSWORD, TOKEN, USER, all_keys, load

from engage_soap.envelope import ECM_NS as ECM
from engage_soap.envelope import SOAP11_NS as SOAP_ENV
from engage_soap.envelope import hardened_parser
from engage_soap.resources import bundled_xsd

BUNDLED = etree.XMLSchema(etree.parse(str(bundled_xsd())))
SENDER_PROFILE = etree.XMLSchema(
    etree.parse(str(FIXTURES / "wsdl" / "ecmapi-sender-profile.xsd")))
# Requests recorded against the test WSDL that declares senderProfileName.
REQUEST_SCHEMA = {"messageSendSingle/sender_profile": SENDER_PROFILE}

# Replies that are deliberately not schema-valid: each test below shows they are invalid,
# so this list cannot hide a stale fixture.
INVALID_ON_PURPOSE = {
    # newer servers append elements the schema does not know; the reader must skip them
    "contactGet/unknown_trailing_elements",
    # contactId "abc" is not an xs:long; the reader must raise ProtocolError
    "contactGet/wrong_typed_contact_id",
}
# Replies that are not SOAP envelopes at all (proxy pages, cut-off or empty bodies).
NOT_ENVELOPES = {
    "contactGet/html_502", "contactGet/empty_503", "contactGet/truncated_200",
    "contactGet/html_200", "contactGet/wrong_root_200", "contactGet/unauthorized_401",
}
KEYS = all_keys()


def _envelope(data: bytes) -> etree._Element | None:
    try:
        root = etree.fromstring(data, hardened_parser())
    except etree.XMLSyntaxError:
        return None
    return root if root.tag == f"{{{SOAP_ENV}}}Envelope" else None


def test_the_fixture_set_is_complete() -> None:
    assert len(KEYS) >= 30
    for op in ("contactGet", "contactCreate", "messageSendSingle", "systemGetApiVersion"):
        assert any(k.startswith(op + "/") for k in KEYS), op
    assert set(KEYS) >= INVALID_ON_PURPOSE | NOT_ENVELOPES
    assert (FIXTURES / "README.md").is_file()


@pytest.mark.parametrize("key", KEYS)
def test_recorded_request_validates_against_the_xsd(key: str) -> None:
    rec = load(key)
    root = _envelope(rec.request)
    assert root is not None, f"{key}: the request is not a SOAP 1.1 envelope"
    body = root.find(f"{{{SOAP_ENV}}}Body")
    children = [c for c in body if isinstance(c.tag, str)]
    assert len(children) == 1
    assert children[0].tag == f"{{{ECM}}}{rec.operation}"
    schema = REQUEST_SCHEMA.get(key, BUNDLED)
    assert schema.validate(children[0]), f"{key}: {schema.error_log}"


@pytest.mark.parametrize("key", KEYS)
def test_recorded_reply_has_the_real_server_shape_and_validates(key: str) -> None:
    rec = load(key)
    root = _envelope(rec.response)
    if key in NOT_ENVELOPES:
        assert root is None, f"{key} is listed as not an envelope but is one"
        return
    assert root is not None, f"{key}: the reply is not a SOAP 1.1 envelope"
    assert rec.response.startswith(b"<?xml version='1.0' encoding='UTF-8'?><S:Envelope "
                                   b'xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">')
    assert root.prefix == "S"
    payload = root.find(f"{{{SOAP_ENV}}}Body")[0]
    if payload.tag == f"{{{SOAP_ENV}}}Fault":
        assert rec.status == 500, f"{key}: a fault must come with HTTP 500"
        assert payload.findtext("faultcode") == "S:Server"
        bean = payload.find("detail")[0]
        assert bean.prefix == "ns2" and etree.QName(bean).namespace == ECM
        assert all(etree.QName(c).namespace is None for c in bean)  # unqualified children
        if key == "contactGet/unknown_fault":
            assert not BUNDLED.validate(bean)  # a detail element the schema does not know
        else:
            assert BUNDLED.validate(bean), f"{key}: {BUNDLED.error_log}"
        return
    assert rec.status == 200
    assert payload.prefix == "ns2" and etree.QName(payload).namespace == ECM
    assert all(etree.QName(c).namespace is None for c in payload.iter() if c is not payload)
    if key in INVALID_ON_PURPOSE:
        assert not BUNDLED.validate(payload), f"{key} is listed as invalid but validates"
    else:
        assert BUNDLED.validate(payload), f"{key}: {BUNDLED.error_log}"


LEAK = re.compile(r"(?i)authorization\s*[:=]|\bbasic\s+[a-z0-9+/]{8,}={0,2}")


def scan_for_secrets(folder: Path) -> list[str]:
    """Every file under ``folder`` holding the test credentials, an Authorization header or
    Basic token, or an e-mail address outside example.com."""
    secrets = [PASSWORD, TOKEN, f"{USER}:{PASSWORD}"]
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{path}: the test credentials" for s in secrets if s in text]
        if LEAK.search(text):
            found.append(f"{path}: an Authorization header or Basic token")
        for domain in re.findall(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)", text):
            if domain != "example.com":
                found.append(f"{path}: an e-mail address at {domain}")
    return found


def test_fixtures_hold_no_credentials_or_real_addresses() -> None:
    found = scan_for_secrets(FIXTURES)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("leak", [
    PASSWORD, f"<auth>Basic {TOKEN}</auth>", "Authorization: Basic xyz",
    "<emailAddress>jane@gmail.com</emailAddress>"])
def test_the_secret_scan_catches_leaks(tmp_path: Path, leak: str) -> None:
    (tmp_path / "op").mkdir()
    (tmp_path / "op" / "case.request.xml").write_text(f"<x>{leak}</x>")
    assert scan_for_secrets(tmp_path)
