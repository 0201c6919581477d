"""The SOAP wire: the facade's operations as ecmapi envelopes over one Transport.

This is the seam a second wire (REST) sits beside: it speaks in models (Identifier,
Contact, Attachment) and plain values, and raises only engage_soap errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .envelope import ComplexPlan, OperationPlan, read_reply, render_request
from .errors import ConfigurationError, EngageError, ProtocolError
from .models import Attachment, Contact, Exchange, Identifier
from .transport import Transport

__all__ = ["SENDER_PROFILE_FIELDS", "SoapWire", "Wire"]

log = logging.getLogger("engage_soap")

# Element names under which a WSDL may declare the TLS sender profile of messageSendSingle
# (REST calls it senderProfileName; no SOAP element is documented, so none is assumed).
SENDER_PROFILE_FIELDS = ("senderProfileName", "senderProfile")


class Wire(Protocol):
    """What the facade needs from a wire format (SOAP today, REST later)."""

    @property
    def supports_sender_profile(self) -> bool: ...

    @property
    def last_exchange(self) -> Exchange | None: ...

    def get_contact(self, identifier: Identifier) -> Contact: ...

    def create_contact(self, fields: Mapping[str, Any]) -> Contact: ...

    def send_message(self, message_id: int, recipient_id: int,
                     parameters: Sequence[tuple[str, str]], attachments: Sequence[Attachment],
                     sender_profile: str | None) -> None: ...

    def api_version(self) -> str: ...

    def close(self) -> None: ...


def contact_from_wire(data: Mapping[str, Any] | None, operation: str) -> Contact:
    """A Contact from the schema-shaped dict of an ecmapi ``contact`` element."""
    if not data or data.get("contactId") is None:
        raise ProtocolError(f"{operation}: the reply holds no contact with a contactId",
                            request_sent=True)
    attributes = {}
    for item in data.get("attributes") or ():
        if item and item.get("name") is not None:
            attributes[item["name"]] = item.get("value") or ""
    return Contact(id=data["contactId"], email=data.get("emailAddress"),
                   mobile_number=data.get("mobileNumber"),
                   app_alias=data.get("applicationAlias"),
                   external_id=data.get("identifier"), attributes=attributes)


def _find_field(plan: ComplexPlan, names: Sequence[str]) -> tuple[str, ...] | None:
    """The path to the first field called one of ``names``, at the top or one level down."""
    for name in names:
        if name in plan.by_name:
            return (name,)
    for f in plan.fields:
        if isinstance(f.plan, ComplexPlan) and not f.repeated:
            for name in names:
                if name in f.plan.by_name:
                    return (f.name, name)
    return None


class SoapWire:
    """Calls ecmapi operations with plans compiled from the WSDL in use."""

    def __init__(self, endpoint: str, operations: Mapping[str, OperationPlan],
                 http: Transport, authorization: str) -> None:
        self.endpoint = endpoint
        self._ops = operations
        self._http = http
        self._last: Exchange | None = None
        self._lock = threading.Lock()
        send = operations.get("messageSendSingle")
        self._sender_path = _find_field(send.request, SENDER_PROFILE_FIELDS) if send else None
        # Per operation: the headers recorded in last_exchange, and those sent (+ credentials).
        self._headers = {op.name: {"Content-Type": "text/xml; charset=utf-8",
                                   "SOAPAction": f'"{op.soap_action}"'}
                         for op in operations.values()}
        self._send_headers = {name: {**h, "Authorization": authorization}
                              for name, h in self._headers.items()}

    @property
    def supports_sender_profile(self) -> bool:
        return self._sender_path is not None

    @property
    def last_exchange(self) -> Exchange | None:
        return self._last

    def call(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Send operation ``name`` with schema-shaped ``args``; return the reply's payload."""
        op = self._ops.get(name)
        if op is None:
            raise ConfigurationError(f"the WSDL in use has no operation {name!r}")
        body = render_request(op, args)
        headers = self._headers[name]
        debug = log.isEnabledFor(logging.DEBUG)
        if debug:
            log.debug("%s request to %s:\n%s", name, self.endpoint,
                      body.decode("utf-8", "replace"))
        try:
            reply = self._http.request("POST", self.endpoint, body, self._send_headers[name])
        except EngageError:
            self._record(name, headers, body, None, {}, None, 0.0)
            raise
        self._record(name, headers, body, reply.status, reply.headers, reply.body,
                     reply.elapsed)
        if debug:
            log.debug("%s reply (HTTP %d, %.1f ms):\n%s", name, reply.status,
                      reply.elapsed * 1000, reply.body[:65536].decode("utf-8", "replace"))
        return read_reply(op, reply.status, reply.body)

    def _record(self, name: str, headers: Mapping[str, str], body: bytes, status: int | None,
                reply_headers: Mapping[str, str], reply_body: bytes | None,
                elapsed: float) -> None:
        self._last = Exchange(name, self.endpoint, headers, body, status,
                              reply_headers, reply_body, elapsed)

    def get_contact(self, identifier: Identifier) -> Contact:
        reply = self.call("contactGet", {"identifier": {"type": identifier.type.value,
                                                        "value": identifier.value}})
        return contact_from_wire(reply.get("contact"), "contactGet")

    def create_contact(self, fields: Mapping[str, Any]) -> Contact:
        reply = self.call("contactCreate", {"contact": fields})
        return contact_from_wire(reply.get("contact"), "contactCreate")

    def send_message(self, message_id: int, recipient_id: int,
                     parameters: Sequence[tuple[str, str]], attachments: Sequence[Attachment],
                     sender_profile: str | None) -> None:
        content: dict[str, Any] = {
            "parameters": [{"name": n, "value": v} for n, v in parameters],
            "attachments": [{"name": a.name, "contentType": a.content_type,
                             "content": a.content} for a in attachments],
        }
        args: dict[str, Any] = {"messageId": message_id, "recipientId": recipient_id,
                                "additionalContent": content}
        if sender_profile is not None:
            if self._sender_path is None:
                raise ConfigurationError(
                    "the WSDL in use declares no sender profile field for messageSendSingle;"
                    " the sender profile cannot be sent (nothing was sent)")
            target = args if len(self._sender_path) == 1 else content
            target[self._sender_path[-1]] = sender_profile
        self.call("messageSendSingle", args)

    def api_version(self) -> str:
        reply = self.call("systemGetApiVersion", {})
        value = next((v for v in reply.values() if isinstance(v, str)), None)
        if value is None:
            raise ProtocolError("systemGetApiVersion: no version in the reply",
                                request_sent=True)
        return value

    def close(self) -> None:
        self._http.close()
