"""Every failure kind: typed faults, non-SOAP replies, transport failures, pickling."""

from __future__ import annotations

import pickle
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pytest_httpserver import HTTPServer
from recorded import PATH, assert_sent, serve
from werkzeug import Request, Response

import engage_soap
from engage_soap import (
    AuthenticationError,
    ConfigurationError,
    ContactNotFoundError,
    EngageClient,
    EngageError,
    EngageFault,
    HTTPStatusError,
    InvalidInputError,
    InvalidParameterError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
    UnexpectedServerError,
)

pytestmark = pytest.mark.long(4)

EMAIL = "j.mcexample@example.com"
NEW = "new.contact@example.com"
MakeClient = Callable[..., EngageClient]


@dataclass(frozen=True)
class Case:
    key: str
    call: Callable[[EngageClient], Any]
    cls: type[EngageError]
    fields: dict[str, Any]


def get(**kw: Any) -> Callable[[EngageClient], Any]:
    return lambda c: c.contact_get(**kw)


def send(mid: int = 23541) -> Callable[[EngageClient], Any]:
    return lambda c: c.message_send_single(mid, 1001)


# One row per recorded failure: the exact class raised and the fields it must carry.
CASES = [
    Case("messageSendSingle/no_such_message", send(24011454555), NoSuchObjectError,
         {"object_type": "Message", "property_name": "id", "property_value": "24011454555",
          "error_code": "NO_SUCH_OBJECT", "error_actor": "CLIENT", "http_status": 500,
          "operation": "messageSendSingle", "retryable": False, "request_sent": True}),
    Case("contactGet/not_found", get(email=NEW), ContactNotFoundError,
         {"object_type": "Contact", "property_value": NEW, "error_code": "NO_SUCH_OBJECT"}),
    Case("contactGet/invalid_parameter", get(mobile_number="12"), InvalidParameterError,
         {"parameter_name": "identifier.value", "value": "12",
          "error_code": "INVALID_PARAMETER", "error_actor": "CLIENT", "retryable": False}),
    Case("contactCreate/already_exists", lambda c: c.contact_create(email=EMAIL),
         ObjectAlreadyExistsError,
         {"error_code": "OBJECT_ALREADY_EXISTS", "operation": "contactCreate"}),
    Case("messageSendSingle/permission_denied", send(), PermissionDeniedError,
         {"error_code": "PERMISSION_DENIED", "error_actor": "CLIENT", "retryable": False}),
    Case("contactGet/unexpected_error", get(email=EMAIL), UnexpectedServerError,
         {"error_id": "e-7f3e-0042", "error_actor": "SERVER", "error_code": "UNEXPECTED_ERROR",
          "retryable": True, "request_sent": True}),
    Case("contactGet/unknown_fault", get(email=EMAIL), EngageFault,
         {"fault_code": "S:Server", "error_code": "TENANT_QUOTA_EXHAUSTED",
          "fault_string": "The tenant's lookup quota is exhausted.",
          "detail": {"errorActor": "CLIENT", "errorCode": "TENANT_QUOTA_EXHAUSTED",
                     "message": "The tenant's lookup quota is exhausted.",
                     "quotaName": "contactLookups"},
          "http_status": 500, "retryable": False}),
    Case("contactGet/html_502", get(email=EMAIL), HTTPStatusError,
         {"status_code": 502, "retryable": True, "request_sent": True}),
    Case("contactGet/empty_503", get(email=EMAIL), HTTPStatusError,
         {"status_code": 503, "body_excerpt": "", "retryable": True}),
    Case("contactGet/truncated_200", get(email=EMAIL), ProtocolError, {"request_sent": True}),
    Case("contactGet/html_200", get(email=EMAIL), ProtocolError, {}),
    Case("contactGet/wrong_root_200", get(email=EMAIL), ProtocolError, {}),
    Case("contactGet/wrong_response_element_200", get(email=EMAIL), ProtocolError, {}),
    Case("contactGet/wrong_typed_contact_id", get(email=EMAIL), ProtocolError, {}),
    Case("contactGet/rate_limited", get(email=EMAIL), RateLimitedError,
         {"retryable": True, "request_sent": True}),
    Case("contactGet/unauthorized_401", get(email=EMAIL), AuthenticationError,
         {"status_code": 401, "retryable": False}),
]

BY_KEY = {c.key: c for c in CASES}


def _raise(httpserver: HTTPServer, client: EngageClient, case: Case) -> EngageError:
    serve(httpserver, case.key)
    with pytest.raises(EngageError) as info:
        case.call(client)
    assert_sent(httpserver, case.key)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_recorded_failure_raises_the_exact_class_with_its_fields(
        httpserver: HTTPServer, client: EngageClient, case: Case) -> None:
    exc = _raise(httpserver, client, case)
    assert type(exc) is case.cls, f"{type(exc).__name__} raised, {case.cls.__name__} expected"
    for name, want in case.fields.items():
        assert getattr(exc, name) == want, name
    if isinstance(exc, EngageFault):
        assert exc.detail_xml is not None
        assert etree.fromstring(exc.detail_xml).tag == "detail"
        assert exc.detail["message"] in str(exc)
    assert client.last_exchange is not None
    assert client.last_exchange.status_code == httpserver.log[0][1].status_code


def test_unknown_fault_keeps_the_raw_detail(httpserver: HTTPServer,
                                            client: EngageClient) -> None:
    exc = _raise(httpserver, client, BY_KEY["contactGet/unknown_fault"])
    assert not isinstance(exc, (NoSuchObjectError, InvalidParameterError,
                                ObjectAlreadyExistsError, PermissionDeniedError,
                                UnexpectedServerError))
    detail = etree.fromstring(exc.detail_xml)  # type: ignore[attr-defined]
    assert detail[0].tag == "{http://ecircle.com/developer/ecmapi}QuotaException"
    assert detail[0].findtext("quotaName") == "contactLookups"


def test_html_502_keeps_a_body_excerpt(httpserver: HTTPServer, client: EngageClient) -> None:
    exc = _raise(httpserver, client, BY_KEY["contactGet/html_502"])
    assert isinstance(exc, HTTPStatusError) and not isinstance(exc, AuthenticationError)
    assert "502 Bad Gateway" in exc.body_excerpt
    assert len(exc.body_excerpt) <= 300


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refused(make_client: MakeClient) -> TransportError:
    client = make_client(endpoint=f"http://127.0.0.1:{_free_port()}{PATH}")
    with pytest.raises(TransportError) as info:
        client.contact_get(email=EMAIL)
    return info.value


def test_connection_refused_is_a_transport_error_not_sent(make_client: MakeClient) -> None:
    exc = _refused(make_client)
    assert type(exc) is TransportError
    assert exc.request_sent is False
    assert exc.retryable is True


def _timed_out(httpserver: HTTPServer, make_client: MakeClient) -> RequestTimeoutError:
    done = threading.Event()

    def slow(request: Request) -> Response:
        time.sleep(1.5)
        done.set()
        return Response(b"", status=200, content_type="text/xml;charset=utf-8")

    httpserver.expect_oneshot_request(PATH, method="POST").respond_with_handler(slow)
    client = make_client(timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as info:
        client.contact_get(email=EMAIL)
    assert time.monotonic() - started < 1.4
    assert done.wait(5)  # let the handler finish before the server is checked
    return info.value


def test_read_timeout_is_a_request_timeout_after_sending(
        httpserver: HTTPServer, make_client: MakeClient) -> None:
    exc = _timed_out(httpserver, make_client)
    assert exc.request_sent is True
    assert exc.retryable is True


def test_a_read_is_retried_after_a_502(httpserver: HTTPServer,
                                       make_client: MakeClient) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=2, base_delay=0, jitter=False))
    serve(httpserver, "contactGet/html_502", "contactGet/email_found")
    assert client.contact_get(email=EMAIL).id == 1001
    assert_sent(httpserver, "contactGet/html_502", "contactGet/email_found")


def test_a_send_that_reached_the_server_is_not_retried(
        httpserver: HTTPServer, make_client: MakeClient) -> None:
    client = make_client(retry=RetryPolicy(max_attempts=3, base_delay=0, jitter=False))
    httpserver.expect_request(PATH, method="POST").respond_with_data(
        b"<html>502 Bad Gateway</html>", 502, content_type="text/html")
    with pytest.raises(HTTPStatusError) as info:
        client.message_send_single(23541, 1001)
    assert info.value.retryable and info.value.request_sent
    assert len(httpserver.log) == 1


# ---------------------------------------------------------------- pickling

def _config_error(make_client: MakeClient, tmp_path: Path) -> EngageError:
    with pytest.raises(ConfigurationError) as info:
        make_client(wsdl=tmp_path / "missing.wsdl")
    return info.value


def _input_error(make_client: MakeClient) -> EngageError:
    with pytest.raises(InvalidInputError) as info:
        make_client().message_send_single(0, 1001)
    return info.value


PICKLED = [pytest.param(c, id=c.key) for c in CASES] + [
    pytest.param("refused", id="TransportError"),
    pytest.param("timeout", id="RequestTimeoutError"),
    pytest.param("config", id="ConfigurationError"),
    pytest.param("input", id="InvalidInputError"),
]


@pytest.mark.parametrize("case", PICKLED)
def test_every_raised_exception_pickles_with_its_fields(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path,
        case: Case | str) -> None:
    if isinstance(case, Case):
        exc = _raise(httpserver, make_client(), case)
    elif case == "refused":
        exc = _refused(make_client)
    elif case == "timeout":
        exc = _timed_out(httpserver, make_client)
    elif case == "config":
        exc = _config_error(make_client, tmp_path)
    else:
        exc = _input_error(make_client)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is type(exc)
    assert str(copy) == str(exc)
    assert copy.args == exc.args
    state = {k: v for k, v in vars(exc).items() if not k.startswith("__")}
    assert state and {k: getattr(copy, k) for k in state} == state
    for prop in ("object_type", "property_name", "property_value", "parameter_name",
                 "value", "error_id"):
        if hasattr(exc, prop):
            assert getattr(copy, prop) == getattr(exc, prop)


def test_the_pickle_cases_cover_every_exception_class() -> None:
    raised = {c.cls for c in CASES} | {TransportError, RequestTimeoutError,
                                       ConfigurationError, InvalidInputError}
    public = {getattr(engage_soap, n) for n in engage_soap.__all__}
    errors = {cls for cls in public if isinstance(cls, type) and issubclass(cls, EngageError)}
    assert errors - raised == {engage_soap.EngageError}  # the abstract base only
