"""Contract testing: validate=True against the WSDL in use, and the drift check."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from recorded import FIXTURES

from engage_soap import (
    Attachment,
    EngageClient,
    InvalidInputError,
    ProtocolError,
    RetryPolicy,
    zeep_binding,
)
from engage_soap.cli import cli
from engage_soap.contract import FACADE_OPERATIONS, compare
from engage_soap.envelope import ECM_NS as ECM
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.testing import HttpReply, HttpRequest, MockTransport

URL = "https://tenant.example.invalid/api/soap/v8/"
HEAD = b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
TAIL = b"</S:Body></S:Envelope>"


def _reply(inner: str) -> bytes:
    return HEAD + inner.replace("NS", f'xmlns:ns2="{ECM}"').encode() + TAIL


def _client(answer: Any, **kw: Any) -> tuple[EngageClient, MockTransport]:
    mock = MockTransport(answer)
    return EngageClient(URL, "u", "p", transport=mock, rate_limit=None,
                        retry=RetryPolicy.none(), **kw), mock


CONTACT = _reply("<ns2:contactGetResponse NS><contact><contactId>7</contactId>"
                 "<emailAddress>a@example.com</emailAddress></contact></ns2:contactGetResponse>")
SENT = _reply("<ns2:messageSendSingleResponse NS/>")


# ------------------------------------------------------------------ validate=True


def test_validation_is_off_by_default_and_on_catches_a_bad_request() -> None:
    lax, mock = _client(lambda r: HttpReply(200, {}, CONTACT))
    lax.call("contactGet", identifier={"type": "EMAIL", "value": ""})
    assert len(mock.requests) == 1  # the schema's minLength is not the plans' business
    strict, mock = _client(lambda r: HttpReply(200, {}, CONTACT), validate=True)
    with pytest.raises(InvalidInputError) as err:
        strict.call("contactGet", identifier={"type": "EMAIL", "value": ""})
    assert "at /ecm:contactGet/identifier/value" in str(err.value)
    assert "minLength" in str(err.value)
    assert mock.requests == []  # nothing was sent
    assert strict.contact_get(email="a@example.com").id == 7  # a good one goes through


@pytest.mark.parametrize(("reply", "path"), [
    (CONTACT.replace(b"<emailAddress>", b"<bogus/><emailAddress>"),
     "/ns2:contactGetResponse/contact/bogus"),
    (_reply("<ns2:contactGetResponse NS/>"), "/ns2:contactGetResponse"),
    (CONTACT.replace(b"<contactId>7</contactId>", b"<contactId>7</contactId>"
                     b"<contactId>8</contactId>"), "/ns2:contactGetResponse/contact/contactId"),
])
def test_validation_catches_a_reply_that_breaks_the_schema(reply: bytes, path: str) -> None:
    lenient, _ = _client(lambda r: HttpReply(200, {}, reply))
    strict, _ = _client(lambda r: HttpReply(200, {}, reply), validate=True)
    with pytest.raises(ProtocolError) as err:
        strict.call("contactGet", identifier={"type": "EMAIL", "value": "a@example.com"})
    assert f"the reply does not fit the schema at {path}" in str(err.value)
    if b"bogus" in reply:  # without validation an unknown element is skipped
        assert lenient.contact_get(email="a@example.com").id == 7


def test_validation_uses_the_schema_of_the_wsdl_in_use() -> None:
    tenant = FIXTURES / "wsdl" / "ecmapi-sender-profile.wsdl"
    client, mock = _client(lambda r: HttpReply(200, {}, SENT), validate=True, wsdl=tenant)
    client.message_send_single(23541, 1001, sender_profile="tls-1",
                               attachments=[Attachment("a.txt", b"hi")])
    assert b"<senderProfileName>tls-1</senderProfileName>" in mock.requests[0].body
    bundled, mock = _client(lambda r: HttpReply(200, {}, SENT), validate=True)
    with pytest.raises(InvalidInputError, match="no field 'senderProfileName'"):
        bundled.call("messageSendSingle", messageId=1, recipientId=2, additionalContent={},
                     senderProfileName="x")


def test_validation_of_a_wsdl_from_a_url_reads_nothing_more(tmp_path: Path) -> None:
    served: list[str] = []

    def answer(request: HttpRequest) -> HttpReply:
        if request.method == "GET":
            served.append(request.url)
            path = bundled_xsd() if request.url.endswith(".xsd") else bundled_wsdl()
            return HttpReply(200, {}, path.read_bytes())
        return HttpReply(200, {}, CONTACT)

    client, _ = _client(answer, validate=True, wsdl=URL + "?wsdl&validation",
                        wsdl_cache_dir=tmp_path)
    assert client.contact_get(email="a@example.com").id == 7
    assert served == [URL + "?wsdl&validation", URL + "ecmapi.xsd"]


# ------------------------------------------------------------------ drift


BUNDLED = zeep_binding.load_wsdl(None)


def _altered(tmp_path: Path, name: str, xsd_edits: list[tuple[str, str]],
             wsdl_edits: list[tuple[str, str]]) -> Any:
    folder = tmp_path / name
    folder.mkdir()
    xsd, wsdl = bundled_xsd().read_text(), bundled_wsdl().read_text()
    for old, new in xsd_edits:
        assert old in xsd, old
        xsd = xsd.replace(old, new, 1)
    for old, new in wsdl_edits:
        assert re.search(old, wsdl, re.S), old
        wsdl = re.sub(old, new, wsdl, flags=re.S)
    (folder / "ecmapi.xsd").write_text(xsd)
    (folder / "ecmapi.wsdl").write_text(wsdl)
    return zeep_binding.load_wsdl(folder / "ecmapi.wsdl")


SEND = '''      <xs:element name="messageId" type="xs:long"/>
      <xs:element name="recipientId" type="xs:long"/>
      <xs:element name="additionalContent" type="tns:messageContent"/>'''
DROP_VERSION_OP = (r'\s*<operation name="systemGetApiVersion">.*?</operation>', "")
KINDS: dict[str, tuple[list[tuple[str, str]], list[tuple[str, str]], set[tuple[Any, ...]]]] = {
    "missing-operation": ([], [DROP_VERSION_OP], {
        ("missing-operation", "systemGetApiVersion", "", True)}),
    "missing-element": ([('      <xs:element name="applicationAlias" type="xs:string" '
                          'minOccurs="0"/>\n', "")], [], {
        ("missing-element", "contactGet", "reply/contact/applicationAlias", True),
        ("missing-element", "contactCreate", "request/contact/applicationAlias", True),
        ("missing-element", "contactCreate", "reply/contact/applicationAlias", True)}),
    "new-required-element": ([(SEND, SEND + '\n      <xs:element name="channel" '
                                            'type="xs:string"/>')], [], {
        ("new-required-element", "messageSendSingle", "request/channel", True)}),
    "new-optional-element": ([(SEND, SEND + '\n      <xs:element name="channel" '
                                            'type="xs:string" minOccurs="0"/>')], [], {
        ("new-optional-element", "messageSendSingle", "request/channel", False)}),
    "type-changed": ([(SEND, SEND.replace('"recipientId" type="xs:long"',
                                          '"recipientId" type="xs:string"'))], [], {
        ("type-changed", "messageSendSingle", "request/recipientId", True)}),
    "cardinality-changed": ([('<xs:element name="attachments" type="tns:attachment" '
                              'nillable="true" minOccurs="0" maxOccurs="unbounded"/>',
                              '<xs:element name="attachments" type="tns:attachment" '
                              'nillable="true" minOccurs="0" maxOccurs="1"/>')], [], {
        ("cardinality-changed", "messageSendSingle",
         "request/additionalContent/attachments", True)}),
    "enumeration-removed": ([('      <xs:enumeration value="EMAIL"/>\n', "")], [], {
        ("enumeration-removed", "contactGet", "request/identifier/type", True)}),
    "enumeration-added": ([('      <xs:enumeration value="EMAIL"/>\n',
                            '      <xs:enumeration value="EMAIL"/>\n'
                            '      <xs:enumeration value="PUSH_TOKEN"/>\n')], [], {
        ("enumeration-added", "contactGet", "request/identifier/type", False)}),
    "facet-changed": ([('<xs:minLength value="1"/>', '<xs:minLength value="3"/>')], [], {
        ("facet-changed", "contactGet", "request/identifier/value", True)}),
    "soap-action-changed": ([], [(r'(<operation name="contactGet">\s*<soap:operation '
                                  r'soapAction=)""', r'\1"urn:contactGet"')], {
        ("soap-action-changed", "contactGet", "", True)}),
    "namespace-changed": ([('targetNamespace="http://ecircle.com/developer/ecmapi"',
                            'targetNamespace="http://ecircle.com/developer/ecmapi/v9"'),
                           ('xmlns:tns="http://ecircle.com/developer/ecmapi"',
                            'xmlns:tns="http://ecircle.com/developer/ecmapi/v9"')],
                          [(r'"http://ecircle.com/developer/ecmapi"',
                            '"http://ecircle.com/developer/ecmapi/v9"')], {
        ("namespace-changed", op, where, True) for op in FACADE_OPERATIONS
        for where in ("request", "reply")}),
    "order-changed": ([(SEND, SEND.replace(
        '<xs:element name="messageId" type="xs:long"/>\n      <xs:element name="recipientId" '
        'type="xs:long"/>', '<xs:element name="recipientId" type="xs:long"/>\n      '
        '<xs:element name="messageId" type="xs:long"/>'))], [], {
        ("order-changed", "messageSendSingle", "request", True)}),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_drift_reports_exactly_each_kind(tmp_path: Path, kind: str) -> None:
    xsd_edits, wsdl_edits, expected = KINDS[kind]
    tenant = _altered(tmp_path, kind, xsd_edits, wsdl_edits)
    report = compare(BUNDLED, tenant, FACADE_OPERATIONS)
    got = {(d.kind, d.operation, d.path, d.breaking) for d in report.differences}
    assert got == expected
    assert report.compatible is not any(b for *_, b in expected)
    assert report.as_dict()["compatible"] is report.compatible


def test_drift_of_a_new_operation_shows_with_all(tmp_path: Path) -> None:
    tenant = _altered(tmp_path, "new", [], [(r'(<portType name="Ecm">)', r'\1<operation '
        r'name="contactAnonymize"><input message="tns:contactDelete"/><output message='
        r'"tns:contactDeleteResponse"/></operation>'), (
        r'(<binding name="EcmWSPortBinding" type="tns:Ecm">\s*<soap:binding[^>]*/>)',
        r'\1<operation name="contactAnonymize"><soap:operation soapAction=""/><input>'
        r'<soap:body use="literal"/></input><output><soap:body use="literal"/></output>'
        r"</operation>")])
    assert compare(BUNDLED, tenant).differences == ()  # the facade's operations: unchanged
    report = compare(BUNDLED, tenant, None)
    assert [(d.kind, d.operation, d.breaking) for d in report.differences] == [
        ("new-operation", "contactAnonymize", False)]
    assert report.compatible
    assert compare(BUNDLED, BUNDLED, None).differences == ()


def test_drift_of_an_unknown_operation_name_is_refused_naming_the_closest() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown operation 'contactget' \(did you "
                                                r"mean contactGet"):
        compare(BUNDLED, BUNDLED, ["contactget"])
    with pytest.raises(InvalidInputError, match="'nope', 'nada'"):
        compare(BUNDLED, BUNDLED, ["contactGet", "nope", "nada"])


def test_contract_check_with_a_misspelt_operation_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["contract", "check", "--wsdl", str(bundled_wsdl()),
                                      "--operations", "contactget"])
    assert result.exit_code == 2, result.output
    assert "unknown operation 'contactget' (did you mean contactGet," in result.output
    assert "compatible" not in result.output


def test_drift_from_loaded_wsdls_compares_facets_and_the_docstring_example_runs(
        tmp_path: Path) -> None:
    import engage_soap.contract as contract

    example = (contract.__doc__ or "").split("::\n")[1].split("\nKinds")[0]
    code = textwrap.dedent(example).replace('"tenant.wsdl"', "TENANT")
    folder = tmp_path / "tenant"
    folder.mkdir()
    (folder / "ecmapi.xsd").write_text(bundled_xsd().read_text().replace(
        '<xs:minLength value="1"/>', '<xs:maxLength value="40"/>'))
    (folder / "ecmapi.wsdl").write_bytes(bundled_wsdl().read_bytes())
    scope: dict[str, Any] = {"TENANT": folder / "ecmapi.wsdl"}
    exec(code.replace("report.compatible, report.differences", "result = report"), scope)
    report = scope["result"]
    assert not report.compatible
    assert [(d.kind, d.path, d.bundled, d.tenant) for d in report.differences] == [
        ("facet-changed", "request/identifier/value", "base=string, minLength=1",
         "base=string, maxLength=40")]
