"""A client's life: two event loops in turn, aclose leaving no thread or socket, dropped
without aclose, forked, and never showing the password."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable

import pytest
from asyncio_support import CONTACT, MESSAGE

from engage_soap import AsyncEngageClient, ConfigurationError
from engage_soap.pytest_plugin import EngageSandbox


def _sockets() -> set[str]:
    """This process's open sockets (by inode)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def _workers(before: set[threading.Thread] | None = None) -> list[threading.Thread]:
    """The clients' worker threads, but those in `before` (an earlier test's cancelled call
    may still be finishing on its worker when the next test starts)."""
    return [t for t in threading.enumerate()
            if t.name.startswith("engage-soap-async") and t not in (before or set())]


def _sandbox_threads() -> list[threading.Thread]:
    """The sandbox's connection threads (they end once the client's connection is closed)."""
    return [t for t in threading.enumerate() if not t.name.startswith("engage-soap")
            and t is not threading.main_thread()]


def _eventually(check: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while not check() and time.monotonic() < deadline:
        time.sleep(0.01)
    return check()


def test_one_client_serves_two_consecutive_event_loops(
        engage_async_client: AsyncEngageClient) -> None:
    async def lookups() -> list[int]:
        got = await asyncio.gather(*(engage_async_client.contact_get(contact_id=CONTACT)
                                     for _ in range(10)))
        return [c.id for c in got]

    assert asyncio.run(lookups()) == [CONTACT] * 10
    assert asyncio.run(lookups()) == [CONTACT] * 10  # a new loop, the same client


@pytest.mark.engage_sandbox(sockets=True)
def test_aclose_leaves_no_thread_or_socket_behind(engage_sandbox: EngageSandbox) -> None:
    engage_sandbox.client.api_version()  # the process-wide deadline watchdog runs from now
    threads, sockets = set(threading.enumerate()), _sockets()

    async def main() -> None:
        async with AsyncEngageClient(engage_sandbox.url, engage_sandbox.username,
                                     engage_sandbox.password, rate_limit=None) as client:
            await asyncio.gather(*(client.contact_get(contact_id=CONTACT)
                                   for _ in range(40)))
            assert len(_workers(threads)) == client.max_workers == 8
        with pytest.raises(ConfigurationError, match="closed"):
            await client.api_version()
        await client.aclose()  # twice is fine

    asyncio.run(main())
    assert set(threading.enumerate()) - threads <= set(_sandbox_threads())
    assert _eventually(lambda: _sockets() <= sockets)  # the sandbox's ends close after ours
    assert _eventually(lambda: set(threading.enumerate()) <= threads)


def test_a_dropped_client_leaks_no_resource_warning(engage_sandbox: EngageSandbox) -> None:
    before = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = AsyncEngageClient(engage_sandbox.url, engage_sandbox.username,
                                   engage_sandbox.password, rate_limit=None)

        asyncio.run(client.send_prepared_message(MESSAGE, email="j.mcexample@example.com"))
        workers = _workers(before)
        assert workers
        del client
        gc.collect()
        for worker in workers:  # told to stop by the finalizer, without being waited for
            worker.join(5)
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert _workers(before) == []


def test_a_forked_child_makes_calls_with_its_own_workers(
        engage_sandbox: EngageSandbox, engage_async_client: AsyncEngageClient) -> None:
    client = engage_async_client

    async def lookup() -> int:
        ids = await asyncio.gather(*(client.contact_get(contact_id=CONTACT)
                                     for _ in range(8)))
        return ids[0].id

    assert asyncio.run(lookup()) == CONTACT  # the workers and a pooled connection exist
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, never return into pytest
        code = 1
        try:
            signal.alarm(20)  # a child that hangs dies instead
            os.write(write, str(asyncio.run(lookup())).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    assert asyncio.run(lookup()) == CONTACT
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == str(CONTACT).encode()
    assert os.waitstatus_to_exitcode(status) == 0


def test_no_secret_in_repr_or_logs(engage_sandbox: EngageSandbox,
                                   caplog: pytest.LogCaptureFixture) -> None:
    client = engage_sandbox.make_async_client()
    password = engage_sandbox.password

    async def main() -> None:
        await client.send_prepared_message(MESSAGE, email="j.mcexample@example.com")
        engage_sandbox.faults.inject("messageSendSingle", None, latency=0.3, times=1)
        task = asyncio.ensure_future(client.message_send_single(MESSAGE, CONTACT))
        await asyncio.sleep(0.1)
        task.cancel()  # logs the outcome-unknown warning
        await asyncio.sleep(0.4)

    with caplog.at_level(logging.DEBUG, logger="engage_soap"):
        asyncio.run(main())
    assert "outcome unknown" in caplog.text
    assert password not in caplog.text and password not in repr(client)
    assert repr(client).startswith("AsyncEngageClient(endpoint=")


def test_the_async_client_takes_every_argument_of_the_sync_client() -> None:
    import inspect

    from engage_soap import EngageClient

    sync = inspect.signature(EngageClient.__init__).parameters
    both = {k: v for k, v in inspect.signature(AsyncEngageClient.__init__).parameters.items()
            if k != "max_workers"}
    assert [(p.name, p.kind, p.default) for p in both.values()] == \
        [(p.name, p.kind, p.default) for p in sync.values()]


def test_the_async_client_speaks_rest_too() -> None:
    from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
    from engage_soap.sandbox.server import INPROCESS_BASE_URL

    sandbox = Sandbox()
    endpoint = INPROCESS_BASE_URL + sandbox.rest_path

    async def main() -> int:
        async with AsyncEngageClient(endpoint, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                                     transport=sandbox.transport()) as client:
            await client.message_send_single(MESSAGE, CONTACT)
            return (await client.contact_get(contact_id=CONTACT)).id

    assert asyncio.run(main()) == CONTACT
    assert sandbox.state.outbox[-1].recipient_id == CONTACT
    with pytest.raises(ConfigurationError, match="protocol"):  # the path says rest
        asyncio.run(AsyncEngageClient.create(endpoint, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                                             protocol="soap", transport=sandbox.transport()))
