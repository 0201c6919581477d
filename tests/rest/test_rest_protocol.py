"""Choosing the protocol, what REST offers, and bad input refused before any request on both."""

from __future__ import annotations

from typing import Any

import pytest
from rest_fixtures import BASE, answering, rest_client

from engage_soap import Attachment, EngageClient
from engage_soap.errors import ConfigurationError, InvalidInputError
from engage_soap.rest_routes import ROUTES, UNMAPPED
from engage_soap.testing import MockTransport
from engage_soap.wires import protocol_for

SOAP = "https://engage.example.invalid/api/soap/v8/"


@pytest.mark.parametrize(("endpoint", "protocol", "chosen"), [
    (SOAP, None, "soap"),
    (BASE, None, "rest"),
    ("https://h.example/instance/api/rest/v19/", None, "rest"),
    ("https://h.example/proxy/", "rest", "rest"),
    ("https://h.example/proxy/", "soap", "soap"),
    (SOAP, "soap", "soap"),
])
def test_protocol_follows_the_endpoint_or_the_argument(endpoint: str, protocol: str | None,
                                                       chosen: str) -> None:
    assert protocol_for(endpoint, protocol) == chosen


@pytest.mark.parametrize(("endpoint", "protocol", "says"), [
    ("https://h.example/proxy/", None, "protocol='soap' or protocol='rest'"),
    (SOAP, "rest", "is a SOAP endpoint"),
    (BASE, "soap", "is a REST endpoint"),
    (BASE, "json", "must be 'soap' or 'rest'"),
])
def test_a_protocol_that_cannot_be_told_is_a_configuration_error(
        endpoint: str, protocol: str | None, says: str) -> None:
    transport = answering(200, b"{}")
    with pytest.raises(ConfigurationError, match=says):
        EngageClient(endpoint, "u", "p", transport=transport, protocol=protocol)
    assert transport.closed and not transport.requests


def test_rest_offers_the_routed_operations_and_refuses_the_others() -> None:
    transport = answering(200, b"{}")
    with rest_client(transport) as client:
        assert set(client.operations()) == set(ROUTES)
        for name in UNMAPPED:
            with pytest.raises(ConfigurationError, match=name):
                client.call(name)
        with pytest.raises(InvalidInputError, match="no operation 'noSuchThing'"):
            client.call("noSuchThing")
        with pytest.raises(ConfigurationError, match="REST"):
            _ = client.service
        with pytest.raises(InvalidInputError, match="unsubscriptionMode is required"):
            client.call("membershipUnsubscribe", userId=1, groupId=2)
    assert not transport.requests


def test_validate_is_refused_on_rest() -> None:
    with pytest.raises(ConfigurationError, match="validate"):
        rest_client(answering(200, b"{}"), validate=True)


def test_sender_profile_stays_refused_on_soap_and_is_sent_on_rest() -> None:
    soap = MockTransport(lambda _r: pytest.fail("nothing may be sent"))
    with EngageClient(SOAP, "u", "p", transport=soap, rate_limit=None) as client, \
            pytest.raises(ConfigurationError, match="protocol='rest'"):
        client.message_send_single(1, 2, sender_profile="tls")
    rest = answering(204, b"")
    with rest_client(rest) as client:
        client.message_send_single(1, 2, sender_profile="tls")
    assert rest.requests[0].url.endswith("senderProfileName=tls")


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("contact_get", {"email": " "}, "must not be blank"),
    ("contact_get", {"contact_id": -1}, "contact id must be a positive int"),
    ("contact_get", {}, "exactly one"),
    ("contact_create", {"email": "a\x00@example.com"}, "XML cannot carry"),
    ("message_send_single", {"message_id": 0, "recipient_id": 1}, "message_id"),
    ("message_send_single", {"message_id": 1, "recipient_id": 1,
                             "parameters": {"A": object()}}, "parameter 'A'"),
    ("message_send_single", {"message_id": 1, "recipient_id": 1,
                             "attachments": [b"raw"]}, "Attachment"),
    ("call", {"operation": "userGetByEmail", "email": 5}, "userGetByEmail/email must be a str"),
    ("call", {"operation": "groupGet", "groupId": "7"}, "groupGet/groupId must be an int"),
    ("call", {"operation": "groupGet", "groupId": 2**63}, "between"),
    ("call", {"operation": "membershipSubscribeByEmail", "email": "a@example.com",
              "groupId": 1, "subscriptionMode": "MAYBE"}, "must be one of"),
    ("call", {"operation": "userGet", "userId": 1, "extra": 1}, "has no field 'extra'"),
    ("call", {"operation": "contactGet"}, "contactGet/identifier is required"),
]


@pytest.mark.parametrize(("method", "kwargs", "says"), BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
@pytest.mark.parametrize("endpoint", [SOAP, BASE], ids=["soap", "rest"])
def test_bad_input_fails_before_any_request_alike_on_both(
        endpoint: str, method: str, kwargs: dict[str, Any], says: str) -> None:
    transport = MockTransport(lambda _r: pytest.fail("nothing may be sent"))
    kwargs = dict(kwargs)
    with EngageClient(endpoint, "u", "p", transport=transport, rate_limit=None) as client, \
            pytest.raises(InvalidInputError) as caught:
        if method == "call":
            client.call(kwargs.pop("operation"), **kwargs)
        else:
            getattr(client, method)(**kwargs)
    assert says in str(caught.value)
    assert not transport.requests


def test_the_same_message_for_the_same_bad_input_on_both() -> None:
    messages = []
    for endpoint in (SOAP, BASE):
        transport = MockTransport(lambda _r: pytest.fail("nothing may be sent"))
        with EngageClient(endpoint, "u", "p", transport=transport, rate_limit=None) as client, \
                pytest.raises(InvalidInputError) as caught:
            client.send_prepared_message(
                1, email="a@example.com",
                attachments=[Attachment("a.txt", b"x", "text/plain"), "not one"])
        messages.append(str(caught.value))
    assert messages[0] == messages[1]



def test_cli_protocol_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from click.testing import CliRunner

    from engage_soap.cli import cli

    runner = CliRunner()
    result = runner.invoke(cli, ["--sandbox", "--protocol", "rest", "--json", "-v", "ping"])
    assert result.exit_code == 0, result.output
    assert "protocol rest (from command line)" in result.stderr
    assert "/api/rest/v8/" in result.stderr  # the sandbox's REST base
    assert json.loads(result.stdout)["ok"]
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent")  # no config file
    monkeypatch.delenv("ENGAGE_SOAP_CONFIG", raising=False)
    monkeypatch.setenv("ENGAGE_PROTOCOL", "xml")  # read from the environment, and checked
    bad = runner.invoke(cli, ["ping"])
    assert bad.exit_code == 2 and "ENGAGE_PROTOCOL" in bad.output


def test_the_readme_rest_example_runs_against_the_sandbox() -> None:
    import re
    from pathlib import Path

    from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## REST: one argument changes"):]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    with Sandbox(rate_limit=None) as sb:
        code = (block.group(1).replace('"https://<host>/api/rest/v19/"', repr(sb.rest_url))
                .replace('"api-user"', repr(DEFAULT_USERNAME)))
        namespace: dict[str, Any] = {"password": DEFAULT_PASSWORD}
        exec(compile(code, "README REST example", "exec"), namespace)
        assert namespace["user"]["user"]["id"] == 33457
        assert [(e.message_id, e.recipient_id) for e in sb.state.outbox] == [(23541, 33457)]
        assert [c.operation for c in sb.state.calls] == [
            "contactGet", "messageSendSingle", "userGetByEmail"]
