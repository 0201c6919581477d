"""How real deployments use a client: forked workers, many threads, proxies, silent DNS,
stalled TLS handshakes, early answers, idle keep-alive connections closed by the server,
and clients dropped without close()."""

from __future__ import annotations

import contextlib
import gc
import json
import multiprocessing
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import unescape

import pytest

from engage_soap import (
    Attachment,
    EngageClient,
    HTTPStatusError,
    RequestTimeoutError,
    RetryPolicy,
)
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

from .conftest import FAST
from .fakeserver import FakeServer, Handler, Recorded, Reply, contact_reply

pytestmark = pytest.mark.long(10)

MESSAGE = 23541


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sb:
        yield sb


def _client(url: str, **kw: Any) -> EngageClient:
    options: dict[str, Any] = {"rate_limit": None, "retry": RetryPolicy.none(), "timeout": 10}
    return EngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, **{**options, **kw})


def _add_contacts(sandbox: Sandbox, names: list[str]) -> dict[str, int]:
    return {n: sandbox.state.add_contact(email_address=f"{n}@example.com").contact_id
            for n in names}


# ------------------------------------------------------------------ fork


def _send_as(client: EngageClient, who: str, trial: int) -> str:
    result = client.send_prepared_message(MESSAGE, email=f"{who}@example.com",
                                          parameters={"WHO": f"{who}-{trial}"})
    return f"{who} {result.contact.id}"


def test_fork_parent_and_child_never_cross_replies(sandbox: Sandbox) -> None:
    ids = _add_contacts(sandbox, ["parent", "child"])
    client = _client(sandbox.url)
    client.api_version()  # a pooled keep-alive connection exists before every fork
    seen: list[str] = []
    for trial in range(50):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: answer through the pipe, never return into pytest
            code = 1
            try:
                os.write(write, _send_as(client, "child", trial).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        seen.append(_send_as(client, "parent", trial))
        _, status = os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as pipe:
            seen.append(pipe.read().decode())
        assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(set(seen)) == [f"child {ids['child']}", f"parent {ids['parent']}"]
    sends = [(e.recipient_id, e.parameter_dict["WHO"]) for e in sandbox.state.outbox]
    expected = sorted((ids[w], f"{w}-{t}") for w in ("parent", "child") for t in range(50))
    assert sorted(sends) == expected  # each exactly once, with its own parameters
    client.close()


_POOL_CLIENT: EngageClient | None = None


def _pool_send(name: str) -> tuple[str, int]:
    assert _POOL_CLIENT is not None
    return name, _POOL_CLIENT.send_prepared_message(MESSAGE, email=f"{name}@example.com",
                                                    parameters={"WHO": name}).contact.id


def test_multiprocessing_fork_pool_matches_every_reply(sandbox: Sandbox) -> None:
    global _POOL_CLIENT
    names = [f"worker{i}" for i in range(40)]
    ids = _add_contacts(sandbox, names)
    _POOL_CLIENT = _client(sandbox.url)
    try:
        _POOL_CLIENT.api_version()
        with multiprocessing.get_context("fork").Pool(4) as pool:
            results = pool.map(_pool_send, names, chunksize=1)
    finally:
        _POOL_CLIENT.close()
        _POOL_CLIENT = None
    assert dict(results) == ids
    sends = sorted((e.recipient_id, e.parameter_dict["WHO"]) for e in sandbox.state.outbox)
    assert sends == sorted((ids[n], n) for n in names)


def test_the_deadline_holds_in_a_forked_child() -> None:
    def trickle(h: Handler) -> None:  # a byte every 0.2 s: no socket timeout ever trips
        h.trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: zzzzzzzzzz\r\n" * 100, 0.2)

    with FakeServer() as fast, FakeServer(lambda r: trickle) as slow:
        client = _client(fast.url, timeout=1.0)
        client.api_version()  # the parent's watchdog thread is running now
        client_slow = _client(slow.url, timeout=1.0)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            outcome = "returned"
            try:
                started = time.monotonic()
                try:
                    client_slow.api_version()
                except RequestTimeoutError:
                    outcome = "timeout"
                os.write(write, json.dumps([outcome, time.monotonic() - started]).encode())
            finally:
                os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read, "rb") as pipe:
            outcome, elapsed = json.loads(pipe.read())
        client.close()
        client_slow.close()
    assert outcome == "timeout"
    assert elapsed < 3.0  # 13 s before: the child had no watchdog thread


# ------------------------------------------------------------------ threads


CALLS_PER_THREAD = 50  # 1,600 calls: 32 threads contend for the pool throughout


def _echo(req: Recorded) -> Reply:
    m = re.search(rb"<value>(.*?)</value>", req.body)
    return Reply(200, contact_reply(unescape(m.group(1).decode()) if m else "?"))


@pytest.mark.filterwarnings("ignore:the endpoint http:UserWarning")  # on purpose
@pytest.mark.parametrize("via", ["direct", "proxy"])
def test_32_threads_share_one_client(via: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    with FakeServer(_echo) as srv:
        url = srv.url
        if via == "proxy":  # the fake answers as the proxy; the target host does not exist
            monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{srv.port}")
            url = "http://engage.invalid/api/soap/v8/"
        client = _client(url)
        problems: list[str] = []

        def worker(t: int) -> None:
            for i in range(CALLS_PER_THREAD):
                email = f"t{t}-{i}@example.com"
                try:
                    got = client.contact_get(email=email).email
                except Exception as exc:  # every failure is a problem here
                    problems.append(f"{email}: {exc!r}")
                    continue
                if got != email:
                    problems.append(f"{email} got {got}")

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
        assert problems == []
        assert srv.count == 32 * CALLS_PER_THREAD
        if via == "proxy":
            assert {r.path for r in srv.requests} == {url}


# ------------------------------------------------------------------ name resolution


@pytest.fixture
def silent_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """getaddrinfo never answers for *.invalid (until the test ends)."""
    release = threading.Event()
    asked: list[str] = []
    real = socket.getaddrinfo

    def blocking(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".invalid"):
            asked.append(host)
            release.wait(60)
            raise socket.gaierror(socket.EAI_AGAIN, "gave up")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", blocking)
    yield asked
    release.set()


def test_a_resolver_that_never_answers_ends_at_the_deadline(silent_dns: list[str]) -> None:
    client = _client("https://engage.invalid/api/soap/v8/", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError) as err:
        client.api_version()
    assert time.monotonic() - started < 2.0  # 10 s per attempt before
    assert err.value.request_sent is False
    assert silent_dns == ["engage.invalid"]
    # a write is retried, since nothing was sent: three attempts, each at its deadline
    retrying = _client("https://engage.invalid/api/soap/v8/", timeout=0.3, retry=FAST)
    with pytest.raises(RequestTimeoutError) as err:
        retrying.message_send_single(1, 2)
    assert err.value.request_sent is False and len(silent_dns) == 4
    client.close()
    retrying.close()


def test_a_name_that_does_not_resolve_says_so() -> None:
    client = _client("https://no-such-host.invalid/api/soap/v8/", timeout=5)
    with pytest.raises(Exception) as err:
        client.api_version()
    assert "does not resolve" in str(err.value) and err.value.request_sent is False
    client.close()


# ------------------------------------------------------------------ TLS handshake


@contextlib.contextmanager
def _silent_tcp() -> Iterator[tuple[int, list[socket.socket]]]:
    """Accepts connections and never says a word (a stalled TLS handshake)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join()
        for s in [*accepted, listener]:
            s.close()


def test_a_stalled_tls_handshake_is_not_sent_and_a_write_is_retried() -> None:
    with _silent_tcp() as (port, accepted):
        client = _client(f"https://127.0.0.1:{port}/api/soap/v8/", timeout=0.5, retry=FAST)
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as err:
            client.message_send_single(1, 2)
        assert err.value.request_sent is False
        assert len(accepted) == 3  # retried: the request never left
        assert time.monotonic() - started < 4.0
        client.close()


# ------------------------------------------------------------------ early answers


def test_a_413_answered_before_the_body_is_read_is_raised_as_such() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def refuse_big_bodies() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/html\r\n"
                         b"Content-Length: 20\r\nConnection: close\r\n\r\n<h1>Too large</h1>\r\n")
            conn.shutdown(socket.SHUT_WR)
            time.sleep(0.5)  # then drop the rest unread (the kernel resets the connection)

    thread = threading.Thread(target=refuse_big_bodies, daemon=True)
    thread.start()
    client = _client(f"http://127.0.0.1:{port}/api/soap/v8/")
    big = Attachment("big.bin", os.urandom(20 * 1024 * 1024))
    with pytest.raises(HTTPStatusError) as err:
        client.message_send_single(1, 2, attachments=[big])
    assert err.value.status_code == 413 and "Too large" in err.value.body_excerpt
    thread.join()
    listener.close()
    client.close()


# ------------------------------------------------------------------ idle connections


def test_an_idle_connection_closed_by_the_server_is_reopened_without_a_second_send() -> None:
    with Sandbox(rate_limit=None, idle_timeout=0.2) as sb:
        client = _client(sb.url)
        for _ in range(3):
            client.message_send_single(MESSAGE, 33457)
            time.sleep(0.5)  # the server closes the idle keep-alive connection meanwhile
        assert len(sb.state.outbox) == 3
        client.close()


# ------------------------------------------------------------------ dropped clients


def test_a_client_dropped_without_close_leaves_no_resource_warning(sandbox: Sandbox) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = _client(sandbox.url)
        client.api_version()
        client.send_prepared_message(MESSAGE, email="j.mcexample@example.com")
        del client
        gc.collect()
    leaks = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []
