"""contactUpdate, contactDelete, e-mail form and attribute definitions, over HTTP."""

from __future__ import annotations

import pytest

from engage_soap.envelope import ECM_NS as ECM
from engage_soap.sandbox import DEFAULT_ATTRIBUTES, Sandbox, SandboxState


def _contact(*children: str) -> str:
    return "<contact>" + "".join(children) + "</contact>"


def _update(id_type: str, *children: str) -> str:
    return (f"<ecm:contactUpdate><identifierType>{id_type}</identifierType>"
            f"{_contact(*children)}</ecm:contactUpdate>")


def _delete(id_type: str, value: str) -> str:
    return (f"<ecm:contactDelete><identifier><type>{id_type}</type><value>{value}</value>"
            "</identifier></ecm:contactDelete>")


def _fields(contact) -> dict[str, str]:
    return {str(c.tag): c.text or "" for c in contact if c.tag != "attributes"}


def _attributes(contact) -> dict[str, str]:
    return {a.findtext("name"): a.findtext("value") for a in contact.iterfind("attributes")}


# -- contactUpdate ------------------------------------------------------------------------

def test_contact_update_is_a_full_replace(soap):
    reply = soap.call(_update(
        "EMAIL", "<emailAddress>mo.bile@example.com</emailAddress>",
        "<identifier>CRM-7</identifier>",
        soap.attributes({"CITY": "Hamburg"})))
    assert reply.payload.tag == f"{{{ECM}}}contactUpdateResponse"
    contact = reply.payload.find("contact")
    # mobileNumber was left out: removed; FIRSTNAME/LASTNAME replaced by CITY only.
    assert _fields(contact) == {"contactId": "33458", "emailAddress": "mo.bile@example.com",
                                "identifier": "CRM-7"}
    assert _attributes(contact) == {"CITY": "Hamburg"}
    stored = soap.sandbox.state.contacts[33458]
    assert stored.mobile_number is None and stored.identifier == "CRM-7"
    assert stored.attributes == {"CITY": "Hamburg"}
    assert soap.call(soap.contact_get("MOBILE", "+4915112345678")).fields[
        "errorCode"] == "NO_SUCH_OBJECT"
    again = soap.call(soap.contact_get("EXTERNAL", "CRM-7")).payload.find("contact")
    assert again.findtext("contactId") == "33458"


@pytest.mark.parametrize(("id_type", "lookup", "contact_id"), [
    ("ID", "<contactId>33459</contactId>", 33459),
    ("APP_ALIAS", "<applicationAlias>app-7f3c9a21</applicationAlias>", 33459),
    ("MOBILE", "<mobileNumber>+4915112345678</mobileNumber>", 33458),
    ("EXTERNAL", "<identifier>CRM-000042</identifier>", 33460),
])
def test_contact_update_by_each_identifier_type(soap, id_type, lookup, contact_id):
    # contactId comes first in the schema's order, emailAddress right after it.
    email = "<emailAddress>changed@example.com</emailAddress>"
    children = (lookup, email) if id_type == "ID" else (email, lookup)
    contact = soap.call(_update(id_type, *children)).payload.find("contact")
    assert contact.findtext("contactId") == str(contact_id)
    stored = soap.sandbox.state.contacts[contact_id]
    assert stored.email_address == "changed@example.com"
    assert stored.attributes == {}  # no attributes given: all removed


def test_contact_update_by_email_is_case_insensitive(soap):
    reply = soap.call(_update("EMAIL", "<emailAddress>J.McExample@EXAMPLE.com</emailAddress>"))
    assert reply.payload.find("contact").findtext("contactId") == "33457"
    assert soap.sandbox.state.contacts[33457].email_address == "J.McExample@EXAMPLE.com"


def test_contact_update_can_change_the_email(soap):
    soap.call(_update("ID", "<contactId>33457</contactId>",
                      "<emailAddress>new.address@example.com</emailAddress>",
                      soap.attributes({"FIRSTNAME": "J."})))
    found = soap.call(soap.contact_get("EMAIL", "new.address@example.com")).payload
    assert found.find("contact").findtext("contactId") == "33457"
    gone = soap.call(soap.contact_get("EMAIL", "j.mcexample@example.com"))
    assert gone.fields["errorCode"] == "NO_SUCH_OBJECT"


def test_contact_update_unknown_contact(soap):
    reply = soap.call(_update("EMAIL", "<emailAddress>nobody@example.com</emailAddress>"))
    assert reply.detail_name == "NoSuchObjectException"
    assert reply.fields["objectType"] == "Contact"
    assert reply.fields["propertyName"] == "emailAddress"
    assert reply.fields["propertyValue"] == "nobody@example.com"
    assert reply.faultstring == "Contact with emailAddress=nobody@example.com does not exist."


def test_contact_update_needs_the_identifier_of_its_type(soap):
    reply = soap.call(_update("MOBILE", "<emailAddress>j.mcexample@example.com</emailAddress>"))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "MISSING_PARAMETER"
    assert reply.fields["propertyName"] == "mobileNumber"


def test_contact_update_cannot_change_the_id(soap):
    reply = soap.call(_update("EMAIL", "<contactId>33458</contactId>",
                              "<emailAddress>j.mcexample@example.com</emailAddress>"))
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert reply.fields["propertyName"] == "contactId"
    assert soap.sandbox.state.contacts[33457].attributes["FIRSTNAME"] == "J."


def test_contact_update_clash_is_invalid_parameter_not_already_exists(soap):
    # contactUpdate declares no ObjectAlreadyExistsException.
    reply = soap.call(_update("ID", "<contactId>33457</contactId>",
                              "<emailAddress>mo.bile@example.com</emailAddress>"))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert reply.fields["propertyName"] == "emailAddress"
    assert reply.fields["value"] == "mo.bile@example.com"
    assert soap.sandbox.state.contacts[33457].email_address == "j.mcexample@example.com"


def test_contact_update_must_leave_an_identity(soap):
    reply = soap.call(_update("ID", "<contactId>33459</contactId>",
                              soap.attributes({"CITY": "Bonn"})))
    assert reply.fields["errorCode"] == "MISSING_PARAMETER"
    assert soap.sandbox.state.contacts[33459].application_alias == "app-7f3c9a21"


# -- contactDelete ------------------------------------------------------------------------

@pytest.mark.parametrize(("id_type", "value", "contact_id"), [
    ("EMAIL", "j.mcexample@example.com", 33457), ("MOBILE", "+4915112345678", 33458),
    ("APP_ALIAS", "app-7f3c9a21", 33459), ("EXTERNAL", "CRM-000042", 33460),
    ("ID", "33457", 33457),
])
def test_contact_delete(soap, id_type, value, contact_id):
    reply = soap.call(_delete(id_type, value))
    assert reply.payload.tag == f"{{{ECM}}}contactDeleteResponse"
    assert len(reply.payload) == 0
    assert contact_id not in soap.sandbox.state.contacts
    assert soap.call(soap.contact_get("ID", str(contact_id))).fields[
        "errorCode"] == "NO_SUCH_OBJECT"
    again = soap.call(_delete(id_type, value))
    assert again.detail_name == "NoSuchObjectException"
    assert again.fields["objectType"] == "Contact"
    assert again.fields["propertyValue"] == value


def test_contact_delete_ends_its_memberships(soap):
    soap.call(soap.send_single(23541, 33457))
    assert soap.sandbox.state.group_members(23541) == [33457]
    soap.call(_delete("ID", "33457"))
    assert soap.sandbox.state.group_members(23541) == []
    assert len(soap.sandbox.state.outbox) == 1  # history stays


def test_contact_delete_non_numeric_id(soap):
    reply = soap.call(_delete("ID", "abc"))
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert len(soap.sandbox.state.contacts) == 4


# -- the e-mail form ----------------------------------------------------------------------

BAD_EMAILS = ["a@b@c", "no-at-sign", "x@", "@example.com", "a b@example.com", "a@example",
              "a@.example.com", "a@example..com"]


@pytest.mark.parametrize("email", BAD_EMAILS)
def test_contact_get_rejects_a_malformed_email(soap, email):
    reply = soap.call(soap.contact_get("EMAIL", email))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert reply.fields["parameterName"] == "identifier"
    assert reply.fields["value"] == email
    assert repr(email) in reply.faultstring


@pytest.mark.parametrize("email", ["a@b@c", "no-at-sign", "x@"])
def test_contact_create_and_update_reject_a_malformed_email(soap, email):
    created = soap.call(f"<ecm:contactCreate>{_contact(f'<emailAddress>{email}</emailAddress>')}"
                        "</ecm:contactCreate>")
    assert created.fields["errorCode"] == "INVALID_PARAMETER"
    assert created.fields["propertyName"] == "emailAddress"
    assert created.fields["value"] == email
    assert "emailAddress" in created.faultstring
    updated = soap.call(_update("ID", "<contactId>33457</contactId>",
                                f"<emailAddress>{email}</emailAddress>"))
    assert updated.fields["errorCode"] == "INVALID_PARAMETER"
    assert updated.fields["propertyName"] == "emailAddress"
    by_email = soap.call(_update("EMAIL", f"<emailAddress>{email}</emailAddress>"))
    assert by_email.fields["errorCode"] == "INVALID_PARAMETER"
    deleted = soap.call(_delete("EMAIL", email))
    assert deleted.fields["errorCode"] == "INVALID_PARAMETER"
    assert len(soap.sandbox.state.contacts) == 4
    assert soap.sandbox.state.contacts[33457].email_address == "j.mcexample@example.com"


@pytest.mark.parametrize("email", ["first.last+tag@sub.example.co.uk", "o'neil@example.org",
                                   "UPPER@EXAMPLE.COM"])
def test_well_formed_emails_are_accepted(soap, email):
    created = soap.call(f"<ecm:contactCreate>{_contact(f'<emailAddress>{email}</emailAddress>')}"
                        "</ecm:contactCreate>")
    assert created.payload.find("contact").findtext("emailAddress") == email


# -- attribute definitions ----------------------------------------------------------------

def test_default_attribute_definitions():
    assert {"FIRSTNAME", "LASTNAME", "CITY", "SALUTATION", "ZIP", "COUNTRY", "BIRTHDAY",
            "GENDER", "LANGUAGE"} <= set(DEFAULT_ATTRIBUTES)
    state = SandboxState()
    assert state.attribute_definitions == set(DEFAULT_ATTRIBUTES)
    assert state.unknown_attributes(["CITY", "SHOE", "firstname", "SHOE"]) == ["SHOE",
                                                                               "firstname"]


@pytest.mark.parametrize("name", ["SHOE_SIZE", "firstname", "FIRST NAME", ""])
def test_unknown_attribute_in_contact_create(soap, name):
    body = (f"<ecm:contactCreate>{_contact('<emailAddress>n@example.com</emailAddress>')}"
            "</ecm:contactCreate>").replace(
        "</contact>", soap.attributes({"FIRSTNAME": "N", name: "x"}) + "</contact>")
    reply = soap.call(body)
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_ATTRIBUTE"
    assert reply.fields["value"] == name
    assert repr(name) in reply.faultstring
    assert soap.sandbox.state.find_contact("EMAIL", "n@example.com") is None


def test_unknown_attribute_in_contact_update_changes_nothing(soap):
    reply = soap.call(_update("ID", "<contactId>33457</contactId>",
                              "<emailAddress>j.mcexample@example.com</emailAddress>",
                              soap.attributes({"CITY": "Bonn", "NOTE": "x"})))
    assert reply.fields["errorCode"] == "INVALID_ATTRIBUTE"
    assert reply.fields["value"] == "NOTE"
    assert soap.sandbox.state.contacts[33457].attributes["CITY"] == "Munich"


def test_attribute_definitions_from_the_constructor(make_soap):
    with Sandbox(rate_limit=None, attributes=["SHOE_SIZE", "NOTE"]) as extended:
        soap = make_soap(extended)
        body = (f"<ecm:contactCreate>{_contact('<emailAddress>n@example.com</emailAddress>')}"
                "</ecm:contactCreate>").replace(
            "</contact>", soap.attributes({"SHOE_SIZE": "44", "NOTE": "a=b"}) + "</contact>")
        contact = soap.call(body).payload.find("contact")
        assert _attributes(contact) == {"SHOE_SIZE": "44", "NOTE": "a=b"}
        extended.state.define_attributes("LATER")
        extended.state.reset()  # the constructor's names survive a reset, LATER does not
        assert {"SHOE_SIZE", "NOTE"} <= extended.state.attribute_definitions
        assert "LATER" not in extended.state.attribute_definitions


def test_attribute_definitions_added_at_run_time(soap):
    body = _update("ID", "<contactId>33457</contactId>",
                   "<emailAddress>j.mcexample@example.com</emailAddress>",
                   soap.attributes({"LOYALTY_TIER": "gold"}))
    assert soap.call(body).fields["errorCode"] == "INVALID_ATTRIBUTE"
    soap.sandbox.state.define_attributes("LOYALTY_TIER")
    contact = soap.call(body).payload.find("contact")
    assert _attributes(contact) == {"LOYALTY_TIER": "gold"}


@pytest.mark.parametrize("bad", [[""], ["  "], [None], "FIRSTNAME"])
def test_attribute_definitions_must_be_names(bad):
    with pytest.raises((ValueError, TypeError)):
        Sandbox(attributes=bad)
    with pytest.raises((ValueError, TypeError)):
        SandboxState(attributes=bad)


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_define_attributes_rejects_a_bad_name(bad):
    state = SandboxState()
    with pytest.raises(ValueError):
        state.define_attributes("OK", bad)
    assert "OK" not in state.attribute_definitions  # all or nothing


def test_message_parameters_are_free_form(soap):
    content = soap.attributes({"ANY_NAME": "1", "lower": "2", "": "3"}, "parameters")
    reply = soap.call(soap.send_single(23541, 33457, content))
    assert reply.payload is not None
    assert soap.sandbox.state.outbox[0].parameters == [("ANY_NAME", "1"), ("lower", "2"),
                                                       ("", "3")]
