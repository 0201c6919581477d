"""What each ecmapi operation does to the sandbox state, and the reply it renders.

Every handler takes the schema-valid request element and returns the response payload
element, or raises :class:`~engage_soap.sandbox.wire.SoapFault`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable

from lxml import etree

from .state import AttachmentRecord, ContactRecord, DuplicateContactError, SandboxState
from .wire import SoapFault, payload_element, sub

__all__ = ["contact_element", "dispatch"]

Handler = Callable[[etree._Element, SandboxState, str], etree._Element]


def _text(element: etree._Element, path: str) -> str | None:
    found = element.find(path)
    if found is None:
        return None
    return found.text or ""


def contact_element(parent: etree._Element, contact: ContactRecord) -> etree._Element:
    """Append ``<contact>`` in the XSD's order, leaving out absent optional fields."""
    element = sub(parent, "contact")
    sub(element, "contactId", str(contact.contact_id))
    for name, value in (("emailAddress", contact.email_address),
                        ("mobileNumber", contact.mobile_number),
                        ("applicationAlias", contact.application_alias),
                        ("identifier", contact.identifier)):
        if value is not None:
            sub(element, name, value)
    for name, value in contact.attributes.items():
        attribute = sub(element, "attributes")
        sub(attribute, "name", name)
        sub(attribute, "value", value)
    return element


def _contact_get(request: etree._Element, state: SandboxState, _version: str) -> etree._Element:
    id_type = _text(request, "identifier/type") or ""
    value = _text(request, "identifier/value") or ""
    if id_type == "ID" and not value.strip().isdigit():
        raise SoapFault.invalid_parameter(
            f"Invalid contact id {value!r}.", parameter_name="identifier",
            property_name="value", value=value)
    contact = state.find_contact(id_type, value.strip() if id_type == "ID" else value)
    if contact is None:
        message = f"Contact with identifier={value} does not exist."
        raise SoapFault.no_such_object(message, "Contact", "identifier", value)
    reply = payload_element("contactGetResponse")
    contact_element(reply, contact)
    return reply


def _contact_create(request: etree._Element, state: SandboxState,
                    _version: str) -> etree._Element:
    attributes: dict[str, str] = {}
    for attribute in request.iterfind("contact/attributes"):
        attributes[_text(attribute, "name") or ""] = _text(attribute, "value") or ""
    try:
        contact = state.add_contact(
            email_address=_text(request, "contact/emailAddress"),
            mobile_number=_text(request, "contact/mobileNumber"),
            application_alias=_text(request, "contact/applicationAlias"),
            identifier=_text(request, "contact/identifier"),
            attributes=attributes)
    except DuplicateContactError as exc:
        raise SoapFault.already_exists(str(exc), "Contact", exc.property_name,
                                       exc.property_value) from None
    except ValueError:
        raise SoapFault.invalid_parameter(
            "The contact needs an emailAddress, mobileNumber, applicationAlias or identifier.",
            "MISSING_PARAMETER", parameter_name="contact") from None
    reply = payload_element("contactCreateResponse")
    contact_element(reply, contact)
    return reply


def _message_send_single(request: etree._Element, state: SandboxState,
                         _version: str) -> etree._Element:
    message_id = int(_text(request, "messageId") or "0")
    recipient_id = int(_text(request, "recipientId") or "0")
    parameters = [(_text(p, "name") or "", _text(p, "value") or "")
                  for p in request.iterfind("additionalContent/parameters")]
    attachments: list[AttachmentRecord] = []
    for item in request.iterfind("additionalContent/attachments"):
        name = _text(item, "name") or ""
        encoded = "".join((_text(item, "content") or "").split())
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SoapFault.invalid_parameter(
                f"Invalid request: the content of attachment {name!r} is not valid base64.",
                parameter_name="content", property_name="additionalContent.attachments.content",
                value=encoded) from None
        attachments.append(AttachmentRecord(name, _text(item, "contentType"), content))
    with state.lock:
        message = state.messages.get(message_id)
        if message is None:
            raise SoapFault.no_such_object(f"Message with id={message_id} does not exist.",
                                           "Message", "messageId", str(message_id))
        contact = state.contacts.get(recipient_id)
        if contact is None:
            raise SoapFault.no_such_object(f"Contact with id={recipient_id} does not exist.",
                                           "Contact", "recipientId", str(recipient_id))
        state.record_send(message, contact, parameters, attachments)
    return payload_element("messageSendSingleResponse")


def _system_get_api_version(_request: etree._Element, _state: SandboxState,
                            version: str) -> etree._Element:
    reply = payload_element("systemGetApiVersionResponse")
    sub(reply, "return", version)
    return reply


_HANDLERS: dict[str, Handler] = {
    "contactGet": _contact_get,
    "contactCreate": _contact_create,
    "messageSendSingle": _message_send_single,
    "systemGetApiVersion": _system_get_api_version,
}


def dispatch(operation: str, request: etree._Element, state: SandboxState,
             api_version: str) -> etree._Element:
    """Run one operation on the state; the reply payload, or raise SoapFault."""
    return _HANDLERS[operation](request, state, api_version)
