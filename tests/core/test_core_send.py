"""messageSendSingle and send_prepared_message against recorded replies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from recorded import FIXTURES, assert_sent, serve

from engage_soap import (
    Attachment,
    ConfigurationError,
    Contact,
    ContactNotFoundError,
    EngageClient,
    HTTPStatusError,
    Identifier,
    SendResult,
)

EMAIL = "j.mcexample@example.com"
NEW = "new.contact@example.com"
PDF = b"%PDF-1.4\n% engage_soap test attachment\n"
TXT = "Notes for Tom \u2013 caf\u00e9\n".encode()
BIN = bytes(range(0, 256, 17))
SENDER_WSDL = FIXTURES / "wsdl" / "ecmapi-sender-profile.wsdl"


def test_plain_send_always_carries_additional_content(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "messageSendSingle/plain")
    assert client.message_send_single(23541, 1001) is None
    assert_sent(httpserver, "messageSendSingle/plain")
    sent = etree.fromstring(httpserver.log[0][0].get_data())
    content = sent.find(".//additionalContent")
    assert content is not None and len(content) == 0


def test_send_with_parameters_keeps_their_order(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "messageSendSingle/with_parameters")
    client.message_send_single(23541, 1001, parameters={
        "ORDER_NO": "A-1001", "FIRSTNAME": "Tom", "EMPTY": "", "COUNT": 3})
    assert_sent(httpserver, "messageSendSingle/with_parameters")


def test_send_with_attachments_base64_and_guessed_content_types(
        httpserver: HTTPServer, client: EngageClient, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(TXT)
    attachments = [Attachment("invoice.pdf", PDF), Attachment.from_path(notes),
                   Attachment("payload.bin", BIN, content_type="application/x-engage-test")]
    assert [a.content_type for a in attachments] == [
        "application/pdf", "text/plain", "application/x-engage-test"]
    assert attachments[1].name == "notes.txt" and attachments[1].content == TXT
    serve(httpserver, "messageSendSingle/with_attachments")
    client.message_send_single(23541, 1001, parameters={"FIRSTNAME": "Tom"},
                               attachments=attachments)
    assert_sent(httpserver, "messageSendSingle/with_attachments")
    sent = etree.fromstring(httpserver.log[0][0].get_data())
    assert [base64.b64decode(c.text) for c in sent.iter("content")] == [PDF, TXT, BIN]


def test_send_prepared_message_to_an_existing_contact(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/email_found", "messageSendSingle/plain")
    result = client.send_prepared_message(23541, email=EMAIL)
    assert result == SendResult(message_id=23541, contact=Contact(1001, email=EMAIL),
                                created=False)
    assert_sent(httpserver, "contactGet/email_found", "messageSendSingle/plain")


def test_send_prepared_message_not_found_sends_nothing(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/not_found")
    with pytest.raises(ContactNotFoundError) as info:
        client.send_prepared_message(23541, identifier=Identifier.email(NEW))
    assert info.value.property_value == NEW
    assert len(httpserver.log) == 1  # the lookup only: no contactCreate, no send
    assert_sent(httpserver, "contactGet/not_found")


def test_send_prepared_message_creates_a_missing_contact(
        httpserver: HTTPServer, client: EngageClient) -> None:
    keys = ("contactGet/not_found", "contactCreate/created",
            "messageSendSingle/to_created_contact")
    serve(httpserver, *keys)
    result = client.send_prepared_message(23541, email=NEW, create_if_missing=True)
    assert result == SendResult(message_id=23541, contact=Contact(2001, email=NEW),
                                created=True)
    assert_sent(httpserver, *keys)


@pytest.mark.parametrize("call", [
    lambda c: c.message_send_single(23541, 1001, sender_profile="tls-profile-1"),
    lambda c: c.send_prepared_message(23541, email=EMAIL, sender_profile="tls-profile-1"),
], ids=["message_send_single", "send_prepared_message"])
def test_sender_profile_with_the_bundled_wsdl_is_refused_before_any_request(
        httpserver: HTTPServer, client: EngageClient,
        call: Callable[[EngageClient], object]) -> None:
    with pytest.raises(ConfigurationError, match="sender"):
        call(client)
    assert httpserver.log == []


def test_sender_profile_is_sent_when_the_wsdl_declares_it(
        httpserver: HTTPServer, make_client: Callable[..., EngageClient]) -> None:
    client = make_client(wsdl=SENDER_WSDL)
    serve(httpserver, "messageSendSingle/sender_profile")
    client.message_send_single(23541, 1001, sender_profile="tls-profile-1")
    assert_sent(httpserver, "messageSendSingle/sender_profile")


def test_send_prepared_message_when_another_client_created_the_contact_meanwhile(
        httpserver: HTTPServer, client: EngageClient) -> None:
    keys = ("contactGet/not_found_then_created_elsewhere", "contactCreate/already_exists",
            "contactGet/email_found", "messageSendSingle/plain")
    serve(httpserver, *keys)
    result = client.send_prepared_message(23541, email=EMAIL, create_if_missing=True)
    assert result == SendResult(message_id=23541, contact=Contact(1001, email=EMAIL),
                                created=False)
    assert_sent(httpserver, *keys)


def test_send_prepared_message_creates_nothing_when_the_lookup_fails_otherwise(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/html_502")
    with pytest.raises(HTTPStatusError):
        client.send_prepared_message(23541, email=EMAIL, create_if_missing=True)
    assert_sent(httpserver, "contactGet/html_502")  # no contactCreate, no send
