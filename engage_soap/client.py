"""EngageClient: the public facade over the ecmapi service.

It validates every argument before any request, paces calls under the account's rate
limit, retries what is safe to retry, and leaves the wire format to a :class:`Wire`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import defaults, shapes
from .errors import (
    ConfigurationError,
    EngageError,
    InvalidInputError,
    RateLimitedError,
)
from .models import (
    Attachment,
    Contact,
    Exchange,
    Identifier,
    SendResult,
    check_id,
)
from .procedures import check_create, lookup_or_create, one_identifier
from .rate_limit import RateLimiter, account_key
from .retry import RetryPolicy
from .schema import ComplexPlan
from .service import is_read
from .shapes import nonblank
from .soap import Wire
from .transport import HttpTransport, Transport, basic_auth_header, display_url
from .typed_operations import TypedCalls
from .wires import open_wire, protocol_for

if TYPE_CHECKING:
    from .bulk import BulkReport

__all__ = ["EngageClient"]

log = logging.getLogger("engage_soap")


_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _no_userinfo(url: str, what: str) -> None:
    """Refuse credentials written into a URL: they would show wherever the URL is shown."""
    if "@" in urlsplit(url).netloc:
        raise ConfigurationError(
            f"{what} {display_url(url)!r} carries credentials (user:password@); give them as "
            "username and password instead (--username and ENGAGE_PASSWORD on the command "
            "line)")


def _check_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str):
        raise ConfigurationError(f"endpoint must be a URL string, not {type(endpoint).__name__}")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError("endpoint must be an http(s) URL like "
                                 f"https://<host>/api/soap/v8/, got {display_url(endpoint)!r}")
    _no_userinfo(endpoint, "the endpoint")
    if parts.scheme == "http" and parts.hostname not in _LOOPBACK \
            and not parts.hostname.startswith("127."):
        warnings.warn(f"the endpoint {parts.scheme}://{parts.netloc}/ is not https: the "
                      "password goes over the network in clear text", UserWarning,
                      stacklevel=3)
    return endpoint


def _check_wsdl(wsdl: object, allowed_hosts: object) -> frozenset[str]:
    """Check ``wsdl`` and return ``wsdl_allowed_hosts`` as a set of host names."""
    if wsdl is not None and not isinstance(wsdl, str | os.PathLike):
        raise ConfigurationError("wsdl must be None (the bundled WSDL), a file path or an "
                                 f"http(s) URL, not {type(wsdl).__name__}")
    if isinstance(wsdl, str):
        _no_userinfo(wsdl, "the WSDL URL")
    if isinstance(allowed_hosts, str | bytes) or not isinstance(allowed_hosts, Iterable):
        raise ConfigurationError("wsdl_allowed_hosts must be a list of host names, e.g. "
                                 f"['schemas.example.com'], not {type(allowed_hosts).__name__}")
    hosts = frozenset(allowed_hosts)
    bad = sorted(repr(h) for h in hosts if not isinstance(h, str) or not h.strip())
    if bad:
        raise ConfigurationError("wsdl_allowed_hosts must hold host names (non-empty str), "
                                 f"not {', '.join(bad)}")
    return hosts


class EngageClient(TypedCalls):
    """A client of one Engage tenant's ecmapi SOAP endpoint; safe to share between threads.

    ``endpoint``: the service address, ``https://<host>[/<instance>]/api/soap/v<N>/``; it
    overrides the WSDL's own address. ``username``/``password``: an Engage system user of
    type API or Hybrid (HTTP Basic on every call).

    ``wsdl``: None for the bundled copy, a file path, or an http(s) URL fetched once with
    the same credentials and cached on disk in ``wsdl_cache_dir`` (schema imports from
    other hosts only if listed in ``wsdl_allowed_hosts``, and never with credentials).

    ``timeout``: the deadline in seconds of one attempt (name resolution to the last
    byte of the reply), default 30. ``retry`` (a :class:`RetryPolicy`, or an int: the
    number of attempts) decides what is tried again and bounds the whole call: reads
    freely, writes only when nothing reached the server. ``rate_limit``: calls per second
    for all threads of this client, default 10 (the account's ceiling); None turns pacing
    off. ``rate_store``: share that budget and the back-off after a throttle with every
    client of the account: a file path or ``file://`` URL (the processes of one host) or a
    ``redis://``/``rediss://`` URL (many hosts; ``pip install 'engage-soap[redis]'``); None
    keeps it to this client.

    ``verify``: TLS verification, on by default with certifi's CA bundle (or
    ``$REQUESTS_CA_BUNDLE``/``$CURL_CA_BUNDLE``); a path to a CA file or directory; False
    turns it off. ``cert``: a client certificate, a path or a (cert, key) pair.
    ``max_reply_bytes``: the cap of a reply after decompression, default 8 MiB.

    ``transport``: an object with ``request(method, url, body, headers) -> HttpReply`` and
    ``close()`` used instead of the built-in urllib3 transport (tests pass an in-memory
    fake); the four HTTP settings above then belong to it and must not be given here.

    ``validate``: check every request before it is sent, and every successful reply
    before it is read, against the schema of the WSDL in use (contract testing; off by
    default; SOAP only). A request that does not fit raises InvalidInputError naming the
    element path, and nothing is sent; a reply that does not fit raises ProtocolError.

    ``protocol``: ``"soap"`` or ``"rest"``; None follows the endpoint's path (``/api/soap/``
    or ``/api/rest/``). On REST the endpoint is the base ``https://<host>[/<instance>]/api/
    rest/v<N>/``, the same facade and ``call`` work for every operation with a REST path
    (docs/rest-mapping.md), and no WSDL is fetched (the bundled one, or ``wsdl``, gives
    the schema).
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
                 protocol: str | None = None) -> None:
        self.endpoint = _check_endpoint(endpoint)
        allowed_hosts = _check_wsdl(wsdl, wsdl_allowed_hosts)
        if not isinstance(username, str) or not username:
            raise ConfigurationError("username must be a non-empty str")
        if not isinstance(password, str):
            raise ConfigurationError("password must be a str")
        self.username = username
        self.retry = RetryPolicy.of(retry)
        if rate_store is not None and rate_limit is None:
            raise ConfigurationError("rate_store shares the rate_limit: give both, or neither")
        self._limiter = (RateLimiter(rate_limit, store=rate_store,
                                     account=account_key(self.endpoint, username))
                         if rate_limit is not None else None)
        http_settings: dict[str, Any] = {"timeout": timeout, "verify": verify, "cert": cert,
                         "max_reply_bytes": max_reply_bytes}
        given = {k: v for k, v in http_settings.items() if v is not None}
        if transport is None:
            self._http: Transport = HttpTransport(**given)
        elif not isinstance(transport, Transport):
            raise ConfigurationError("transport must have request() and close() methods")
        elif given:
            raise ConfigurationError(
                f"{', '.join(given)} configure the built-in transport; with transport= set "
                "them on your transport instead")
        else:
            self._http = transport
        self._authorization = basic_auth_header(username, password)
        try:
            from . import zeep_binding  # zeep is imported only when a client is built

            protocol_for(self.endpoint, protocol)  # before the WSDL is read
            self._loaded = zeep_binding.load_wsdl(
                wsdl, http=self._http, authorization=self._authorization,
                cache_dir=wsdl_cache_dir, allowed_hosts=allowed_hosts)
            self._wire: Wire = open_wire(self.endpoint, protocol, self._loaded, self._http,
                                         self._authorization, validate=validate)
        except BaseException:
            self._http.close()
            raise
        self._sender_path = self._wire.sender_profile_path
        self._service: Any = None
        self._service_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"EngageClient(endpoint={display_url(self.endpoint)!r}, "
                f"username={self.username!r})")

    # ------------------------------------------------------------ plumbing

    @property
    def service(self) -> Any:
        """zeep's service proxy for the WSDL's other operations (the escape hatch).

        Calls made through it use this client's transport, credentials, deadline and
        reply cap, but return zeep objects, raise zeep's own exceptions and are neither
        retried nor rate-limited. SOAP only.
        """
        if self._wire.protocol != "soap":
            raise ConfigurationError("client.service is zeep's SOAP proxy; this client "
                                     "speaks REST (use client.call)")
        if self._service is None:
            with self._service_lock:
                if self._service is None:
                    from . import zeep_binding

                    self._service = zeep_binding.make_service(
                        self._loaded, self.endpoint, self._http, self._authorization)
        return self._service

    @property
    def last_exchange(self) -> Exchange | None:
        """The last request and reply this client exchanged (Authorization removed)."""
        return self._wire.last_exchange

    def operations(self) -> dict[str, dict[str, Any]]:
        """Every operation of the contract in use that the protocol offers (on REST those
        with a REST path): whether it is a read (retried freely),
        its arguments and its reply, each field with its type, occurrence and choices, and
        the faults it declares."""
        return self._wire.model.describe()

    def request_schema(self, operation: str) -> ComplexPlan:
        """The request fields of ``operation`` as compiled from the contract in use
        (``.find("a/b")`` gives a field; ``.describe()`` it as plain data)."""
        return self._wire.model.operation(operation).request

    # call(operation, **arguments), typed per operation, comes from TypedCalls: it is _call.

    def _call(self, operation: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """One operation through the wire: paced, retried by the rules, errors labelled."""
        read = is_read(operation)
        wire = self._wire
        attempt = 0
        waited = 0.0
        while True:
            attempt += 1
            if self._limiter is not None:
                paced = self._limiter.acquire()
                if paced > 0:
                    log.debug("%s attempt %d paced by the rate limit: waited %.3f s",
                              operation, attempt, paced)
            try:
                return wire.call(operation, arguments)
            except EngageError as exc:
                if exc.operation is None:
                    exc.operation = operation
                if isinstance(exc, RateLimitedError) and self._limiter is not None:
                    # one shared back-off: every thread of this client holds its calls
                    self._limiter.pause(self.retry.rate_limited_delay)
                delay = self.retry.delay_for(exc, attempt=attempt, idempotent=read,
                                             waited=waited)
                if delay is None:
                    raise
                log.warning("%s attempt %d failed (%s: %s); retrying in %.2f s", operation,
                            attempt, type(exc).__name__, exc, delay)
                time.sleep(delay)
                waited += delay

    # ------------------------------------------------------------ operations

    def contact_get(self, identifier: Identifier | None = None, *, email: str | None = None,
                    mobile_number: str | None = None, app_alias: str | None = None,
                    external_id: str | None = None, contact_id: int | None = None) -> Contact:
        """Look a contact up by exactly one identifier; raises ContactNotFoundError."""
        ident = one_identifier("contact_get", identifier, email=email,
                                mobile_number=mobile_number, app_alias=app_alias,
                                external_id=external_id, contact_id=contact_id)
        reply = self._call("contactGet", {"identifier": shapes.identifier(ident)})
        return shapes.contact(reply.get("contact"), "contactGet")

    def contact_create(self, *, email: str | None = None, mobile_number: str | None = None,
                       app_alias: str | None = None, external_id: str | None = None,
                       attributes: Mapping[str, object] | None = None) -> Contact:
        """Create a contact; raises ObjectAlreadyExistsError if one has that identifier."""
        given = {k: v for k, v in (("email", email), ("mobile_number", mobile_number),
                                   ("app_alias", app_alias), ("external_id", external_id))
                 if v is not None}
        if not given:
            raise InvalidInputError("contact_create needs at least one of email, "
                                    "mobile_number, app_alias, external_id")
        reply = self._call("contactCreate",
                           {"contact": shapes.new_contact(given, attributes)})
        return shapes.contact(reply.get("contact"), "contactCreate")

    def message_send_single(self, message_id: int, recipient_id: int, *,
                            parameters: Mapping[str, object] | None = None,
                            attachments: Iterable[Attachment] = (),
                            sender_profile: str | None = None) -> None:
        """Send prepared message ``message_id`` to contact ``recipient_id``.

        Never retried once the request may have reached the server: see the README.
        """
        self._call("messageSendSingle", self._message(message_id, recipient_id, parameters,
                                                      attachments, sender_profile))

    def check_send(self, message_id: int, *, parameters: Mapping[str, object] | None = None,
                   attachments: Iterable[Attachment] = (),
                   sender_profile: str | None = None) -> None:
        """Check a send's input (message id, parameters, attachments, sender profile) as
        :meth:`message_send_single` would, without sending; raises InvalidInputError (or
        ConfigurationError for what the WSDL cannot carry)."""
        self._checked_message(message_id, parameters, attachments, sender_profile)

    def _checked_message(self, message_id: int, parameters: Mapping[str, object] | None,
                         attachments: Iterable[Attachment],
                         sender_profile: str | None) -> dict[str, Any]:
        """messageSendSingle's arguments for a recipient to come, checked by the wire."""
        send = self._message(message_id, 1, parameters, attachments, sender_profile)
        self._wire.check("messageSendSingle", send)
        return send

    def _message(self, message_id: int, recipient_id: int,
                 parameters: Mapping[str, object] | None, attachments: Iterable[Attachment],
                 sender_profile: str | None) -> dict[str, Any]:
        """messageSendSingle's arguments; what the schema cannot say is checked here."""
        check_id(message_id, "message_id")
        check_id(recipient_id, "recipient_id")
        if sender_profile is not None:
            nonblank(sender_profile, "sender_profile")
            if self._sender_path is None:
                raise ConfigurationError(
                    "sender_profile was given, but the WSDL in use declares no sender profile "
                    "field for messageSendSingle; nothing was sent (use a WSDL that declares "
                    "senderProfileName, or REST: protocol='rest')")
        return shapes.message(message_id, recipient_id, shapes.parameters(parameters),
                              shapes.attachments(attachments), sender_profile,
                              self._sender_path)

    def send_prepared_message(self, message_id: int, *, email: str | None = None,
                              mobile_number: str | None = None, app_alias: str | None = None,
                              external_id: str | None = None, contact_id: int | None = None,
                              identifier: Identifier | None = None,
                              parameters: Mapping[str, object] | None = None,
                              attachments: Iterable[Attachment] = (),
                              sender_profile: str | None = None,
                              create_if_missing: bool = False) -> SendResult:
        """The vendor's procedure: look the contact up (creating it if asked), then send.

        The contact is named by exactly one of ``email``, ``mobile_number``, ``app_alias``,
        ``external_id``, ``contact_id`` or ``identifier``. Every input, the message's
        included, is checked before the first request. A failure says which step failed
        in its ``operation`` (contactGet, contactCreate or messageSendSingle).
        """
        ident = one_identifier("send_prepared_message", identifier, email=email,
                               mobile_number=mobile_number, app_alias=app_alias,
                               external_id=external_id, contact_id=contact_id)
        check_create(ident, create_if_missing)
        # every input is checked before the first request
        send = self._checked_message(message_id, parameters, attachments, sender_profile)
        contact, created = lookup_or_create(self, ident, create_if_missing=create_if_missing)
        log.info("sending message %d to contact %d", message_id, contact.id)
        self._call("messageSendSingle", {**send, "recipientId": contact.id})
        return SendResult(message_id=message_id, contact=contact, created=created)

    def send_bulk(self, message_id: int, recipients: Iterable[object], *,
                  journal: str | os.PathLike[str], workers: int = defaults.BULK_WORKERS,
                  create_if_missing: bool = False,
                  parameters: Mapping[str, object] | None = None,
                  on_progress: Callable[[BulkReport], None] | None = None,
                  resend_unknown: bool = False, resume: bool = True,
                  dry_run: bool = False) -> BulkReport:
        """Send prepared message ``message_id`` to many recipients, each exactly once.

        ``recipients``: e-mail strings, Identifiers, or mappings with one identifier
        (``email``, ``mobile_number``, ``app_alias``, ``external_id``, ``contact_id`` or
        ``identifier``) and per-recipient ``parameters`` (over ``parameters``). Runs on
        ``workers`` threads at this client's rate limit; ``journal`` (an SQLite file) makes
        the job resumable: run it again and only what is not yet sent is sent, never a
        recipient whose send may have gone out (``unknown``) unless ``resend_unknown``;
        one run at a time. ``resume=False`` refuses a journal holding a job already begun.
        ``dry_run``: check every row and look the contacts up, nothing created or sent, no
        journal written; the report counts what a real run would send. See
        :mod:`engage_soap.bulk`.
        """
        from .bulk import send_bulk

        check_id(message_id, "message_id")
        return send_bulk(self, message_id, recipients, journal=journal, workers=workers,
                         create_if_missing=create_if_missing, parameters=parameters,
                         on_progress=on_progress, resend_unknown=resend_unknown,
                         resume=resume, dry_run=dry_run)

    def api_version(self) -> str:
        """The tenant's API version (systemGetApiVersion)."""
        return shapes.version(self._call("systemGetApiVersion", {}), "systemGetApiVersion")

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the connection pool (a transport passed in is closed too)."""
        self._wire.close()
        if self._limiter is not None:
            self._limiter.close()

    def __enter__(self) -> EngageClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

