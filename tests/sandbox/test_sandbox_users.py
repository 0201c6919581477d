"""The v2 user*, membership* and group* operations on the contact store, over HTTP."""

from __future__ import annotations

import pytest

from engage_soap.envelope import ECM_NS as ECM

USER_ORDER = ["id", "email", "mobileNumber", "identifier"]


def _user(reply) -> dict[str, str]:
    user = reply.payload.find("user")
    assert [c.tag for c in user] == USER_ORDER  # all four, always (required)
    return {str(c.tag): c.text or "" for c in user}


def _attributes(element) -> dict[str, str]:
    return {a.findtext("name"): a.findtext("value") for a in element.iterfind("attributes")}


def _groups(reply) -> list[int]:
    return [int(m.findtext("groupId")) for m in reply.payload.iterfind("memberships")]


# -- user* --------------------------------------------------------------------------------

def test_user_create(soap):
    reply = soap.op("userCreate", ("email", "new.user@example.com"),
                    ("mobileNumber", "+4917012345"),
                    soap.attributes({"FIRSTNAME": "New", "CITY": "Köln"}))
    assert reply.payload.tag == f"{{{ECM}}}userCreateResponse"
    assert _user(reply) == {"id": "33461", "email": "new.user@example.com",
                            "mobileNumber": "+4917012345", "identifier": ""}
    # The same person as a contact.
    contact = soap.call(soap.contact_get("EMAIL", "new.user@example.com")).payload
    assert contact.find("contact").findtext("mobileNumber") == "+4917012345"
    assert _attributes(contact.find("contact")) == {"FIRSTNAME": "New", "CITY": "Köln"}


def test_user_create_with_a_mobile_number_only(soap):
    reply = soap.op("userCreate", ("email", ""), ("mobileNumber", "+4917099999"))
    assert _user(reply) == {"id": "33461", "email": "", "mobileNumber": "+4917099999",
                            "identifier": ""}
    assert soap.sandbox.state.contacts[33461].email_address is None


@pytest.mark.parametrize(("email", "mobile", "prop", "value"), [
    ("J.McExample@example.com", "", "email", "J.McExample@example.com"),
    ("", "+4915112345678", "mobileNumber", "+4915112345678"),
])
def test_user_create_existing(soap, email, mobile, prop, value):
    reply = soap.op("userCreate", ("email", email), ("mobileNumber", mobile))
    assert reply.detail_name == "ObjectAlreadyExistsException"
    assert reply.fields["objectType"] == "User"
    assert reply.fields["propertyName"] == prop
    assert reply.fields["propertyValue"] == value
    assert len(soap.sandbox.state.contacts) == 4


def test_user_create_needs_an_email_or_mobile_number(soap):
    reply = soap.op("userCreate", ("email", ""), ("mobileNumber", ""))
    assert reply.fields["errorCode"] == "MISSING_PARAMETER"
    assert reply.fields["parameterName"] == "email"


@pytest.mark.parametrize("email", ["a@b@c", "no-at-sign", "x@"])
def test_user_email_must_be_well_formed(soap, email):
    for reply in (soap.op("userCreate", ("email", email), ("mobileNumber", "")),
                  soap.op("userGetByEmail", ("email", email)),
                  soap.op("userGetProfileByEmail", ("email", email)),
                  soap.op("userUpdateProfileByEmail", ("email", email)),
                  soap.op("membershipSubscribeByEmail", ("email", email), ("groupId", 4711),
                          ("subscriptionMode", "OPT_IN"))):
        assert reply.detail_name == "InvalidParameterException"
        assert reply.fields["errorCode"] == "INVALID_PARAMETER"
        assert reply.fields["parameterName"] == "email"
        assert reply.fields["value"] == email
    assert len(soap.sandbox.state.contacts) == 4


def test_user_create_unknown_attribute(soap):
    reply = soap.op("userCreate", ("email", "n@example.com"), ("mobileNumber", ""),
                    soap.attributes({"SHOE_SIZE": "44"}))
    assert reply.fields["errorCode"] == "INVALID_ATTRIBUTE"
    assert reply.fields["value"] == "SHOE_SIZE"
    assert soap.sandbox.state.find_contact("EMAIL", "n@example.com") is None


@pytest.mark.parametrize(("user_id", "expected"), [
    (33457, {"id": "33457", "email": "j.mcexample@example.com", "mobileNumber": "",
             "identifier": ""}),
    (33458, {"id": "33458", "email": "mo.bile@example.com", "mobileNumber": "+4915112345678",
             "identifier": ""}),
    (33459, {"id": "33459", "email": "", "mobileNumber": "", "identifier": ""}),
    (33460, {"id": "33460", "email": "ext.ernal@example.com", "mobileNumber": "",
             "identifier": "CRM-000042"}),
])
def test_user_get(soap, user_id, expected):
    assert _user(soap.op("userGet", ("userId", user_id))) == expected


def test_user_get_unknown(soap):
    reply = soap.op("userGet", ("userId", 999))
    assert reply.detail == [
        ("errorActor", "CLIENT"), ("errorCode", "NO_SUCH_OBJECT"),
        ("message", "User with id=999 does not exist."), ("objectType", "User"),
        ("propertyName", "userId"), ("propertyValue", "999")]


def test_user_get_by_email_and_identifier(soap):
    assert _user(soap.op("userGetByEmail", ("email", "MO.BILE@example.com")))["id"] == "33458"
    assert _user(soap.op("userGetByIdentifier", ("identifier", "CRM-000042")))["id"] == "33460"
    missing = soap.op("userGetByEmail", ("email", "nobody@example.com"))
    assert (missing.fields["objectType"], missing.fields["propertyName"]) == ("User", "email")
    missing = soap.op("userGetByIdentifier", ("identifier", "CRM-404"))
    assert missing.fields["propertyValue"] == "CRM-404"
    empty = soap.op("userGetByIdentifier", ("identifier", ""))
    assert empty.fields["errorCode"] == "MISSING_PARAMETER"
    empty = soap.op("userGetByEmail", ("email", ""))
    assert empty.fields["errorCode"] == "MISSING_PARAMETER"


def test_user_profile_get_update_replace(soap):
    profile = soap.op("userGetProfile", ("userId", 33457))
    assert _attributes(profile.payload) == {"FIRSTNAME": "J.", "LASTNAME": "McExample",
                                            "CITY": "Munich"}
    reply = soap.op("userUpdateProfile", ("userId", 33457),
                    soap.attributes({"CITY": "Berlin", "ZIP": "10115"}))
    assert reply.payload.tag == f"{{{ECM}}}userUpdateProfileResponse" and len(reply.payload) == 0
    assert soap.sandbox.state.contacts[33457].attributes == {
        "FIRSTNAME": "J.", "LASTNAME": "McExample", "CITY": "Berlin", "ZIP": "10115"}
    soap.op("userReplaceProfile", ("userId", 33457), soap.attributes({"LASTNAME": "Mc"}))
    assert soap.sandbox.state.contacts[33457].attributes == {"LASTNAME": "Mc"}
    # The contact view shows the same data.
    contact = soap.call(soap.contact_get("ID", "33457")).payload.find("contact")
    assert _attributes(contact) == {"LASTNAME": "Mc"}


def test_user_profile_by_email(soap):
    soap.op("userUpdateProfileByEmail", ("email", "mo.bile@example.com"),
            soap.attributes({"GENDER": "f"}))
    soap.op("userReplaceProfileByEmail", ("email", "ext.ernal@example.com"),
            soap.attributes({"LANGUAGE": "de"}))
    mo = soap.op("userGetProfileByEmail", ("email", "mo.bile@example.com"))
    assert _attributes(mo.payload) == {"FIRSTNAME": "Mo", "LASTNAME": "Bile", "GENDER": "f"}
    ext = soap.op("userGetProfileByEmail", ("email", "ext.ernal@example.com"))
    assert _attributes(ext.payload) == {"LANGUAGE": "de"}
    assert soap.op("userGetProfileByEmail", ("email", "x@example.com")).fields[
        "objectType"] == "User"


@pytest.mark.parametrize("operation", ["userUpdateProfile", "userReplaceProfile"])
def test_user_profile_unknown_attribute_changes_nothing(soap, operation):
    reply = soap.op(operation, ("userId", 33457),
                    soap.attributes({"CITY": "Bonn", "FAVOURITE_COLOUR": "green"}))
    assert reply.detail_name == "InvalidParameterException"
    assert reply.fields["errorCode"] == "INVALID_ATTRIBUTE"
    assert reply.fields["value"] == "FAVOURITE_COLOUR"
    assert "FAVOURITE_COLOUR" in reply.faultstring
    assert soap.sandbox.state.contacts[33457].attributes["CITY"] == "Munich"


@pytest.mark.parametrize("operation", ["userGetProfile", "userUpdateProfile",
                                       "userReplaceProfile"])
def test_user_profile_unknown_user(soap, operation):
    reply = soap.op(operation, ("userId", 1))
    assert reply.detail_name == "NoSuchObjectException"
    assert reply.fields["objectType"] == "User"


def test_user_delete(soap):
    soap.op("membershipSubscribe", ("userId", 33458), ("groupId", 4712),
            ("subscriptionMode", "OPT_IN"))
    reply = soap.op("userDelete", ("userId", 33458))
    assert reply.payload.tag == f"{{{ECM}}}userDeleteResponse" and len(reply.payload) == 0
    assert 33458 not in soap.sandbox.state.contacts
    assert soap.sandbox.state.groups[4712].members == []
    assert soap.op("userGet", ("userId", 33458)).fields["errorCode"] == "NO_SUCH_OBJECT"
    # userDelete declares no NoSuchObjectException: an unknown id is not a fault.
    assert soap.op("userDelete", ("userId", 33458)).payload is not None


# -- groups -------------------------------------------------------------------------------

def test_group_get(soap):
    group = soap.op("groupGet", ("groupId", 4711)).payload.find("group")
    assert [(c.tag, c.text or "") for c in group] == [
        ("id", "4711"), ("name", "Order confirmation recipients"), ("description", ""),
        ("email", "")]
    soap.sandbox.state.add_group(5000, "VIP", "Very important", "vip@example.com")
    group = soap.op("groupGet", ("groupId", 5000)).payload.find("group")
    assert group.findtext("description") == "Very important"
    assert group.findtext("email") == "vip@example.com"


def test_group_get_unknown(soap):
    reply = soap.op("groupGet", ("groupId", 1))
    assert reply.detail == [
        ("errorActor", "CLIENT"), ("errorCode", "NO_SUCH_OBJECT"),
        ("message", "Group with id=1 does not exist."), ("objectType", "Group"),
        ("propertyName", "groupId"), ("propertyValue", "1")]


def test_group_get_prepared_messages(soap):
    def ids(group_id: int) -> list[str]:
        reply = soap.op("groupGetPreparedMessages", ("groupId", group_id))
        return [m.text for m in reply.payload.iterfind("messageIds")]

    assert ids(4711) == ["23541"]
    soap.sandbox.state.add_message(23549, "Shipping notice", 4711)
    soap.sandbox.state.add_group(5000, "Empty")
    assert ids(4711) == ["23541", "23549"]
    assert ids(5000) == []
    assert soap.op("groupGetPreparedMessages", ("groupId", 6)).fields["objectType"] == "Group"


# -- memberships --------------------------------------------------------------------------

def _subscribe(soap, user_id=33457, group_id=4711, mode="OPT_IN"):
    return soap.op("membershipSubscribe", ("userId", user_id), ("groupId", group_id),
                   ("subscriptionMode", mode))


def test_membership_subscribe_and_find_all(soap):
    reply = _subscribe(soap)
    assert reply.payload.tag == f"{{{ECM}}}membershipSubscribeResponse"
    _subscribe(soap, group_id=4713, mode="DOUBLE_OPT_IN")
    state = soap.sandbox.state
    assert state.groups[4711].memberships[33457].subscription_mode == "OPT_IN"
    assert state.groups[4713].memberships[33457].subscription_mode == "DOUBLE_OPT_IN"
    found = soap.op("membershipFindAll", ("userId", 33457))
    assert _groups(found) == [4711, 4713]
    first = found.payload.find("memberships")
    assert [c.tag for c in first] == ["userId", "groupId"]
    assert first.findtext("userId") == "33457"
    # Subscribing again keeps the membership as it is.
    _subscribe(soap, mode="CONFIRMED_OPT_IN")
    assert state.groups[4711].memberships[33457].subscription_mode == "OPT_IN"
    assert state.groups[4711].members == [33457]


def test_membership_by_email(soap):
    soap.op("membershipSubscribeByEmail", ("email", "MO.BILE@example.com"), ("groupId", 4712),
            ("subscriptionMode", "CONFIRMED_OPT_IN"))
    assert soap.sandbox.state.groups[4712].members == [33458]
    found = soap.op("membershipFindAllByEmail", ("email", "mo.bile@example.com"))
    assert _groups(found) == [4712]
    soap.op("membershipUnsubscribeByEmail", ("email", "mo.bile@example.com"), ("groupId", 4712))
    assert soap.sandbox.state.groups[4712].members == []
    assert _groups(soap.op("membershipFindAllByEmail", ("email", "mo.bile@example.com"))) == []


def test_membership_subscribe_unknown_user_or_group(soap):
    user = _subscribe(soap, user_id=1)
    assert (user.fields["objectType"], user.fields["propertyName"]) == ("User", "userId")
    group = _subscribe(soap, group_id=1)
    assert (group.fields["objectType"], group.fields["propertyValue"]) == ("Group", "1")
    by_email = soap.op("membershipSubscribeByEmail", ("email", "nobody@example.com"),
                       ("groupId", 4711), ("subscriptionMode", "OPT_IN"))
    assert by_email.fields["objectType"] == "User"
    assert all(not g.members for g in soap.sandbox.state.groups.values())


def test_membership_subscribe_bad_mode_is_rejected_by_the_schema(soap):
    reply = _subscribe(soap, mode="SPAM_ME")
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert reply.fields["parameterName"] == "subscriptionMode"
    assert reply.fields["value"] == "SPAM_ME"


def test_membership_unsubscribe(soap):
    _subscribe(soap)
    soap.op("membershipUnsubscribe", ("userId", 33457), ("groupId", 4711))
    assert soap.sandbox.state.groups[4711].members == []
    # A non-member: nothing to do, no fault.
    assert soap.op("membershipUnsubscribe", ("userId", 33457), ("groupId", 4711)).payload \
        is not None
    assert soap.op("membershipUnsubscribe", ("userId", 33457), ("groupId", 9)).fields[
        "objectType"] == "Group"


def test_membership_create_and_delete(soap):
    reply = soap.op("membershipCreate", ("userId", 33459), ("groupId", 4712))
    membership = reply.payload.find("membership")
    assert [(c.tag, c.text) for c in membership] == [("userId", "33459"), ("groupId", "4712")]
    assert soap.sandbox.state.groups[4712].memberships[33459].subscription_mode is None
    again = soap.op("membershipCreate", ("userId", 33459), ("groupId", 4712))
    assert again.detail_name == "ObjectAlreadyExistsException"
    assert again.fields["objectType"] == "Membership"
    deleted = soap.op("membershipDelete", ("userId", 33459), ("groupId", 4712))
    assert deleted.payload.tag == f"{{{ECM}}}membershipDeleteResponse"
    assert soap.sandbox.state.groups[4712].members == []
    missing = soap.op("membershipDelete", ("userId", 33459), ("groupId", 4712))
    assert missing.detail_name == "NoSuchObjectException"
    assert missing.fields["objectType"] == "Membership"


def test_membership_attributes(soap):
    _subscribe(soap)
    empty = soap.op("membershipGetAttributes", ("userId", 33457), ("groupId", 4711))
    assert _attributes(empty.payload) == {}
    # Membership attributes are free-form (not contact attribute definitions).
    soap.op("membershipUpdateAttributes", ("userId", 33457), ("groupId", 4711),
            soap.attributes({"source": "web", "campaign": "spring"}))
    soap.op("membershipUpdateAttributes", ("userId", 33457), ("groupId", 4711),
            soap.attributes({"source": "app"}))
    got = soap.op("membershipGetAttributes", ("userId", 33457), ("groupId", 4711))
    assert _attributes(got.payload) == {"source": "app", "campaign": "spring"}
    soap.op("membershipReplaceAttributes", ("userId", 33457), ("groupId", 4711),
            soap.attributes({"tier": "gold"}))
    by_email = soap.op("membershipGetAttributesByEmail", ("email", "j.mcexample@example.com"),
                       ("groupId", 4711))
    assert _attributes(by_email.payload) == {"tier": "gold"}
    found = soap.op("membershipFindAll", ("userId", 33457)).payload.find("memberships")
    assert _attributes(found) == {"tier": "gold"}
    assert soap.sandbox.state.contacts[33457].attributes["CITY"] == "Munich"  # profile apart


@pytest.mark.parametrize("operation", ["membershipGetAttributes", "membershipUpdateAttributes",
                                       "membershipReplaceAttributes"])
def test_membership_attributes_of_a_non_member(soap, operation):
    reply = soap.op(operation, ("userId", 33457), ("groupId", 4711))
    assert reply.detail_name == "NoSuchObjectException"
    assert reply.fields["objectType"] == "Membership"


def test_membership_attribute_needs_a_name(soap):
    _subscribe(soap)
    reply = soap.op("membershipUpdateAttributes", ("userId", 33457), ("groupId", 4711),
                    soap.attributes({"": "x"}))
    assert reply.fields["errorCode"] == "INVALID_PARAMETER"
    assert soap.sandbox.state.groups[4711].memberships[33457].attributes == {}


def test_a_send_makes_a_membership(soap):
    soap.call(soap.send_single(23542, 33458))
    assert _groups(soap.op("membershipFindAll", ("userId", 33458))) == [4712]
    assert soap.sandbox.state.groups[4712].memberships[33458].subscription_mode is None
    # The existing membership (and its mode) is kept by a later send.
    soap.call(soap.send_single(23541, 33457))
    _subscribe(soap, 33457, 4713)
    soap.call(soap.send_single(23543, 33457))
    assert soap.sandbox.state.groups[4713].memberships[33457].subscription_mode == "OPT_IN"
    assert _groups(soap.op("membershipFindAll", ("userId", 33457))) == [4711, 4713]


def test_membership_find_all_unknown_user(soap):
    reply = soap.op("membershipFindAll", ("userId", 5))
    assert reply.fields["objectType"] == "User"
