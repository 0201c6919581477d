"""The whole ecmapi contract: every operation callable with our guarantees.

- recorded envelopes for a read, a write and a fault of operations beyond the facade;
- for every operation of the bundled WSDL, a request rendered from arguments generated
  from its schema validates against the XSD, and a reply generated from its schema reads
  back to the same data (hypothesis);
- bad arguments to ``call`` fail before any request; unknown operations are writes;
- attachments go out the same whatever type the WSDL gives their content;
- schema constructs the plans cannot express make the WSDL load fail, naming them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from pytest_httpserver import HTTPServer
from recorded import FIXTURES, assert_sent, serve

from engage_soap import (
    Attachment,
    ConfigurationError,
    EngageClient,
    InvalidInputError,
    NoSuchObjectError,
    RetryPolicy,
    TransportError,
    zeep_binding,
)
from engage_soap.envelope import (
    ECM_NS as ECM,
)
from engage_soap.envelope import (
    SOAP11_NS,
    OperationPlan,
    read_reply,
    render_request,
)
from engage_soap.errors import ProtocolError
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.schema import ComplexPlan, SimplePlan
from engage_soap.service import READ_OPERATIONS, is_read
from engage_soap.testing import HttpReply, HttpRequest, MockTransport

pytestmark = pytest.mark.long(6)

XSD = etree.XMLSchema(etree.parse(str(bundled_xsd())))
PLANS = zeep_binding.load_wsdl(None).operations

URL = "https://tenant.example.invalid/api/soap/v8/"
EMPTY = {"messageSendSingle": (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">'
                               b'<S:Body><ns2:messageSendSingleResponse xmlns:ns2="'
                               + ECM.encode() + b'"/></S:Body></S:Envelope>')}


# ------------------------------------------------------------------ the bundle


def test_the_bundle_holds_every_operation_of_the_generated_classes_and_the_contact_ops() -> None:
    assert len(PLANS) == 67  # 63 @WebMethod of Ecm.java + contactGet/Create/Update/Delete
    for name in ("contactGet", "contactCreate", "contactUpdate", "contactDelete",
                 "userGetByEmail", "membershipSubscribeByEmail", "groupGetPreparedMessages",
                 "messageSendTransactional", "systemGetEcmVersion"):
        assert name in PLANS
    assert [f.name for f in PLANS["systemGetApiVersion"].response.fields] == ["version"]
    attribute = PLANS["messageSendSingle"].request.find("additionalContent/parameters")
    assert attribute is not None and attribute.complex is not None
    assert [(f.name, f.min_occurs) for f in attribute.complex.fields] == [("name", 1),
                                                                          ("value", 1)]
    content = PLANS["messageSendSingle"].request.find("additionalContent/attachments/content")
    assert content is not None and content.plan.type_name == "string"  # base64 text
    mode = PLANS["membershipSubscribe"].request.find("subscriptionMode")
    assert isinstance(mode.plan, SimplePlan) and mode.plan.choices == {
        "CONFIRMED_OPT_IN", "DOUBLE_OPT_IN", "OPT_IN"}


def test_every_operation_is_in_the_read_table_or_a_write() -> None:
    assert set(PLANS) > READ_OPERATIONS
    writes = set(PLANS) - READ_OPERATIONS
    assert {"messageSendSingle", "messageSendTransactional", "contactCreate", "userDelete",
            "membershipSubscribeByEmail", "asyncPoll", "emailSendMessages"} <= writes
    assert is_read("contactGet") and not is_read("someOperationOfLaterVersions")


# ------------------------------------------------------------------ recorded exchanges


def test_a_read_beyond_the_facade(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "userGetByEmail/found")
    reply = client.call("userGetByEmail", email="j.mcexample@example.com")
    assert reply == {"user": {"id": 1001, "email": "j.mcexample@example.com",
                              "mobileNumber": "+15555550101", "identifier": ""}}
    assert_sent(httpserver, "userGetByEmail/found")


def test_a_write_beyond_the_facade(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "membershipSubscribeByEmail/subscribed")
    assert client.call("membershipSubscribeByEmail", email="j.mcexample@example.com",
                       groupId=4711, subscriptionMode="OPT_IN") == {}
    assert_sent(httpserver, "membershipSubscribeByEmail/subscribed")
    assert client.last_exchange is not None
    assert client.last_exchange.operation == "membershipSubscribeByEmail"


def test_a_fault_beyond_the_facade_is_typed(httpserver: HTTPServer,
                                            client: EngageClient) -> None:
    serve(httpserver, "userGetByEmail/not_found")
    with pytest.raises(NoSuchObjectError) as err:
        client.call("userGetByEmail", email="nobody@example.com")
    assert err.value.object_type == "User" and err.value.property_value == "nobody@example.com"
    assert err.value.operation == "userGetByEmail" and err.value.request_sent
    assert_sent(httpserver, "userGetByEmail/not_found")


def test_api_version_reads_the_real_shape(httpserver: HTTPServer,
                                          client: EngageClient) -> None:
    serve(httpserver, "systemGetApiVersion/version", "systemGetApiVersion/version")
    assert client.api_version() == "8"
    assert client.call("systemGetApiVersion") == {"version": "8"}
    assert_sent(httpserver, "systemGetApiVersion/version", "systemGetApiVersion/version")


# ------------------------------------------------------------------ every operation


# Text XML 1.0 can carry (the plans refuse surrogates, controls and U+FFFE/U+FFFF before
# writing: that refusal has tests of its own in test_core_render_text and test_bad_input).
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                              blacklist_characters="\ufffe\uffff"), min_size=1, max_size=12)


def _simple(plan: SimplePlan) -> st.SearchStrategy[Any]:
    if plan.choices is not None:
        return st.sampled_from(sorted(plan.choices))
    bits = {"long": 63, "int": 31, "short": 15, "byte": 7}.get(plan.type_name)
    if bits is not None:
        return st.integers(-(2**bits), 2**bits - 1)
    if plan.type_name == "boolean":
        return st.booleans()
    return _TEXT  # xs:string and its restrictions (at least one character: minLength)


def _value(plan: ComplexPlan, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    required: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for f in plan.fields:
        one = _value(f.complex, depth + 1) if f.complex is not None else _simple(f.plan)  # type: ignore[arg-type]
        if f.nillable:
            one = st.one_of(st.none(), one)
        if f.repeated:
            optional[f.name] = st.lists(one, max_size=2 if depth < 2 else 0)
        elif f.min_occurs:
            required[f.name] = one
        else:
            optional[f.name] = one
    return st.fixed_dictionaries(required, optional=optional)


def _reply_envelope(op: OperationPlan, data: dict[str, Any]) -> bytes:
    """A reply in the JAX-WS shape, rendered from ``data`` with the response plan."""
    fake = OperationPlan(op.name, "", op.response_tag, op.response, op.response_tag,
                         op.response)
    body = render_request(fake, data)
    return body.replace(b"soapenv:", b"S:").replace(b"xmlns:soapenv", b"xmlns:S").replace(
        b"ecm:", b"ns2:").replace(b"xmlns:ecm", b"xmlns:ns2")


def _complete(plan: ComplexPlan, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` as the reader returns it: every field present, in the schema's order."""
    out: dict[str, Any] = {}
    for f in plan.fields:
        value = data.get(f.name, [] if f.repeated else None)
        if f.complex is not None:
            value = ([None if v is None else _complete(f.complex, v) for v in value]
                     if f.repeated else None if value is None else _complete(f.complex, value))
        out[f.name] = value
    return out


@pytest.mark.parametrize("name", sorted(PLANS))
@settings(max_examples=15, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_operation_renders_valid_requests_and_reads_its_replies(name: str,
                                                                      data: Any) -> None:
    op = PLANS[name]
    args = data.draw(_value(op.request), label="arguments")
    request = etree.fromstring(render_request(op, args))
    payload = request.find(f"{{{SOAP11_NS}}}Body")[0]
    assert XSD.validate(payload), XSD.error_log
    reply = data.draw(_value(op.response), label="reply")
    body = _reply_envelope(op, reply)
    assert XSD.validate(etree.fromstring(body)[0][0]), XSD.error_log
    assert read_reply(op, 200, body) == _complete(op.response, reply)


# ------------------------------------------------------------------ call()


def _mock(answer: Callable[[HttpRequest], HttpReply] | None = None) -> MockTransport:
    return MockTransport(answer or (lambda r: HttpReply(200, {}, EMPTY["messageSendSingle"])))


def _client(transport: MockTransport, **kw: Any) -> EngageClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, base_delay=0, jitter=False))
    return EngageClient(URL, "api-user", "pw", transport=transport, rate_limit=None, **kw)


@pytest.mark.parametrize(("operation", "arguments", "says"), [
    ("noSuchOperation", {}, "no operation 'noSuchOperation'"),
    ("userGetByEmail", {}, "userGetByEmail/email is required"),
    ("userGetByEmail", {"email": "a@example.com", "mail": "x"}, "no field 'mail'"),
    ("userGet", {"userId": "12"}, "userGet/userId must be an int"),
    ("userGet", {"userId": 2**63}, "userGet/userId must be between"),
    ("userGetByEmail", {"email": "a\x00@example.com"}, "character XML cannot carry"),
    ("membershipSubscribe", {"userId": 1, "groupId": 2, "subscriptionMode": "MAYBE"},
     "must be one of CONFIRMED_OPT_IN, DOUBLE_OPT_IN, OPT_IN"),
    ("groupArchive", {"groupIds": 5}, "groupArchive/groupIds must be a list"),
    ("contactGet", {"identifier": "a@example.com"}, "contactGet/identifier must be a mapping"),
    ("messageSendSingle", {"messageId": 1, "recipientId": 2,
                           "additionalContent": {"parameters": [{"name": "A"}]}},
     "messageSendSingle/additionalContent/parameters/value is required"),
])
def test_bad_arguments_to_call_fail_before_any_request(operation: str,
                                                       arguments: dict[str, Any],
                                                       says: str) -> None:
    mock = _mock()
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        _client(mock).call(operation, **arguments)
    assert mock.requests == []


def test_call_returns_plain_data_and_retries_only_reads() -> None:
    user = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
            b'<ns2:groupGetPreparedMessagesResponse xmlns:ns2="' + ECM.encode() +
            b'"><messageIds>23541</messageIds><messageIds>23542</messageIds>'
            b"</ns2:groupGetPreparedMessagesResponse></S:Body></S:Envelope>")
    calls = {"n": 0}

    def flaky(request: HttpRequest) -> HttpReply:
        calls["n"] += 1
        if calls["n"] == 1:
            return HttpReply(503, {}, b"")
        return HttpReply(200, {}, user)

    mock = _mock(flaky)
    assert _client(mock).call("groupGetPreparedMessages", groupId=4711) == {
        "messageIds": [23541, 23542]}
    assert len(mock.requests) == 2  # a read: retried after the 503

    def reset_after_sending(request: HttpRequest) -> HttpReply:
        raise TransportError("reset", retryable=True, request_sent=True)

    for operation, args in (("membershipSubscribeByEmail",
                             {"email": "a@example.com", "groupId": 1,
                              "subscriptionMode": "OPT_IN"}),
                            ("someOperationOfLaterVersions", {})):
        mock = _mock(reset_after_sending)
        client = _client(mock, wsdl=_with_unknown_operation())
        with pytest.raises(TransportError):
            client.call(operation, **args)
        assert len(mock.requests) == 1  # a write, or an operation the table does not know


def _with_unknown_operation() -> str:
    """The bundled WSDL plus an operation no table knows, in a temporary folder."""
    folder = Path(__import__("tempfile").mkdtemp())
    wsdl = bundled_wsdl().read_text().replace(
        '<portType name="Ecm">', '<portType name="Ecm"><operation name="someOperationOfLater'
        'Versions"><input message="tns:systemGetApiVersion"/><output message='
        '"tns:systemGetApiVersionResponse"/></operation>').replace(
        '<binding name="EcmWSPortBinding" type="tns:Ecm">',
        '<binding name="EcmWSPortBinding" type="tns:Ecm"><operation name="someOperationOf'
        'LaterVersions"><soap:operation soapAction=""/><input><soap:body use="literal"/>'
        '</input><output><soap:body use="literal"/></output></operation>', 1)
    # the binding element is preceded by a soap:binding line: put it after that
    wsdl = re.sub(r'(<binding name="EcmWSPortBinding" type="tns:Ecm">)(<operation name="some'
                  r'OperationOfLaterVersions">.*?</operation>)(\s*<soap:binding[^>]*/>)',
                  r"\1\3\2", wsdl, flags=re.S)
    (folder / "ecmapi.wsdl").write_text(wsdl)
    (folder / "ecmapi.xsd").write_bytes(bundled_xsd().read_bytes())
    return str(folder / "ecmapi.wsdl")


def test_operations_describe_arguments_and_reads() -> None:
    ops = _client(_mock()).operations()
    assert len(ops) == 67 and ops["contactGet"]["read"] and not ops["contactCreate"]["read"]
    mode = next(a for a in ops["membershipSubscribeByEmail"]["arguments"]
                if a["name"] == "subscriptionMode")
    assert mode == {"name": "subscriptionMode", "type": "subscriptionMode", "required": True,
                    "repeated": False, "choices": ["CONFIRMED_OPT_IN", "DOUBLE_OPT_IN",
                                                   "OPT_IN"]}


# ------------------------------------------------------------------ the facade


def test_attachments_send_the_same_bytes_whatever_the_wsdl_calls_their_content() -> None:
    bodies = []
    for wsdl in (None, FIXTURES / "wsdl" / "ecmapi-base64.wsdl"):
        mock = _mock()
        client = _client(mock, wsdl=wsdl)
        field = client.request_schema("messageSendSingle").find(
            "additionalContent/attachments/content")
        assert field is not None
        client.message_send_single(23541, 1001, parameters={"A": 1.5},
                                   attachments=[Attachment("a.bin", bytes(range(256)))])
        bodies.append((field.plan.type_name, mock.requests[0].body))
    (plain, sent), (b64, sent_b64) = bodies
    assert (plain, b64) == ("string", "base64Binary")
    assert sent == sent_b64
    assert b"<value>1.5</value>" in sent


@pytest.mark.parametrize("bad", [
    {"attachments": [b"raw bytes"]},
    {"attachments": "invoice.pdf"},
    {"parameters": {"": "x"}},
    {"parameters": {"A": object()}},
    {"parameters": {"A": float("nan")}},
    {"message_id": 0},
], ids=["bytes-attachment", "str-attachments", "blank-name", "object-value", "nan", "id-0"])
def test_send_prepared_message_checks_everything_before_the_first_request(
        bad: dict[str, Any]) -> None:
    mock = _mock(lambda r: pytest.fail("no request may be made"))
    kwargs: dict[str, Any] = {"message_id": 23541, **bad}
    with pytest.raises(InvalidInputError):
        _client(mock).send_prepared_message(kwargs.pop("message_id"),
                                            email="new@example.com", create_if_missing=True,
                                            **kwargs)
    assert mock.requests == []


def test_send_prepared_message_names_the_step_that_failed() -> None:
    fault = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
             b"<S:Fault><faultcode>S:Server</faultcode><faultstring>no</faultstring><detail>"
             b'<ns2:NoSuchObjectException xmlns:ns2="' + ECM.encode() + b'"><errorActor>CLIENT'
             b"</errorActor><errorCode>NO_SUCH_OBJECT</errorCode><message>Message with id=9 "
             b"does not exist.</message><objectType>Message</objectType><propertyName>"
             b"messageId</propertyName><propertyValue>9</propertyValue>"
             b"</ns2:NoSuchObjectException></detail></S:Fault></S:Body></S:Envelope>")
    contact = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
               b'<ns2:contactGetResponse xmlns:ns2="' + ECM.encode() + b'"><contact>'
               b"<contactId>7</contactId></contact></ns2:contactGetResponse></S:Body>"
               b"</S:Envelope>")
    mock = _mock(lambda r: HttpReply(200, {}, contact) if b"contactGet" in r.body
                 else HttpReply(500, {}, fault))
    with pytest.raises(NoSuchObjectError) as err:
        _client(mock).send_prepared_message(9, email="a@example.com")
    assert err.value.operation == "messageSendSingle" and err.value.object_type == "Message"
    assert b"<recipientId>7</recipientId>" in mock.requests[-1].body


# ------------------------------------------------------------------ the compiler


@pytest.mark.parametrize(("edit", "says"), [
    ('<xs:element name="messageId" type="xs:long"/>\n      <xs:element name="recipientId" '
     'type="xs:long"/>', "xs:choice"),
    ('<xs:element name="version" type="xs:string"/>', "XML attributes"),
    ('<xs:element name="email" type="xs:string"/>', "xs:anyType"),
    ('<xs:element name="contentType" type="xs:string"/>', "recursive type"),
])
def test_unsupported_schema_constructs_fail_the_load_naming_them(tmp_path: Path, edit: str,
                                                                 says: str) -> None:
    xsd = bundled_xsd().read_text()
    assert edit in xsd
    replacement = {
        "xs:choice": "<xs:choice>" + edit + "</xs:choice>",
        "XML attributes": edit + '</xs:sequence><xs:attribute name="x" type="xs:string"/>'
                          '<xs:sequence>',
        "xs:anyType": edit.replace("xs:string", "xs:anyType"),
        "recursive type": edit + '<xs:element name="inner" type="tns:attachment" '
                                 'minOccurs="0"/>',
    }[says]
    if says == "XML attributes":  # attributes follow the sequence: close and reopen it
        replacement = edit + '</xs:sequence><xs:attribute name="x" type="xs:string"/>'
        xsd = xsd.replace(edit + "\n    </xs:sequence>", replacement, 1)
    else:
        xsd = xsd.replace(edit, replacement, 1)
    (tmp_path / "ecmapi.xsd").write_text(xsd)
    (tmp_path / "ecmapi.wsdl").write_bytes(bundled_wsdl().read_bytes())
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        zeep_binding.load_wsdl(tmp_path / "ecmapi.wsdl")


def test_replies_are_read_leniently_but_wrong_types_are_refused() -> None:
    op = PLANS["userGetByEmail"]
    lean = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
            b'<ns2:userGetByEmailResponse xmlns:ns2="' + ECM.encode() + b'"><user><id>5</id>'
            b"<email>a@example.com</email><brandNew>x</brandNew></user>"
            b"</ns2:userGetByEmailResponse></S:Body></S:Envelope>")
    assert read_reply(op, 200, lean) == {"user": {"id": 5, "email": "a@example.com",
                                                  "mobileNumber": None, "identifier": None}}
    with pytest.raises(ProtocolError, match="userGetByEmail/user/id should be an integer"):
        read_reply(op, 200, lean.replace(b"<id>5</id>", b"<id>five</id>"))
