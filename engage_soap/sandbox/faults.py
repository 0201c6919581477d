"""Fault injection and the vendor's call-rate ceiling.

Inject with ``sandbox.faults.inject(...)``; the first rule (in injection order) whose
operation matches a call applies to it. Kinds:

* ``None``: only ``latency`` (seconds the reply waits);
* ``"http_502"`` / ``"http_503"``: an HTML error page "from a proxy" (``text/html``);
* ``"empty_503"``: a 503 with an empty body;
* ``"reset"``: the connection is reset (RST) before the call is handled;
* ``"reset_after"``: the call is handled (state changes), then the connection is reset;
* ``"truncated"``: the call is handled, then half the reply is sent under the full
  Content-Length and the connection closed;
* ``"fault"``: a SOAP fault (``fault=``, default an UnexpectedErrorException), unhandled;
* ``"throttle"``: the "Database Access Limit Exceeded" reply of the rate ceiling.

``times=N`` makes a rule apply to the next N matching calls only, then clear itself.

The rate ceiling (:class:`Throttle`) mimics the real service: more than ``rate_limit``
calls by one user within one second get HTTP 500 with a SOAP fault whose faultstring is
``Database Access Limit Exceeded`` and which has no detail element.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from .. import defaults
from ..errors import THROTTLE_TEXT
from .wire import SoapFault

__all__ = [
    "THROTTLE_MESSAGE",
    "THROTTLE_TEXT",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "Throttle",
    "throttle_fault",
]

FaultKind = Literal["http_502", "http_503", "empty_503", "reset", "reset_after", "truncated",
                    "fault", "throttle"]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
#: The throttle's faultstring: the very object ``engage_soap.errors.THROTTLE_TEXT``.
THROTTLE_MESSAGE = THROTTLE_TEXT


def throttle_fault() -> SoapFault:
    """The reply to a call over the rate ceiling: a bare fault, no detail bean."""
    return SoapFault(THROTTLE_MESSAGE)


@dataclass
class FaultRule:
    """One injected fault. ``operation`` None matches every call; ``times`` None never expires."""

    operation: str | None
    kind: FaultKind | None
    latency: float = 0.0
    times: int | None = None
    fault: SoapFault | None = None
    hits: int = 0


class FaultInjector:
    """The injected faults of one sandbox (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def inject(self, operation: str | None = None, kind: FaultKind | None = None, *,
               times: int | None = None, latency: float = 0.0,
               fault: SoapFault | None = None) -> FaultRule:
        """Add a rule for ``operation`` (a name such as ``"contactGet"``; None or "*": all).

        Example: ``inject("contactGet", "http_502", times=1)`` or ``inject(latency=0.2)``.
        """
        if kind is not None and kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if latency < 0:
            raise ValueError("latency must be >= 0")
        if kind is None and latency == 0:
            raise ValueError("give a fault kind, a latency, or both")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 (or None for every call)")
        if fault is not None and kind != "fault":
            raise ValueError('fault= goes with kind="fault"')
        rule = FaultRule(None if operation in (None, "*") else operation, kind, float(latency),
                         times, fault)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A copy of the active rules."""
        with self._lock:
            return list(self._rules)

    def take(self, operation: str | None) -> FaultRule | None:
        """The rule that applies to a call of ``operation`` (counted as used), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.operation is None or rule.operation == operation:
                    rule.hits += 1
                    if rule.times is not None:
                        rule.times -= 1
                        if rule.times == 0:
                            self._rules.remove(rule)
                    return rule
        return None


class Throttle:
    """The server's rate ceiling: at most ``limit`` accepted calls per key (user) in any
    one-second window.

    ``limit`` None disables the ceiling. Throttled calls do not count.
    """

    def __init__(self, limit: float | None = defaults.ACCOUNT_RATE, window: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        """Count a call by ``key``; False if it is over the ceiling."""
        limit = self.limit
        if limit is None:
            return True
        now = self._clock()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= self.window:
                calls.popleft()
            if len(calls) + 1 > limit:
                return False
            calls.append(now)
            return True

    def reset(self) -> None:
        """Forget past calls."""
        with self._lock:
            self._calls.clear()
