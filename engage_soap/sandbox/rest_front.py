"""The sandbox's REST front: JSON requests in and out, over the SOAP operations unchanged.

:class:`RestFront` is a front of the sandbox application (:mod:`.app`), beside the SOAP
one: :func:`decode` turns a REST request (method, path under the REST base, query string,
JSON body) into the ecmapi operation and the SOAP request envelope the operation handlers
already answer (built with the client's own plans and writer, :mod:`engage_soap.rest` and
:mod:`engage_soap.envelope`), and the front renders what the operation answers: the
value of the reply's one element as JSON, or the fault's bean as JSON with HTTP 400
(:func:`fault_reply`). So authentication, injected faults, the rate ceiling, schema
validation, the handlers and the state are the SOAP endpoint's, and a contact created
over SOAP is found over REST. Replies that are not an operation's (a proxy page, an empty
503) go out as they are.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any
from urllib.parse import parse_qs

from lxml import etree

from ..envelope import OperationPlan, read_fields, render_request
from ..errors import THROTTLE_TEXT, InvalidInputError, ProtocolError
from ..rest import loads, read_object, to_json
from ..rest_routes import ROUTES, Route, route_for
from .app import Refusal, Reply, Request
from .wire import SoapFault, parse_request

__all__ = ["JSON_TYPE", "Refused", "RestFront", "decode", "fault_reply"]

JSON_TYPE = "application/json"


class Refused(Exception):
    """A REST request answered without reaching an operation (no such route: 404)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@cache
def _plans() -> dict[str, OperationPlan]:
    from ..zeep_binding import load_wsdl

    return dict(load_wsdl(None).operations)


def _bean(fields: dict[str, str | None]) -> bytes:
    return json.dumps(fields).encode()


def _not_found() -> Refused:
    return Refused(404, _bean({"errorActor": "CLIENT", "errorCode": "INVALID_REQUEST",
                               "message": "Not Found"}))


def decode(method: str, path: str, query: str, body: bytes) -> tuple[str, bytes]:
    """(operation, SOAP request envelope) for a REST call at ``path`` (relative to the REST
    base); raises Refused for a path the table does not know, SoapFault for a bad call."""
    route = route_for(method, path)
    if route is None:
        raise _not_found()
    op = _plans()[route.operation]
    values = parse_qs(query, keep_blank_values=True)
    arguments: dict[str, Any] = {}
    try:
        for q in route.query:
            f = op.request.by_name[q.argument]
            given = values.get(q.name)
            if not given:
                if f.min_occurs:
                    raise SoapFault.invalid_parameter(
                        f"Parameter '{q.name}' is mandatory but no value was specified.",
                        "MISSING_PARAMETER", parameter_name=q.name, value="null")
                continue
            arguments[q.argument] = f.from_text(given[0], q.name)  # type: ignore[misc]
        if route.body is not None:
            data = loads(body, route.operation) if body.strip() else None
            name = route.body.argument
            arguments[name] = read_object({name: data}, op.request, route.operation)[name]
        envelope = render_request(op, arguments)
    except (ProtocolError, InvalidInputError) as exc:
        raise SoapFault.invalid_parameter(f"Invalid request: {exc}", "INVALID_REQUEST") from None
    return route.operation, envelope


def fault_reply(fault: SoapFault) -> tuple[int, bytes, str]:
    """A fault as REST answers it: its bean with HTTP 400; the throttle, or a fault
    without a bean, as its text with HTTP 500."""
    if fault.detail_name is None or THROTTLE_TEXT in fault.faultstring:
        return 500, fault.faultstring.encode(), "text/plain; charset=utf-8"
    return 400, _bean({name: value or "" for name, value in fault.fields}), JSON_TYPE


def _payload_json(route: Route, op: OperationPlan, payload: etree._Element) -> tuple[int, bytes]:
    if route.reply is None:
        return (204 if 204 in route.success else 200), b""
    data = to_json(op.response, read_fields(payload, op.response, op.name), op.name)
    value = data.get(route.reply, [] if op.response.by_name[route.reply].repeated else None)
    return 200, json.dumps(value).encode()


class RestFront:
    """The REST front of the sandbox application at ``path`` (``/api/rest/v8/``): every
    request under it is a call; the payload and faults the operations answer go out as
    :func:`encode` renders them."""

    def __init__(self, path: str) -> None:
        self.path = path

    def direct(self, request: Request) -> Reply | None:
        return None

    def decode(self, request: Request) -> tuple[str, etree._Element]:
        try:
            _, envelope = decode(request.method, request.path[len(self.path):],
                                 request.query, request.body)
        except Refused as refused:
            raise Refusal(Reply(refused.status, refused.body,
                                {"Content-Type": JSON_TYPE})) from None
        return parse_request(envelope)

    def encode(self, operation: str, payload: etree._Element) -> Reply:
        status, data = _payload_json(ROUTES[operation], _plans()[operation], payload)
        return Reply(status, data, {"Content-Type": JSON_TYPE} if data else {})

    def encode_fault(self, fault: SoapFault) -> Reply:
        status, body, content_type = fault_reply(fault)
        return Reply(status, body, {"Content-Type": content_type})
