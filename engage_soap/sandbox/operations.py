"""What each ecmapi operation does to the sandbox state, and the reply it renders.

Every handler takes the schema-valid request element and returns the response payload
element, or raises :class:`~engage_soap.sandbox.wire.SoapFault` (only of a kind the
operation declares in the WSDL). :data:`MODELED_OPERATIONS` lists the operations handled
here; the server answers every other operation of the WSDL with a "not modeled" fault.

A v2 user is a contact: user id = contact id, ``email`` = the e-mail address,
``mobileNumber`` = the mobile number, ``identifier`` = the external identifier (an absent
one is sent as an empty element, since the schema requires all four).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any, TypedDict

from lxml import etree

from ..models import BY_TYPE, IdentifierType
from .state import (
    IDENTITY_FIELDS,
    AttachmentRecord,
    ContactRecord,
    DuplicateContactError,
    MembershipRecord,
    SandboxState,
)
from .wire import SoapFault, payload_element, sub

__all__ = ["ECM_VERSION", "MODELED_OPERATIONS", "contact_element", "dispatch", "valid_email"]

Handler = Callable[[etree._Element, SandboxState, str], etree._Element]

#: What systemGetEcmVersion answers.
ECM_VERSION = "8.0.0-sandbox"

# One "@", something before it, a domain of dot-separated labels after it (at least two),
# no whitespace or control characters anywhere.
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f.]+(?:\.[^@\s\x00-\x1f\x7f.]+)+")


def valid_email(value: str) -> bool:
    """Whether ``value`` has the form of an e-mail address (``local@domain.tld``)."""
    return _EMAIL.fullmatch(value) is not None


# -- reading requests ---------------------------------------------------------------------

def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    if found is None:
        return None
    return found.text or ""


def _long(element: etree._Element, path: str) -> int:
    # Schema-valid xs:long: digits with optional sign and surrounding whitespace.
    return int((_text(element, path) or "0").strip())


def _pairs(element: etree._Element, path: str) -> list[tuple[str, str]]:
    return [(_text(item, "name") or "", _text(item, "value") or "")
            for item in element.iterfind(path)]


def _check_email(value: str, parameter: str, prop: str) -> None:
    if not valid_email(value):
        raise SoapFault.invalid_parameter(
            f"Invalid e-mail address {value!r} in {prop}.", parameter_name=parameter,
            property_name=prop, value=value)


def _contact_attributes(state: SandboxState, pairs: Iterable[tuple[str, str]],
                        parameter: str) -> dict[str, str]:
    """Name/value pairs as a dict, every name a defined contact attribute."""
    attributes = dict(pairs)
    unknown = state.unknown_attributes(attributes)
    if unknown:
        name = unknown[0]
        raise SoapFault.invalid_parameter(
            f"Unknown attribute {name!r}: it is not an attribute definition of this system.",
            "INVALID_ATTRIBUTE", parameter_name=parameter, property_name="attributes.name",
            value=name)
    return attributes


def _membership_attributes(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    attributes = dict(pairs)
    if "" in attributes or any(not n.strip() for n in attributes):
        raise SoapFault.invalid_parameter(
            "A membership attribute needs a name.", parameter_name="attributes",
            property_name="attributes.name", value="")
    return attributes


# -- rendering replies --------------------------------------------------------------------

def contact_element(parent: etree._Element, contact: ContactRecord) -> etree._Element:
    """Append ``<contact>`` in the XSD's order, leaving out absent optional fields."""
    element = sub(parent, "contact")
    sub(element, "contactId", str(contact.contact_id))
    for name, wire in IDENTITY_FIELDS:  # emailAddress, mobileNumber, applicationAlias, identifier
        value = getattr(contact, name)
        if value is not None:
            sub(element, wire, value)
    _attributes(element, contact.attributes, "attributes")
    return element


def _attributes(parent: etree._Element, attributes: dict[str, str], name: str) -> None:
    for key, value in attributes.items():
        attribute = sub(parent, name)
        sub(attribute, "name", key)
        sub(attribute, "value", value)


def _user_element(parent: etree._Element, contact: ContactRecord) -> etree._Element:
    element = sub(parent, "user")
    sub(element, "id", str(contact.contact_id))
    sub(element, "email", contact.email_address or "")
    sub(element, "mobileNumber", contact.mobile_number or "")
    sub(element, "identifier", contact.identifier or "")
    return element


def _membership_element(parent: etree._Element, name: str,
                        membership: MembershipRecord) -> etree._Element:
    element = sub(parent, name)
    sub(element, "userId", str(membership.contact_id))
    sub(element, "groupId", str(membership.group_id))
    _attributes(element, membership.attributes, "attributes")
    return element


# -- system -------------------------------------------------------------------------------

def _system_get_api_version(_request: etree._Element, _state: SandboxState,
                            version: str) -> etree._Element:
    reply = payload_element("systemGetApiVersionResponse")
    sub(reply, "version", version)
    return reply


def _system_get_ecm_version(_request: etree._Element, _state: SandboxState,
                            _version: str) -> etree._Element:
    reply = payload_element("systemGetEcmVersionResponse")
    sub(reply, "version", ECM_VERSION)
    return reply


# -- contacts (v7+) -------------------------------------------------------------------------

def _identifier(request: etree._Element, state: SandboxState) -> ContactRecord:
    """The contact named by ``identifier/type`` + ``identifier/value``; NoSuchObject if none."""
    id_type = _text(request, "identifier/type") or ""
    value = _text(request, "identifier/value") or ""
    if id_type == "ID" and not value.strip().isdigit():
        raise SoapFault.invalid_parameter(
            f"Invalid contact id {value!r}.", parameter_name="identifier",
            property_name="value", value=value)
    if id_type == "EMAIL":
        _check_email(value, "identifier", "value")
    contact = state.find_contact(id_type, value.strip() if id_type == "ID" else value)
    if contact is None:
        message = f"Contact with identifier={value} does not exist."
        raise SoapFault.no_such_object(message, "Contact", "identifier", value)
    return contact


class _ContactFields(TypedDict):
    email_address: str | None
    mobile_number: str | None
    application_alias: str | None
    identifier: str | None
    attributes: dict[str, str]


def _contact_fields(given: etree._Element, state: SandboxState) -> _ContactFields:
    """The fields of a request's ``<contact>`` (keyword arguments of add/replace_contact)."""
    if not any(_text(given, wire) for _, wire in IDENTITY_FIELDS):
        raise _missing_identity()
    email = _text(given, "emailAddress")
    if email:
        _check_email(email, "contact", "emailAddress")
    return {
        "email_address": email,
        "mobile_number": _text(given, "mobileNumber"),
        "application_alias": _text(given, "applicationAlias"),
        "identifier": _text(given, "identifier"),
        "attributes": _contact_attributes(state, _pairs(given, "attributes"), "contact"),
    }


def _missing_identity() -> SoapFault:
    return SoapFault.invalid_parameter(
        "The contact needs an emailAddress, mobileNumber, applicationAlias or identifier.",
        "MISSING_PARAMETER", parameter_name="contact", property_name="contact", value="")


def _contact_get(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
    contact = _identifier(request, state)
    reply = payload_element("contactGetResponse")
    contact_element(reply, contact)
    return reply


def _contact_create(request: etree._Element, state: SandboxState,
                    _version: str) -> etree._Element:
    given = request.find("contact")
    assert given is not None  # schema-valid
    values = _contact_fields(given, state)
    try:
        contact = state.add_contact(**values)
    except DuplicateContactError as exc:
        raise SoapFault.already_exists(str(exc), "Contact", exc.property_name,
                                       exc.property_value) from None
    except ValueError:
        raise _missing_identity() from None
    reply = payload_element("contactCreateResponse")
    contact_element(reply, contact)
    return reply


def _contact_update(request: etree._Element, state: SandboxState,
                    _version: str) -> etree._Element:
    id_type = _text(request, "identifierType") or ""
    given = request.find("contact")
    assert given is not None  # schema-valid
    wire = BY_TYPE[IdentifierType(id_type)].wire
    value = _text(given, wire)
    if not value:
        raise SoapFault.invalid_parameter(
            f"identifierType {id_type} needs the contact's {wire}.", "MISSING_PARAMETER",
            parameter_name="contact", property_name=wire, value="")
    given_id = _text(given, "contactId")
    with state.lock:
        if id_type == "EMAIL":
            _check_email(value, "contact", wire)
        found = state.find_contact(id_type, value.strip() if id_type == "ID" else value)
        if found is None:
            message = f"Contact with {wire}={value} does not exist."
            raise SoapFault.no_such_object(message, "Contact", wire, value)
        if given_id is not None and int(given_id) != found.contact_id:
            raise SoapFault.invalid_parameter(
                f"The contactId of a contact cannot be changed (it is {found.contact_id}).",
                parameter_name="contact", property_name="contactId", value=given_id)
        values = _contact_fields(given, state)
        try:
            contact = state.replace_contact(found.contact_id, **values)
        except DuplicateContactError as exc:
            # contactUpdate declares no ObjectAlreadyExistsException.
            raise SoapFault.invalid_parameter(
                f"{exc.property_name}={exc.property_value} belongs to another contact.",
                parameter_name="contact", property_name=exc.property_name,
                value=exc.property_value) from None
        except ValueError:
            raise _missing_identity() from None
    reply = payload_element("contactUpdateResponse")
    contact_element(reply, contact)
    return reply


def _contact_delete(request: etree._Element, state: SandboxState,
                    _version: str) -> etree._Element:
    with state.lock:
        contact = _identifier(request, state)
        state.delete_contact(contact.contact_id)
    return payload_element("contactDeleteResponse")


# -- users (v2) -----------------------------------------------------------------------------

def _user_by_id(request: etree._Element, state: SandboxState) -> ContactRecord:
    user_id = _long(request, "userId")
    contact = state.contacts.get(user_id)
    if contact is None:
        raise SoapFault.no_such_object(f"User with id={user_id} does not exist.", "User",
                                       "userId", str(user_id))
    return contact


def _user_by_email(request: etree._Element, state: SandboxState) -> ContactRecord:
    email = _text(request, "email") or ""
    if not email:
        raise SoapFault.invalid_parameter("The parameter email is missing.", "MISSING_PARAMETER",
                                          parameter_name="email", property_name="email",
                                          value="")
    _check_email(email, "email", "email")
    contact = state.find_contact("EMAIL", email)
    if contact is None:
        raise SoapFault.no_such_object(f"User with email={email} does not exist.", "User",
                                       "email", email)
    return contact


def _user(request: etree._Element, state: SandboxState) -> ContactRecord:
    """The user named by ``userId`` or, in the *ByEmail operations, ``email``."""
    if request.find("userId") is not None:
        return _user_by_id(request, state)
    return _user_by_email(request, state)


def _user_reply(name: str, contact: ContactRecord) -> etree._Element:
    reply = payload_element(name)
    _user_element(reply, contact)
    return reply


def _user_create(request: etree._Element, state: SandboxState,
                 _version: str) -> etree._Element:
    email = _text(request, "email") or ""
    mobile = _text(request, "mobileNumber") or ""
    if not email and not mobile:
        raise SoapFault.invalid_parameter(
            "A user needs an email or a mobileNumber.", "MISSING_PARAMETER",
            parameter_name="email", property_name="email", value="")
    if email:
        _check_email(email, "email", "email")
    attributes = _contact_attributes(state, _pairs(request, "attributes"), "attributes")
    try:
        contact = state.add_contact(email_address=email, mobile_number=mobile,
                                    attributes=attributes)
    except DuplicateContactError as exc:
        prop = "email" if exc.property_name == "emailAddress" else exc.property_name
        raise SoapFault.already_exists(f"User with {prop}={exc.property_value} already exists.",
                                       "User", prop, exc.property_value) from None
    return _user_reply("userCreateResponse", contact)


def _user_get(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
    return _user_reply("userGetResponse", _user_by_id(request, state))


def _user_get_by_email(request: etree._Element, state: SandboxState,
                       _version: str) -> etree._Element:
    return _user_reply("userGetByEmailResponse", _user_by_email(request, state))


def _user_get_by_identifier(request: etree._Element, state: SandboxState,
                            _version: str) -> etree._Element:
    identifier = _text(request, "identifier") or ""
    if not identifier:
        raise SoapFault.invalid_parameter(
            "The parameter identifier is missing.", "MISSING_PARAMETER",
            parameter_name="identifier", property_name="identifier", value="")
    contact = state.find_contact("EXTERNAL", identifier)
    if contact is None:
        raise SoapFault.no_such_object(f"User with identifier={identifier} does not exist.",
                                       "User", "identifier", identifier)
    return _user_reply("userGetByIdentifierResponse", contact)


def _attributes_get(name: str, find: Callable[[etree._Element, SandboxState], Any]
                    ) -> Handler:
    """A reply listing the attributes of what ``find`` names (a user or a membership)."""
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            found = find(request, state)
            reply = payload_element(name)
            _attributes(reply, found.attributes, "attributes")
        return reply
    return handler


def _profile_change(name: str, *, replace: bool) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            contact = _user(request, state)
            attributes = _contact_attributes(state, _pairs(request, "attributes"),
                                             "attributes")
            state.update_attributes(contact.contact_id, attributes, replace=replace)
        return payload_element(name)
    return handler


def _user_delete(request: etree._Element, state: SandboxState,
                 _version: str) -> etree._Element:
    # userDelete declares no NoSuchObjectException: deleting an unknown user is a no-op.
    state.delete_contact(_long(request, "userId"))
    return payload_element("userDeleteResponse")


# -- groups and memberships (v2) ------------------------------------------------------------

def _group_id(request: etree._Element, state: SandboxState) -> int:
    group_id = _long(request, "groupId")
    if group_id not in state.groups:
        raise SoapFault.no_such_object(f"Group with id={group_id} does not exist.", "Group",
                                       "groupId", str(group_id))
    return group_id


def _member(request: etree._Element, state: SandboxState) -> MembershipRecord:
    """The membership named by user (id or email) + groupId; NoSuchObject if there is none."""
    contact = _user(request, state)
    group_id = _group_id(request, state)
    membership = state.membership(contact.contact_id, group_id)
    if membership is None:
        raise SoapFault.no_such_object(
            f"User with id={contact.contact_id} is not a member of group {group_id}.",
            "Membership", "userId", str(contact.contact_id))
    return membership


def _group_get(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
    with state.lock:
        group = state.groups[_group_id(request, state)]
        reply = payload_element("groupGetResponse")
        element = sub(reply, "group")
        sub(element, "id", str(group.group_id))
        sub(element, "name", group.name)
        sub(element, "description", group.description)
        sub(element, "email", group.email)
    return reply


def _group_get_prepared_messages(request: etree._Element, state: SandboxState,
                                 _version: str) -> etree._Element:
    with state.lock:
        group_id = _group_id(request, state)
        reply = payload_element("groupGetPreparedMessagesResponse")
        for message_id in state.group_messages(group_id):
            sub(reply, "messageIds", str(message_id))
    return reply


def _subscribe(name: str) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            contact = _user(request, state)
            group_id = _group_id(request, state)
            state.add_membership(contact.contact_id, group_id, _text(request, "subscriptionMode"))
        return payload_element(name)
    return handler


def _unsubscribe(name: str) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            contact = _user(request, state)
            group_id = _group_id(request, state)
            state.remove_membership(contact.contact_id, group_id)  # a non-member: no-op
        return payload_element(name)
    return handler


def _membership_create(request: etree._Element, state: SandboxState,
                       _version: str) -> etree._Element:
    with state.lock:
        contact = _user(request, state)
        group_id = _group_id(request, state)
        membership, created = state.add_membership(contact.contact_id, group_id)
        if not created:
            raise SoapFault.already_exists(
                f"User with id={contact.contact_id} is already a member of group {group_id}.",
                "Membership", "userId", str(contact.contact_id))
        reply = payload_element("membershipCreateResponse")
        _membership_element(reply, "membership", membership)
    return reply


def _membership_delete(request: etree._Element, state: SandboxState,
                       _version: str) -> etree._Element:
    with state.lock:
        membership = _member(request, state)
        state.remove_membership(membership.contact_id, membership.group_id)
    return payload_element("membershipDeleteResponse")


def _membership_find_all(name: str) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            contact = _user(request, state)
            reply = payload_element(name)
            for membership in state.memberships_of(contact.contact_id):
                _membership_element(reply, "memberships", membership)
        return reply
    return handler


def _membership_change(name: str, *, replace: bool) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        with state.lock:
            membership = _member(request, state)
            attributes = _membership_attributes(_pairs(request, "attributes"))
            state.update_membership_attributes(membership.contact_id, membership.group_id,
                                               attributes, replace=replace)
        return payload_element(name)
    return handler


# -- messages -----------------------------------------------------------------------------

def _send(name: str, *, transactional: bool) -> Handler:
    def handler(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
        message_id = _long(request, "messageId")
        recipient_id = _long(request, "recipientId")
        formula = _text(request, "externalTransactionFormula") if transactional else None
        parameters = _pairs(request, "additionalContent/parameters")
        attachments: list[AttachmentRecord] = []
        for item in request.iterfind("additionalContent/attachments"):
            attachment_name = _text(item, "name") or ""
            encoded = "".join((_text(item, "content") or "").split())
            try:
                content = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise SoapFault.invalid_parameter(
                    f"Invalid request: the content of attachment {attachment_name!r} is not "
                    "valid base64.", parameter_name="content",
                    property_name="additionalContent.attachments.content",
                    value=encoded[:64]) from None
            attachments.append(AttachmentRecord(attachment_name, _text(item, "contentType"),
                                                content))
        with state.lock:
            message = state.messages.get(message_id)
            if message is None:
                raise SoapFault.no_such_object(f"Message with id={message_id} does not exist.",
                                               "Message", "messageId", str(message_id))
            contact = state.contacts.get(recipient_id)
            if contact is None:
                raise SoapFault.no_such_object(f"Contact with id={recipient_id} does not exist.",
                                               "Contact", "recipientId", str(recipient_id))
            state.record_send(message, contact, parameters, attachments, formula)
        return payload_element(name)
    return handler


_HANDLERS: dict[str, Handler] = {
    "systemGetApiVersion": _system_get_api_version,
    "systemGetEcmVersion": _system_get_ecm_version,
    "contactGet": _contact_get,
    "contactCreate": _contact_create,
    "contactUpdate": _contact_update,
    "contactDelete": _contact_delete,
    "userCreate": _user_create,
    "userGet": _user_get,
    "userGetByEmail": _user_get_by_email,
    "userGetByIdentifier": _user_get_by_identifier,
    "userGetProfile": _attributes_get("userGetProfileResponse", _user),
    "userGetProfileByEmail": _attributes_get("userGetProfileByEmailResponse", _user),
    "userUpdateProfile": _profile_change("userUpdateProfileResponse", replace=False),
    "userUpdateProfileByEmail": _profile_change("userUpdateProfileByEmailResponse",
                                                replace=False),
    "userReplaceProfile": _profile_change("userReplaceProfileResponse", replace=True),
    "userReplaceProfileByEmail": _profile_change("userReplaceProfileByEmailResponse",
                                                 replace=True),
    "userDelete": _user_delete,
    "groupGet": _group_get,
    "groupGetPreparedMessages": _group_get_prepared_messages,
    "membershipSubscribe": _subscribe("membershipSubscribeResponse"),
    "membershipSubscribeByEmail": _subscribe("membershipSubscribeByEmailResponse"),
    "membershipUnsubscribe": _unsubscribe("membershipUnsubscribeResponse"),
    "membershipUnsubscribeByEmail": _unsubscribe("membershipUnsubscribeByEmailResponse"),
    "membershipCreate": _membership_create,
    "membershipDelete": _membership_delete,
    "membershipFindAll": _membership_find_all("membershipFindAllResponse"),
    "membershipFindAllByEmail": _membership_find_all("membershipFindAllByEmailResponse"),
    "membershipGetAttributes": _attributes_get("membershipGetAttributesResponse", _member),
    "membershipGetAttributesByEmail": _attributes_get(
        "membershipGetAttributesByEmailResponse", _member),
    "membershipUpdateAttributes": _membership_change("membershipUpdateAttributesResponse",
                                                     replace=False),
    "membershipReplaceAttributes": _membership_change("membershipReplaceAttributesResponse",
                                                      replace=True),
    "messageSendSingle": _send("messageSendSingleResponse", transactional=False),
    "messageSendTransactional": _send("messageSendTransactionalResponse", transactional=True),
}

#: The operations the sandbox models (the others of the WSDL get a "not modeled" fault).
MODELED_OPERATIONS: frozenset[str] = frozenset(_HANDLERS)


def dispatch(operation: str, request: etree._Element, state: SandboxState,
             api_version: str) -> etree._Element:
    """Run one operation on the state; the reply payload, or raise SoapFault."""
    return _HANDLERS[operation](request, state, api_version)
