"""The REST route table against the bundled WSDL, and the recorded JSON exchanges against it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engage_soap.envelope import ComplexPlan, OperationPlan
from engage_soap.errors import (
    ContactNotFoundError,
    EngageError,
    InvalidParameterError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    PermissionDeniedError,
    RateLimitedError,
    UnexpectedServerError,
    fault_from_detail,
    throttled,
)
from engage_soap.rest_routes import (
    ERROR_BEANS,
    JSON,
    NO_BODY_SUCCESS,
    RESPONSES,
    ROUTES,
    UNMAPPED,
    Route,
    error_bean,
    route_for,
)
from engage_soap.zeep_binding import load_wsdl

REST_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rest"
CASES = sorted(p for p in REST_FIXTURES.glob("*/*") if p.is_dir())
OPERATIONS: dict[str, OperationPlan] = dict(load_wsdl(None).operations)


def _load(case: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((case / name).read_text(encoding="utf-8"))
    return data


def _request(route: Route) -> ComplexPlan:
    return OPERATIONS[route.operation].request


# ---------------------------------------------------------------- the table vs the WSDL

def test_the_table_covers_the_promised_operations() -> None:
    for name in ("contactGet", "contactCreate", "contactUpdate", "contactDelete",
                 "messageSendSingle", "systemGetApiVersion", "userGetByEmail", "userGet",
                 "membershipSubscribeByEmail", "groupGet"):
        assert name in ROUTES


def test_every_operation_is_routed_or_said_unmapped_never_both() -> None:
    assert set(ROUTES) | set(UNMAPPED) == set(OPERATIONS)
    assert not set(ROUTES) & set(UNMAPPED)


@pytest.mark.parametrize("route", ROUTES.values(), ids=list(ROUTES))
def test_route_operation_and_arguments_are_the_wsdls(route: Route) -> None:
    assert route.operation in OPERATIONS
    request = _request(route)
    for q in route.query:
        field = request.by_name.get(q.argument)
        assert field is not None, f"{route.operation}: no request element {q.argument}"
        assert field.complex is None and not field.repeated, "a query parameter is simple"
    if route.body is not None:
        field = request.by_name.get(route.body.argument)
        assert field is not None, f"{route.operation}: no request element {route.body}"
        assert route.body.shape == ("array" if field.repeated else "object")
        assert field.repeated or field.complex is not None
    sent = [q.argument for q in route.query] + (
        [route.body.argument] if route.body else [])
    assert sorted(sent) == sorted(f.name for f in request.fields), \
        "every SOAP argument travels exactly once"
    names = [q.name for q in route.query] + [e.name for e in route.extra]
    assert len(names) == len(set(names))
    assert not {e.name for e in route.extra} & set(request.by_name)


@pytest.mark.parametrize("route", ROUTES.values(), ids=list(ROUTES))
def test_route_reply_is_the_operations_one_reply_element(route: Route) -> None:
    reply = OPERATIONS[route.operation].response
    if route.reply is None:
        assert not reply.fields and route.reply_shape is None
        assert set(route.success) <= set(NO_BODY_SUCCESS)
        return
    assert [f.name for f in reply.fields] == [route.reply]
    field = reply.fields[0]
    expected = ("array" if field.repeated else
                "object" if field.complex is not None else "scalar")
    assert route.reply_shape == expected
    assert route.success == (200,)


def test_paths_are_unique_and_found_by_method_and_path() -> None:
    keys = [(r.method, r.path) for r in ROUTES.values()]
    assert len(keys) == len(set(keys))
    for route in ROUTES.values():
        assert route_for(route.method, f"/{route.path}") is route
        assert route.path == route.path.strip("/") and "?" not in route.path
    assert route_for("GET", "contact/get") is None  # contact/get is a POST


def test_the_sender_profile_travels_as_a_query_parameter_on_sends() -> None:
    for name in ("messageSendSingle", "messageSendTransactional"):
        extra = {e.name: e for e in ROUTES[name].extra}
        assert extra["senderProfileName"].keyword == "sender_profile"
        assert not extra["senderProfileName"].required


def test_json_member_names_are_the_soap_names() -> None:
    assert not JSON.renames
    assert JSON.repeated_as_array and JSON.null_is_absent
    assert dict(JSON.headers) == {"Accept": "application/json"}
    assert dict(JSON.body_headers) == {"Content-Type": "application/json"}


# ---------------------------------------------------------------- error beans

def _fault(body: dict[str, Any], status: int, operation: str) -> EngageError:
    """A JSON error body read by the table and classified by errors.py, as a wire would."""
    bean = error_bean(body)
    fields = {k: str(v) for k, v in body.items() if v is not None}  # null: absent
    return fault_from_detail(fault_code=None, fault_string=fields.get("message"),
                             detail_name=bean.detail if bean else None, fields=fields,
                             detail_xml=None, http_status=status, operation=operation)


@pytest.mark.parametrize(("body", "detail"), [
    ({"errorCode": "NO_SUCH_OBJECT", "objectType": "Contact"}, "NoSuchObjectException"),
    ({"errorCode": "OBJECT_ALREADY_EXISTS", "objectType": "Contact"},
     "ObjectAlreadyExistsException"),
    ({"errorCode": "MISSING_PARAMETER", "parameterName": "messageId", "propertyName": None},
     "InvalidParameterException"),
    ({"errorCode": "PERMISSION_DENIED", "errorId": None}, "UnexpectedErrorException"),
    ({"errorCode": "INVALID_REQUEST", "message": "Not Found"}, None),
])
def test_error_bean_is_named_by_its_marker_field(body: dict[str, Any],
                                                 detail: str | None) -> None:
    bean = error_bean(body)
    assert (bean.detail if bean else None) == detail


def test_bean_fields_are_the_soap_fault_detail_fields() -> None:
    by_detail = {b.detail: b.fields for b in ERROR_BEANS}
    assert by_detail["NoSuchObjectException"] == (
        "errorActor", "errorCode", "message", "objectType", "propertyName", "propertyValue")
    assert by_detail["InvalidParameterException"] == (
        "errorActor", "errorCode", "message", "parameterName", "propertyName", "value")
    assert by_detail["UnexpectedErrorException"] == (
        "errorActor", "errorCode", "message", "errorId")
    statuses = [r.status for r in RESPONSES]
    assert len(statuses) == len(set(statuses))
    assert {400, 401, 403, 404, 500} <= set(statuses)


# ---------------------------------------------------------------- recorded exchanges

EXPECTED_ERRORS: dict[str, type[EngageError]] = {
    "contactGet/not_found": ContactNotFoundError,
    "contactGet/invalid_parameter": InvalidParameterError,
    "contactGet/unexpected_error": UnexpectedServerError,
    "contactGet/rate_limited": RateLimitedError,
    "contactCreate/already_exists": ObjectAlreadyExistsError,
    "messageSendSingle/missing_parameter": InvalidParameterError,
    "messageSendSingle/no_such_message": NoSuchObjectError,
    "groupGetPreparedMessages/permission_denied": PermissionDeniedError,
}


def _case_id(case: Path) -> str:
    return f"{case.parent.name}/{case.name}"


def test_the_promised_fixtures_exist() -> None:
    ids = {_case_id(c) for c in CASES}
    assert set(EXPECTED_ERRORS) <= ids
    for name in ("contactGet/found", "contactCreate/created", "contactUpdate/updated",
                 "contactDelete/deleted", "messageSendSingle/with_content_and_sender_profile",
                 "userGetByEmail/found", "membershipSubscribeByEmail/subscribed",
                 "systemGetApiVersion/version", "contactGet/rate_limited_text",
                 "contactGet/unauthorized_401"):
        assert name in ids
    assert (REST_FIXTURES / "README.md").is_file()


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_fixture_request_is_a_route_of_the_table(case: Path) -> None:
    request, reply = _load(case, "request.json"), _load(case, "reply.json")
    assert set(request) == {"method", "path", "query", "headers", "body"}
    assert set(reply) in ({"status", "headers", "body"}, {"status", "headers", "body", "text"})
    route = route_for(request["method"], request["path"])
    assert route is not None, f"{request['method']} {request['path']} is not in the table"
    assert route.operation == case.parent.name
    allowed = {q.name for q in route.query} | {e.name for e in route.extra}
    assert set(request["query"]) <= allowed
    assert all(isinstance(v, str) for v in request["query"].values())
    assert (request["body"] is not None) == (route.body is not None)
    if route.body is not None:
        assert isinstance(request["body"], list if route.body.shape == "array" else dict)
        assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Accept"] == "application/json"
    assert not {k.lower() for k in request["headers"]} & {"authorization", "cookie"}
    status = reply["status"]
    if 200 <= status < 300:
        if route.reply is None:
            assert status in NO_BODY_SUCCESS and reply["body"] is None
        else:
            assert status in route.success and reply["body"] is not None
            assert reply["headers"]["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_fixture_error_beans_map_to_the_soap_exception_classes(name: str) -> None:
    case = REST_FIXTURES / name
    request, reply = _load(case, "request.json"), _load(case, "reply.json")
    route = route_for(request["method"], request["path"])
    assert route is not None
    err = _fault(reply["body"], reply["status"], route.operation)
    assert type(err) is EXPECTED_ERRORS[name]


def test_fixture_details_keep_the_bean_fields() -> None:
    body = _load(REST_FIXTURES / "contactGet" / "not_found", "reply.json")["body"]
    err = _fault(body, 400, "contactGet")
    assert isinstance(err, ContactNotFoundError)
    assert (err.error_actor, err.error_code, err.property_value) == (
        "CLIENT", "NO_SUCH_OBJECT", "nobody.here@example.com")
    body = _load(REST_FIXTURES / "messageSendSingle" / "missing_parameter",
                 "reply.json")["body"]
    missing = _fault(body, 400, "messageSendSingle")
    assert isinstance(missing, InvalidParameterError)
    assert missing.parameter_name == "messageId" and "propertyName" not in missing.detail


def test_throttle_fixtures_carry_the_throttle_text() -> None:
    for name in ("rate_limited", "rate_limited_text"):
        reply = _load(REST_FIXTURES / "contactGet" / name, "reply.json")
        assert reply["status"] == 500
        assert throttled(reply.get("text"), json.dumps(reply["body"]))
