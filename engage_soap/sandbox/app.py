"""The sandbox application: one request in, one reply (or socket action) out, no socket.

Everything the sandbox decides is decided here, once, for every way of reaching it (the
HTTP server in :mod:`.server`, the in-process transport in :mod:`.inprocess`):
latency, the body-size bound, routing, HTTP Basic authentication, injected faults, the
rate ceiling, schema validation, the operations, the call log and the documents.

A request is routed by path to a **front**: the codec of one protocol. The SOAP front
(:class:`~.soap_front.SoapFront`) owns the endpoint path; a front turns a request into
``(operation, request element)`` and a reply payload (the ``ns2:<operation>Response``
element the operation handlers build) or a :class:`SoapFault` back into bytes. The
handlers, the state and every check above are shared, so another front (REST/JSON, whose
body is the value of the SOAP reply's one element) is added beside the SOAP one without
touching them.

The application never sleeps and never touches a socket: a delay, a connection reset or
a reply cut short are *socket actions* in the :class:`Reply`, carried out by whichever
front end delivers it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from lxml import etree

from .faults import FaultInjector, FaultRule, Throttle, throttle_fault
from .operations import MODELED_OPERATIONS, dispatch
from .state import CallRecord, SandboxState
from .wire import SoapFault, fault_bean, shorten_for_log, validate_payload

__all__ = ["Application", "Front", "Refusal", "Reply", "Request", "Settings"]

logger = logging.getLogger("engage_soap.sandbox")

TEXT = "text/plain; charset=utf-8"
_HTML = "text/html"
_PROXY_PAGES = {
    502: b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
         b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
         b"</body>\r\n</html>\r\n",
    503: b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
         b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
         b"<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
}


@dataclass(frozen=True)
class Request:
    """One HTTP request: ``path`` without the query, ``query`` the raw query string."""

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        """A header's value, the name compared without case."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), default)


@dataclass(frozen=True)
class Reply:
    """The answer to a request, and the socket actions that go with it.

    ``delay``: seconds to wait before answering; ``reset``: drop the connection (TCP RST)
    instead of replying; ``truncate_at``: send only that many bytes of ``body`` under the
    full Content-Length, then close; ``close``: answer with ``Connection: close``.
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    close: bool = False
    delay: float = 0.0
    reset: bool = False
    truncate_at: int | None = None

    @classmethod
    def text(cls, status: int, text: str, *, close: bool = False,
             headers: Mapping[str, str] | None = None) -> Reply:
        """A short text/plain reply."""
        return cls(status, text.encode(), {"Content-Type": TEXT, **(headers or {})},
                   close=close)


class Refusal(Exception):
    """Raised by a front's ``decode``: the request is answered by ``reply`` (after
    authentication) without reaching an operation, e.g. a REST path with no route."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class Front(Protocol):
    """The codec of one protocol, mounted at a path of the application.

    ``path`` is the prefix it answers under. ``direct`` answers a request that is not an
    operation call (a document, 404, 405) without credentials, or returns None for a call;
    ``decode`` names the call's operation and builds its ``ecm:`` request element (or
    raises :class:`SoapFault`, or :class:`Refusal`); ``encode`` and ``encode_fault`` render
    a reply payload (``ns2:<operation>Response``) or a fault.
    """

    path: str

    def direct(self, request: Request) -> Reply | None: ...

    def decode(self, request: Request) -> tuple[str, etree._Element]: ...

    def encode(self, operation: str, payload: etree._Element) -> Reply: ...

    def encode_fault(self, fault: SoapFault) -> Reply: ...


class Settings(Protocol):
    """What the application reads, at each request, from its sandbox."""

    users: dict[str, str]
    api_version: str
    max_body_bytes: int
    state: SandboxState
    faults: FaultInjector
    limiter: Throttle

    @property
    def latency(self) -> float: ...


class Application:
    """The sandbox as a function of requests: :meth:`handle` and :meth:`check_length`."""

    def __init__(self, settings: Settings, fronts: list[Front]) -> None:
        self.settings = settings
        # Longest path first: the most specific front answers.
        self.fronts = sorted(fronts, key=lambda f: len(f.path), reverse=True)

    def check_length(self, length: int) -> Reply | None:
        """The refusal of a request body of ``length`` bytes (-1: unreadable), or None.

        The HTTP server asks before reading the body; :meth:`handle` asks again.
        """
        if length < 0:
            return Reply.text(400, "Bad Content-Length\n", close=True)
        if length > self.settings.max_body_bytes:
            return Reply.text(413, "Request body too large\n", close=True)
        return None

    def handle(self, request: Request) -> Reply:
        """The reply to ``request``, the sandbox's ``latency`` included as its ``delay``."""
        refused = self.check_length(len(request.body))
        if refused is not None:
            return refused
        reply = self._route(request)
        latency = self.settings.latency
        return replace(reply, delay=reply.delay + latency) if latency > 0 else reply

    def _route(self, request: Request) -> Reply:
        front = next((f for f in self.fronts if request.path.startswith(f.path)), None)
        if front is None:
            return Reply.text(404, "Not Found\n")
        direct = front.direct(request)
        if direct is not None:
            return direct
        user = self.authenticate(request.header("Authorization"))
        if user is None:
            reason = ("Invalid credentials\n" if request.header("Authorization")
                      else "Authentication required\n")
            return Reply.text(401, reason,
                              headers={"WWW-Authenticate": 'Basic realm="Engage API"'})
        try:
            return self._call(front, request, user)
        except Refusal as refusal:
            return refusal.reply

    def authenticate(self, header: str) -> str | None:
        """The user an HTTP Basic ``Authorization`` header authenticates, or None."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        expected = self.settings.users.get(user) if sep else None
        # Compare even for an unknown user, so timing does not tell users apart.
        ok = hmac.compare_digest(password.encode("utf-8"),
                                 (expected if expected is not None else "\0").encode("utf-8"))
        return user if ok and expected is not None else None

    # -- one operation call -----------------------------------------------------------

    def _call(self, front: Front, request: Request, user: str) -> Reply:
        # Decide the reply and record the call before the reply goes out: a test that reads
        # state.calls right after its client returns then always sees the call.
        operation: str | None = None
        element: etree._Element | None = None
        rule: FaultRule | None = None
        try:
            try:
                operation, element = front.decode(request)
            except SoapFault as fault:
                problem: SoapFault | None = fault
            else:
                problem = None
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug("sandbox: request %s:\n%s", operation or "(not an operation)",
                             shorten_for_log(request.body))
            rule = self.settings.faults.take(operation)
            reply = self._plan(front, user, operation, element, problem, rule)
        except Refusal:
            raise  # answered by the front, not a call
        except Exception:
            logger.exception("sandbox: unexpected error while answering %s",
                             operation or "a request")
            reply = self._fault(front, SoapFault.unexpected().for_operation(operation))
        status = 0 if reply.reset else reply.status
        self.settings.state.record_call(CallRecord(operation, status, user,
                                                   rule.kind if rule is not None else None))
        if logger.isEnabledFor(logging.DEBUG):
            if reply.reset:
                logger.debug("sandbox: reply to %s: connection reset (no reply)",
                             operation or "(none)")
            else:
                logger.debug("sandbox: reply to %s: HTTP %d%s\n%s", operation or "(none)",
                             reply.status, " (truncated)" if reply.truncate_at is not None
                             else "", shorten_for_log(reply.body))
        return reply

    def _plan(self, front: Front, user: str, operation: str | None,
              element: etree._Element | None, problem: SoapFault | None,
              rule: FaultRule | None) -> Reply:
        """The reply to a decoded call (``problem``: why it could not be decoded)."""
        delay = rule.latency if rule is not None else 0.0
        kind = rule.kind if rule is not None else None
        if kind in ("http_502", "http_503"):
            status = 502 if kind == "http_502" else 503
            return Reply(status, _PROXY_PAGES[status], {"Content-Type": _HTML}, delay=delay)
        if kind == "empty_503":
            return Reply(503, delay=delay)
        if kind == "reset":
            return Reply(0, reset=True, delay=delay)
        if kind == "fault":
            injected = rule.fault if rule and rule.fault else SoapFault.unexpected(
                "Injected fault.")
            return replace(self._fault(front, injected), delay=delay)
        if kind == "throttle" or (problem is None and not self.settings.limiter.allow(user)):
            return replace(self._fault(front, throttle_fault()), delay=delay)
        if problem is not None:
            return replace(self._fault(front, problem), delay=delay)
        assert operation is not None and element is not None
        try:
            payload = self._run(operation, element)
        except SoapFault as fault:
            return replace(self._fault(front, fault.for_operation(operation)), delay=delay)
        if kind == "reset_after":
            return Reply(0, reset=True, delay=delay)
        reply = replace(front.encode(operation, payload), delay=delay)
        if kind == "truncated":
            reply = replace(reply, truncate_at=len(reply.body) // 2)
        return reply

    def _run(self, operation: str, element: etree._Element) -> etree._Element:
        """Validate and run one operation: its reply payload, or raise SoapFault."""
        if operation not in MODELED_OPERATIONS:
            raise SoapFault.not_modeled(operation)
        fault = validate_payload(element)
        if fault is not None:
            raise fault
        settings = self.settings
        try:
            payload = dispatch(operation, element, settings.state, settings.api_version)
        except SoapFault:
            raise
        except Exception:
            logger.exception("sandbox: %s failed unexpectedly", operation)
            raise SoapFault.unexpected() from None
        problem = validate_payload(payload)
        if problem is not None:
            logger.error("sandbox: %s reply does not match the schema: %s", operation, problem)
            raise SoapFault.unexpected()
        return payload

    @staticmethod
    def _fault(front: Front, fault: SoapFault) -> Reply:
        """``front``'s rendering of ``fault``; a detail that does not match the schema
        becomes an unexpected error."""
        bean = fault_bean(fault)
        if bean is not None and validate_payload(bean) is not None:
            logger.error("sandbox: fault detail %s does not match the schema",
                         fault.detail_name)
            fault = SoapFault.unexpected()
        return front.encode_fault(fault)
