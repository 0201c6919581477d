"""The engage_sandbox fixture, used the way a project that installs engage_soap would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engage_soap import Attachment, AuthenticationError, EngageClient, TransportError
from engage_soap.pytest_plugin import EngageSandbox
from engage_soap.sandbox import Sandbox


def test_send_and_assert_on_the_outbox(engage_sandbox: EngageSandbox) -> None:
    result = engage_sandbox.client.send_prepared_message(
        23541, email="j.mcexample@example.com", parameters={"FIRSTNAME": "Jo"},
        attachments=[Attachment("invoice.pdf", b"%PDF-1.4")])
    assert result.contact.id == 33457
    [sent] = engage_sandbox.outbox
    assert sent.message_id == 23541
    assert sent.recipient_id == 33457
    assert sent.parameter_dict == {"FIRSTNAME": "Jo"}
    assert [(a.name, a.content) for a in sent.attachments] == [("invoice.pdf", b"%PDF-1.4")]
    assert 33457 in engage_sandbox.state.group_members(23541)


@pytest.mark.parametrize("round_", [1, 2])
def test_state_is_fresh_in_every_test(engage_sandbox: EngageSandbox, round_: int) -> None:
    assert engage_sandbox.outbox == []
    assert engage_sandbox.state.find_contact("EMAIL", "new@example.com") is None
    engage_sandbox.client.contact_create(email="new@example.com")
    engage_sandbox.client.message_send_single(23541, 33457)
    assert len(engage_sandbox.outbox) == 1


def test_fixture_shape(engage_sandbox: EngageSandbox) -> None:
    assert isinstance(engage_sandbox.client, EngageClient)
    # The client calls the sandbox in-process: no server until the test asks for a URL.
    assert not engage_sandbox.sandbox.running
    assert engage_sandbox.client.endpoint == engage_sandbox.sandbox.inprocess_url
    assert engage_sandbox.client.api_version() == "8"
    assert engage_sandbox.url == engage_sandbox.sandbox.url
    assert engage_sandbox.sandbox.running
    assert engage_sandbox.url.startswith("http://127.0.0.1:")
    assert engage_sandbox.state is engage_sandbox.sandbox.state
    assert engage_sandbox.sandbox.rate_limit is None  # the throttle is off by default
    assert engage_sandbox.env() == {"ENGAGE_ENDPOINT": engage_sandbox.url,
                                    "ENGAGE_USERNAME": "sandbox-api",
                                    "ENGAGE_PASSWORD": "sandbox-secret"}
    assert "outbox=0 sent" in repr(engage_sandbox)


@pytest.mark.engage_sandbox(sockets=True)
def test_sockets_marker_gives_clients_over_http(engage_sandbox: EngageSandbox) -> None:
    assert engage_sandbox.sandbox.running
    assert engage_sandbox.client.endpoint == engage_sandbox.url
    assert engage_sandbox.client.api_version() == "8"
    assert engage_sandbox.state.calls[-1].operation == "systemGetApiVersion"


def test_many_calls_are_not_throttled(engage_sandbox: EngageSandbox) -> None:
    for _ in range(30):
        engage_sandbox.client.contact_get(contact_id=33457)


def test_fault_injection_and_fast_retries(engage_sandbox: EngageSandbox) -> None:
    engage_sandbox.faults.inject("contactGet", "http_502", times=1)
    assert engage_sandbox.client.contact_get(contact_id=33458).id == 33458
    engage_sandbox.faults.inject("contactGet", "reset")
    with pytest.raises(TransportError):
        engage_sandbox.client.contact_get(contact_id=33458)


def test_make_client_with_other_credentials(engage_sandbox: EngageSandbox) -> None:
    intruder = engage_sandbox.make_client(password="wrong")
    with pytest.raises(AuthenticationError):
        intruder.api_version()


@pytest.mark.engage_sandbox(rate_limit=2, api_version="9")
def test_marker_configures_the_sandbox(engage_sandbox: EngageSandbox) -> None:
    assert engage_sandbox.sandbox.rate_limit == 2
    assert engage_sandbox.url.endswith("/api/soap/v9/")
    assert engage_sandbox.client.api_version() == "9"


@pytest.fixture
def sandboxes_seen() -> Iterator[list[Sandbox]]:
    """Set up before engage_sandbox, so torn down after it: checks it stopped."""
    seen: list[Sandbox] = []
    yield seen
    assert seen and not any(s.running for s in seen)


def test_sandbox_is_stopped_after_the_test(sandboxes_seen: list[Sandbox],
                                           engage_sandbox: EngageSandbox) -> None:
    sandboxes_seen.append(engage_sandbox.sandbox)
