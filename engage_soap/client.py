"""EngageClient: the public facade over the ecmapi service.

It validates every argument before any request, paces calls under the account's rate
limit, retries what is safe to retry, and leaves the wire format to a :class:`Wire`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from .errors import (
    ConfigurationError,
    ContactNotFoundError,
    EngageError,
    InvalidInputError,
    ObjectAlreadyExistsError,
)
from .models import (
    Attachment,
    Contact,
    Exchange,
    Identifier,
    IdentifierType,
    SendResult,
    check_id,
    check_text,
)
from .retry import RateLimiter, RetryPolicy
from .soap import SoapWire, Wire
from .transport import HttpTransport, Transport, basic_auth_header

__all__ = ["EngageClient"]

log = logging.getLogger("engage_soap")
T = TypeVar("T")

def _check_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str):
        raise ConfigurationError(f"endpoint must be a URL string, not {type(endpoint).__name__}")
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"endpoint must be an http(s) URL like https://<host>/api/soap/v8/, got {endpoint!r}")
    return endpoint


def _parameters(parameters: Mapping[str, object] | None) -> list[tuple[str, str]]:
    if parameters is None:
        return []
    if not isinstance(parameters, Mapping):
        raise InvalidInputError("parameters must be a mapping of name to value")
    out = []
    for name, value in parameters.items():
        check_text(name, "parameter name")
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInputError(
                f"parameter {name!r} must have a str value, not {type(value).__name__}")
        out.append((name, check_text(str(value), f"parameter {name!r}", allow_blank=True)))
    return out


def _attachments(attachments: Iterable[Attachment]) -> list[Attachment]:
    if isinstance(attachments, (str, bytes, Attachment)) or attachments is None:
        raise InvalidInputError("attachments must be a sequence of Attachment")
    items = list(attachments)
    for item in items:
        if not isinstance(item, Attachment):
            raise InvalidInputError(
                f"attachments must be Attachment objects, not {type(item).__name__}")
    return items


class EngageClient:
    """A client of one Engage tenant's ecmapi SOAP endpoint; safe to share between threads.

    ``endpoint``: the service address, ``https://<host>[/<instance>]/api/soap/v<N>/``; it
    overrides the WSDL's own address. ``username``/``password``: an Engage system user of
    type API or Hybrid (HTTP Basic on every call).

    ``wsdl``: None for the bundled copy, a file path, or an http(s) URL fetched once with
    the same credentials and cached on disk in ``wsdl_cache_dir`` (schema imports from
    other hosts only if listed in ``wsdl_allowed_hosts``, and never with credentials).

    ``timeout``: the deadline in seconds of one attempt (name resolution to the last
    byte of the reply), default 30. ``retry`` (a :class:`RetryPolicy`) decides what is
    tried again and bounds the whole call: reads freely, writes only when nothing reached
    the server. ``rate_limit``: calls per second for all threads of this client, default
    10 (the account's ceiling); None turns pacing off.

    ``verify``: TLS verification, on by default with certifi's CA bundle (or
    ``$REQUESTS_CA_BUNDLE``/``$CURL_CA_BUNDLE``); a path to a CA file or directory; False
    turns it off. ``cert``: a client certificate, a path or a (cert, key) pair.
    ``max_reply_bytes``: the cap of a reply after decompression, default 8 MiB.

    ``transport``: an object with ``request(method, url, body, headers) -> HttpReply`` and
    ``close()`` used instead of the built-in urllib3 transport (tests pass an in-memory
    fake); the four HTTP settings above then belong to it and must not be given here.
    """

    def __init__(self, endpoint: str, username: str, password: str, *,
                 wsdl: str | os.PathLike[str] | None = None, timeout: float | None = None,
                 retry: RetryPolicy | None = None, rate_limit: float | None = 10.0,
                 verify: bool | str | os.PathLike[str] | None = None,
                 cert: str | tuple[str, str] | None = None,
                 max_reply_bytes: int | None = None, transport: Transport | None = None,
                 wsdl_cache_dir: str | os.PathLike[str] | None = None,
                 wsdl_allowed_hosts: Iterable[str] = ()) -> None:
        self.endpoint = _check_endpoint(endpoint)
        if not isinstance(username, str) or not username:
            raise ConfigurationError("username must be a non-empty str")
        if not isinstance(password, str):
            raise ConfigurationError("password must be a str")
        self.username = username
        self.retry = retry if retry is not None else RetryPolicy.default()
        self._limiter = RateLimiter(rate_limit) if rate_limit is not None else None
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

            self._loaded = zeep_binding.load_wsdl(
                wsdl, http=self._http, authorization=self._authorization,
                cache_dir=wsdl_cache_dir, allowed_hosts=frozenset(wsdl_allowed_hosts))
        except BaseException:
            self._http.close()
            raise
        self._wire: Wire = SoapWire(self.endpoint, self._loaded.operations, self._http,
                                    self._authorization)
        self._service: Any = None
        self._service_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EngageClient(endpoint={self.endpoint!r}, username={self.username!r})"

    # ------------------------------------------------------------ plumbing

    @property
    def service(self) -> Any:
        """zeep's service proxy for the WSDL's other operations (the escape hatch).

        Calls made through it use this client's transport, credentials, deadline and
        reply cap, but return zeep objects, raise zeep's own exceptions and are neither
        retried nor rate-limited.
        """
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

    def _invoke(self, operation: str, call: Callable[[], T], *, idempotent: bool) -> T:
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
                return call()
            except EngageError as exc:
                delay = self.retry.delay_for(exc, attempt=attempt, idempotent=idempotent,
                                             waited=waited)
                if delay is None:
                    raise
                log.warning("%s attempt %d failed (%s: %s); retrying in %.2f s", operation,
                            attempt, type(exc).__name__, exc, delay)
                time.sleep(delay)
                waited += delay

    # ------------------------------------------------------------ operations

    def contact_get(self, identifier: Identifier | None = None, *, email: str | None = None,
                    mobile: str | None = None, app_alias: str | None = None,
                    external: str | None = None, contact_id: int | None = None) -> Contact:
        """Look a contact up by exactly one identifier; raises ContactNotFoundError."""
        given = {k: v for k, v in (("identifier", identifier), ("email", email),
                                   ("mobile", mobile), ("app_alias", app_alias),
                                   ("external", external), ("contact_id", contact_id))
                 if v is not None}
        if len(given) != 1:
            raise InvalidInputError(
                "contact_get takes exactly one of identifier, email, mobile, app_alias, "
                f"external, contact_id (got {', '.join(given) or 'none'})")
        if identifier is None:
            identifier = _identifier_from(**given)  # type: ignore[arg-type]
        elif not isinstance(identifier, Identifier):
            raise InvalidInputError(
                f"identifier must be an Identifier, not {type(identifier).__name__}")
        ident = identifier
        return self._invoke("contactGet", lambda: self._wire.get_contact(ident),
                            idempotent=True)

    def contact_create(self, *, email: str | None = None, mobile_number: str | None = None,
                       app_alias: str | None = None, external_id: str | None = None,
                       attributes: Mapping[str, str] | None = None) -> Contact:
        """Create a contact; raises ObjectAlreadyExistsError if one has that identifier."""
        fields: dict[str, Any] = {}
        for key, value, what in (("emailAddress", email, "email"),
                                 ("mobileNumber", mobile_number, "mobile_number"),
                                 ("applicationAlias", app_alias, "app_alias"),
                                 ("identifier", external_id, "external_id")):
            if value is not None:
                fields[key] = check_text(value, what)
        if not fields:
            raise InvalidInputError("contact_create needs at least one of email, "
                                    "mobile_number, app_alias, external_id")
        if attributes is not None:
            if not isinstance(attributes, Mapping):
                raise InvalidInputError("attributes must be a mapping of name to value")
            fields["attributes"] = [
                {"name": check_text(n, "attribute name"),
                 "value": check_text(v, f"attribute {n!r}", allow_blank=True)}
                for n, v in attributes.items()]
        return self._invoke("contactCreate", lambda: self._wire.create_contact(fields),
                            idempotent=False)

    def message_send_single(self, message_id: int, recipient_id: int, *,
                            parameters: Mapping[str, str] | None = None,
                            attachments: Iterable[Attachment] = (),
                            sender_profile: str | None = None) -> None:
        """Send prepared message ``message_id`` to contact ``recipient_id``.

        Never retried once the request may have reached the server: see the README.
        """
        mid = check_id(message_id, "message_id")
        rid = check_id(recipient_id, "recipient_id")
        params = _parameters(parameters)
        files = _attachments(attachments)
        profile = self._check_sender_profile(sender_profile)
        self._invoke("messageSendSingle",
                     lambda: self._wire.send_message(mid, rid, params, files, profile),
                     idempotent=False)

    def _check_sender_profile(self, sender_profile: str | None) -> str | None:
        if sender_profile is None:
            return None
        check_text(sender_profile, "sender_profile")
        if not self._wire.supports_sender_profile:
            raise ConfigurationError(
                "sender_profile was given, but the WSDL in use declares no sender profile "
                "field for messageSendSingle; nothing was sent (use a WSDL that declares "
                "senderProfileName)")
        return sender_profile

    def send_prepared_message(self, message_id: int, *, email: str | None = None,
                              identifier: Identifier | None = None,
                              parameters: Mapping[str, str] | None = None,
                              attachments: Iterable[Attachment] = (),
                              sender_profile: str | None = None,
                              create_if_missing: bool = False) -> SendResult:
        """The vendor's procedure: look the contact up (creating it if asked), then send."""
        check_id(message_id, "message_id")
        if (email is None) == (identifier is None):
            raise InvalidInputError("send_prepared_message takes exactly one of email, "
                                    "identifier")
        ident = identifier if identifier is not None else _identifier_from(email=email)
        if not isinstance(ident, Identifier):
            raise InvalidInputError(
                f"identifier must be an Identifier, not {type(ident).__name__}")
        if create_if_missing and ident.type is IdentifierType.ID:
            raise InvalidInputError("create_if_missing needs an identifier other than ID")
        params = _parameters(parameters)
        files = _attachments(attachments)
        profile = self._check_sender_profile(sender_profile)
        created = False
        log.info("looking up contact by %s", ident.type.value)
        try:
            contact = self.contact_get(ident)
        except ContactNotFoundError:
            if not create_if_missing:
                raise
            log.info("contact not found; creating it")
            try:
                contact = self.contact_create(**{_facade_field(ident): ident.value})  # type: ignore[arg-type]
                created = True
            except ObjectAlreadyExistsError:  # created meanwhile by someone else
                contact = self.contact_get(ident)
        log.info("sending message %d to contact %d", message_id, contact.id)
        self._invoke("messageSendSingle",
                     lambda: self._wire.send_message(message_id, contact.id, params, files,
                                                     profile),
                     idempotent=False)
        return SendResult(message_id=message_id, contact=contact, created=created)

    def api_version(self) -> str:
        """The tenant's API version (systemGetApiVersion)."""
        return self._invoke("systemGetApiVersion", self._wire.api_version, idempotent=True)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the connection pool (a transport passed in is closed too)."""
        self._wire.close()

    def __enter__(self) -> EngageClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _identifier_from(*, email: str | None = None, mobile: str | None = None,
                     app_alias: str | None = None, external: str | None = None,
                     contact_id: int | None = None) -> Identifier:
    if email is not None:
        return Identifier.email(email)
    if mobile is not None:
        return Identifier.mobile(mobile)
    if app_alias is not None:
        return Identifier.app_alias(app_alias)
    if external is not None:
        return Identifier.external(external)
    return Identifier.id(contact_id)  # type: ignore[arg-type]


def _facade_field(ident: Identifier) -> str:
    return {IdentifierType.EMAIL: "email", IdentifierType.MOBILE: "mobile_number",
            IdentifierType.APP_ALIAS: "app_alias",
            IdentifierType.EXTERNAL: "external_id"}[ident.type]
