"""The client's rate limiter: one account's ceiling, kept in this process or shared.

The state of an account's budget is a :class:`Bucket` (GCRA: one "theoretical arrival
time", a pause and its epoch). :class:`RateLimiter` keeps one in memory for the threads
of a client and, given a rate store (:mod:`engage_soap.rate_store`), shares it with
every process of the account through a file (one host) or Redis (many hosts). When the
store fails the limiter goes on with its in-memory bucket and tries the store again
after a cool-down.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .forking import renew_after_fork

if TYPE_CHECKING:
    from .rate_store import RateStore

__all__ = ["RATE_MEMORY", "Bucket", "RateLimiter", "account_key"]

#: Seconds a slower client's rate still holds for its account after its last call.
RATE_MEMORY = 60.0


@dataclass
class Bucket:
    """One account's budget as GCRA state; the reference of the Redis script's rule.

    A call reserved at ``now`` starts at ``max(due - tolerance, resume, now)`` where
    ``due = max(tat, now)``, and moves ``tat`` on by ``interval``. Clients of one account
    that disagree use the slowest rate seen within :data:`RATE_MEMORY` seconds.
    """

    tat: float = 0.0  # theoretical arrival time of the next call
    resume: float = 0.0  # no call starts before this (the back-off after a throttle)
    epoch: int = 0  # bumped by every pause: reservations of older epochs are void
    interval: float = 0.0  # seconds between calls, of the slowest client seen lately
    tolerance: float = 0.0  # (burst - 1) * interval, of that client
    seen: float = 0.0  # when that client last reserved

    def reserve(self, now: float, interval: float, tolerance: float) -> float:
        """Take the next slot; return how long to wait before using it."""
        if interval >= self.interval or now - self.seen > RATE_MEMORY:
            self.interval, self.tolerance, self.seen = interval, tolerance, now
        due = max(self.tat, now)
        self.tat = due + self.interval
        return max(due - self.tolerance, self.resume, now) - now

    def pause(self, now: float, seconds: float) -> None:
        """No call starts before ``now + seconds``; the slots reserved meanwhile are void,
        but a pause shorter than the interval never brings the next call closer to the last
        one started than the interval."""
        resume = now + seconds
        if resume > self.resume:
            self.resume = resume
            self.tat = max(resume, min(self.tat, now + self.interval))
        self.epoch += 1


def account_key(endpoint: str, username: str) -> str:
    """The store key of an account: a hash of the endpoint's host and the user name (no
    name in clear in Redis or a file, never the password)."""
    host = urlsplit(endpoint).netloc.rpartition("@")[2].lower()
    digest = hashlib.sha256(f"{host}\0{username}".encode()).hexdigest()[:32]
    return f"engage-soap:rate:{digest}"


class RateLimiter:
    """A token bucket sized to the account's ceiling, shared by all threads of one client
    and, with ``store``, by every client of the account (``account``: :func:`account_key`).

    Never more than ``rate`` calls start in any window of ``1 + slack`` seconds: the
    slack (default 50 ms) absorbs the jitter between a call's start here and its arrival
    at the server, which counts arrivals. ``burst`` calls (default 1) may start back to
    back after a quiet spell; the bucket refills at ``(rate - burst + 1) / (1 + slack)``
    tokens per second (about 9.5 calls per second at the default 10).

    :meth:`pause` is the shared back-off: after the server's throttle, no thread (and with
    a store no process of the account) starts a call until the pause ends.

    ``store``: None (this process only), a file path or ``file://`` URL (the processes of
    one host), or a ``redis://``/``rediss://`` URL (many hosts); see
    :func:`engage_soap.rate_store.open_rate_store`.
    """

    def __init__(self, rate: float, burst: int | None = None, slack: float = 0.05, *,
                 store: str | os.PathLike[str] | None = None, account: str = "") -> None:
        if not rate > 0:
            raise ConfigurationError("rate_limit must be a positive number or None")
        self.rate: float = float(rate)
        if burst is None:
            burst = 1
        if not 1 <= burst <= max(1.0, rate):
            raise ConfigurationError("burst must be between 1 and the rate")
        if not 0 <= slack < 1:
            raise ConfigurationError("slack must be between 0 and 1 second")
        self.capacity = float(burst)
        self._interval = (1.0 + slack) / (self.rate - self.capacity + 1.0)
        self._tolerance = (self.capacity - 1.0) * self._interval
        self._bucket = Bucket()
        self._lock = threading.Lock()
        self._key = account or "engage-soap:rate:default"
        self.store: RateStore | None = None
        if store is not None:
            from .rate_store import open_rate_store

            self.store = open_rate_store(store)
        renew_after_fork(self)

    def _reserve(self) -> tuple[float, int, Callable[[], bool]]:
        """Take a slot (from the store if it answers): the wait, the pause epoch, and a
        check that no pause began since."""
        store = self.store
        if store is not None:
            got = store.reserve(self._key, self._interval, self._tolerance)
            if got is not None:
                wait, epoch = got
                return wait, epoch, lambda: store.epoch(self._key) in (epoch, None)
        with self._lock:
            wait = self._bucket.reserve(time.monotonic(), self._interval, self._tolerance)
            epoch = self._bucket.epoch
        return wait, epoch, lambda: self._bucket.epoch == epoch

    def reserve(self) -> tuple[float, int]:
        """Take a token; return how long to wait before using it, and the pause epoch."""
        wait, epoch, _check = self._reserve()
        return wait, epoch

    def acquire(self) -> float:
        """Wait for a token (and for any pause); return the time waited."""
        waited = 0.0
        while True:
            wait, _epoch, unpaused = self._reserve()
            if wait > 0:
                time.sleep(wait)
                waited += wait
            if unpaused():
                return waited

    def pause(self, seconds: float) -> None:
        """Hold every new call of every thread (and process, with a store) for ``seconds``."""
        with self._lock:  # also here: it holds if the store fails meanwhile
            self._bucket.pause(time.monotonic(), seconds)
        if self.store is not None:
            self.store.pause(self._key, seconds)

    def close(self) -> None:
        """Release the store's connections (the limiter works on without them)."""
        if self.store is not None:
            self.store.close()

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        shared = f", store={self.store.name!r}" if self.store is not None else ""
        return f"RateLimiter(rate={self.rate}, burst={self.capacity}{shared})"
