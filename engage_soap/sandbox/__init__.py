"""An in-process fake of the Mapp Engage ecmapi SOAP service, for tests and local runs.

    with Sandbox() as sandbox:
        client = ...(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD)
        ...
        assert sandbox.state.outbox[-1].recipient_id == 33457

It speaks the real wire format (SOAP 1.1, document/literal wrapped, JAX-WS prefixes),
validates every request and reply against the bundled XSD, and can inject latency, proxy
errors, resets, truncated replies, faults and the vendor's rate ceiling.
"""

from __future__ import annotations

from .faults import THROTTLE_MESSAGE, FaultInjector, FaultKind, FaultRule, RateLimiter
from .server import DEFAULT_PASSWORD, DEFAULT_USERNAME, MAX_BODY_BYTES, Sandbox, run
from .state import (
    AttachmentRecord,
    CallRecord,
    ContactRecord,
    DuplicateContactError,
    GroupRecord,
    MessageRecord,
    OutboxEntry,
    SandboxState,
)
from .wire import ECM_NS, SOAP_ENV_NS, SoapFault

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "ECM_NS",
    "MAX_BODY_BYTES",
    "SOAP_ENV_NS",
    "THROTTLE_MESSAGE",
    "AttachmentRecord",
    "CallRecord",
    "ContactRecord",
    "DuplicateContactError",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "GroupRecord",
    "MessageRecord",
    "OutboxEntry",
    "RateLimiter",
    "Sandbox",
    "SandboxState",
    "SoapFault",
    "run",
]
