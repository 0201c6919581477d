"""Retry policies (capped exponential back-off with jitter).

The rule that keeps customers from getting an e-mail twice is
:func:`engage_soap.procedures.may_have_acted`, which :meth:`RetryPolicy.delay_for` and the
bulk journal both follow: a write (messageSendSingle, contactCreate) is retried only when
the request provably never reached the server, or the server answered that it did not act
(the vendor's "Database Access Limit Exceeded" throttle, a refused login, a CLIENT fault).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from . import defaults
from .errors import ConfigurationError, EngageError, RateLimitedError
from .procedures import may_have_acted
from .rate_limit import RateLimiter  # re-exported: its home is engage_soap.rate_limit
from .service import READ_OPERATIONS, is_read  # re-exported: their home is the model

__all__ = ["READ_OPERATIONS", "RateLimiter", "RetryPolicy", "is_read"]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before trying a failed call again.

    ``max_attempts`` counts the first try; ``max_total_wait`` caps the sum of waits; the
    n-th wait is ``min(max_delay, base_delay * 2**(n-1))``, scaled by a random factor in
    [0.5, 1] when ``jitter``; after the vendor's throttle the wait is at least
    ``rate_limited_delay`` (the vendor asks for 30 s).
    """

    max_attempts: int = defaults.MAX_ATTEMPTS
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 90.0
    jitter: bool = True
    rate_limited_delay: float = defaults.THROTTLE_BACKOFF

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) \
                or self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be an int of at least 1, got "
                                     f"{self.max_attempts!r}")
        delays = (self.base_delay, self.max_delay, self.max_total_wait, self.rate_limited_delay)
        if any(isinstance(d, bool) or not isinstance(d, (int, float)) for d in delays):
            raise ConfigurationError("retry delays must be numbers of seconds")
        if min(self.base_delay, self.max_delay, self.max_total_wait,
               self.rate_limited_delay) < 0:
            raise ConfigurationError("retry delays must not be negative")

    @classmethod
    def none(cls) -> RetryPolicy:
        """Never retry."""
        return cls(max_attempts=1)

    @classmethod
    def default(cls) -> RetryPolicy:
        """Three tries, back-off from 0.5 s, at most 90 s of waiting in all."""
        return cls()

    @classmethod
    def of(cls, retry: object) -> RetryPolicy:
        """The policy for a client's ``retry`` argument: a RetryPolicy, None (the default)
        or an int, the number of attempts (``retry=3`` is ``RetryPolicy(max_attempts=3)``);
        anything else is refused."""
        if retry is None:
            return cls.default()
        if isinstance(retry, RetryPolicy):
            return retry
        if isinstance(retry, int) and not isinstance(retry, bool):
            return cls(max_attempts=retry)
        raise ConfigurationError(f"retry must be a RetryPolicy or an int (the number of "
                                 f"attempts), not {type(retry).__name__}")

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based), before jitter."""
        return float(min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1)))

    def delay_for(self, exc: EngageError, *, attempt: int, idempotent: bool,
                  waited: float) -> float | None:
        """Seconds to wait before the next try, or None to give up and raise ``exc``."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(exc, RateLimitedError):
            safe = True  # the server answered that it did nothing
        else:
            safe = exc.retryable and (idempotent or not may_have_acted(exc, None))
        if not safe:
            return None
        delay = self.backoff(attempt)
        if self.jitter:
            delay *= random.uniform(0.5, 1.0)
        if isinstance(exc, RateLimitedError):
            delay = max(delay, self.rate_limited_delay)
        if waited + delay > self.max_total_wait:
            return None
        return delay

