"""The sandbox's operations and wire format, driven with plain requests and hand-written XML."""

from __future__ import annotations

import base64
import http.client
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from engage_soap.envelope import ECM_NS as ECM
from engage_soap.envelope import SOAP11_NS as SOAP_ENV
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

CONTACT_ORDER = ["contactId", "emailAddress", "mobileNumber", "applicationAlias", "identifier",
                 "attributes"]


def _children(element: etree._Element) -> list[str]:
    return [str(c.tag) for c in element]


# -- contactGet ---------------------------------------------------------------------------

@pytest.mark.parametrize(("id_type", "value", "contact_id"), [
    ("EMAIL", "j.mcexample@example.com", "33457"),
    ("EMAIL", "J.McExample@Example.COM", "33457"),
    ("MOBILE", "+4915112345678", "33458"),
    ("APP_ALIAS", "app-7f3c9a21", "33459"),
    ("EXTERNAL", "CRM-000042", "33460"),
    ("ID", "33457", "33457"),
])
def test_contact_get_by_each_identifier_type(soap, id_type, value, contact_id):
    reply = soap.call(soap.contact_get(id_type, value))
    assert reply.payload is not None
    assert reply.payload.tag == f"{{{ECM}}}contactGetResponse"
    contact = reply.payload.find("contact")
    assert contact is not None
    assert contact.findtext("contactId") == contact_id
    names = _children(contact)
    # XSD order, absent optional fields left out rather than empty.
    assert names == sorted(names, key=CONTACT_ORDER.index)
    assert all(c.text for c in contact if c.tag != "attributes")


def test_contact_get_vendor_example(soap):
    reply = soap.call(soap.contact_get("EMAIL", "j.mcexample@example.com"))
    contact = reply.payload.find("contact")
    assert contact.findtext("emailAddress") == "j.mcexample@example.com"
    attributes = {a.findtext("name"): a.findtext("value") for a in contact.iterfind("attributes")}
    assert attributes["FIRSTNAME"] == "J."
    assert attributes["LASTNAME"] == "McExample"
    assert "<ns2:contactGetResponse" in reply.text


def test_contact_with_app_alias_only_omits_other_fields(soap):
    contact = soap.call(soap.contact_get("APP_ALIAS", "app-7f3c9a21")).payload.find("contact")
    assert _children(contact) == ["contactId", "applicationAlias"]


def test_contact_not_found_fault_shape(soap):
    response = soap.post(soap.envelope(soap.contact_get("EMAIL", "nobody@example.com")))
    assert response.status_code == 500
    assert response.text.startswith("<?xml")
    assert "<S:Envelope" in response.text and "<S:Fault>" in response.text
    assert '<ns2:NoSuchObjectException xmlns:ns2="http://ecircle.com/developer/ecmapi">' \
        in response.text
    reply = soap.check(response)
    assert reply.faultcode == "S:Server"
    message = "Contact with identifier=nobody@example.com does not exist."
    assert reply.faultstring == message
    assert reply.detail_name == "NoSuchObjectException"
    assert reply.detail == [
        ("errorActor", "CLIENT"), ("errorCode", "NO_SUCH_OBJECT"), ("message", message),
        ("objectType", "Contact"), ("propertyName", "identifier"),
        ("propertyValue", "nobody@example.com")]


@pytest.mark.parametrize(("id_type", "value"), [
    ("MOBILE", "+49000"), ("APP_ALIAS", "nope"), ("EXTERNAL", "CRM-9"), ("ID", "999999")])
def test_contact_not_found_for_each_type(soap, id_type, value):
    reply = soap.call(soap.contact_get(id_type, value))
    assert reply.fields["errorCode"] == "NO_SUCH_OBJECT"
    assert reply.fields["propertyValue"] == value


def test_contact_get_non_numeric_id_is_invalid_parameter(soap):
    reply = soap.call(soap.contact_get("ID", "abc"))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert reply.fields["value"] == "abc"


# -- contactCreate ------------------------------------------------------------------------

def _create(email: str = "", extra: str = "") -> str:
    email_xml = f"<emailAddress>{email}</emailAddress>" if email else ""
    return f"<ecm:contactCreate><contact>{email_xml}{extra}</contact></ecm:contactCreate>"


def test_contact_create_and_get(soap):
    extra = ("<mobileNumber>+4917000001</mobileNumber>"
             "<attributes><name>FIRSTNAME</name><value>Neu</value></attributes>")
    reply = soap.call(_create("new.person@example.com", extra))
    assert reply.payload.tag == f"{{{ECM}}}contactCreateResponse"
    contact = reply.payload.find("contact")
    assert contact.findtext("contactId") == "33461"
    assert contact.findtext("emailAddress") == "new.person@example.com"
    assert soap.sandbox.state.contacts[33461].attributes == {"FIRSTNAME": "Neu"}
    again = soap.call(soap.contact_get("MOBILE", "+4917000001")).payload.find("contact")
    assert again.findtext("contactId") == "33461"
    second = soap.call(_create("other@example.com")).payload.find("contact")
    assert second.findtext("contactId") == "33462"


@pytest.mark.parametrize(("body", "prop", "value"), [
    (_create("J.MCEXAMPLE@example.com"), "emailAddress", "J.MCEXAMPLE@example.com"),
    (_create(extra="<mobileNumber>+4915112345678</mobileNumber>"), "mobileNumber",
     "+4915112345678"),
    (_create(extra="<applicationAlias>app-7f3c9a21</applicationAlias>"), "applicationAlias",
     "app-7f3c9a21"),
    (_create(extra="<identifier>CRM-000042</identifier>"), "identifier", "CRM-000042"),
])
def test_contact_create_duplicate(soap, body, prop, value):
    before = len(soap.sandbox.state.contacts)
    reply = soap.call(body)
    assert reply.detail_name == "ObjectAlreadyExistsException"
    assert [name for name, _ in reply.detail] == [
        "errorActor", "errorCode", "message", "objectType", "propertyName", "propertyValue"]
    assert reply.fields["errorCode"] == "OBJECT_ALREADY_EXISTS"
    assert reply.fields["objectType"] == "Contact"
    assert reply.fields["propertyName"] == prop
    assert reply.fields["propertyValue"] == value
    assert len(soap.sandbox.state.contacts) == before


def test_contact_create_without_identity_is_missing_parameter(soap):
    reply = soap.call(_create(extra="<attributes><name>A</name><value>b</value></attributes>"))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "MISSING_PARAMETER"
    assert reply.fields["parameterName"] == "contact"


# -- messageSendSingle --------------------------------------------------------------------

def test_message_send_single_records_outbox_and_group(soap):
    pdf = b"%PDF-1.4\n\x00\xff\xfe binary"
    content = (
        "<parameters><name>FIRSTNAME</name><value>Tom</value></parameters>"
        "<parameters><name>ORDER</name><value>A&amp;B &lt;1&gt;</value></parameters>"
        "<attachments><name>invoice.pdf</name><contentType>application/pdf</contentType>"
        f"<content>{base64.b64encode(pdf).decode()}</content></attachments>"
        "<attachments><name>note.txt</name><contentType>text/plain</contentType>"
        "<content>aGVs\n bG8=</content></attachments>")
    reply = soap.call(soap.send_single(23541, 33457, content))
    assert reply.payload.tag == f"{{{ECM}}}messageSendSingleResponse"
    assert len(reply.payload) == 0
    assert "<ns2:messageSendSingleResponse" in reply.text
    state = soap.sandbox.state
    (entry,) = state.outbox
    assert (entry.message_id, entry.recipient_id) == (23541, 33457)
    assert entry.email_address == "j.mcexample@example.com"
    assert entry.parameters == [("FIRSTNAME", "Tom"), ("ORDER", "A&B <1>")]
    assert entry.parameter_dict == {"FIRSTNAME": "Tom", "ORDER": "A&B <1>"}
    assert [(a.name, a.content_type, a.content) for a in entry.attachments] == [
        ("invoice.pdf", "application/pdf", pdf), ("note.txt", "text/plain", b"hello")]
    assert entry.timestamp > 0
    assert state.group_members(23541) == [33457]
    assert state.groups[entry.group_id].members == [33457]


def test_message_send_single_empty_content_and_group_has_no_duplicates(soap):
    for _ in range(2):
        assert soap.call(soap.send_single(23542, 33458)).payload is not None
    state = soap.sandbox.state
    assert len(state.outbox) == 2
    assert state.outbox[0].parameters == [] and state.outbox[0].attachments == []
    assert state.group_members(23542) == [33458]
    assert state.group_members(23541) == []


def test_message_send_single_unknown_message(soap):
    reply = soap.call(soap.send_single(999, 33457))
    assert reply.faultstring == "Message with id=999 does not exist."
    assert reply.detail == [
        ("errorActor", "CLIENT"), ("errorCode", "NO_SUCH_OBJECT"),
        ("message", "Message with id=999 does not exist."), ("objectType", "Message"),
        ("propertyName", "messageId"), ("propertyValue", "999")]
    assert soap.sandbox.state.outbox == []


def test_message_send_single_unknown_recipient(soap):
    reply = soap.call(soap.send_single(23541, 424242))
    assert reply.detail_name == "NoSuchObjectException"
    assert reply.fields["objectType"] == "Contact"
    assert reply.fields["propertyName"] == "recipientId"
    assert reply.fields["propertyValue"] == "424242"
    assert soap.sandbox.state.outbox == []
    assert soap.sandbox.state.group_members(23541) == []


# -- systemGetApiVersion ------------------------------------------------------------------

def test_system_get_api_version(soap):
    reply = soap.call("<ecm:systemGetApiVersion/>")
    # The real shape: one element <version> (not <return>).
    assert [c.tag for c in reply.payload] == ["version"]
    assert reply.payload.findtext("version") == "8"


def test_api_version_is_configurable(make_soap):
    with Sandbox(api_version="17", rate_limit=None) as other:
        assert other.url.endswith("/api/soap/v17/")
        assert make_soap(other).call("<ecm:systemGetApiVersion/>").payload.findtext(
            "version") == "17"


# -- invalid requests ---------------------------------------------------------------------

@pytest.mark.parametrize(("body", "code", "parameter", "value"), [
    ("<ecm:contactGet><identifier><type>FOO</type><value>x</value></identifier>"
     "</ecm:contactGet>", "INVALID_PARAMETER", "type", "FOO"),
    ("<ecm:contactGet><identifier><type>email</type><value>x</value></identifier>"
     "</ecm:contactGet>", "INVALID_PARAMETER", "type", "email"),
    ("<ecm:contactGet><identifier><type>EMAIL</type><value></value></identifier>"
     "</ecm:contactGet>", "INVALID_PARAMETER", "value", ""),
    ("<ecm:messageSendSingle><messageId>abc</messageId><recipientId>1</recipientId>"
     "<additionalContent/></ecm:messageSendSingle>", "INVALID_PARAMETER", "messageId", "abc"),
    ("<ecm:messageSendSingle><messageId>1</messageId><recipientId>1</recipientId>"
     "<additionalContent><attachments><name>a</name><contentType>text/plain</contentType>"
     "<content>!!notb64</content></attachments></additionalContent></ecm:messageSendSingle>",
     "INVALID_PARAMETER", "content", "!!notb64"),
    ("<ecm:messageSendSingle><messageId>1</messageId><recipientId>1</recipientId>"
     "<additionalContent><attachments><name>a</name><contentType>text/plain</contentType>"
     "<content>!!</content></attachments></additionalContent></ecm:messageSendSingle>",
     "INVALID_PARAMETER", "content", "!!"),
    # attachment without contentType (required), parameter without value (required)
    ("<ecm:messageSendSingle><messageId>1</messageId><recipientId>1</recipientId>"
     "<additionalContent><attachments><name>a</name><content>aGk=</content></attachments>"
     "</additionalContent></ecm:messageSendSingle>", "INVALID_REQUEST", None, None),
    ("<ecm:messageSendSingle><messageId>1</messageId><recipientId>1</recipientId>"
     "<additionalContent><parameters><name>P</name></parameters></additionalContent>"
     "</ecm:messageSendSingle>", "INVALID_REQUEST", None, None),
    ("<ecm:contactDelete/>", "INVALID_REQUEST", None, None),
    ("<ecm:messageSendSingle><messageId>23541</messageId><recipientId>33457</recipientId>"
     "</ecm:messageSendSingle>", "INVALID_REQUEST", None, None),
    ("<ecm:contactGet><identifier><value>x</value></identifier></ecm:contactGet>",
     "INVALID_REQUEST", None, None),
    ("<ecm:contactGet><ecm:identifier><type>EMAIL</type><value>x</value></ecm:identifier>"
     "</ecm:contactGet>", "INVALID_REQUEST", None, None),
])
def test_schema_invalid_request_is_a_fault(soap, body, code, parameter, value):
    reply = soap.call(body)
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorActor"] == "CLIENT"
    assert reply.fields["errorCode"] == code
    assert reply.faultstring.startswith("Invalid request:")
    if parameter is not None:
        assert reply.fields["parameterName"] == parameter
        assert reply.fields.get("value", "") == value
    assert soap.sandbox.state.outbox == []


@pytest.mark.parametrize("data", [
    b"", b"   ", b"not xml at all", b"<unclosed>", b"\xff\xfe\x00garbage",
    b'{"json": true}',
    # SOAP 1.2 envelope
    b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
    b'<c:systemGetApiVersion xmlns:c="http://ecircle.com/developer/ecmapi"/></e:Body>'
    b"</e:Envelope>",
    # no Body
    b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"/>',
])
def test_unusable_envelope_is_invalid_request(soap, data):
    reply = soap.check(soap.post(data))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_REQUEST"


@pytest.mark.parametrize("body", [
    "<ecm:contactFrobnicate/>",
    '<x:contactGet xmlns:x="http://yourdomain.com/developer/ecmapi"/>',
    "<ecm:systemGetApiVersion/><ecm:systemGetApiVersion/>",
    "",
])
def test_unknown_operation_or_body_is_invalid_request(soap, body):
    reply = soap.call(body)
    assert reply.fields["errorCode"] == "INVALID_REQUEST"


def test_dtd_and_entities_are_rejected(soap, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    for doctype in (
        '<!DOCTYPE x [<!ENTITY e "boom">]>',
        f'<!DOCTYPE x [<!ENTITY e SYSTEM "file://{secret}">]>',
        '<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY e "&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',
    ):
        data = (doctype + soap.envelope(soap.contact_get("EMAIL", "&e;")).decode()).encode()
        reply = soap.check(soap.post(data))
        assert reply.fields["errorCode"] == "INVALID_REQUEST"
        assert "DTD" in reply.faultstring
        assert "TOP-SECRET" not in reply.text and "boom" not in reply.text


def test_soap_header_is_ignored_and_prefixes_are_free(soap):
    data = (f'<a:Envelope xmlns:a="{SOAP_ENV}"><a:Header><h:x xmlns:h="urn:h">1</h:x>'
            f'</a:Header><a:Body><systemGetApiVersion xmlns="{ECM}"/></a:Body></a:Envelope>')
    assert soap.check(soap.post(data.encode())).payload.findtext("version") == "8"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(id_type=st.sampled_from(["EMAIL", "MOBILE", "APP_ALIAS", "EXTERNAL", "ID", "X"]),
       value=st.text(max_size=40))
def test_any_identifier_gets_a_valid_reply(soap, id_type, value):
    response = soap.post(soap.envelope(soap.contact_get(id_type, escape(value))))
    reply = soap.check(response)  # schema-valid reply or fault, never a crash
    assert reply.payload is not None or reply.fields["errorCode"] in (
        "NO_SUCH_OBJECT", "INVALID_PARAMETER", "INVALID_REQUEST")


# -- HTTP: auth, paths, methods, WSDL -----------------------------------------------------

def test_missing_auth_is_401(sandbox, soap):
    with requests.post(sandbox.url, data=soap.envelope("<ecm:systemGetApiVersion/>"),
                       timeout=30) as response:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
        assert "Envelope" not in response.text and len(response.content) < 200


@pytest.mark.parametrize("auth", [
    (DEFAULT_USERNAME, "wrong"), ("someone", DEFAULT_PASSWORD), ("", ""),
])
def test_wrong_credentials_are_401(sandbox, soap, auth):
    with requests.post(sandbox.url, data=soap.envelope("<ecm:systemGetApiVersion/>"),
                       auth=auth, timeout=30) as response:
        assert response.status_code == 401
        assert "Envelope" not in response.text


def test_bad_authorization_header_is_401(sandbox, soap):
    for header in ("Bearer abc", "Basic !!!notbase64", "Basic " + base64.b64encode(b"x").decode()):
        with requests.post(sandbox.url, data=soap.envelope("<ecm:systemGetApiVersion/>"),
                           headers={"Authorization": header}, timeout=30) as response:
            assert response.status_code == 401


def test_configured_users(make_soap):
    with Sandbox(users={"api-user": "pässword"}, rate_limit=None) as other, \
            requests.Session() as http:
        http.auth = ("api-user", "pässword".encode())
        from_soap = make_soap(other)
        from_soap.session = http
        assert from_soap.call("<ecm:systemGetApiVersion/>").payload is not None
        http.auth = (DEFAULT_USERNAME, DEFAULT_PASSWORD)
        assert from_soap.post(from_soap.envelope("<ecm:systemGetApiVersion/>")).status_code == 401


def test_other_paths_are_404_and_other_methods_405(sandbox, session):
    base = sandbox.base_url
    for method, url in [("POST", base + "/"), ("POST", base + "/api/soap/v7/"),
                        ("POST", sandbox.url + "x"), ("GET", base + "/nothing")]:
        with session.request(method, url, data=b"<x/>", timeout=30) as response:
            assert response.status_code == 404, (method, url)
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        with session.request(method, sandbox.url, timeout=30) as response:
            assert response.status_code == 405
            assert response.headers["Allow"] == "POST"


def test_wsdl_points_at_the_sandbox(sandbox):
    with requests.get(sandbox.wsdl_url, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/xml")
        wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address")
    assert address.get("location") == sandbox.url
    imported = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}import")
    assert imported.get("schemaLocation") == sandbox.xsd_url
    with requests.get(imported.get("schemaLocation"), timeout=30) as response:
        assert response.status_code == 200
        schema = etree.XMLSchema(etree.fromstring(response.content))
    assert schema.validate(etree.fromstring(
        f'<e:systemGetApiVersionResponse xmlns:e="{ECM}"><version>8</version>'
        "</e:systemGetApiVersionResponse>"))
    assert not schema.validate(etree.fromstring(
        f'<e:systemGetApiVersionResponse xmlns:e="{ECM}"><return>8</return>'
        "</e:systemGetApiVersionResponse>"))


def test_body_size_is_bounded(make_soap, session):
    with Sandbox(rate_limit=None, max_body_bytes=1000) as small:
        with session.post(small.url, data=b"<x/>" * 1000, timeout=30) as response:
            assert response.status_code == 413
        assert make_soap(small).call("<ecm:systemGetApiVersion/>").payload is not None


def test_keep_alive_reuses_one_connection(sandbox, soap):
    auth = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    headers = {"Content-Type": "text/xml; charset=utf-8", "Authorization": f"Basic {auth}"}
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=30)
    try:
        conn.request("POST", sandbox.path, soap.envelope("<ecm:systemGetApiVersion/>"), headers)
        first = conn.getresponse()
        assert first.version == 11 and first.status == 200
        first.read()
        sock = conn.sock
        conn.request("POST", sandbox.path, soap.envelope(soap.contact_get("ID", "1")), headers)
        second = conn.getresponse()
        assert second.status == 500
        second.read()
        assert conn.sock is sock  # not reconnected
    finally:
        conn.close()


def test_nothing_sensitive_is_logged(soap, caplog, capfd):
    caplog.set_level("DEBUG", logger="engage_soap.sandbox")
    soap.call("<ecm:systemGetApiVersion/>")
    with requests.post(soap.sandbox.url, auth=(DEFAULT_USERNAME, "wrong-pw"), timeout=30,
                       data=soap.envelope("<ecm:systemGetApiVersion/>")) as response:
        assert response.status_code == 401
    token = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    assert "POST" in caplog.text  # the request line goes to the logger at DEBUG
    for secret in (DEFAULT_PASSWORD, "wrong-pw", token, "Authorization"):
        assert secret not in caplog.text
    out, err = capfd.readouterr()
    assert "POST" not in err and "POST" not in out
