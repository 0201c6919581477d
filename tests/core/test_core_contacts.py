"""contactGet and contactCreate against recorded replies."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from recorded import assert_sent, load, serve

from engage_soap import (
    Contact,
    ContactNotFoundError,
    EngageClient,
    Identifier,
    IdentifierType,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    ProtocolError,
)

EMAIL = "j.mcexample@example.com"
NEW = "new.contact@example.com"
Call = Callable[[EngageClient], Contact]

FOUND: list[tuple[str, Call, Contact]] = []
for _case, _kind, _factory, _kw, _value, _expected in [
    ("email_found", IdentifierType.EMAIL, Identifier.email, "email", EMAIL,
     Contact(1001, email=EMAIL)),
    ("mobile_found", IdentifierType.MOBILE, Identifier.mobile, "mobile_number", "+15555550100",
     Contact(1002, email="mobile.user@example.com", mobile_number="+15555550100")),
    ("app_alias_found", IdentifierType.APP_ALIAS, Identifier.app_alias, "app_alias",
     "app-alias-7f3e", Contact(1003, app_alias="app-alias-7f3e")),
    ("external_found", IdentifierType.EXTERNAL, Identifier.external, "external_id", "crm-000042",
     Contact(1004, email="external.user@example.com", external_id="crm-000042")),
    ("id_found", IdentifierType.ID, Identifier.id, "contact_id", 1005,
     Contact(1005, email="id.user@example.com")),
]:
    FOUND += [
        pytest.param(_case, lambda c, f=_factory, v=_value: c.contact_get(f(v)), _expected,
                     id=f"{_case}-factory"),
        pytest.param(_case, lambda c, k=_kind, v=_value: c.contact_get(
            Identifier(k, v if k is not IdentifierType.ID else str(v))), _expected,
            id=f"{_case}-constructor"),
        pytest.param(_case, lambda c, k=_kw, v=_value: c.contact_get(**{k: v}), _expected,
                     id=f"{_case}-keyword"),
    ]


@pytest.mark.parametrize(("case", "call", "expected"), FOUND)
def test_contact_get_found_by_every_identifier_type(
        httpserver: HTTPServer, client: EngageClient, case: str, call: Call,
        expected: Contact) -> None:
    serve(httpserver, f"contactGet/{case}")
    contact = call(client)
    assert contact == expected
    assert type(contact.id) is int
    assert dict(contact.attributes) == {}
    assert_sent(httpserver, f"contactGet/{case}")


def test_contact_get_maps_attributes(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/with_attributes")
    contact = client.contact_get(email=EMAIL)
    assert contact.id == 1001
    assert contact.mobile_number == "+15555550101"
    # in document order; an attribute without <value> reads as ""; entities decoded
    assert list(contact.attributes.items()) == [
        ("FIRSTNAME", "Jane"), ("LASTNAME", "Example"), ("CITY", ""), ("NOTE", "a & b <c>")]
    with pytest.raises(TypeError):
        contact.attributes["FIRSTNAME"] = "x"  # type: ignore[index]
    assert_sent(httpserver, "contactGet/with_attributes")


def test_contact_get_ignores_unknown_trailing_elements(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/unknown_trailing_elements")
    contact = client.contact_get(Identifier.email(EMAIL))
    # <someFutureField> holds a <contactId>9999</contactId>: it must not leak in
    assert contact == Contact(1001, email=EMAIL, attributes={"FIRSTNAME": "Jane"})
    assert_sent(httpserver, "contactGet/unknown_trailing_elements")


def test_contact_get_not_found_raises_contact_not_found(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/not_found")
    with pytest.raises(ContactNotFoundError) as info:
        client.contact_get(email=NEW)
    exc = info.value
    message = f"Contact with identifier={NEW} does not exist."
    assert isinstance(exc, NoSuchObjectError)
    assert exc.object_type == "Contact"
    assert exc.property_name == "identifier"
    assert exc.property_value == NEW
    assert exc.error_code == "NO_SUCH_OBJECT"
    assert exc.error_actor == "CLIENT"
    assert exc.http_status == 500
    assert exc.operation == "contactGet"
    assert exc.fault_code == "S:Server"
    assert exc.fault_string == message
    assert message in str(exc)
    assert exc.detail == {"errorActor": "CLIENT", "errorCode": "NO_SUCH_OBJECT",
                          "message": message, "objectType": "Contact",
                          "propertyName": "identifier", "propertyValue": NEW}
    assert exc.detail_xml is not None
    detail = etree.fromstring(exc.detail_xml)
    assert detail.tag == "detail"
    assert detail[0].tag == "{http://ecircle.com/developer/ecmapi}NoSuchObjectException"
    assert exc.retryable is False
    assert exc.request_sent is True
    assert_sent(httpserver, "contactGet/not_found")


def test_contact_get_wrong_typed_value_is_a_protocol_error(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactGet/wrong_typed_contact_id")
    with pytest.raises(ProtocolError, match="contactId") as info:
        client.contact_get(email=EMAIL)
    assert info.value.request_sent is True
    assert_sent(httpserver, "contactGet/wrong_typed_contact_id")


def test_contact_create(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactCreate/created")
    assert client.contact_create(email=NEW) == Contact(2001, email=NEW)
    assert_sent(httpserver, "contactCreate/created")


def test_contact_create_with_all_fields_and_attributes(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactCreate/with_attributes")
    contact = client.contact_create(email=NEW, mobile_number="+15555550102",
                                    external_id="crm-000043",
                                    attributes={"FIRSTNAME": "Nora", "CITY": ""})
    assert contact == Contact(2002, email=NEW, mobile_number="+15555550102",
                              external_id="crm-000043",
                              attributes={"FIRSTNAME": "Nora", "CITY": ""})
    assert_sent(httpserver, "contactCreate/with_attributes")


def test_contact_create_existing_raises_already_exists(
        httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "contactCreate/already_exists")
    with pytest.raises(ObjectAlreadyExistsError) as info:
        client.contact_create(email=EMAIL)
    exc = info.value
    assert exc.error_code == "OBJECT_ALREADY_EXISTS"
    assert exc.detail["propertyName"] == "emailAddress"
    assert exc.detail["propertyValue"] == EMAIL
    assert exc.operation == "contactCreate"
    assert exc.http_status == 500
    assert exc.detail_xml is not None and b"ObjectAlreadyExistsException" in exc.detail_xml
    assert_sent(httpserver, "contactCreate/already_exists")
    assert load("contactCreate/already_exists").status == 500
