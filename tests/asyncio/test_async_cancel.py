"""Cancellation: a read ends quietly, a queued call never runs, a write that may have
arrived is never repeated and logs one WARNING, and the client stays usable."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asyncio_support import CONTACT, MESSAGE

from engage_soap import AsyncEngageClient, RetryPolicy
from engage_soap.pytest_plugin import EngageSandbox

pytestmark = pytest.mark.long(5)

Steps = Callable[[AsyncEngageClient], Awaitable[None]]


def _run_quietly(main: Callable[[], Awaitable[Any]]) -> list[dict[str, Any]]:
    """Run ``main`` in a new loop; return what the loop reported to its exception handler
    ("Future exception was never retrieved" and the like), after a garbage collection."""
    reported: list[dict[str, Any]] = []

    async def wrapper() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, ctx: reported.append(ctx))
        await main()
        gc.collect()
        await asyncio.sleep(0.05)

    asyncio.run(wrapper())
    return reported


async def _cancel_after(delay: float, coro: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(coro)
    await asyncio.sleep(delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_read_cancelled_in_flight_ends_quietly(engage_sandbox: EngageSandbox,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    engage_sandbox.faults.inject("contactGet", "http_502", latency=0.4, times=1)
    client = engage_sandbox.make_async_client(retry=RetryPolicy.none())

    async def main() -> None:
        await client.api_version()
        await _cancel_after(0.1, client.contact_get(contact_id=CONTACT))
        await asyncio.sleep(0.5)  # the thread got its 502 meanwhile: dropped, unseen
        assert (await client.contact_get(contact_id=CONTACT)).id == CONTACT

    assert _run_quietly(main) == []
    assert _warnings(caplog) == []


def test_a_queued_call_cancelled_never_runs(engage_sandbox: EngageSandbox,
                                            caplog: pytest.LogCaptureFixture) -> None:
    engage_sandbox.faults.inject("messageSendSingle", None, latency=0.3, times=1)
    client = engage_sandbox.make_async_client(max_workers=1)

    async def main() -> None:
        await client.api_version()
        first = asyncio.ensure_future(client.message_send_single(MESSAGE, CONTACT))
        await asyncio.sleep(0.05)  # the one worker is busy with the first send
        await _cancel_after(0.05, client.message_send_single(MESSAGE, 33458))
        await first
        await asyncio.sleep(0.2)

    assert _run_quietly(main) == []
    assert [e.recipient_id for e in engage_sandbox.outbox] == [CONTACT]
    assert _warnings(caplog) == []


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_send_cancelled_in_flight_warns_once_and_is_never_repeated(
        engage_sandbox: EngageSandbox, caplog: pytest.LogCaptureFixture, how: str) -> None:
    engage_sandbox.faults.inject("messageSendSingle", None, latency=0.4, times=1)
    client = engage_sandbox.make_async_client()

    async def send() -> None:
        await client.message_send_single(MESSAGE, CONTACT)

    async def main() -> None:
        await client.api_version()
        if how == "cancel":
            await _cancel_after(0.1, send())
        else:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await send()
        await asyncio.sleep(0.6)
        await client.message_send_single(MESSAGE, 33458)  # still usable

    assert _run_quietly(main) == []
    assert [e.recipient_id for e in engage_sandbox.outbox] == [CONTACT, 33458]
    (warning,) = _warnings(caplog)
    assert "messageSendSingle" in warning and str(CONTACT) in warning
    assert "outcome unknown" in warning


def test_a_cancelled_send_prepared_message_sends_nothing_after_the_cancel(
        engage_sandbox: EngageSandbox) -> None:
    engage_sandbox.faults.inject("contactGet", None, latency=0.4, times=1)
    client = engage_sandbox.make_async_client()

    async def main() -> None:
        await client.api_version()
        await _cancel_after(0.1, client.send_prepared_message(
            MESSAGE, email="j.mcexample@example.com"))
        await asyncio.sleep(0.6)  # the lookup ended; the send step was abandoned

    assert _run_quietly(main) == []
    assert engage_sandbox.outbox == []
    assert [c.operation for c in engage_sandbox.state.calls] == [
        "systemGetApiVersion", "contactGet"]


def test_a_call_cancelled_while_paced_sends_nothing(engage_sandbox: EngageSandbox,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    client = engage_sandbox.make_async_client(rate_limit=2)

    async def main() -> None:
        await client.api_version()  # takes the one token: the next call waits ~0.5 s
        await _cancel_after(0.1, client.message_send_single(MESSAGE, CONTACT))
        await asyncio.sleep(0.8)

    assert _run_quietly(main) == []
    assert engage_sandbox.outbox == []
    assert _warnings(caplog) == []  # it never reached the transport: nothing is unknown
