"""The sandbox and its HTTP server: an in-process fake of the ecmapi SOAP endpoint.

``Sandbox`` holds the state, the settings and the application (:mod:`.app`, which decides
every reply) and, once started, runs a threading HTTP/1.1 server (keep-alive) in a daemon
thread that carries requests to the application and its replies, delays, resets and
truncations back to the socket. ``Sandbox.transport()`` reaches the same application
without a socket (:mod:`.inprocess`). A POST to the endpoint path is authenticated (HTTP
Basic), checked against injected faults and the rate ceiling, validated against the
bundled XSD, and answered like the real service. ``GET <endpoint>?wsdl`` serves the
bundled WSDL pointing at the sandbox, and ``GET <endpoint>ecmapi.xsd`` the schema it
imports (neither needs credentials).

At DEBUG, the ``engage_soap.sandbox`` logger records every SOAP request and reply envelope
with its operation and HTTP status (never a header, so never the credentials), with long
base64 attachment content cut to its first 32 characters and its length.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import socket
import struct
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import defaults
from .app import Application, Reply, Request
from .faults import FaultInjector, Throttle
from .rest_front import RestFront
from .soap_front import SoapFront
from .state import SandboxState

if TYPE_CHECKING:
    from .inprocess import InProcessTransport

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_USERNAME", "MAX_BODY_BYTES", "Sandbox", "run"]

logger = logging.getLogger("engage_soap.sandbox")

DEFAULT_USERNAME = "sandbox-api"
DEFAULT_PASSWORD = "sandbox-secret"
MAX_BODY_BYTES = 10 * 1024 * 1024

_API_VERSION = re.compile(r"[0-9]+(?:\.[0-9]+)*")
#: The host of the sandbox's address while no server runs (``.invalid`` never resolves).
INPROCESS_BASE_URL = "https://sandbox.invalid"


class _Server(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its sandbox and can drop idle keep-alive connections."""

    daemon_threads = True
    request_queue_size = 64
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, family: int) -> None:
        self.address_family = family
        self.sandbox = sandbox
        self._conn_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._closing = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): not needed here.
        TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def track(self, conn: socket.socket) -> bool:
        """Register an open connection; False once the server is closing."""
        with self._conn_lock:
            if self._closing:
                return False
            self._connections.add(conn)
            return True

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        """Wake every handler blocked on a kept-alive connection so it can finish."""
        with self._conn_lock:
            self._closing = True
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("sandbox: error while handling a connection", exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Carries one connection's requests (HTTP/1.1 keep-alive) to the application."""

    protocol_version = "HTTP/1.1"
    server_version = "engage-soap-sandbox"
    sys_version = ""
    server: _Server
    _reset = False

    def setup(self) -> None:
        # Idle keep-alive connections end after idle_timeout seconds.
        self.request.settimeout(self.server.sandbox.idle_timeout)
        # Headers and body go out in separate writes: without NODELAY, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every reply on a kept-alive connection.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
        if not self.server.track(self.connection):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.untrack(self.connection)
            if self._reset:
                # SO_LINGER 0 was set: closing now sends RST instead of FIN.
                self.connection.close()

    def version_string(self) -> str:
        return self.server_version

    # -- logging: never to stderr, never headers ------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("sandbox %s - %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        self.log_message(format, *args)

    # -- one request ----------------------------------------------------------------------

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        body = self._read_body(sandbox.app)
        if body is None:
            return
        parts = urlsplit(self.path)
        reply = sandbox.app.handle(Request(self.command, parts.path, parts.query,
                                           dict(self.headers.items()), body))
        if reply.delay > 0:
            sandbox.stopping.wait(reply.delay)  # cut short by stop()
        self._write(reply)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _serve

    def _read_body(self, app: Application) -> bytes | None:
        """The request body, or None after answering (411/400/413) or on a short read."""
        if self.headers.get("Transfer-Encoding"):
            self._write(Reply.text(411, "Content-Length required\n", close=True))
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        refused = app.check_length(length)
        if refused is not None:
            self._write(refused)
            return None
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _write(self, reply: Reply) -> None:
        """Send ``reply``, or carry out its socket action."""
        if reply.reset:
            # SO_LINGER 0: closing the connection (in finish()) sends RST, not FIN.
            self.close_connection = True
            self._reset = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            return
        body = reply.body
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if reply.close:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body if reply.truncate_at is None else body[:reply.truncate_at])
        except OSError:
            self.close_connection = True
        if reply.truncate_at is not None:
            self.close_connection = True


class Sandbox:
    """An in-process fake of the ecmapi SOAP service (like moto for AWS).

    Arguments:

    * ``users`` maps user names to passwords (default ``{DEFAULT_USERNAME: DEFAULT_PASSWORD}``);
    * ``state_file`` keeps the state as JSON across restarts; its directory must exist and
      be writable, else the constructor (and ``start()``) raise :class:`SandboxStateError`
      naming the path and the reason;
    * ``api_version`` (digits, optionally dotted: ``"8"``, ``"8.1"``; anything else is a
      ValueError) is what systemGetApiVersion answers; the endpoint is
      ``/api/soap/v<major>/`` unless ``path`` is given;
    * ``rate_limit`` is the calls-per-second ceiling per user (None: no ceiling);
    * ``latency`` delays every reply by that many seconds (default 0; the ``latency``
      attribute can be changed at run time); ``faults.inject(op, latency=...)`` adds a
      delay for one operation on top;
    * ``attributes`` adds contact attribute definitions to DEFAULT_ATTRIBUTES.

    Use as a context manager, or ``start()`` / ``stop()``. ``state`` holds the data
    (:class:`SandboxState`), ``faults`` injects failures (see
    :mod:`engage_soap.sandbox.faults`), e.g. ``sandbox.faults.inject("contactGet",
    "http_502", times=1)``.

    What it models (on one store: a v2 "user" is a v7 "contact", user id = contact id):

    * systemGetApiVersion, systemGetEcmVersion (``"8.0.0-sandbox"``);
    * contactGet, contactCreate, contactUpdate (a full replace of the contact found by the
      identifier of ``identifierType`` taken from the given contact: fields left out are
      removed, attributes replaced), contactDelete;
    * userCreate, userGet, userGetByEmail, userGetByIdentifier, userGetProfile(+ByEmail),
      userUpdateProfile(+ByEmail) (merge), userReplaceProfile(+ByEmail), userDelete (an
      unknown id is a no-op: the operation declares no NoSuchObjectException);
    * groupGet, groupGetPreparedMessages; membershipSubscribe(+ByEmail) (an existing
      membership is kept as it is; DOUBLE_OPT_IN does not wait for a confirmation),
      membershipUnsubscribe(+ByEmail) (a non-member: no-op), membershipCreate,
      membershipDelete, membershipFindAll(+ByEmail), membershipGetAttributes(+ByEmail),
      membershipUpdateAttributes (merge), membershipReplaceAttributes;
    * messageSendSingle and messageSendTransactional: recorded in ``state.outbox`` (the
      latter with its ``external_transaction_formula``), the recipient added to the
      message's group.

    Every other operation of the WSDL gets HTTP 500 with an UnexpectedErrorException
    (errorActor CLIENT, errorCode OPERATION_DISABLED, "The sandbox does not model operation
    'asyncPoll'."), or the same fault without detail for an operation that does not declare
    UnexpectedErrorException (messageGetManyUsedPersonalizations). No operation answers a
    fault detail its WSDL operation does not declare: such a fault goes out without detail.

    Checks the real service makes, which tests against the sandbox must meet:

    * e-mail addresses (EMAIL identifiers, ``emailAddress``, a user's ``email``) must look
      like ``local@domain.tld`` (one "@", no spaces): else InvalidParameterException
      (INVALID_PARAMETER) naming the field;
    * contact and user profile attributes must be defined (names are case-sensitive): the
      seed is DEFAULT_ATTRIBUTES = SALUTATION, TITLE, FIRSTNAME, LASTNAME, STREET, ZIP,
      CITY, COUNTRY, BIRTHDAY, GENDER, LANGUAGE; add names with ``attributes=`` or
      ``state.define_attributes(...)``; an unknown one is an InvalidParameterException
      (INVALID_ATTRIBUTE) naming it. Message parameters and membership attributes are free.

    A call over the rate ceiling, like the real service, gets HTTP 500 with a SOAP fault
    whose faultstring is "Database Access Limit Exceeded" and which has no detail.
    A call's path: Basic auth (401), envelope parsing, injected fault, rate ceiling,
    schema validation (InvalidParameterException), the operation; the reply (or the reset)
    then waits the latency. The application (``app``, :mod:`.app`) decides all of it;
    ``transport()`` reaches it without a socket.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 users: Mapping[str, str] | None = None,
                 state_file: str | os.PathLike[str] | None = None, api_version: str = "8",
                 rate_limit: float | None = defaults.ACCOUNT_RATE, path: str | None = None,
                 max_body_bytes: int = MAX_BODY_BYTES, idle_timeout: float = 60.0,
                 latency: float = 0.0, attributes: Iterable[str] = ()) -> None:
        if not isinstance(api_version, str) or not _API_VERSION.fullmatch(api_version):
            raise ValueError(f"api_version must be digits, optionally dotted (like '8' or "
                             f"'8.1'), not {api_version!r}")
        self.host = host
        self.requested_port = port
        self.users: dict[str, str] = (dict(users) if users is not None
                                      else {DEFAULT_USERNAME: DEFAULT_PASSWORD})
        self.api_version = api_version
        self.path = path or f"/api/soap/v{api_version.split('.')[0]}/"
        if not (self.path.startswith("/") and self.path.endswith("/")):
            raise ValueError("path must start and end with '/'")
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self._latency = 0.0
        self.latency = latency
        self.state = SandboxState(state_file, attributes=attributes)
        self.state.check_writable()
        self.faults = FaultInjector()
        self.limiter = Throttle(rate_limit)
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._soap = SoapFront(self.path, self._endpoint)
        self.app = Application(self, [self._soap, RestFront(self.rest_path)])

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self.

        Raises SandboxStateError if the state file cannot be written.
        """
        if self._server is not None:
            raise RuntimeError("the sandbox is running already")
        self.state.check_writable()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.stopping.clear()
        server = _Server((self.host, self.requested_port), self, family)
        # stop() waits for the loop's next poll: 10 ms keeps a test's start/stop at ~10 ms.
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                                  name=f"engage-soap-sandbox:{server.server_port}", daemon=True)
        try:
            thread.start()
        except BaseException:  # e.g. Ctrl-C before the thread ran: shutdown() would wait
            if thread.is_alive():  # for a serve_forever that never starts
                server.shutdown()
            server.server_close()
            raise
        self._server, self._thread = server, thread
        logger.debug("sandbox listening on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and the listening socket, join the threads."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: types.TracebackType | None) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    # -- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (after start())."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running sandbox."""
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The SOAP endpoint, e.g. ``http://127.0.0.1:PORT/api/soap/v8/``."""
        return self.base_url + self.path

    @property
    def rest_path(self) -> str:
        """The REST base path, ``/api/rest/v<major>/``."""
        return f"/api/rest/v{self.api_version.split('.')[0]}/"

    @property
    def rest_url(self) -> str:
        """The REST base, e.g. ``http://127.0.0.1:PORT/api/rest/v8/``: the same state,
        faults and rate ceiling as :attr:`url` (see :mod:`.rest_front`)."""
        return self.base_url + self.rest_path

    @property
    def wsdl_url(self) -> str:
        """The endpoint + ``?wsdl``."""
        return self.url + "?wsdl"

    @property
    def xsd_url(self) -> str:
        """Where the sandbox serves the schema the WSDL imports."""
        return self.url + "ecmapi.xsd"

    # -- settings -------------------------------------------------------------------------

    @property
    def rate_limit(self) -> float | None:
        """Calls per second per user before "Database Access Limit Exceeded" (None: off)."""
        return self.limiter.limit

    @rate_limit.setter
    def rate_limit(self, value: float | None) -> None:
        self.limiter.limit = value
        self.limiter.reset()

    @property
    def latency(self) -> float:
        """Seconds every reply is delayed by (0: none); settable while running."""
        return self._latency

    @latency.setter
    def latency(self, value: float) -> None:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value < 0):
            raise ValueError(f"latency must be a number of seconds >= 0, not {value!r}")
        self._latency = float(value)

    def wsdl_text(self) -> bytes:
        """The bundled WSDL with its address and schema import pointing at this sandbox."""
        return self._soap.wsdl()

    # -- without sockets ------------------------------------------------------------------

    def _endpoint(self) -> str:
        return self.url if self.running else self.inprocess_url

    @property
    def inprocess_url(self) -> str:
        """The endpoint for clients of :meth:`transport` while no server runs
        (``https://sandbox.invalid/api/soap/v8/``: a name that never resolves)."""
        return INPROCESS_BASE_URL + self.path

    def transport(self, *, timeout: float | None = None,
                  max_reply_bytes: int | None = None) -> InProcessTransport:
        """A transport that calls this sandbox's application directly, without a socket.

        ``EngageClient(sandbox.inprocess_url, user, password, transport=sandbox.transport())``
        (or ``sandbox.url`` once started: the transport routes by path and ignores the
        host). ``timeout`` (default the client's, 30 s) and ``max_reply_bytes`` play the
        roles they have for the built-in transport: a delay longer than ``timeout`` raises
        RequestTimeoutError after ``timeout`` seconds, as over a socket. Works whether or
        not the server runs; both see the same state.
        """
        from .inprocess import InProcessTransport

        return InProcessTransport(self.app, timeout=timeout, max_reply_bytes=max_reply_bytes)


def run(host: str = "127.0.0.1", port: int = 8080, *,
        state_file: str | os.PathLike[str] | None = None,
        users: Mapping[str, str] | None = None, rate_limit: float | None = defaults.ACCOUNT_RATE,
        api_version: str = "8", ready: Callable[[Sandbox], None] | None = None,
        latency: float = 0.0, attributes: Iterable[str] = ()) -> None:
    """Serve a sandbox until SIGINT (Ctrl-C) or SIGTERM, then stop cleanly.

    ``ready`` is called with the running sandbox (e.g. to print its URL); the other
    arguments are those of :class:`Sandbox`. Raises SandboxStateError (an OSError) if the
    state file cannot be written, ValueError for a bad argument.
    """
    sandbox = Sandbox(host, port, users=users, state_file=state_file, rate_limit=rate_limit,
                      api_version=api_version, latency=latency, attributes=attributes)
    # SIGINT and SIGTERM only note that they came: a KeyboardInterrupt raised anywhere in
    # start-up, in a lock or in a join could leave the server half started or a lock held
    # (and a handler that set an Event could deadlock on the Event's own lock).
    signals: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda num, _frame: signals.append(num))
    try:
        sandbox.start()
        logger.info("sandbox listening on %s", sandbox.url)
        if ready is not None and not signals:
            ready(sandbox)
        while not signals:
            time.sleep(0.1)  # resumed after a signal's handler ran (PEP 475)
    except KeyboardInterrupt:  # outside the main thread nothing else stops it
        pass
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
