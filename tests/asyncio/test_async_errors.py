"""Every error class as on the sync client, with the same fields: the recorded failure
table of tests/core (CASES) replayed through the async client, and the transport kinds
(refused, deadline, reset, cut short, throttle, configuration, input) against the sandbox."""

from __future__ import annotations

import asyncio
import pickle
import socket
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asyncio_support import CONTACT, MESSAGE
from pytest_httpserver import HTTPServer
from recorded import PASSWORD, PATH, USER, assert_sent, serve
from test_core_errors import CASES, Case

from engage_soap import (
    AsyncEngageClient,
    ConfigurationError,
    EngageError,
    HTTPStatusError,
    InvalidInputError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
)
from engage_soap.pytest_plugin import EngageSandbox


@pytest.fixture
def client(httpserver: HTTPServer) -> Iterator[AsyncEngageClient]:
    made = AsyncEngageClient(httpserver.url_for(PATH), USER, PASSWORD, rate_limit=None,
                             retry=RetryPolicy.none(), timeout=5)
    yield made
    asyncio.run(made.aclose())
    httpserver.check_handler_errors()
    httpserver.check_assertions()


def _raised(call: Awaitable[Any]) -> EngageError:
    async def main() -> None:
        await call

    with pytest.raises(EngageError) as info:
        asyncio.run(main())
    copy = pickle.loads(pickle.dumps(info.value))  # plain data, as on the sync client
    assert type(copy) is type(info.value) and vars(copy) == vars(info.value)
    return info.value


@pytest.mark.parametrize("case", CASES, ids=[c.key for c in CASES])
def test_recorded_failure_raises_the_exact_class_with_its_fields(
        httpserver: HTTPServer, client: AsyncEngageClient, case: Case) -> None:
    serve(httpserver, case.key)
    exc = _raised(case.call(client))
    assert_sent(httpserver, case.key)
    assert type(exc) is case.cls, f"{type(exc).__name__} raised, {case.cls.__name__} expected"
    for name, want in case.fields.items():
        assert getattr(exc, name) == want, name
    assert client.last_exchange is not None
    assert client.last_exchange.status_code == httpserver.log[0][1].status_code


def test_connection_refused_is_a_transport_error_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AsyncEngageClient(f"http://127.0.0.1:{port}{PATH}", USER, PASSWORD,
                               rate_limit=None, retry=RetryPolicy.none())
    exc = _raised(client.contact_get(contact_id=CONTACT))
    assert type(exc) is TransportError
    assert (exc.request_sent, exc.retryable, exc.operation) == (False, True, "contactGet")
    asyncio.run(client.aclose())


@pytest.mark.parametrize(("kind", "cls", "tries"), [
    ("http_502", HTTPStatusError, 1),
    ("reset", TransportError, 1),
    ("truncated", ProtocolError, 1),
    ("throttle", RateLimitedError, 3),  # the server said it did nothing: tried again
])
def test_a_send_that_fails_is_raised_as_on_the_sync_client_and_never_repeated(
        engage_sandbox: EngageSandbox, kind: str, cls: type[EngageError],
        tries: int) -> None:
    engage_sandbox.faults.inject("messageSendSingle", kind)  # type: ignore[arg-type]
    client = engage_sandbox.make_async_client(retry=RetryPolicy(
        max_attempts=3, base_delay=0.001, rate_limited_delay=0.01))
    sync_client = engage_sandbox.make_client(retry=RetryPolicy(
        max_attempts=3, base_delay=0.001, rate_limited_delay=0.01))
    exc = _raised(client.message_send_single(MESSAGE, CONTACT))
    with pytest.raises(EngageError) as sync:
        sync_client.message_send_single(MESSAGE, CONTACT)
    assert type(exc) is cls is type(sync.value)
    assert vars(exc) == vars(sync.value)
    assert exc.request_sent is True and exc.operation == "messageSendSingle"
    calls = [c for c in engage_sandbox.state.calls if c.operation == "messageSendSingle"]
    assert len(calls) == 2 * tries  # the async client's, then the sync client's
    assert len(engage_sandbox.outbox) == (2 if kind == "truncated" else 0)  # handled, cut


def test_the_deadline_holds(engage_sandbox: EngageSandbox) -> None:
    engage_sandbox.faults.inject("contactGet", None, latency=1.0, times=1)
    client = engage_sandbox.make_async_client(timeout=0.3, retry=RetryPolicy.none())
    exc = _raised(client.contact_get(contact_id=CONTACT))
    assert type(exc) is RequestTimeoutError and exc.request_sent is True


def test_configuration_and_input_errors(engage_sandbox: EngageSandbox,
                                        tmp_path: Path) -> None:
    async def create() -> None:
        await AsyncEngageClient.create(engage_sandbox.url, "u", "p",
                                       wsdl=tmp_path / "missing.wsdl")

    with pytest.raises(ConfigurationError, match="WSDL file not found"):
        asyncio.run(create())
    with pytest.raises(ConfigurationError, match="max_workers"):
        AsyncEngageClient(engage_sandbox.url, "u", "p", max_workers=0)
    with pytest.raises(ConfigurationError, match="timeout"):
        asyncio.run(AsyncEngageClient(engage_sandbox.url, "u", "p", timeout=-1).api_version())
    client = engage_sandbox.make_async_client()
    exc = _raised(client.contact_get())
    assert type(exc) is InvalidInputError
