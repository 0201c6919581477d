"""Fixtures of the recorded-envelope suite: httpserver checks and client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from recorded import PASSWORD, PATH, USER

from engage_soap import EngageClient, RetryPolicy


@pytest.fixture(autouse=True)
def _httpserver_checked(httpserver: HTTPServer) -> Iterator[None]:
    """Fail the test on any unexpected request or error in a handler."""
    yield
    httpserver.check_handler_errors()
    httpserver.check_assertions()


@pytest.fixture
def make_client(httpserver: HTTPServer) -> Iterator[Callable[..., EngageClient]]:
    """Build clients of the test endpoint (no rate limit, no retries, 5 s); all are closed."""
    made: list[EngageClient] = []

    def make(**kwargs: Any) -> EngageClient:
        endpoint = kwargs.pop("endpoint", None) or httpserver.url_for(PATH)
        kwargs.setdefault("rate_limit", None)
        kwargs.setdefault("retry", RetryPolicy.none())
        kwargs.setdefault("timeout", 5)
        client = EngageClient(endpoint, USER, kwargs.pop("password", PASSWORD), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., EngageClient]) -> EngageClient:
    return make_client()
