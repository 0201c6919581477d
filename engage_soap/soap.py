"""The SOAP wire: ``call(operation, arguments) -> dict`` over one Transport.

This is the narrow seam a second wire (REST) sits beside. It speaks plain data shaped
like the service's schema (dicts, lists, str, int, bool), never models: turning models
into those dicts and back is the facade's job (:mod:`engage_soap.shapes`). It raises only
engage_soap errors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from . import shapes
from .envelope import OperationPlan, read_reply, render_request, shorten_for_log
from .errors import EngageError
from .models import Exchange
from .service import ServiceModel
from .transport import HttpReply, Transport

if TYPE_CHECKING:
    from .zeep_binding import LoadedWsdl

__all__ = ["SoapWire", "Wire", "WireBase"]

log = logging.getLogger("engage_soap")

class Wire(Protocol):
    """What the facade needs from a wire format (SOAP, REST): one call, one model."""

    @property
    def model(self) -> ServiceModel:
        """The operations this wire can call: schema, read or write, declared faults."""
        ...

    @property
    def last_exchange(self) -> Exchange | None: ...

    @property
    def protocol(self) -> str:
        """``"soap"`` or ``"rest"``."""
        ...

    @property
    def sender_profile_path(self) -> tuple[str, ...] | None:
        """Where messageSendSingle's arguments carry a TLS sender profile (None: nowhere)."""
        ...

    def check(self, operation: str, arguments: Mapping[str, Any]) -> None:
        """Raise InvalidInputError if ``arguments`` do not fit ``operation``; send nothing."""
        ...

    def call(self, operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``operation`` once; return the reply's payload as plain data."""
        ...

    def close(self) -> None: ...


class WireBase:
    """What every wire shares: its model, its transport and the last exchange, recorded and
    logged in one place (:meth:`exchange`)."""

    def __init__(self, model: ServiceModel, http: Transport) -> None:
        self._model = model
        self._http = http
        # the last exchange's fields: an Exchange is built only when someone asks for it
        self._last: tuple[Any, ...] | None = None

    @property
    def model(self) -> ServiceModel:
        return self._model

    @property
    def last_exchange(self) -> Exchange | None:
        return None if self._last is None else Exchange(*self._last)

    def exchange(self, operation: str, method: str, url: str, body: bytes | None,
                 headers: Mapping[str, str], send_headers: Mapping[str, str]) -> HttpReply:
        """Send one request: ``last_exchange`` records it (``headers``, never the credentials
        that ``send_headers`` add) and DEBUG logs it, long attachments cut short."""
        debug = log.isEnabledFor(logging.DEBUG)
        if debug:
            log.debug("%s request to %s %s:\n%s", operation, method, url,
                      shorten_for_log(body or b""))
        try:
            reply = self._http.request(method, url, body, send_headers)
        except EngageError:
            self._last = (operation, url, headers, body or b"", None, {}, None, 0.0)
            raise
        self._last = (operation, url, headers, body or b"", reply.status, reply.headers,
                      reply.body, reply.elapsed)
        if debug:
            log.debug("%s reply (HTTP %d, %.1f ms):\n%s", operation, reply.status,
                      reply.elapsed * 1000, shorten_for_log(reply.body))
        return reply

    def close(self) -> None:
        self._http.close()


class SoapWire(WireBase):
    """Calls ecmapi operations with the SOAP bindings compiled from the WSDL in use."""

    protocol = "soap"

    def __init__(self, endpoint: str, loaded: LoadedWsdl, http: Transport, authorization: str,
                 *, validate: bool = False) -> None:
        super().__init__(loaded.model, http)
        self.endpoint = endpoint
        operations = loaded.operations
        validator = None
        if validate:
            from .validation import validator_for

            validator = validator_for(loaded.documents, loaded.source)
        self._check_request = validator.check_request if validator else None
        self._check_reply = validator.check_reply if validator else None
        self._ops = operations
        # Per operation: the headers recorded in last_exchange, and those sent (+ credentials).
        self._headers = {op.name: {"Content-Type": "text/xml; charset=utf-8",
                                   "SOAPAction": f'"{op.soap_action}"'}
                         for op in operations.values()}
        self._send_headers = {name: {**h, "Authorization": authorization}
                              for name, h in self._headers.items()}

    @property
    def sender_profile_path(self) -> tuple[str, ...] | None:
        """Where the WSDL in use declares messageSendSingle's sender profile, if it does."""
        send = self._model.get("messageSendSingle")
        return shapes.sender_profile_path(send.request) if send else None

    def _plan(self, operation: str) -> OperationPlan:
        self._model.operation(operation)  # InvalidInputError for an unknown name
        return self._ops[operation]

    def check(self, operation: str, arguments: Mapping[str, Any]) -> None:
        render_request(self._plan(operation), arguments, self._check_request)

    def call(self, operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        op = self._plan(operation)
        body = render_request(op, arguments, self._check_request)
        reply = self.exchange(operation, "POST", self.endpoint, body,
                              self._headers[operation], self._send_headers[operation])
        return read_reply(op, reply.status, reply.body, self._check_reply)
