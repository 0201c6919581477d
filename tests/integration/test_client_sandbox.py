"""Every facade call round-trips through the sandbox; each injected fault has its exception.

The clients call the sandbox in-process (``sandbox.transport()``): no socket; that its
errors are the urllib3 transport's own is proved in tests/sandbox/test_sandbox_inprocess.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engage_soap import (
    Attachment,
    AuthenticationError,
    ContactNotFoundError,
    EngageClient,
    EngageFault,
    HTTPStatusError,
    Identifier,
    InvalidParameterError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
    UnexpectedServerError,
)
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox, SoapFault

pytestmark = pytest.mark.long(4)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    return Sandbox(rate_limit=None)


def connect(sb: Sandbox, password: str = DEFAULT_PASSWORD, *, timeout: float = 30.0,
            **kwargs: Any) -> EngageClient:
    """A client of ``sb`` through its in-process transport."""
    return EngageClient(sb.inprocess_url, DEFAULT_USERNAME, password,
                        transport=sb.transport(timeout=timeout), **kwargs)


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    sandbox.state.reset()
    sandbox.faults.clear()
    sandbox.rate_limit = None
    sandbox.limiter.reset()
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def client(sb: Sandbox) -> Iterator[EngageClient]:
    with connect(sb, rate_limit=None,
                      retry=RetryPolicy.none(), timeout=5) as c:
        yield c


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize(("kwargs", "contact_id"), [
    ({"email": "j.mcexample@example.com"}, 33457),
    ({"mobile_number": "+4915112345678"}, 33458),
    ({"app_alias": "app-7f3c9a21"}, 33459),
    ({"external_id": "CRM-000042"}, 33460),
    ({"contact_id": 33457}, 33457),
])
def test_contact_get_every_identifier_type(client: EngageClient, kwargs: dict[str, object],
                                           contact_id: int) -> None:
    assert client.contact_get(**kwargs).id == contact_id  # type: ignore[arg-type]


def test_contact_get_returns_attributes(client: EngageClient) -> None:
    contact = client.contact_get(Identifier.email("j.mcexample@example.com"))
    assert contact.email == "j.mcexample@example.com"
    assert contact.attributes["FIRSTNAME"] == "J."
    assert contact.attributes["LASTNAME"] == "McExample"


def test_contact_get_missing_is_contact_not_found(client: EngageClient) -> None:
    with pytest.raises(ContactNotFoundError) as info:
        client.contact_get(email="nobody@example.com")
    err = info.value
    assert (err.object_type, err.property_name, err.property_value) == (
        "Contact", "identifier", "nobody@example.com")
    assert err.error_code == "NO_SUCH_OBJECT" and err.http_status == 500
    assert err.operation == "contactGet"


def test_contact_create_then_get_and_duplicate(client: EngageClient, sb: Sandbox) -> None:
    created = client.contact_create(email="new@example.com", attributes={"CITY": "Berlin"})
    assert created.id in sb.state.contacts
    assert client.contact_get(email="new@example.com") == created
    assert created.attributes == {"CITY": "Berlin"}
    with pytest.raises(ObjectAlreadyExistsError):
        client.contact_create(email="new@example.com")


def test_message_send_single_lands_in_outbox_and_group(client: EngageClient,
                                                       sb: Sandbox) -> None:
    client.message_send_single(23541, 33458, parameters={"FIRSTNAME": "Jo", "CODE": "X1"},
                               attachments=[Attachment("invoice.pdf", b"%PDF-1.4 ...")])
    entry = sb.state.outbox[-1]
    assert (entry.message_id, entry.recipient_id) == (23541, 33458)
    assert entry.parameters == [("FIRSTNAME", "Jo"), ("CODE", "X1")]
    assert [(a.name, a.content_type, a.content) for a in entry.attachments] == [
        ("invoice.pdf", "application/pdf", b"%PDF-1.4 ...")]
    assert 33458 in sb.state.group_members(23541)


def test_message_send_unknown_message_and_recipient(client: EngageClient, sb: Sandbox) -> None:
    with pytest.raises(NoSuchObjectError) as info:
        client.message_send_single(999, 33457)
    assert info.value.object_type == "Message"
    assert not isinstance(info.value, ContactNotFoundError)
    with pytest.raises(ContactNotFoundError):
        client.message_send_single(23541, 999999)
    assert sb.state.outbox == []


def test_send_prepared_message_procedure(client: EngageClient, sb: Sandbox) -> None:
    result = client.send_prepared_message(23541, email="j.mcexample@example.com",
                                          parameters={"FIRSTNAME": "Jo"})
    assert (result.message_id, result.contact.id, result.created) == (23541, 33457, False)
    assert sb.state.outbox[-1].parameters == [("FIRSTNAME", "Jo")]


def test_send_prepared_message_missing_contact_sends_nothing(client: EngageClient,
                                                             sb: Sandbox) -> None:
    before = len(sb.state.calls)
    with pytest.raises(ContactNotFoundError):
        client.send_prepared_message(23541, email="new@example.com")
    assert sb.state.outbox == []
    assert [c.operation for c in sb.state.calls[before:]] == ["contactGet"]


def test_send_prepared_message_creates_when_asked(client: EngageClient, sb: Sandbox) -> None:
    result = client.send_prepared_message(23541, email="new@example.com",
                                          create_if_missing=True)
    assert result.created
    assert sb.state.contacts[result.contact.id].email_address == "new@example.com"
    assert sb.state.outbox[-1].recipient_id == result.contact.id


def test_api_version(client: EngageClient) -> None:
    assert client.api_version() == "8"


def test_zeep_escape_hatch(client: EngageClient) -> None:
    assert client.service.systemGetApiVersion() == "8"


def test_wrong_password_is_authentication_error(sb: Sandbox) -> None:
    with connect(sb, "wrong", rate_limit=None,
                      retry=RetryPolicy.none()) as c, pytest.raises(AuthenticationError) as info:
        c.contact_get(email="j.mcexample@example.com")
    assert info.value.status_code == 401
    assert "wrong" not in str(info.value)


def test_wsdl_from_the_sandbox_url(sb: Sandbox, tmp_path: object) -> None:
    with connect(sb, wsdl=sb.inprocess_url + "?wsdl",
                      wsdl_cache_dir=str(tmp_path), rate_limit=None) as c:
        assert c.contact_get(contact_id=33457).email == "j.mcexample@example.com"


# ------------------------------------------------------------------ injected faults


@pytest.mark.parametrize(("kind", "exc_type", "status"), [
    ("http_502", HTTPStatusError, 502),
    ("http_503", HTTPStatusError, 503),
    ("empty_503", HTTPStatusError, 503),
])
def test_proxy_errors_are_http_status_errors(client: EngageClient, sb: Sandbox, kind: str,
                                             exc_type: type[HTTPStatusError],
                                             status: int) -> None:
    sb.faults.inject("contactGet", kind, times=1)  # type: ignore[arg-type]
    with pytest.raises(exc_type) as info:
        client.contact_get(contact_id=33457)
    assert info.value.status_code == status and info.value.retryable


def test_reset_before_handling_is_transport_error(client: EngageClient, sb: Sandbox) -> None:
    sb.faults.inject("messageSendSingle", "reset", times=1)
    with pytest.raises(TransportError) as info:
        client.message_send_single(23541, 33457)
    assert info.value.request_sent  # the request went out: a resend is the caller's call
    assert sb.state.outbox == []


def test_reset_after_handling_is_not_retried(sb: Sandbox) -> None:
    sb.faults.inject("messageSendSingle", "reset_after", times=1)
    with connect(sb, rate_limit=None,
                      retry=RetryPolicy(max_attempts=5, base_delay=0.0)) as c:
        with pytest.raises(TransportError) as info:
            c.message_send_single(23541, 33457)
    assert info.value.request_sent
    assert len(sb.state.outbox) == 1  # sent once, never twice


def test_truncated_reply_is_protocol_error(client: EngageClient, sb: Sandbox) -> None:
    sb.faults.inject("contactGet", "truncated", times=1)
    with pytest.raises(ProtocolError):
        client.contact_get(contact_id=33457)


def test_latency_beyond_the_deadline_is_timeout(sb: Sandbox) -> None:
    sb.faults.inject("contactGet", None, latency=1.5, times=1)
    with connect(sb, rate_limit=None,
                      retry=RetryPolicy.none(), timeout=0.5) as c:
        with pytest.raises(RequestTimeoutError) as info:
            c.contact_get(contact_id=33457)
    assert info.value.request_sent


@pytest.mark.parametrize(("fault", "exc_type"), [
    (SoapFault.unexpected("boom", error_id="E-1"), UnexpectedServerError),
    (SoapFault.invalid_parameter("bad", parameter_name="messageId", value="0"),
     InvalidParameterError),
])
def test_injected_soap_faults(client: EngageClient, sb: Sandbox, fault: SoapFault,
                              exc_type: type[EngageFault]) -> None:
    sb.faults.inject("contactGet", "fault", fault=fault, times=1)
    with pytest.raises(exc_type):
        client.contact_get(contact_id=33457)


def test_throttle_is_rate_limited_and_read_is_retried(sb: Sandbox) -> None:
    sb.faults.inject("contactGet", "throttle", times=1)
    policy = RetryPolicy(max_attempts=2, base_delay=0.0, rate_limited_delay=0.01)
    with connect(sb, rate_limit=None,
                      retry=policy) as c:
        assert c.contact_get(contact_id=33457).id == 33457
    sb.faults.inject("contactGet", "throttle", times=1)
    with connect(sb, rate_limit=None,
                      retry=RetryPolicy.none()) as c, pytest.raises(RateLimitedError):
        c.contact_get(contact_id=33457)


def test_sandbox_rate_ceiling_vs_client_rate_limit(sb: Sandbox) -> None:
    sb.rate_limit = 10
    with connect(sb, rate_limit=None,
                      retry=RetryPolicy.none()) as c, pytest.raises(RateLimitedError):
        for _ in range(20):
            c.contact_get(contact_id=33457)
    sb.limiter.reset()
    # Paced by the client's own limiter well under the ceiling (6/s against 10/s).
    with connect(sb, rate_limit=6.0,
                      retry=RetryPolicy.none()) as c:
        for _ in range(16):
            c.contact_get(contact_id=33457)
