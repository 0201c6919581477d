"""The rate stores one by one: settings, failure, secrets, the slowest rate, fork."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engage_soap import ConfigurationError, EngageClient
from engage_soap.rate_limit import RateLimiter, account_key
from engage_soap.rate_store import open_rate_store, store_name
from engage_soap.testing import MockTransport

from .fleet import RedisServer, free_port, redis_server

KEY = account_key("https://tenant.example.com/api/soap/v8/", "api-user")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def test_keys_hash_host_and_user_never_the_password() -> None:
    assert KEY.startswith("engage-soap:rate:") and "api-user" not in KEY
    assert account_key("https://u:pw@TENANT.example.com/other/", "api-user") == KEY
    assert account_key("https://tenant.example.com/api/soap/v8/", "other-user") != KEY


@pytest.mark.parametrize("spec", ["", "ftp://host/x", "file://otherhost/x", 42])
def test_bad_store_is_a_configuration_error(spec: object) -> None:
    with pytest.raises(ConfigurationError):
        open_rate_store(spec)  # type: ignore[arg-type]


def test_rate_store_needs_a_rate_limit() -> None:
    with pytest.raises(ConfigurationError, match="rate_store"):
        EngageClient("http://127.0.0.1:1/", "u", "p", rate_limit=None, rate_store="/tmp/x",
                     transport=MockTransport(lambda _request: None))  # type: ignore



def test_no_secret_in_store_names_or_reprs(tmp_path: Path) -> None:
    url = "redis://user:s3cret@127.0.0.1:6390/0"
    assert store_name(url) == "redis://***@127.0.0.1:6390/0"
    limiter = RateLimiter(10, store=url, account=KEY)
    assert "s3cret" not in repr(limiter) and "s3cret" not in repr(limiter.store)
    limiter.close()
    assert store_name(tmp_path / "r.json") == str(tmp_path / "r.json")


def test_file_store_shares_the_slowest_rate(tmp_path: Path) -> None:
    fast = RateLimiter(50, store=tmp_path / "r.json", account=KEY)
    slow = RateLimiter(5, store=f"file://{tmp_path / 'r.json'}", account=KEY)
    slow.reserve()
    waits = [fast.reserve()[0] for _ in range(3)]  # paced at 5/s, not 50/s
    assert waits == pytest.approx([0.21, 0.42, 0.63], abs=0.02)


def test_a_store_that_fails_warns_once_and_the_limiter_goes_on(
        tmp_path: Path, redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "engage_soap")
    unlockable = RateLimiter(1000, store=tmp_path / "missing-dir" / "r.json", account=KEY)
    dead = RateLimiter(1000, store=f"redis://127.0.0.1:{free_port()}/0", account=KEY)
    for _ in range(20):
        unlockable.acquire()
        dead.acquire()
        dead.pause(0.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(w.startswith("rate store") for w in warnings)
    dead.close()


def test_a_store_that_comes_back_is_used_again(monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr("engage_soap.rate_store.COOLDOWN", 0.0)
    caplog.set_level(logging.INFO, "engage_soap")
    server = RedisServer()
    limiter = RateLimiter(1000, store=server.url, account=KEY)
    assert limiter.store is not None and limiter.store.reserve(KEY, 0.001, 0.0) is None
    server.start()
    try:
        assert limiter.store.reserve(KEY, 0.001, 0.0) is not None
        assert any("answers again" in r.getMessage() for r in caplog.records)
    finally:
        limiter.close()
        server.stop()


def test_pause_through_redis_holds_another_client(redis: RedisServer) -> None:
    one = RateLimiter(100, store=redis.url, account=KEY + "-pause")
    two = RateLimiter(100, store=redis.url, account=KEY + "-pause")
    one.pause(2.0)
    wait, _epoch = two.reserve()
    assert 1.8 < wait <= 2.0
    one.close()
    two.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX only")
def test_a_forked_child_uses_its_own_redis_connections(redis: RedisServer) -> None:
    limiter = RateLimiter(1000, store=redis.url, account=KEY + "-fork")
    assert limiter.store is not None and limiter.store.reserve(KEY, 0.001, 0.0) is not None
    pid = os.fork()
    if pid == 0:  # the child: its own pool, the parent's sockets untouched
        ok = limiter.store.reserve(KEY, 0.001, 0.0) is not None
        os._exit(0 if ok else 1)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert limiter.store.reserve(KEY, 0.001, 0.0) is not None  # the parent's still works
    limiter.close()
