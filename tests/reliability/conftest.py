"""Fixtures for the reliability suite: a fault-injecting loopback server and client factory."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from engage_soap import EngageClient, RetryPolicy

from .fakeserver import FakeServer, client_factory

# Never write hypothesis's example database into the repository.
settings.register_profile("reliability", database=None, deadline=None, max_examples=150,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.function_scoped_fixture])
settings.load_profile("reliability")

USER = "api-user"
PASSWORD = "s3cr3t-P@ss-\u00e9-7f1c"
TOKEN = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, max_total_wait=5.0,
                   rate_limited_delay=0.05)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def make_client() -> Iterator[Callable[..., EngageClient]]:
    with client_factory(USER, PASSWORD, rate_limit=None, retry=FAST, timeout=5.0) as make:
        yield make
