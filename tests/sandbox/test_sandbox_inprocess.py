"""The in-process transport: the sandbox application without a socket, the same replies and
the very errors the urllib3 transport raises for the same socket actions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from engage_soap import EngageClient, EngageError, RequestTimeoutError, TransportError
from engage_soap.retry import RetryPolicy
from engage_soap.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    InProcessTransport,
    Reply,
    Request,
    Sandbox,
)
from engage_soap.transport import HttpTransport, Transport

VERSION = (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
           b'xmlns:ecm="http://ecircle.com/developer/ecmapi"><soapenv:Body>'
           b"<ecm:systemGetApiVersion/></soapenv:Body></soapenv:Envelope>")


@pytest.fixture
def running() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sandbox:
        yield sandbox


def _client(url: str, transport: Transport) -> EngageClient:
    return EngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, transport=transport,
                        rate_limit=None, retry=RetryPolicy.none())


def _outcome(client: EngageClient) -> tuple[type[EngageError], bool | None, bool]:
    with pytest.raises(EngageError) as caught:
        client.contact_get(contact_id=33457)
    return type(caught.value), caught.value.request_sent, caught.value.retryable


@pytest.mark.parametrize("kind", ["reset", "reset_after", "truncated"])
def test_socket_actions_raise_what_the_urllib3_transport_raises(running: Sandbox,
                                                                 kind: str) -> None:
    http = _client(running.url, HttpTransport(timeout=5))
    local = _client(running.url, running.transport(timeout=5))
    try:
        outcomes = []
        for client in (http, local):
            running.faults.inject("contactGet", kind, times=1)  # type: ignore[arg-type]
            outcomes.append(_outcome(client))
        assert outcomes[0] == outcomes[1]
        assert outcomes[0][1] is True  # the request was sent either way
    finally:
        http.close()
        local.close()
    # Both calls reached the one application and were recorded there.
    assert [c.injected for c in running.state.calls] == [kind, kind]


def test_a_delay_past_the_deadline_is_a_timeout_after_sending(running: Sandbox) -> None:
    running.faults.inject("contactGet", latency=5.0)
    http = _client(running.url, HttpTransport(timeout=0.3))
    local = _client(running.url, running.transport(timeout=0.3))
    try:
        started = time.monotonic()
        outcomes = [_outcome(http), _outcome(local)]
        assert time.monotonic() - started < 4.0  # neither waited for the whole delay
    finally:
        http.close()
        local.close()
    assert outcomes[0] == outcomes[1] == (RequestTimeoutError, True, True)


def test_a_short_delay_is_waited_and_answered() -> None:
    sandbox = Sandbox(rate_limit=None)
    sandbox.faults.inject("systemGetApiVersion", latency=0.2)
    with _client(sandbox.inprocess_url, sandbox.transport(timeout=5)) as client:
        started = time.monotonic()
        assert client.api_version() == "8"
        assert time.monotonic() - started >= 0.2


def test_replies_are_the_same_bytes_as_over_http(running: Sandbox) -> None:
    headers = {"Authorization": "Basic c2FuZGJveC1hcGk6c2FuZGJveC1zZWNyZXQ=",
               "Content-Type": "text/xml; charset=utf-8"}
    with HttpTransport(timeout=5) as http:
        over_http = http.request("POST", running.url, VERSION, headers)
    in_process = running.transport().request("POST", running.url, VERSION, headers)
    assert (in_process.status, in_process.body) == (over_http.status, over_http.body)
    for name in ("Content-Type", "content-length"):
        assert in_process.headers[name] == over_http.headers[name]


def test_works_without_a_server_and_shares_the_state() -> None:
    sandbox = Sandbox(rate_limit=None)
    transport = sandbox.transport()
    assert isinstance(transport, Transport) and isinstance(transport, InProcessTransport)
    with _client(sandbox.inprocess_url, transport) as client:
        client.message_send_single(23541, 33457)
    assert not sandbox.running
    assert sandbox.inprocess_url == "https://sandbox.invalid/api/soap/v8/"
    assert [entry.recipient_id for entry in sandbox.state.outbox] == [33457]
    assert transport.requests == 1
    with pytest.raises(TransportError) as closed:
        transport.request("POST", sandbox.inprocess_url, VERSION)
    assert closed.value.request_sent is False


def test_documents_and_errors_in_process() -> None:
    sandbox = Sandbox(rate_limit=None)
    transport = sandbox.transport()
    wsdl = transport.request("GET", sandbox.inprocess_url + "?wsdl")
    assert wsdl.status == 200 and sandbox.inprocess_url.encode() in wsdl.body
    assert transport.request("GET", sandbox.inprocess_url + "ecmapi.xsd").status == 200
    assert transport.request("GET", sandbox.inprocess_url).status == 405
    assert transport.request("POST", "https://x.invalid/elsewhere", VERSION).status == 404
    assert transport.request("POST", sandbox.inprocess_url, VERSION).status == 401


def test_the_reply_cap_and_bad_settings() -> None:
    sandbox = Sandbox(rate_limit=None)
    with pytest.raises(TransportError, match="byte cap") as too_big:
        sandbox.transport(max_reply_bytes=100).request(
            "GET", sandbox.inprocess_url + "ecmapi.xsd")
    assert (too_big.value.request_sent, too_big.value.retryable) == (True, False)
    for bad in (0, -1, float("inf"), True):
        with pytest.raises(EngageError, match="timeout"):
            sandbox.transport(timeout=bad)


def test_the_application_is_a_function_of_requests() -> None:
    sandbox = Sandbox(rate_limit=None, latency=0.5, max_body_bytes=300)
    app = sandbox.app
    # Latency and socket actions are part of the reply, carried out by the front end.
    reply = app.handle(Request("GET", sandbox.path, "wsdl"))
    assert reply.status == 200 and reply.delay == 0.5
    sandbox.latency = 0
    sandbox.faults.inject("systemGetApiVersion", "reset")
    auth = {"authorization": "Basic c2FuZGJveC1hcGk6c2FuZGJveC1zZWNyZXQ="}
    assert app.handle(Request("POST", sandbox.path, "", auth, VERSION)).reset
    assert app.handle(Request("POST", sandbox.path, "", auth, b"x" * 301)).status == 413
    assert app.check_length(-1) == Reply.text(400, "Bad Content-Length\n", close=True)
    assert app.authenticate("Basic c2FuZGJveC1hcGk6c2FuZGJveC1zZWNyZXQ=") == "sandbox-api"
    assert app.authenticate("Basic bm9ib2R5Ong=") is None


def test_the_rest_front_shares_the_application_in_process() -> None:
    sandbox = Sandbox(rate_limit=None)
    transport = sandbox.transport()
    base = "https://sandbox.invalid" + sandbox.rest_path
    auth = {"Authorization": "Basic c2FuZGJveC1hcGk6c2FuZGJveC1zZWNyZXQ="}
    version = transport.request("GET", base + "system/getApiVersion", None, auth)
    assert (version.status, version.body) == (200, b'"8"')
    assert version.headers["content-type"] == "application/json"
    assert transport.request("GET", base + "system/getApiVersion").status == 401
    assert transport.request("GET", base + "no/such/route", None, auth).status == 404
    sandbox.faults.inject("systemGetApiVersion", "reset", times=1)
    with pytest.raises(TransportError) as reset:
        transport.request("GET", base + "system/getApiVersion", None, auth)
    assert reset.value.request_sent is True
    assert [c.operation for c in sandbox.state.calls] == ["systemGetApiVersion"] * 2
