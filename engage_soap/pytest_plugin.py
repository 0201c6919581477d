"""pytest plugin (entry point ``engage_soap``): ``engage_sandbox`` and ``engage_replay``.

A test gets a fresh sandbox and an EngageClient of it::

    def test_order_mail(engage_sandbox):
        engage_sandbox.client.send_prepared_message(23541, email="j.mcexample@example.com",
                                                    parameters={"FIRSTNAME": "Jo"})
        assert engage_sandbox.outbox[-1].parameter_dict == {"FIRSTNAME": "Jo"}

Defaults chosen for tests: the sandbox's rate ceiling is OFF (``rate_limit=None``) and the
client neither paces calls (``rate_limit=None``) nor waits long between retries (the
default retry rules, with back-off in milliseconds). Change the sandbox with a marker,
e.g. ``@pytest.mark.engage_sandbox(rate_limit=10, api_version="9")`` (keyword arguments of
``Sandbox``), and build other clients with ``engage_sandbox.make_client(**kwargs)``.

No socket unless the test needs one: the clients call the sandbox in-process
(``sandbox.transport()``: same replies, same errors for resets, cut replies and timeouts),
and the HTTP server on 127.0.0.1 starts the first time the test asks for ``url`` or
``env()`` (to point another program at it). ``@pytest.mark.engage_sandbox(sockets=True)``
gives clients over real HTTP instead, as does ``make_client(verify=..., cert=...)``.

``engage_replay(folder)`` returns a client bound to a loopback server that serves the
cassette in ``folder`` (relative to the test file), over SOAP or REST as it was recorded
(a REST ENGAGE_ENDPOINT, ``.../api/rest/v<N>/``, records a REST one); a request that
matches no recorded exchange, or a recorded exchange left unused (unless
``allow_unused=True``), fails the test with a readable diff. Run the tests with
``--engage-record`` (or ``ENGAGE_RECORD=1``; the variable reads like every boolean
setting: 1/true/yes/on, 0/false/no/off or empty) and the same call records the cassette
instead, against ENGAGE_ENDPOINT / ENGAGE_USERNAME / ENGAGE_PASSWORD, pseudonymised (see
:mod:`engage_soap.redaction`; ENGAGE_REDACT and ENGAGE_REDACT_KEEP widen and narrow it by
name); the new recording replaces the old one only when the test passed.
Clients of both fixtures check every request and reply against the WSDL
(``validate=True``; a REST client of ``engage_replay`` has its requests checked against
the schema plans instead).

``engage_async_client`` is an :class:`~engage_soap.AsyncEngageClient` of the same sandbox
(same test options; more with ``engage_sandbox.make_async_client(**kwargs)``), closed at
teardown; it belongs to no event loop, so any ``asyncio.run`` in the test may use it.

Only pytest is imported at load time: the sandbox and the client are imported by the
fixture, so installing engage_soap costs other projects' test runs nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .async_client import AsyncEngageClient
    from .client import EngageClient
    from .sandbox import FaultInjector, OutboxEntry, Sandbox, SandboxState
    from .testing import RecordingTransport, ReplayServer

__all__ = ["EngageSandbox", "engage_async_client", "engage_replay", "engage_sandbox"]

_MARKER = "engage_sandbox"
_REPLAYS = pytest.StashKey[list[tuple["ReplayServer", bool]]]()
_RECORDINGS = pytest.StashKey[list["RecordingTransport"]]()
_RECORD_ENV = "ENGAGE_RECORD"


def _test_options() -> dict[str, Any]:
    """Client options for tests: no pacing, quick retries, schema validation on."""
    from .retry import RetryPolicy

    return {"rate_limit": None, "timeout": 10.0, "validate": True,
            "retry": RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limited_delay=0.01)}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("engage_soap").addoption(
        "--engage-record", action="store_true", default=False,
        help="engage_replay records cassettes against ENGAGE_ENDPOINT instead of replaying "
             "them (also ENGAGE_RECORD=1)")


def pytest_configure(config: pytest.Config) -> None:
    _recording(config)  # a bad ENGAGE_RECORD stops the run before any test
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): keyword arguments for the engage_sandbox fixture's Sandbox "
        "(rate_limit, users, api_version, state_file, latency, attributes, ...), and "
        "sockets=True for clients over HTTP instead of in-process")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """After the test body: fail on replayed requests that differ (even when the test
    failed on the fault they got), or on recorded exchanges never asked for."""
    try:
        result = yield
    except BaseException:
        for recording in item.stash.get(_RECORDINGS, []):
            recording.discard()  # the cassette recorded before stays
        _fail_on_replay_problems(item, failed=True)
        raise
    for recording in item.stash.get(_RECORDINGS, []):
        recording.commit()
    _fail_on_replay_problems(item, failed=False)
    return result


def _fail_on_replay_problems(item: pytest.Item, *, failed: bool) -> None:
    problems = []
    for replay, allow_unused in item.stash.get(_REPLAYS, []):
        problems += replay.problems
        if replay.unused and not allow_unused and not replay.problems and not failed:
            problems.append("recorded exchanges were never requested: "
                            + ", ".join(replay.unused)
                            + " (engage_replay(..., allow_unused=True) allows it)")
    if problems:
        pytest.fail("engage_replay:\n" + "\n\n".join(problems), pytrace=False)


class EngageSandbox:
    """A sandbox and a client of it; what the ``engage_sandbox`` fixture returns.

    Clients call the sandbox in-process unless ``sockets`` is true; the HTTP server starts
    when ``url`` or ``env()`` is first asked for.
    """

    def __init__(self, sandbox: Sandbox, *, sockets: bool = False) -> None:
        self.sandbox = sandbox
        self.sockets = sockets
        self.username, self.password = next(iter(sandbox.users.items()))
        self._clients: list[EngageClient] = []
        self._async_clients: list[AsyncEngageClient] = []
        self.client: EngageClient = self.make_client()

    @property
    def url(self) -> str:
        """The sandbox's SOAP endpoint over HTTP (starts the server if need be)."""
        if not self.sandbox.running:
            self.sandbox.start()
        return self.sandbox.url

    @property
    def state(self) -> SandboxState:
        """Contacts, messages, groups, outbox and call log of the sandbox."""
        return self.sandbox.state

    @property
    def outbox(self) -> list[OutboxEntry]:
        """Every send the sandbox accepted, oldest first."""
        return self.sandbox.state.outbox

    @property
    def faults(self) -> FaultInjector:
        """Inject failures, e.g. ``faults.inject("contactGet", "http_502", times=1)``."""
        return self.sandbox.faults

    def env(self) -> dict[str, str]:
        """ENGAGE_* variables that point the ``engage-soap`` CLI at this sandbox."""
        return {"ENGAGE_ENDPOINT": self.url, "ENGAGE_USERNAME": self.username,
                "ENGAGE_PASSWORD": self.password}

    def make_client(self, **kwargs: Any) -> EngageClient:
        """Another client of this sandbox (closed at teardown); kwargs go to EngageClient.

        In-process unless the fixture has ``sockets`` or kwargs configure TLS (``verify``,
        ``cert``) or pass a ``transport``; ``timeout`` and ``max_reply_bytes`` then go to
        the in-process transport.
        """
        from .client import EngageClient

        client = EngageClient(**self._options(kwargs))
        self._clients.append(client)
        return client

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A client's arguments: the endpoint (and the in-process transport), this sandbox's
        user and the test options, then ``kwargs``."""
        options = {"username": self.username, "password": self.password, **_test_options(),
                   **kwargs}
        if self.sockets or {"verify", "cert", "transport"} & kwargs.keys():
            return {"endpoint": self.url, **options}
        transport = self.sandbox.transport(timeout=options.pop("timeout", None),
                                           max_reply_bytes=options.pop("max_reply_bytes", None))
        return {"endpoint": self.sandbox.inprocess_url, "transport": transport, **options}

    def make_async_client(self, **kwargs: Any) -> AsyncEngageClient:
        """An AsyncEngageClient of this sandbox (closed at teardown); kwargs as above."""
        from .async_client import AsyncEngageClient

        client = AsyncEngageClient(**self._options(kwargs))
        self._async_clients.append(client)
        return client

    def close(self) -> None:
        """Close every client made here and stop the sandbox."""
        try:
            while self._clients:
                self._clients.pop().close()
            while self._async_clients:  # bound to no loop: a new one closes it
                import asyncio

                asyncio.run(self._async_clients.pop().aclose())
        finally:
            self.sandbox.stop()

    def __repr__(self) -> str:
        where = self.sandbox.url if self.sandbox.running else "in-process"
        return f"EngageSandbox({where}, outbox={len(self.outbox)} sent)"


@pytest.fixture
def engage_sandbox(request: pytest.FixtureRequest) -> Iterator[EngageSandbox]:
    """A fresh sandbox (seed data, no rate ceiling) and a client of it, per test."""
    from .sandbox import Sandbox

    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = {"rate_limit": None}
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes keyword arguments only")
        options.update(marker.kwargs)
    sockets = bool(options.pop("sockets", False))
    sandbox = Sandbox("127.0.0.1", 0, **options)
    if sockets:
        sandbox.start()
    try:
        fixture = EngageSandbox(sandbox, sockets=sockets)
    except BaseException:
        sandbox.stop()
        raise
    try:
        yield fixture
    finally:
        fixture.close()


@pytest.fixture
def engage_async_client(engage_sandbox: EngageSandbox) -> AsyncEngageClient:
    """An AsyncEngageClient of the ``engage_sandbox`` fixture's sandbox."""
    return engage_sandbox.make_async_client()


def _recording(config: pytest.Config) -> bool:
    """--engage-record, or ENGAGE_RECORD read as the command line reads a boolean."""
    import click

    value = os.environ.get(_RECORD_ENV, "")
    try:
        from_env = bool(click.BOOL.convert(value, None, None))
    except click.BadParameter:
        raise pytest.UsageError(f"{_RECORD_ENV}={value!r} is not a boolean: use 1, true, "
                                "yes or on to record, 0, false, no, off or nothing to "
                                "replay") from None
    return bool(config.getoption("--engage-record")) or from_env


def _names(variable: str) -> list[str]:
    return os.environ.get(variable, "").split(",")


@pytest.fixture
def engage_replay(request: pytest.FixtureRequest) -> Iterator[Callable[..., EngageClient]]:
    """``engage_replay(folder, allow_unused=False, **client_options)`` -> an EngageClient
    replaying the cassette in ``folder`` (or recording it, with ``--engage-record``)."""
    import inspect

    from .client import EngageClient
    from .testing import Cassette, RecordingTransport, Redactor, ReplayServer
    from .transport import HttpTransport
    from .wires import protocol_for
    from .zeep_binding import load_wsdl

    record = _recording(request.config)
    servers: list[ReplayServer] = []
    clients: list[EngageClient] = []
    replays = request.node.stash.setdefault(_REPLAYS, [])
    recordings = request.node.stash.setdefault(_RECORDINGS, [])

    def make(folder: str | os.PathLike[str], *, allow_unused: bool = False,
             **kwargs: Any) -> EngageClient:
        path = Path(folder)
        if not path.is_absolute():
            path = Path(request.path).parent / path
        options = {**_test_options(), **kwargs}

        def endpoint(url: str) -> str:
            """``url``, with validation off on REST unless validate= was given (it checks
            SOAP envelopes; REST requests are checked against the schema plans anyway)."""
            if "validate" not in kwargs and protocol_for(url, options.get("protocol")) == "rest":
                options["validate"] = False
            return url

        if record:
            env = {k: os.environ.get(f"ENGAGE_{k.upper()}") for k in
                   ("endpoint", "username", "password")}
            missing = [f"ENGAGE_{k.upper()}" for k, v in env.items() if not v]
            if missing:
                raise pytest.UsageError(f"--engage-record needs {', '.join(missing)}")
            # the HTTP settings given (timeout, verify, ...) belong to the real transport
            http = {k: options.pop(k) for k in inspect.signature(HttpTransport).parameters
                    if k in options}
            redactor = Redactor(password=env["password"], elements=_names("ENGAGE_REDACT"),
                                keep=_names("ENGAGE_REDACT_KEEP"))
            transport = RecordingTransport(HttpTransport(**http), Cassette(path), redactor)
            recordings.append(transport)
            url = endpoint(str(env["endpoint"]))
            client = EngageClient(url, str(env["username"]), str(env["password"]),
                                  transport=transport, **options)
            # what is a number or an enumeration: the WSDL the client loaded (cached)
            redactor.plans = load_wsdl(options.get("wsdl")).operations
        else:
            server = ReplayServer(path).start()
            servers.append(server)
            replays.append((server, allow_unused))
            url = endpoint(server.url)
            client = EngageClient(url, "replay-user", "replay-secret", **options)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.stop()
