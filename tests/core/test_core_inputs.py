"""Bad input is rejected with InvalidInputError (a ValueError) before any request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from engage_soap import Attachment, EngageClient, Identifier, IdentifierType, InvalidInputError

EMAIL = "j.mcexample@example.com"
PDF = Attachment("invoice.pdf", b"%PDF-1.4\n")
Call = Callable[[EngageClient], Any]

BAD_CALLS: dict[str, Call] = {
    # blank identifier values
    "blank email": lambda c: c.contact_get(email=""),
    "whitespace email": lambda c: c.contact_get(email="   "),
    "blank mobile": lambda c: c.contact_get(mobile_number="\t"),
    "blank external": lambda c: c.contact_get(external_id=""),
    # ids that are not positive ints up to 2**63-1
    "message id 0": lambda c: c.message_send_single(0, 1001),
    "message id -1": lambda c: c.message_send_single(-1, 1001),
    "message id True": lambda c: c.message_send_single(True, 1001),
    "message id '12'": lambda c: c.message_send_single("12", 1001),
    "message id 2**63": lambda c: c.message_send_single(2**63, 1001),
    "message id None": lambda c: c.message_send_single(None, 1001),
    "message id 1.0": lambda c: c.message_send_single(1.0, 1001),
    "recipient id 0": lambda c: c.message_send_single(23541, 0),
    "recipient id -1": lambda c: c.message_send_single(23541, -1),
    "recipient id True": lambda c: c.message_send_single(23541, True),
    "recipient id '12'": lambda c: c.message_send_single(23541, "12"),
    "recipient id 2**63": lambda c: c.message_send_single(23541, 2**63),
    "contact id 0": lambda c: c.contact_get(contact_id=0),
    "contact id -1": lambda c: c.contact_get(contact_id=-1),
    "contact id True": lambda c: c.contact_get(contact_id=True),
    "contact id '12'": lambda c: c.contact_get(contact_id="12"),
    "contact id 2**63": lambda c: c.contact_get(contact_id=2**63),
    "Identifier.id('12')": lambda c: c.contact_get(Identifier.id("12")),
    "prepared message id 0": lambda c: c.send_prepared_message(0, email=EMAIL),
    "prepared message id '12'": lambda c: c.send_prepared_message("12", email=EMAIL),
    # characters XML cannot carry
    "NUL in email": lambda c: c.contact_get(email="a\x00b@example.com"),
    "U+001F in mobile": lambda c: c.contact_get(mobile_number="+1555\x1f0100"),
    "lone surrogate in alias": lambda c: c.contact_get(app_alias="alias-\ud800"),
    "NUL in parameter value": lambda c: c.message_send_single(
        23541, 1001, parameters={"FIRSTNAME": "T\x00m"}),
    "U+001F in parameter name": lambda c: c.message_send_single(
        23541, 1001, parameters={"FIRST\x1fNAME": "Tom"}),
    "lone surrogate in create": lambda c: c.contact_create(email="\udfff@example.com"),
    "NUL in attribute": lambda c: c.contact_create(email=EMAIL, attributes={"A": "\x00"}),
    "blank sender profile": lambda c: c.message_send_single(
        23541, 1001, sender_profile=" "),
    # wrong types
    "parameters a list": lambda c: c.message_send_single(23541, 1001, parameters=["A"]),
    "parameters a str": lambda c: c.message_send_single(23541, 1001, parameters="A=1"),
    "parameter value None": lambda c: c.message_send_single(
        23541, 1001, parameters={"A": None}),
    "parameter value bytes": lambda c: c.message_send_single(
        23541, 1001, parameters={"A": b"x"}),
    "parameter value bool": lambda c: c.message_send_single(
        23541, 1001, parameters={"A": True}),
    "blank parameter name": lambda c: c.message_send_single(23541, 1001, parameters={"": "x"}),
    "attachment a str": lambda c: c.message_send_single(23541, 1001, attachments=["a.pdf"]),
    "attachment bytes": lambda c: c.message_send_single(23541, 1001, attachments=[b"%PDF"]),
    "attachments None": lambda c: c.message_send_single(23541, 1001, attachments=None),
    "attachment not in a list": lambda c: c.message_send_single(23541, 1001, attachments=PDF),
    "attachment None item": lambda c: c.message_send_single(23541, 1001, attachments=[None]),
    "identifier a str": lambda c: c.contact_get("j.mcexample@example.com"),
    "email an int": lambda c: c.contact_get(email=42),
    "attributes a list": lambda c: c.contact_create(email=EMAIL, attributes=[("A", "b")]),
    "prepared identifier a str": lambda c: c.send_prepared_message(23541, identifier="x"),
    # zero or two identifiers
    "contact_get()": lambda c: c.contact_get(),
    "contact_get(None)": lambda c: c.contact_get(None),
    "email and mobile": lambda c: c.contact_get(email=EMAIL, mobile_number="+15555550100"),
    "identifier and email": lambda c: c.contact_get(Identifier.email(EMAIL), email=EMAIL),
    "contact_create()": lambda c: c.contact_create(),
    "prepared without identifier": lambda c: c.send_prepared_message(23541),
    "prepared with two": lambda c: c.send_prepared_message(
        23541, email=EMAIL, identifier=Identifier.email(EMAIL)),
    "create by id": lambda c: c.send_prepared_message(
        23541, identifier=Identifier.id(1005), create_if_missing=True),
}


@pytest.mark.parametrize("call", list(BAD_CALLS.values()), ids=list(BAD_CALLS))
def test_bad_input_is_rejected_before_any_request(
        httpserver: HTTPServer, client: EngageClient, call: Call) -> None:
    with pytest.raises(InvalidInputError) as info:
        call(client)
    assert isinstance(info.value, ValueError)
    assert info.value.request_sent is False
    assert httpserver.log == []
    assert client.last_exchange is None


BAD_VALUES: dict[str, Callable[[], Any]] = {
    "blank Identifier": lambda: Identifier(IdentifierType.EMAIL, ""),
    "blank Identifier.email": lambda: Identifier.email(" "),
    "unknown identifier type": lambda: Identifier("FAX", "+15555550100"),  # type: ignore[arg-type]
    "lowercase identifier type": lambda: Identifier("email", EMAIL),  # type: ignore[arg-type]
    "ID not a number": lambda: Identifier(IdentifierType.ID, "abc"),
    "ID zero": lambda: Identifier(IdentifierType.ID, "0"),
    "ID superscript digit": lambda: Identifier(IdentifierType.ID, "\u00b2"),
    "ID non-ASCII digits": lambda: Identifier(IdentifierType.ID, "\u0661\u0662"),
    "ID with spaces": lambda: Identifier(IdentifierType.ID, " 12"),
    "Identifier value None": lambda: Identifier(IdentifierType.EMAIL, None),  # type: ignore[arg-type]
    "attachment content a str": lambda: Attachment("a.txt", "text"),  # type: ignore[arg-type]
    "attachment name blank": lambda: Attachment("", b"x"),
    "attachment name U+001F": lambda: Attachment("a\x1f.pdf", b"x"),
    "attachment content type NUL": lambda: Attachment("a.pdf", b"x", content_type="a\x00"),
    "attachment missing file": lambda: Attachment.from_path("/nonexistent/engage/a.pdf"),
}


@pytest.mark.parametrize("make", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_bad_values_are_rejected_at_construction(make: Callable[[], Any]) -> None:
    with pytest.raises(InvalidInputError) as info:
        make()
    assert isinstance(info.value, ValueError)
