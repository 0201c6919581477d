"""The facade and client.call over REST, driven by the recorded JSON exchanges in fixtures/rest/."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

import pytest
from rest_fixtures import BASE, answering, load, replaying, rest_client

from engage_soap import Attachment, Contact
from engage_soap.errors import (
    AuthenticationError,
    ContactNotFoundError,
    EngageError,
    EngageFault,
    HTTPStatusError,
    InvalidParameterError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    UnexpectedServerError,
)
from engage_soap.rest import loads, read_object
from engage_soap.schema import ComplexPlan, Field, simple_plan

PDF = b"%PDF-1.4\n% engage_soap test attachment\n"
JANE = Contact(id=1001, email="j.mcexample@example.com", mobile_number="+15555550101",
               app_alias=None, external_id=None,
               attributes={"FIRSTNAME": "Jane", "LASTNAME": "Example", "CITY": ""})


def test_contact_get_found() -> None:
    transport = replaying("contactGet/found")
    with rest_client(transport) as client:
        assert client.contact_get(email="j.mcexample@example.com") == JANE
    assert len(transport.requests) == 1


def test_contact_get_not_found_is_the_soap_exception() -> None:
    with rest_client(replaying("contactGet/not_found")) as client, \
            pytest.raises(ContactNotFoundError) as caught:
        client.contact_get(email="nobody.here@example.com")
    exc = caught.value
    assert exc.operation == "contactGet" and exc.error_code == "NO_SUCH_OBJECT"
    assert exc.error_actor == "CLIENT" and exc.http_status == 400
    assert (exc.object_type, exc.property_name, exc.property_value) == (
        "Contact", "identifier", "nobody.here@example.com")
    assert exc.request_sent and not exc.retryable
    assert str(exc) == ("contactGet: Contact with identifier=nobody.here@example.com does not "
                        "exist. [NO_SUCH_OBJECT]")


def test_contact_create_and_already_exists() -> None:
    with rest_client(replaying("contactCreate/created", "contactCreate/already_exists")) as c:
        created = c.contact_create(email="new.contact@example.com",
                                   attributes={"FIRSTNAME": "Nora", "CITY": ""})
        assert created == Contact(id=2001, email="new.contact@example.com",
                                  attributes={"FIRSTNAME": "Nora", "CITY": ""})
        with pytest.raises(ObjectAlreadyExistsError) as caught:
            c.contact_create(email="j.mcexample@example.com")
    assert caught.value.detail["propertyName"] == "emailAddress"


def test_contact_update_and_delete_through_call() -> None:
    with rest_client(replaying("contactUpdate/updated", "contactDelete/deleted")) as client:
        updated = client.call("contactUpdate", identifierType="EMAIL", contact={
            "emailAddress": "j.mcexample@example.com", "mobileNumber": "+15555550101",
            "attributes": [{"name": "FIRSTNAME", "value": "Janet"},
                           {"name": "user.ISOCountryCode", "value": "FR"}]})
        assert updated["contact"]["contactId"] == 1001
        assert updated["contact"]["applicationAlias"] is None
        assert updated["contact"]["channelAddresses"] == []  # absent repeated: []
        assert client.call("contactDelete",
                           identifier={"type": "EMAIL", "value": "j.mcexample@example.com"}
                           ) == {}


def test_send_with_parameters_attachment_and_sender_profile() -> None:
    transport = replaying("messageSendSingle/with_content_and_sender_profile",
                          "messageSendSingle/plain")
    with rest_client(transport) as client:
        assert client.message_send_single(
            23541, 1001, parameters={"FIRSTNAME": "Tom", "ORDER": "A-1001"},
            attachments=[Attachment("invoice.pdf", PDF, "application/pdf")],
            sender_profile="tls-profile-1") is None
        client.message_send_single(23541, 1001)
    assert len(transport.requests) == 2


def test_recorded_attachment_is_the_pdf() -> None:
    body = load("messageSendSingle/with_content_and_sender_profile").request["body"]
    assert base64.b64decode(body["attachments"][0]["content"]) == PDF


def test_send_prepared_message_looks_up_then_sends_with_the_profile() -> None:
    transport = replaying("contactGet/found", "messageSendSingle/with_content_and_sender_profile")
    with rest_client(transport) as client:
        result = client.send_prepared_message(
            23541, email="j.mcexample@example.com",
            parameters={"FIRSTNAME": "Tom", "ORDER": "A-1001"},
            attachments=[Attachment("invoice.pdf", PDF, "application/pdf")],
            sender_profile="tls-profile-1")
    assert result.contact == JANE and not result.created


def test_reads_through_call_have_the_soap_shape() -> None:
    with rest_client(replaying("userGetByEmail/found", "membershipSubscribeByEmail/subscribed",
                               "systemGetApiVersion/version")) as client:
        assert client.call("userGetByEmail", email="j.mcexample@example.com") == {
            "user": {"id": 1001, "email": "j.mcexample@example.com", "mobileNumber": None,
                     "identifier": None}}
        assert client.call("membershipSubscribeByEmail", email="j.mcexample@example.com",
                           groupId=4711, subscriptionMode="OPT_IN") == {}
        assert client.api_version() == "0.95"


@pytest.mark.parametrize("body", [b"0.95", b'"0.95"'])
def test_a_scalar_reply_quoted_or_not(body: bytes) -> None:
    with rest_client(answering(200, body)) as client:
        assert client.api_version() == "0.95"


ERRORS: list[tuple[str, type[EngageError], str, dict[str, Any]]] = [
    ("contactGet/invalid_parameter", InvalidParameterError, "contactGet",
     {"type": "MOBILE", "value": "12"}),
    ("contactGet/unexpected_error", UnexpectedServerError, "contactGet", {}),
    ("contactGet/rate_limited", RateLimitedError, "contactGet", {}),
    ("contactGet/rate_limited_text", RateLimitedError, "contactGet", {}),
    ("contactGet/unauthorized_401", AuthenticationError, "contactGet", {}),
    ("contactGet/forbidden_403", AuthenticationError, "contactGet", {}),
    ("messageSendSingle/no_such_message", NoSuchObjectError, "messageSendSingle", {}),
    ("groupGetPreparedMessages/permission_denied", PermissionDeniedError,
     "groupGetPreparedMessages", {}),
    ("groupGet/not_found_404", HTTPStatusError, "groupGet", {}),
]


def _call_for(key: str, identifier: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    request = load(key).request
    operation = key.split("/")[0]
    if operation == "contactGet":
        return operation, {"identifier": identifier or request["body"]}
    if operation == "messageSendSingle":
        return operation, {"messageId": int(request["query"]["messageId"]),
                           "recipientId": int(request["query"]["recipientId"]),
                           "additionalContent": request["body"]}
    return operation, {k: int(v) for k, v in request["query"].items()}


@pytest.mark.parametrize(("key", "cls", "operation", "identifier"), ERRORS,
                         ids=[e[0] for e in ERRORS])
def test_each_error_reply_is_the_soap_exception_class(
        key: str, cls: type[EngageError], operation: str, identifier: dict[str, Any]) -> None:
    op, arguments = _call_for(key, identifier)
    with rest_client(replaying(key)) as client, pytest.raises(EngageError) as caught:
        client.call(op, **arguments)
    exc = caught.value
    assert type(exc) is cls
    assert exc.operation == operation and exc.request_sent


def test_missing_parameter_bean_keeps_its_fields() -> None:
    # the recorded request leaves messageId out, which this client refuses to send: the
    # reply is played to a valid request
    with rest_client(replaying("messageSendSingle/missing_parameter", check=False)) as client, \
            pytest.raises(InvalidParameterError) as caught:
        client.message_send_single(23541, 1001)
    exc = caught.value
    assert exc.error_code == "MISSING_PARAMETER" and exc.parameter_name == "messageId"
    assert "propertyName" not in exc.detail  # JSON null is absent
    assert exc.value == "null"  # the string "null" stays a string


def test_unexpected_error_and_throttle_details() -> None:
    with rest_client(replaying("contactGet/unexpected_error")) as client, \
            pytest.raises(UnexpectedServerError) as caught:
        client.contact_get(email="j.mcexample@example.com")
    assert caught.value.error_id == "e-7f3e-0042" and caught.value.retryable
    with rest_client(replaying("contactGet/rate_limited")) as client, \
            pytest.raises(RateLimitedError) as throttled:
        client.contact_get(email="j.mcexample@example.com")
    assert throttled.value.retryable and throttled.value.request_sent


def test_404_names_the_rest_endpoint_form() -> None:
    with rest_client(replaying("groupGet/not_found_404")) as client, \
            pytest.raises(HTTPStatusError) as caught:
        client.call("groupGet", groupId=4711)
    assert not isinstance(caught.value, EngageFault)
    assert caught.value.status_code == 404 and "/api/rest/v<N>/" in str(caught.value)


@pytest.mark.parametrize(("status", "body", "content_type", "cls", "retryable"), [
    (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html",
     HTTPStatusError, True),
    (503, b"", "", HTTPStatusError, True),
    (500, b"Internal Server Error", "text/plain", HTTPStatusError, False),
    (400, b"cannot deserialize value", "text/plain", HTTPStatusError, False),
    (200, b"<html>maintenance</html>", "text/html", ProtocolError, False),
    (200, b"", "", ProtocolError, None),
    (200, b'{"contactId": 1, ', "application/json", ProtocolError, False),
    (200, b'{"contactId": NaN}', "application/json", ProtocolError, False),
    (200, b'{"contactId": Infinity}', "application/json", ProtocolError, False),
    (200, b"[" * 100_000 + b"]" * 100_000, "application/json", ProtocolError, False),
    (200, b'{"contactId": "abc"}', "application/json", ProtocolError, None),
    (200, b'{"contactId": {"x": 1}}', "application/json", ProtocolError, None),
    (200, b'{"contactId": [1, 2]}', "application/json", ProtocolError, None),
    (200, b'"a contact"', "application/json", ProtocolError, None),
])
def test_bad_replies_map_as_on_soap(status: int, body: bytes, content_type: str,
                                    cls: type[EngageError], retryable: bool | None) -> None:
    with rest_client(answering(status, body, content_type)) as client, \
            pytest.raises(EngageError) as caught:
        client.contact_get(email="a@example.com")
    assert type(caught.value) is cls and caught.value.request_sent
    if retryable is not None:
        assert caught.value.retryable is retryable


def test_reader_types_are_the_soap_readers() -> None:
    plan = ComplexPlan("t", (
        Field("n", "n", 1, 1, simple_plan("long", "long")),
        Field("d", "d", 0, 1, simple_plan("decimal", "decimal")),
        Field("b", "b", 0, 1, simple_plan("boolean", "boolean")),
        Field("raw", "raw", 0, 1, simple_plan("base64Binary", "base64Binary")),
        Field("many", "many", 0, None, simple_plan("string", "string")),
    ))
    data = loads(b'{"n": 12345678901234567890, "d": 0.1, "b": true, "raw": "aGk=",'
                 b' "unknown": {"x": 1}}', "t")
    assert read_object(data, plan, "t") == {"n": 12345678901234567890, "d": Decimal("0.1"),
                                            "b": True, "raw": b"hi", "many": []}
    assert read_object({"many": None}, plan, "t")["n"] is None  # absent, as on SOAP


def test_retries_follow_the_read_write_table() -> None:
    from engage_soap import RetryPolicy

    transport = replaying("contactGet/rate_limited_text", "contactGet/found")
    policy = RetryPolicy(max_attempts=2, base_delay=0.0, rate_limited_delay=0.0)
    with rest_client(transport, retry=policy) as client:
        assert client.contact_get(email="j.mcexample@example.com") == JANE  # a read: again
    sent = answering(502, b"<html>502</html>", "text/html")
    with rest_client(sent, retry=policy) as client, pytest.raises(HTTPStatusError):
        client.message_send_single(23541, 1001)  # a write that may have arrived: once
    assert len(sent.requests) == 1


def test_last_exchange_and_debug_log_never_show_credentials(
        caplog: pytest.LogCaptureFixture) -> None:
    big = Attachment("big.pdf", PDF * 1000, "application/pdf")
    transport = answering(204, b"")
    with caplog.at_level("DEBUG", logger="engage_soap"), rest_client(transport) as client:
        client.message_send_single(23541, 1001, attachments=[big], sender_profile="p1")
        exchange = client.last_exchange
    assert exchange is not None and exchange.status_code == 204
    assert exchange.url == (f"{BASE}message/sendSingle?messageId=23541&recipientId=1001"
                            "&senderProfileName=p1")
    assert "Authorization" not in exchange.request_headers
    assert "Basic " not in caplog.text and "Tst-pw" not in caplog.text
    assert "chars]" in caplog.text and len(caplog.text) < 5000  # the base64 cut short
    assert transport.requests[0].headers["Authorization"].startswith("Basic ")
