"""The REST wire: ``call(operation, arguments) -> dict`` with JSON over the same Transport.

It speaks the same plain data as the SOAP wire (:mod:`engage_soap.soap`) and reads the
same service model: where each operation lives and how its arguments travel is the
route table (:mod:`engage_soap.rest_routes`); arguments are checked by the one check
(:func:`engage_soap.schema.write_fields`) and replies read with the plans' converters,
so a call gives the same values, types and errors on both wires. The deadline, reply
cap, TLS, retries and rate limit live above (the facade) and below (the transport).

What the route table marks as a guess is read leniently: a scalar reply quoted or not,
any 2xx for a route without a reply body, the throttle as a JSON bean or plain text,
an error bean with any non-2xx status but 404.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn
from urllib.parse import urlencode

from .envelope import AUTH_STATUSES, http_status_error
from .errors import (
    ConfigurationError,
    EngageError,
    InvalidInputError,
    ProtocolError,
    fault_from_detail,
    throttled,
)
from .models import check_text
from .rest_routes import JSON, ROUTES, UNMAPPED, Route, error_bean
from .schema import ComplexPlan, Field, complete, write_fields
from .service import Operation, ServiceModel
from .soap import WireBase
from .transport import Transport

__all__ = ["RestWire", "loads", "read_object", "to_json"]


_SENDER_PROFILE = "senderProfileName"


# ---------------------------------------------------------------- JSON in


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def loads(body: bytes, what: str) -> Any:
    """Parse an untrusted JSON body (already capped by the transport) as plain data.

    Numbers stay text (the plans convert them, so an xs:long is an int and an xs:decimal a
    Decimal, never a float); NaN and Infinity are refused; nesting deeper than Python's
    recursion limit is a ProtocolError like any other malformed body.
    """
    try:
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"{what}: the reply is not valid JSON: {exc}"[:300],
                            request_sent=True, retryable=False) from exc


def _value(f: Field, value: Any, where: str) -> Any:
    if value is None:
        return None
    if f.complex is not None:
        return read_object(value, f.complex, where)
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif not isinstance(value, str):
        raise ProtocolError(f"{where} should be a simple value, got a JSON "
                            f"{'array' if isinstance(value, list) else 'object'}",
                            request_sent=True)
    return f.from_text(value, where)  # type: ignore[misc]


def read_object(data: Any, plan: ComplexPlan, path: str) -> dict[str, Any]:
    """Read a JSON object into a dict keyed by field name, as ``envelope.read_fields``
    reads an element: members the plan does not declare are skipped, null is absent, and
    what is absent is None (or []) by :func:`engage_soap.schema.complete`."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{path} should be a JSON object", request_sent=True)
    out: dict[str, Any] = {}
    by_name = plan.by_name
    for name, value in data.items():
        f = by_name.get(name)
        if f is None or value is None:
            continue
        where = f"{path}/{name}"
        if f.repeated:
            items = value if isinstance(value, list) else [value]
            out[name] = [_value(f, item, where) for item in items]
        elif isinstance(value, list):
            raise ProtocolError(f"{where} occurs more than once", request_sent=True)
        else:
            out[name] = _value(f, value, where)
    return complete(plan, out)


# ---------------------------------------------------------------- JSON out


def _typed(kind: str, text: str) -> Any:
    """A checked simple value's text as the JSON value of its kind."""
    if kind == "integer":
        return int(text)
    if kind == "boolean":
        return text == "true"
    return text  # strings, base64 text; a decimal as its exact text


class _JsonWriter:
    """Writes checked fields into a dict of JSON values (see schema.write_fields)."""

    def text(self, parent: dict[str, Any], f: Field, text: str) -> None:
        _put(parent, f, _typed(f.plan.kind, text))  # type: ignore[union-attr]

    def nil(self, parent: dict[str, Any], f: Field) -> None:
        _put(parent, f, None)

    def empty(self, parent: dict[str, Any], f: Field) -> None:
        parent[f.name] = []

    def complex(self, parent: dict[str, Any], f: Field) -> dict[str, Any]:
        child: dict[str, Any] = {}
        _put(parent, f, child)
        return child

    def end(self, parent: dict[str, Any], f: Field) -> None:
        pass  # a dict needs no closing


def _put(parent: dict[str, Any], f: Field, value: Any) -> None:
    if f.repeated:
        parent.setdefault(f.name, []).append(value)
    else:
        parent[f.name] = value


_JSON_WRITER = _JsonWriter()


def to_json(plan: ComplexPlan, value: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``value`` checked against ``plan`` (the one check) and written as JSON values."""
    out: dict[str, Any] = {}
    write_fields(_JSON_WRITER, out, plan, value, path)
    return out


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------- the wire


def _http_error(status: int, body: bytes) -> EngageError:
    return http_status_error(status, body, endpoint_form="https://<host>/api/rest/v<N>/")


def _bean_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


def _fault(bean: Mapping[str, Any], status: int, operation: str) -> EngageError:
    """An error bean, classified by the one table (errors.fault_from_detail)."""
    named = error_bean(bean)
    fields = {k: _bean_text(v) for k, v in bean.items() if v is not None}
    return fault_from_detail(fault_code=None, fault_string=fields.get("message"),
                             detail_name=named.detail if named else None, fields=fields,
                             detail_xml=None, http_status=status, operation=operation)


def read_reply(op: Operation, route: Route, status: int, body: bytes) -> dict[str, Any]:
    """Read a REST reply to ``op``: the SOAP reply's shape, or raise the typed error."""
    if status in AUTH_STATUSES:
        raise _http_error(status, body)
    if 200 <= status < 300:
        if route.reply is None:
            return complete(op.reply, {})
        if not body.strip():
            raise ProtocolError(f"{op.name}: HTTP {status} with an empty body",
                                request_sent=True)
        # the body is the value of the SOAP reply's one element
        return read_object({route.reply: loads(body, op.name)}, op.reply, op.name)
    if not body.strip():
        raise _http_error(status, body)
    try:
        data = loads(body, op.name)
    except ProtocolError:
        data = None
    if isinstance(data, dict) and status != 404 and (
            "errorCode" in data or "errorActor" in data):
        raise _fault(data, status, op.name)
    text = body.decode("utf-8", "replace")
    if status == 500 and throttled(text):
        raise fault_from_detail(fault_code=None, fault_string=text, detail_name=None,
                                fields={}, detail_xml=None, http_status=status,
                                operation=op.name)
    raise _http_error(status, body)


class RestWire(WireBase):
    """Calls ecmapi operations over the vendor's REST API (JSON), by the route table.

    ``endpoint`` is the REST base ``https://<host>[/<instance>]/api/rest/v<N>/``; ``model``
    the service model of the contract in use (the bundled WSDL unless told otherwise), of
    which this wire offers the operations that have a route.
    """

    protocol = "rest"

    def __init__(self, endpoint: str, model: ServiceModel, http: Transport,
                 authorization: str) -> None:
        super().__init__(ServiceModel({name: op for name, op in model.items()
                                       if name in ROUTES}, model.source), http)
        self.endpoint = endpoint if endpoint.endswith("/") else endpoint + "/"
        self._all = model
        self._headers = dict(JSON.headers)
        self._body_headers = {**self._headers, **dict(JSON.body_headers)}
        self._auth = {"Authorization": authorization}

    @property
    def sender_profile_path(self) -> tuple[str, ...] | None:
        """Where messageSendSingle's arguments carry a sender profile: the route's REST-only
        query parameter ``senderProfileName``."""
        route = ROUTES.get("messageSendSingle")
        if route is None or not any(e.name == _SENDER_PROFILE for e in route.extra):
            return None
        return (_SENDER_PROFILE,)

    def _route(self, operation: str) -> tuple[Operation, Route]:
        route = ROUTES.get(operation)
        if route is None or operation not in self._model:
            if operation in self._all or operation in UNMAPPED:
                why = UNMAPPED.get(operation, "not in the REST route table")
                raise ConfigurationError(
                    f"{operation} has no REST path ({why}); nothing was sent. Call it over "
                    "SOAP (protocol='soap')")
            self._model.operation(operation)  # InvalidInputError for an unknown name
        assert route is not None
        return self._model[operation], route

    def _render(self, operation: str, arguments: Mapping[str, Any]
                ) -> tuple[Operation, Route, str, bytes | None]:
        """Check ``arguments`` (nothing is sent) and build the URL and body."""
        op, route = self._route(operation)
        if not isinstance(arguments, Mapping):
            raise InvalidInputError(f"{operation} must be a mapping, not "
                                    f"{type(arguments).__name__}")
        extra: list[tuple[str, str]] = []
        if route.extra:
            names = {e.name for e in route.extra}
            for e in route.extra:
                value = arguments.get(e.name)
                if value is None:
                    if e.required:
                        raise InvalidInputError(f"{operation}/{e.name} is required on REST")
                    continue
                extra.append((e.name, check_text(value, f"{operation}/{e.name}")))
            arguments = {k: v for k, v in arguments.items() if k not in names}
        data = to_json(op.request, arguments, operation)
        query = [(q.name, _query_text(data[q.argument])) for q in route.query
                 if data.get(q.argument) is not None]
        query += extra
        url = self.endpoint + route.path + (f"?{urlencode(query)}" if query else "")
        body = None
        if route.body is not None:
            value = data.get(route.body.argument)
            if value is None and route.body.shape == "array":
                value = []
            if value is not None:
                body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return op, route, url, body

    def check(self, operation: str, arguments: Mapping[str, Any]) -> None:
        self._render(operation, arguments)

    def call(self, operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        op, route, url, body = self._render(operation, arguments)
        headers = self._headers if body is None else self._body_headers
        reply = self.exchange(operation, route.method, url, body, headers,
                              {**headers, **self._auth})
        return read_reply(op, route, reply.status, reply.body)

