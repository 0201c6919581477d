"""Models to and from the plain dicts a wire speaks: the facade's one shaping layer.

A wire (:mod:`engage_soap.soap` today) takes and returns data shaped like the service's
schema; these functions build that data from the library's models and read models back
from it. Checks that the schema cannot express (blank values, lossless text) live here;
types, required elements and XML-safe text are checked once, by the wire, against the
schema in use.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from .errors import InvalidInputError, ProtocolError
from .models import BY_NAME, Attachment, Contact, Identifier
from .schema import ComplexPlan

__all__ = [
    "SENDER_PROFILE_FIELDS",
    "attachments",
    "contact",
    "identifier",
    "message",
    "new_contact",
    "nonblank",
    "parameters",
    "sender_profile_path",
    "text_value",
    "version",
]

# Element names under which a WSDL may declare the TLS sender profile of messageSendSingle
# (REST calls it senderProfileName; no SOAP element is documented, so none is assumed).
SENDER_PROFILE_FIELDS = ("senderProfileName", "senderProfile")


def nonblank(value: Any, what: str) -> Any:
    """``value``, unless it is a blank str (types are the schema's business)."""
    if isinstance(value, str) and not value.strip():
        raise InvalidInputError(f"{what} must not be blank")
    return value


def text_value(value: object, what: str) -> str:
    """``value`` as element text: a str, or an int, float or Decimal written without loss."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInputError(f"{what} must be a str, int, float or Decimal, not "
                                f"{type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidInputError(f"{what} must be a finite number, got {value!r}")
    return repr(value) if isinstance(value, float) else str(value)


def identifier(ident: Identifier) -> dict[str, str]:
    """A ``contactIdentifier``."""
    return {"type": ident.type.value, "value": ident.value}


def _name_values(items: Mapping[str, object] | None, what: str) -> list[dict[str, str]]:
    if items is None:
        return []
    if not isinstance(items, Mapping):
        raise InvalidInputError(f"{what}s must be a mapping of name to value")
    return [{"name": nonblank(name, f"{what} name"),
             "value": text_value(value, f"{what} {name!r}")} for name, value in items.items()]


def parameters(items: Mapping[str, object] | None) -> list[dict[str, str]]:
    """Message parameters (``<%parameter.NAME%>`` in the prepared message)."""
    return _name_values(items, "parameter")


def attachments(items: Iterable[Attachment] | None) -> list[dict[str, str]]:
    """Attachments, their content as base64 text whatever type the schema gives it."""
    if items is None or isinstance(items, (str, bytes, Attachment, Mapping)):
        raise InvalidInputError("attachments must be a sequence of Attachment")
    out = []
    for item in items:
        if not isinstance(item, Attachment):
            raise InvalidInputError(
                f"attachments must be Attachment objects, not {type(item).__name__}")
        out.append({"name": item.name, "contentType": str(item.content_type),
                    "content": base64.b64encode(item.content).decode("ascii")})
    return out


def sender_profile_path(request: ComplexPlan) -> tuple[str, ...] | None:
    """Where messageSendSingle's request declares a sender profile: at the top, or one
    level down (inside additionalContent); None when the WSDL declares none."""
    for name in SENDER_PROFILE_FIELDS:
        if name in request.by_name:
            return (name,)
    for f in request.fields:
        if f.complex is not None and not f.repeated:
            for name in SENDER_PROFILE_FIELDS:
                if name in f.complex.by_name:
                    return (f.name, name)
    return None


def message(message_id: int, recipient_id: int, params: list[dict[str, str]],
            files: list[dict[str, str]], sender_profile: str | None = None,
            sender_path: tuple[str, ...] | None = None) -> dict[str, Any]:
    """messageSendSingle's arguments (additionalContent is always sent, even empty)."""
    content: dict[str, Any] = {"parameters": params, "attachments": files}
    args: dict[str, Any] = {"messageId": message_id, "recipientId": recipient_id,
                            "additionalContent": content}
    if sender_profile is not None and sender_path is not None:
        (args if len(sender_path) == 1 else content)[sender_path[-1]] = sender_profile
    return args


def new_contact(identifiers: Mapping[str, object],
                attributes: Mapping[str, object] | None) -> dict[str, Any]:
    """A ``contact`` to create from identifier keywords (``email=``...) and attributes."""
    fields: dict[str, Any] = {BY_NAME[name].wire: nonblank(value, name)
                              for name, value in identifiers.items()}
    if attributes is not None:
        fields["attributes"] = _name_values(attributes, "attribute")
    return fields


def contact(data: Mapping[str, Any] | None, operation: str) -> Contact:
    """A Contact from an ecmapi ``contact``."""
    if not data or data.get("contactId") is None:
        raise ProtocolError(f"{operation}: the reply holds no contact with a contactId",
                            request_sent=True)
    attrs = {item["name"]: item.get("value") or "" for item in data.get("attributes") or ()
             if item and item.get("name") is not None}
    return Contact(id=data["contactId"], email=data.get("emailAddress"),
                   mobile_number=data.get("mobileNumber"),
                   app_alias=data.get("applicationAlias"),
                   external_id=data.get("identifier"), attributes=attrs)


def version(reply: Mapping[str, Any], operation: str) -> str:
    """The ``version`` of a systemGet*Version reply."""
    value = reply.get("version")
    if not isinstance(value, str) or not value:
        raise ProtocolError(f"{operation}: the reply holds no version", request_sent=True)
    return value
