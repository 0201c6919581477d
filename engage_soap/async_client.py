"""AsyncEngageClient: the facade as coroutines, for code that runs inside an event loop.

One HTTP stack stays the rule: every call runs the sync :class:`EngageClient` (its
urllib3 transport, retry rules, rate limiter and deadline) on a small pool of worker
threads owned by this client, awaited with :func:`asyncio.wrap_future`. Pacing and
back-off sleep in the worker thread, never on the loop; the one rate limiter of the one
sync client is shared by every task. The WSDL is loaded in a worker thread too.

Cancellation: a call still queued is withdrawn (it never runs). A call already running
finishes in its thread and its result is dropped; from the moment of cancellation no
further request of that call is sent (a retry, or the send step of
``send_prepared_message``, is abandoned before it reaches the transport). A write that
may have reached the server is never repeated; one WARNING says its outcome is unknown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import defaults
from .errors import ConfigurationError, TransportError
from .forking import renew_after_fork
from .retry import RetryPolicy
from .service import is_read
from .transport import HttpReply, HttpTransport, Transport, display_url
from .typed_operations import AsyncTypedCalls

if TYPE_CHECKING:
    from .client import EngageClient
    from .models import Attachment, Contact, Exchange, Identifier, SendResult
    from .schema import ComplexPlan

__all__ = ["DEFAULT_MAX_WORKERS", "AsyncEngageClient"]

log = logging.getLogger("engage_soap")

#: Worker threads per client: at the account's ceiling of ~10 calls/s, 8 threads keep up
#: with replies as slow as 0.8 s; more would only wait in the rate limiter.
DEFAULT_MAX_WORKERS = 8

T = TypeVar("T")

_current = threading.local()  # .call: the _CallState of the call this worker runs


class _CallState:
    """One awaited call: whether it was abandoned (its task cancelled) and whether a
    request of it reached the transport (so it may have reached the server)."""

    __slots__ = ("abandoned", "entered", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.abandoned = False
        self.entered = False

    def enter(self) -> bool:
        """Called before each request: False once the call was abandoned."""
        with self.lock:
            if not self.abandoned:
                self.entered = True
            return not self.abandoned

    def abandon(self) -> bool:
        """Stop the call's further requests; True if one may have reached the server."""
        with self.lock:
            self.abandoned = True
            return self.entered


class _AbandoningTransport:
    """The client's transport, refusing (nothing sent) the requests of a cancelled call."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> HttpReply:
        call: _CallState | None = getattr(_current, "call", None)
        if call is not None and not call.enter():
            raise TransportError("the call was cancelled; this request was not sent",
                                 retryable=False, request_sent=False)
        return self.inner.request(method, url, body, headers)

    def close(self) -> None:
        self.inner.close()

    def __repr__(self) -> str:
        return repr(self.inner)


class _Resources:
    """What a client owns, reachable from its finalizer without the client itself."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self.executor = self.new_executor()
        self.sync: EngageClient | None = None

    def new_executor(self) -> concurrent.futures.ThreadPoolExecutor:
        return concurrent.futures.ThreadPoolExecutor(self.max_workers,
                                                     thread_name_prefix="engage-soap-async")


def _release(res: _Resources) -> None:
    """Dropped without aclose(): stop the workers without waiting, close the HTTP pool."""
    res.executor.shutdown(wait=False, cancel_futures=True)
    if res.sync is not None:
        res.sync.close()


class AsyncEngageClient(AsyncTypedCalls):
    """The :class:`EngageClient` facade as coroutines; safe to share between tasks.

    Takes EngageClient's arguments (see there), plus ``max_workers``: the worker threads
    that run calls (default 8). Constructing does no I/O: the WSDL is loaded in a worker
    thread by ``await AsyncEngageClient.create(...)``, by ``async with``, or by the first
    call, which is also where a bad argument raises ConfigurationError.

    Not bound to an event loop: one client may serve consecutive ``asyncio.run`` calls.
    """

    def __init__(self, endpoint: str, username: str, password: str, *,
                 wsdl: str | os.PathLike[str] | None = None, timeout: float | None = None,
                 retry: RetryPolicy | int | None = None,
                 rate_limit: float | None = defaults.ACCOUNT_RATE,
                 verify: bool | str | os.PathLike[str] | None = None,
                 cert: str | tuple[str, str] | None = None,
                 max_reply_bytes: int | None = None, transport: Transport | None = None,
                 wsdl_cache_dir: str | os.PathLike[str] | None = None,
                 wsdl_allowed_hosts: Iterable[str] = (), validate: bool = False,
                 rate_store: str | os.PathLike[str] | None = None,
                 protocol: str | None = None,
                 max_workers: int = DEFAULT_MAX_WORKERS) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) \
                or max_workers < 1:
            raise ConfigurationError(f"max_workers must be a positive int, got {max_workers!r}")
        self.endpoint = endpoint
        self.username = username
        http: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert,
                "max_reply_bytes": max_reply_bytes}
        self._http_settings = {k: v for k, v in http.items() if v is not None}
        self._transport = transport
        self._options: dict[str, Any] | None = {
            "endpoint": endpoint, "username": username, "password": password, "wsdl": wsdl,
            "retry": retry, "rate_limit": rate_limit, "wsdl_cache_dir": wsdl_cache_dir,
            "wsdl_allowed_hosts": wsdl_allowed_hosts, "validate": validate,  # checked there
            "rate_store": rate_store, "protocol": protocol}
        self._res = _Resources(max_workers)
        self._build_lock = threading.Lock()
        self._closed = False
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._finalizer = weakref.finalize(self, _release, self._res)
        renew_after_fork(self)

    @classmethod
    async def create(cls, endpoint: str, username: str, password: str,
                     **options: Any) -> AsyncEngageClient:
        """A client with its WSDL loaded (in a worker thread); raises what EngageClient's
        constructor raises."""
        client = cls(endpoint, username, password, **options)
        try:
            await client._run(None, lambda sync: None)
        except BaseException:
            await client.aclose()
            raise
        return client

    def __repr__(self) -> str:
        return (f"AsyncEngageClient(endpoint={display_url(self.endpoint)!r}, "
                f"username={self.username!r}, "
                f"max_workers={self._res.max_workers})")

    # ------------------------------------------------------------ plumbing

    @property
    def max_workers(self) -> int:
        return self._res.max_workers

    @property
    def last_exchange(self) -> Exchange | None:
        """The last request and reply of any task of this client (None before the first)."""
        sync = self._res.sync
        return sync.last_exchange if sync is not None else None

    def _sync_client(self) -> EngageClient:
        """The sync client, built on first use (in a worker thread: it loads the WSDL)."""
        with self._build_lock:
            if self._res.sync is None:
                from .client import EngageClient

                assert self._options is not None
                transport = self._transport
                if transport is None:  # the built-in transport, made here to be wrapped
                    transport = HttpTransport(**self._http_settings)
                    http: dict[str, Any] = {}
                else:  # EngageClient checks the transport and settings given with it
                    http = self._http_settings
                try:
                    self._res.sync = EngageClient(
                        **self._options, **http,
                        transport=_AbandoningTransport(transport)
                        if isinstance(transport, Transport) else transport)
                except BaseException:
                    if self._transport is None:
                        transport.close()
                    raise
                self._options = None  # the password lives on only as the sync client's header
            return self._res.sync

    def _work(self, state: _CallState, fn: Callable[[EngageClient], T]) -> T:
        sync = self._sync_client()
        _current.call = state
        try:
            return fn(sync)
        finally:
            _current.call = None

    async def _run(self, write: str | None, fn: Callable[[EngageClient], T]) -> T:
        """Run ``fn(sync_client)`` in a worker thread. ``write`` describes a call that
        changes something (for the warning when it is cancelled), None for a read."""
        if self._closed:
            raise ConfigurationError("the client is closed")
        loop = asyncio.get_running_loop()
        state = _CallState()
        job = self._res.executor.submit(self._work, state, fn)
        self._pending.add(job)
        job.add_done_callback(self._pending.discard)
        try:
            return await asyncio.wrap_future(job, loop=loop)
        except asyncio.CancelledError:
            job.cancel()  # a call still queued never runs
            if state.abandon() and write is not None:
                log.warning("%s was cancelled after its request may have reached the "
                            "server: outcome unknown; it is not sent again", write)
            raise

    async def operations(self) -> dict[str, dict[str, Any]]:
        """Every operation of the WSDL in use (see EngageClient.operations); a coroutine,
        since the WSDL may not be loaded yet."""
        return await self._run(None, lambda c: c.operations())

    async def request_schema(self, operation: str) -> ComplexPlan:
        """The request fields of ``operation`` (see EngageClient.request_schema)."""
        return await self._run(None, lambda c: c.request_schema(operation))

    # call(operation, **arguments), typed per operation, comes from AsyncTypedCalls: it is
    # the coroutine of _call.

    async def _call(self, operation: str, arguments: Mapping[str, Any], /) -> dict[str, Any]:
        """Call any operation of the WSDL in use (see EngageClient.call)."""
        write = None if is_read(operation) else _describe(
            operation, arguments.get("recipientId"))
        # the name is data here, not a literal: the sync client's call, untyped
        return await self._run(write, lambda c: cast(Any, c).call(operation, **arguments))

    # ------------------------------------------------------------ operations

    async def contact_get(self, identifier: Identifier | None = None, *,
                          email: str | None = None, mobile_number: str | None = None,
                          app_alias: str | None = None, external_id: str | None = None,
                          contact_id: int | None = None) -> Contact:
        """Look a contact up by exactly one identifier; raises ContactNotFoundError."""
        return await self._run(None, lambda c: c.contact_get(
            identifier, email=email, mobile_number=mobile_number, app_alias=app_alias,
            external_id=external_id, contact_id=contact_id))

    async def contact_create(self, *, email: str | None = None,
                             mobile_number: str | None = None, app_alias: str | None = None,
                             external_id: str | None = None,
                             attributes: Mapping[str, object] | None = None) -> Contact:
        """Create a contact; raises ObjectAlreadyExistsError if one has that identifier."""
        named = {"email": email, "mobile_number": mobile_number, "app_alias": app_alias,
                 "external_id": external_id}
        return await self._run(
            _describe("contactCreate", _named(named)),
            lambda c: c.contact_create(**named, attributes=attributes))

    async def message_send_single(self, message_id: int, recipient_id: int, *,
                                  parameters: Mapping[str, object] | None = None,
                                  attachments: Iterable[Attachment] = (),
                                  sender_profile: str | None = None) -> None:
        """Send prepared message ``message_id`` to contact ``recipient_id``; never repeated
        once it may have reached the server."""
        await self._run(
            _describe("messageSendSingle", recipient_id, message_id),
            lambda c: c.message_send_single(message_id, recipient_id, parameters=parameters,
                                            attachments=attachments,
                                            sender_profile=sender_profile))

    async def send_prepared_message(self, message_id: int, *, email: str | None = None,
                                    mobile_number: str | None = None,
                                    app_alias: str | None = None,
                                    external_id: str | None = None,
                                    contact_id: int | None = None,
                                    identifier: Identifier | None = None,
                                    parameters: Mapping[str, object] | None = None,
                                    attachments: Iterable[Attachment] = (),
                                    sender_profile: str | None = None,
                                    create_if_missing: bool = False) -> SendResult:
        """Look the contact up (creating it if asked), then send (see EngageClient)."""
        named = {"email": email, "mobile_number": mobile_number, "app_alias": app_alias,
                 "external_id": external_id, "contact_id": contact_id,
                 "identifier": identifier}
        return await self._run(
            _describe("send_prepared_message", _named(named), message_id),
            lambda c: c.send_prepared_message(
                message_id, **named, parameters=parameters,  # type: ignore[arg-type]
                attachments=attachments, sender_profile=sender_profile,
                create_if_missing=create_if_missing))

    async def api_version(self) -> str:
        """The tenant's API version (systemGetApiVersion)."""
        return await self._run(None, lambda c: c.api_version())

    # ------------------------------------------------------------ lifetime

    async def aclose(self) -> None:
        """Wait for the calls in flight (each ends by its deadline), stop the worker
        threads and release the connection pool. Later calls raise ConfigurationError."""
        if self._closed:
            return
        self._closed = True
        res = self._res
        res.executor.shutdown(wait=False)  # queued calls still run; nothing new starts
        if self._pending:  # their outcomes belong to their callers: only wait here
            await asyncio.gather(*(asyncio.wrap_future(f) for f in list(self._pending)),
                                 return_exceptions=True)
        res.executor.shutdown(wait=True)  # idle workers: they exit at once
        self._finalizer()

    async def __aenter__(self) -> AsyncEngageClient:
        try:
            await self._run(None, lambda sync: None)  # load the WSDL now
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    def _after_fork(self) -> None:
        # In a forked child the worker threads are gone and the executor's locks may be
        # held: start a new pool (the sync client renews its own transport and limiter).
        self._build_lock = threading.Lock()
        self._pending = set()
        self._res.executor = self._res.new_executor()


def _named(given: Mapping[str, object]) -> str | None:
    """``name=value`` of the one identifier given, for the cancellation warning."""
    named = [f"{k}={v}" for k, v in given.items() if v is not None]
    return ", ".join(named) or None


def _describe(operation: str, recipient: object, message_id: int | None = None) -> str:
    """How the cancellation warning names a write: operation, message, recipient."""
    message = f" of message {message_id}" if message_id is not None else ""
    to = f" (recipient {recipient})" if recipient is not None else ""
    return f"{operation}{message}{to}"
