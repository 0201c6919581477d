"""An in-process fake of the Mapp Engage ecmapi SOAP service, for tests and local runs.

    with Sandbox() as sandbox:
        client = ...(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        ...
        assert sandbox.state.outbox[-1].recipient_id == 33457

It speaks the real wire format (SOAP 1.1, document/literal wrapped, JAX-WS prefixes),
validates every request and reply against the bundled XSD, models the contact*, user*,
membership*, groupGet*, messageSend* and systemGet* operations on one store, answers the
other operations of the WSDL with a "not modeled" fault, and can add latency and inject
proxy errors, resets, truncated replies, faults and the vendor's rate ceiling. See
:class:`Sandbox` for what it checks and how.

Without a socket: ``sandbox.transport()`` calls the same application in-process::

    sandbox = Sandbox()
    client = EngageClient(sandbox.inprocess_url, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                          transport=sandbox.transport())
"""

from __future__ import annotations

from .app import Application, Reply, Request
from .faults import (
    THROTTLE_MESSAGE,
    THROTTLE_TEXT,
    FaultInjector,
    FaultKind,
    FaultRule,
    Throttle,
)
from .inprocess import InProcessTransport
from .operations import ECM_VERSION, MODELED_OPERATIONS
from .server import DEFAULT_PASSWORD, DEFAULT_USERNAME, MAX_BODY_BYTES, Sandbox, run
from .state import (
    DEFAULT_ATTRIBUTES,
    AttachmentRecord,
    CallRecord,
    ContactRecord,
    DuplicateContactError,
    GroupRecord,
    MembershipRecord,
    MessageRecord,
    OutboxEntry,
    SandboxState,
    SandboxStateError,
)
from .wire import ECM_NS, OPERATIONS, SOAP_ENV_NS, SoapFault

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "ECM_NS",
    "ECM_VERSION",
    "MAX_BODY_BYTES",
    "MODELED_OPERATIONS",
    "OPERATIONS",
    "SOAP_ENV_NS",
    "THROTTLE_MESSAGE",
    "THROTTLE_TEXT",
    "Application",
    "AttachmentRecord",
    "CallRecord",
    "ContactRecord",
    "DuplicateContactError",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "GroupRecord",
    "InProcessTransport",
    "MembershipRecord",
    "MessageRecord",
    "OutboxEntry",
    "Reply",
    "Request",
    "Sandbox",
    "SandboxState",
    "SandboxStateError",
    "SoapFault",
    "Throttle",
    "run",
]


def __getattr__(name: str) -> object:
    if name == "RateLimiter":  # the server's ceiling was named like the client's limiter
        import warnings

        warnings.warn("engage_soap.sandbox.RateLimiter is now engage_soap.sandbox.Throttle",
                      DeprecationWarning, stacklevel=2)
        return Throttle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
