"""engage_soap: a typed, fault-safe client for the Mapp Engage "ecmapi" SOAP web service.

    from engage_soap import EngageClient
    with EngageClient("https://host/api/soap/v8/", "api-user", "secret") as client:
        client.send_prepared_message(23541, email="j.mcexample@example.com")
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    ConfigurationError,
    ContactNotFoundError,
    EngageError,
    EngageFault,
    HTTPStatusError,
    InvalidInputError,
    InvalidParameterError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
    UnexpectedServerError,
)
from .models import Attachment, Contact, Exchange, Identifier, IdentifierType, SendResult
from .rate_limit import RateLimiter
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .async_client import AsyncEngageClient
    from .bulk import BulkReport
    from .client import EngageClient


def __getattr__(name: str) -> Any:
    # The facade pulls in requests and lxml; load it on first use so that importing the
    # package (the CLI's --help, the pytest plugin) stays cheap.
    if name == "EngageClient":
        from .client import EngageClient

        return EngageClient
    if name == "AsyncEngageClient":
        from .async_client import AsyncEngageClient

        return AsyncEngageClient
    if name == "BulkReport":  # bulk sending (sqlite3, threads): loaded on first use too
        from .bulk import BulkReport

        return BulkReport
    raise AttributeError(f"module 'engage_soap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

__all__ = [
    "AsyncEngageClient",
    "Attachment",
    "AuthenticationError",
    "BulkReport",
    "ConfigurationError",
    "Contact",
    "ContactNotFoundError",
    "EngageClient",
    "EngageError",
    "EngageFault",
    "Exchange",
    "HTTPStatusError",
    "Identifier",
    "IdentifierType",
    "InvalidInputError",
    "InvalidParameterError",
    "NoSuchObjectError",
    "ObjectAlreadyExistsError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitedError",
    "RateLimiter",
    "RequestTimeoutError",
    "RetryPolicy",
    "SendResult",
    "TransportError",
    "UnexpectedServerError",
    "__version__",
]
