"""pytest plugin (entry point ``engage_soap``): the ``engage_sandbox`` fixture.

A test gets a fresh sandbox server on 127.0.0.1 and an EngageClient pointed at it::

    def test_order_mail(engage_sandbox):
        engage_sandbox.client.send_prepared_message(23541, email="j.mcexample@example.com",
                                                    parameters={"FIRSTNAME": "Jo"})
        assert engage_sandbox.outbox[-1].parameter_dict == {"FIRSTNAME": "Jo"}

Defaults chosen for tests: the sandbox's rate ceiling is OFF (``rate_limit=None``) and the
client neither paces calls (``rate_limit=None``) nor waits long between retries (the
default retry rules, with back-off in milliseconds). Change the sandbox with a marker,
e.g. ``@pytest.mark.engage_sandbox(rate_limit=10, api_version="9")`` (keyword arguments of
``Sandbox``), and build other clients with ``engage_sandbox.make_client(**kwargs)``.

Only pytest is imported at load time: the sandbox and the client are imported by the
fixture, so installing engage_soap costs other projects' test runs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .client import EngageClient
    from .sandbox import FaultInjector, OutboxEntry, Sandbox, SandboxState

__all__ = ["EngageSandbox", "engage_sandbox"]

_MARKER = "engage_sandbox"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**kwargs): keyword arguments for the engage_sandbox fixture's Sandbox "
        "(rate_limit, users, api_version, state_file, ...)")


class EngageSandbox:
    """A running sandbox and a client for it; what the ``engage_sandbox`` fixture returns."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.username, self.password = next(iter(sandbox.users.items()))
        self._clients: list[EngageClient] = []
        self.client: EngageClient = self.make_client()

    @property
    def url(self) -> str:
        """The sandbox's SOAP endpoint."""
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
        """Another client of this sandbox (closed at teardown); kwargs go to EngageClient."""
        from .client import EngageClient
        from .retry import RetryPolicy

        options: dict[str, Any] = {
            "rate_limit": None,
            "retry": RetryPolicy(base_delay=0.001, max_delay=0.01, rate_limited_delay=0.01),
            "timeout": 10.0,
        }
        options.update(kwargs)
        username = options.pop("username", self.username)
        password = options.pop("password", self.password)
        client = EngageClient(self.url, username, password, **options)
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close every client made here and stop the sandbox."""
        try:
            while self._clients:
                self._clients.pop().close()
        finally:
            self.sandbox.stop()

    def __repr__(self) -> str:
        return f"EngageSandbox(url={self.url!r}, outbox={len(self.outbox)} sent)"


@pytest.fixture
def engage_sandbox(request: pytest.FixtureRequest) -> Iterator[EngageSandbox]:
    """A fresh sandbox (seed data, no rate ceiling) and a client for it, per test."""
    from .sandbox import Sandbox

    marker = request.node.get_closest_marker(_MARKER)
    options: dict[str, Any] = {"rate_limit": None}
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes keyword arguments only")
        options.update(marker.kwargs)
    sandbox = Sandbox("127.0.0.1", 0, **options).start()
    try:
        fixture = EngageSandbox(sandbox)
    except BaseException:
        sandbox.stop()
        raise
    try:
        yield fixture
    finally:
        fixture.close()
