"""The exception hierarchy of engage_soap, and the table that classifies server faults.

Every exception holds plain, picklable data only (str, int, bool, bytes, dict of str), so
exceptions cross process boundaries (job queues, multiprocessing, logging handlers). The
zeep, urllib3 or lxml error that caused one is chained as ``__cause__``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "THROTTLE_TEXT",
    "AuthenticationError",
    "ConfigurationError",
    "ContactNotFoundError",
    "EngageError",
    "EngageFault",
    "HTTPStatusError",
    "InvalidInputError",
    "InvalidParameterError",
    "NoSuchObjectError",
    "ObjectAlreadyExistsError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "RequestTimeoutError",
    "TransportError",
    "UnexpectedServerError",
    "fault_from_detail",
    "throttled",
]


class EngageError(Exception):
    """Base class of every error engage_soap raises.

    ``retryable`` says whether the same call may succeed if made again later;
    ``request_sent`` says whether the request may have reached the server (so a
    non-idempotent call must not be repeated blindly); ``operation`` names the ecmapi
    operation that failed (e.g. which step of ``send_prepared_message``), when known.
    """

    retryable: bool = False
    operation: str | None = None

    def __init__(self, message: str, *, retryable: bool | None = None,
                 request_sent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable
        self.request_sent = request_sent

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the instance dict so every subclass pickles with its fields.
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[EngageError], message: str, state: dict[str, Any]) -> EngageError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConfigurationError(EngageError):
    """Bad settings: the WSDL is missing, unreachable or unparseable, or lacks something needed."""


class InvalidInputError(EngageError, ValueError):
    """An argument was rejected before any request was made."""


class TransportError(EngageError):
    """The HTTP exchange failed: connection refused or reset, DNS, TLS, a non-SOAP reply."""


class RequestTimeoutError(TransportError):
    """No complete reply within the timeout or the call's deadline."""


class RateLimitedError(TransportError):
    """The account's call rate was exceeded ("Database Access Limit Exceeded").

    The vendor asks to wait at least 30 seconds before the next try.
    """

    retryable = True


class HTTPStatusError(TransportError):
    """A non-2xx reply that is not a SOAP fault (a proxy's HTML 502, an empty 503...)."""

    def __init__(self, message: str, *, status_code: int, body_excerpt: str = "",
                 retryable: bool | None = None, request_sent: bool = True) -> None:
        if retryable is None:
            retryable = status_code in (502, 503, 504)
        super().__init__(message, retryable=retryable, request_sent=request_sent)
        self.status_code = status_code
        self.body_excerpt = body_excerpt


class AuthenticationError(HTTPStatusError):
    """401 or 403: missing or wrong credentials, or a user that is not of type API."""


class ProtocolError(EngageError):
    """The reply is not a usable SOAP envelope (truncated, HTML with 200, wrong root...)."""


class EngageFault(EngageError):
    """The server answered with a SOAP fault.

    ``detail`` holds the fault bean's fields as strings, ``detail_xml`` the raw detail
    element (or None), so a fault of a kind this library does not know keeps everything.
    """

    def __init__(self, message: str, *, fault_code: str | None = None,
                 fault_string: str | None = None, error_actor: str | None = None,
                 error_code: str | None = None, detail: Mapping[str, str] | None = None,
                 detail_xml: bytes | None = None, http_status: int | None = None,
                 operation: str | None = None, retryable: bool | None = None) -> None:
        if retryable is None:
            retryable = error_actor == "SERVER" and error_code in (None, "UNEXPECTED_ERROR")
        super().__init__(message, retryable=retryable, request_sent=True)
        self.fault_code = fault_code
        self.fault_string = fault_string
        self.error_actor = error_actor
        self.error_code = error_code
        self.detail: dict[str, str] = dict(detail or {})
        self.detail_xml = detail_xml
        self.http_status = http_status
        self.operation = operation


class NoSuchObjectError(EngageFault):
    """The object named by the request does not exist (NO_SUCH_OBJECT)."""

    @property
    def object_type(self) -> str | None:
        return self.detail.get("objectType")

    @property
    def property_name(self) -> str | None:
        return self.detail.get("propertyName")

    @property
    def property_value(self) -> str | None:
        return self.detail.get("propertyValue")


class ContactNotFoundError(NoSuchObjectError):
    """No contact matches the identifier."""


class InvalidParameterError(EngageFault):
    """The server rejected a parameter (INVALID_PARAMETER, MISSING_PARAMETER, ...)."""

    @property
    def parameter_name(self) -> str | None:
        return self.detail.get("parameterName") or self.detail.get("propertyName")

    @property
    def value(self) -> str | None:
        return self.detail.get("value")


class ObjectAlreadyExistsError(EngageFault):
    """The object to create exists already (OBJECT_ALREADY_EXISTS)."""


class PermissionDeniedError(EngageFault):
    """The API user may not do this (PERMISSION_DENIED, OPERATION_DISABLED)."""


class UnexpectedServerError(EngageFault):
    """The server failed unexpectedly (UNEXPECTED_ERROR); ``error_id`` names the incident."""

    @property
    def error_id(self) -> str | None:
        return self.detail.get("errorId")


# The vendor's throttle: an HTTP 500 fault (or plain text) with this message and no
# detail when the account's ceiling of about 10 calls per second is exceeded.
THROTTLE_TEXT = "Database Access Limit Exceeded"


def throttled(*texts: str | None) -> bool:
    """True when any of ``texts`` (a faultstring, a detail message, a body) is the throttle."""
    return any(t is not None and THROTTLE_TEXT in t for t in texts)


# One table classifies every fault: (detail element, errorCode) first, then the error
# code alone, then the detail element alone; anything else stays a plain EngageFault.
_BY_DETAIL_AND_CODE: dict[tuple[str, str], type[EngageFault]] = {
    ("UnexpectedErrorException", "PERMISSION_DENIED"): PermissionDeniedError,
}
_BY_CODE: dict[str, type[EngageFault]] = {
    "NO_SUCH_OBJECT": NoSuchObjectError,
    "NO_SUCH_ATTRIBUTE": InvalidParameterError,
    "INVALID_PARAMETER": InvalidParameterError,
    "MISSING_PARAMETER": InvalidParameterError,
    "INVALID_ATTRIBUTE": InvalidParameterError,
    "INVALID_ATTRIBUTE_VALUE": InvalidParameterError,
    "INVALID_REQUEST": InvalidParameterError,
    "ARCHIVED_ATTRIBUTE": InvalidParameterError,
    "MAXIMUM_ATTRIBUTE_COUNT_EXCEEDED": InvalidParameterError,
    "MAXIMUM_SIZE_EXCEEDED": InvalidParameterError,
    "OBJECT_ALREADY_EXISTS": ObjectAlreadyExistsError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "OPERATION_DISABLED": PermissionDeniedError,
    "UNEXPECTED_ERROR": UnexpectedServerError,
}
_BY_DETAIL: dict[str, type[EngageFault]] = {
    "NoSuchObjectException": NoSuchObjectError,
    "InvalidParameterException": InvalidParameterError,
    "ObjectAlreadyExistsException": ObjectAlreadyExistsError,
    "UnexpectedErrorException": UnexpectedServerError,
}
_BY_OBJECT_TYPE: dict[str, type[NoSuchObjectError]] = {"Contact": ContactNotFoundError}


def fault_class(detail_name: str | None, error_code: str | None,
                fields: Mapping[str, str]) -> type[EngageFault]:
    """The exception class for a fault with this detail element, error code and fields."""
    cls: type[EngageFault] | None = None
    if detail_name and error_code:
        cls = _BY_DETAIL_AND_CODE.get((detail_name, error_code))
    if cls is None and error_code:
        cls = _BY_CODE.get(error_code)
    if cls is None and detail_name:
        cls = _BY_DETAIL.get(detail_name)
    if cls is NoSuchObjectError:
        cls = _BY_OBJECT_TYPE.get(fields.get("objectType", ""), NoSuchObjectError)
    return cls or EngageFault


def fault_from_detail(*, fault_code: str | None, fault_string: str | None,
                      detail_name: str | None, fields: Mapping[str, str],
                      detail_xml: bytes | None, http_status: int | None,
                      operation: str | None) -> EngageFault | RateLimitedError:
    """Build the typed exception for a SOAP fault given as plain data."""
    label = f"{operation}: " if operation else ""
    if throttled(fault_string, fields.get("message")):
        return RateLimitedError(f"{label}the account's call rate was exceeded ({THROTTLE_TEXT})",
                                request_sent=True)
    error_code = fields.get("errorCode") or None
    cls = fault_class(detail_name, error_code, fields)
    message = fields.get("message") or fault_string or "SOAP fault without a message"
    code = f" [{error_code}]" if error_code else ""
    return cls(f"{label}{message}{code}", fault_code=fault_code, fault_string=fault_string,
               error_actor=fields.get("errorActor") or None, error_code=error_code,
               detail=fields, detail_xml=detail_xml, http_status=http_status,
               operation=operation)
