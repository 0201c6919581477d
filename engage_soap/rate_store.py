"""Where the processes of one account share its rate budget: a file or Redis.

Each store keeps one :class:`~engage_soap.rate_limit.Bucket` per account key and changes
it atomically: :class:`FileRateStore` under an ``fcntl`` lock (the processes of one
host, on its monotonic clock), :class:`RedisRateStore` in a Lua script (many hosts, on
the Redis server's clock). A store never raises to the caller and never blocks longer
than :data:`STORE_TIMEOUT`: when it fails, its methods answer None, one WARNING is
logged per process, and the store is tried again after :data:`COOLDOWN` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import astuple
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from .errors import ConfigurationError
from .forking import renew_after_fork
from .rate_limit import RATE_MEMORY, Bucket

__all__ = ["COOLDOWN", "STORE_TIMEOUT", "FileRateStore", "RateStore", "RedisRateStore",
           "open_rate_store", "store_name"]

log = logging.getLogger("engage_soap")
T = TypeVar("T")

#: Seconds a store may take for one operation (connect, lock, read, write) before the
#: limiter goes on without it.
STORE_TIMEOUT = 0.5
#: Seconds after a failure before the store is tried again.
COOLDOWN = 5.0
_IDLE = 3600.0  # an account's state is dropped this long after its last use


class _Warned:
    """The stores that warned in this process (a child process warns for itself)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.lock = threading.Lock()
        renew_after_fork(self)

    def first(self, name: str) -> bool:
        with self.lock:
            new = name not in self.names
            self.names.add(name)
            return new

    def forget(self, name: str) -> None:
        with self.lock:
            self.names.discard(name)

    def _after_fork(self) -> None:
        self.names, self.lock = set(), threading.Lock()


_WARNED = _Warned()


def store_name(spec: str | os.PathLike[str]) -> str:
    """The store as logs may show it: a URL without its user info (password)."""
    text = os.fspath(spec)
    parts = urlsplit(text)
    if "://" not in text or "@" not in parts.netloc:
        return text
    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


class RateStore:
    """The part every store shares: give up within the timeout, warn once, cool down."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._retry_at = 0.0  # monotonic time before which the store is not tried
        self._down = False
        self._health = threading.Lock()

    def _guarded(self, operation: Callable[[], T]) -> T | None:
        """``operation()``, or None if the store failed now or is cooling down."""
        if self._down and time.monotonic() < self._retry_at:
            return None
        try:
            result = operation()
        except Exception as exc:  # any failure of the store: the limiter goes on alone
            self._failed(exc)
            return None
        if self._down:
            with self._health:
                self._down = False
            _WARNED.forget(self.name)
            log.info("rate store %s answers again: the account's budget is shared again",
                     self.name)
        return result

    def _failed(self, exc: Exception) -> None:
        with self._health:
            self._down = True
            self._retry_at = time.monotonic() + COOLDOWN
        why = f"{type(exc).__name__}: {exc}"
        if _WARNED.first(self.name):
            log.warning("rate store %s failed (%s): this process paces its calls alone "
                        "until the store answers again (tried every %g s)", self.name, why,
                        COOLDOWN)
        else:
            log.debug("rate store %s still failing (%s)", self.name, why)

    def reserve(self, key: str, interval: float, tolerance: float) -> tuple[float, int] | None:
        """Take the account's next slot: (seconds to wait, pause epoch), or None."""
        return self._guarded(lambda: self._reserve(key, interval, tolerance))

    def epoch(self, key: str) -> int | None:
        """The account's pause epoch, or None."""
        return self._guarded(lambda: self._epoch(key))

    def pause(self, key: str, seconds: float) -> None:
        """Hold the account's calls in every process for ``seconds``."""
        self._guarded(lambda: self._pause(key, seconds))

    def close(self) -> None:
        """Release connections (nothing by default)."""

    def _reserve(self, key: str, interval: float, tolerance: float) -> tuple[float, int]:
        raise NotImplementedError

    def _epoch(self, key: str) -> int:
        raise NotImplementedError

    def _pause(self, key: str, seconds: float) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class FileRateStore(RateStore):
    """The accounts' buckets in one JSON file, changed under an exclusive ``fcntl`` lock.

    Each operation opens the file, locks it (giving up after :data:`STORE_TIMEOUT`),
    reads, changes and writes it, and closes it: nothing is held between calls, so
    threads and forked children need no special care. Times are the host's monotonic
    clock; a file written "in the future" (the host restarted) starts afresh.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        super().__init__(f"file {self.path}")

    def _update(self, key: str, change: Callable[[Bucket, float], T], *,
                write: bool = True) -> T:
        import fcntl  # POSIX only: elsewhere the store fails and the limiter goes on alone

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            deadline = time.monotonic() + STORE_TIMEOUT
            mode = fcntl.LOCK_EX if write else fcntl.LOCK_SH
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"not locked within {STORE_TIMEOUT} s") from None
                    time.sleep(0.001)
            now = time.monotonic()
            table = self._read(fd, now)
            accounts: dict[str, list[Any]] = table["accounts"]
            bucket = Bucket(*accounts.get(key, ()))
            result = change(bucket, now)
            if write:
                accounts[key] = list(astuple(bucket))
                for other in [k for k, v in accounts.items()
                              if max(v[0], v[1], v[5]) < now - _IDLE]:
                    del accounts[other]
                data = json.dumps({"clock": now, "accounts": accounts}).encode()
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
            return result
        finally:
            os.close(fd)  # also releases the lock

    @staticmethod
    def _read(fd: int, now: float) -> dict[str, Any]:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        try:
            table = json.loads(b"".join(chunks) or b"{}")
            if table["clock"] <= now and isinstance(table["accounts"], dict):
                return dict(table)
        except (ValueError, KeyError, TypeError):
            pass  # empty, torn or foreign: start afresh
        return {"clock": now, "accounts": {}}

    def _reserve(self, key: str, interval: float, tolerance: float) -> tuple[float, int]:
        return self._update(key, lambda b, now: (b.reserve(now, interval, tolerance), b.epoch))

    def _epoch(self, key: str) -> int:
        return self._update(key, lambda b, _now: b.epoch, write=False)

    def _pause(self, key: str, seconds: float) -> None:
        self._update(key, lambda b, now: b.pause(now, seconds))


# Bucket.reserve and Bucket.pause (engage_soap.rate_limit), in Lua, on the server's clock.
# Times are written with 6 decimals (a Lua number becomes an integer in a Redis reply).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'tat', 'resume', 'epoch', 'interval', 'tolerance',
                     'seen')
local tat, resume = tonumber(s[1]) or 0, tonumber(s[2]) or 0
local epoch = tonumber(s[3]) or 0
local interval, tolerance, seen = tonumber(s[4]) or 0, tonumber(s[5]) or 0, tonumber(s[6]) or 0
if ARGV[1] == 'epoch' then
  return {'0', epoch}
end
local wait = 0
if ARGV[1] == 'reserve' then
  local want = tonumber(ARGV[2])
  if want >= interval or now - seen > tonumber(ARGV[4]) then
    interval, tolerance, seen = want, tonumber(ARGV[3]), now
  end
  local due = math.max(tat, now)
  tat = due + interval
  wait = math.max(due - tolerance, resume, now) - now
else
  local until_ = now + tonumber(ARGV[2])
  if until_ > resume then
    resume, tat = until_, math.max(until_, math.min(tat, now + interval))
  end
  epoch = epoch + 1
end
local f = '%.6f'
redis.call('HSET', KEYS[1], 'tat', string.format(f, tat), 'resume', string.format(f, resume),
           'epoch', epoch, 'interval', string.format(f, interval),
           'tolerance', string.format(f, tolerance), 'seen', string.format(f, seen))
redis.call('EXPIRE', KEYS[1], math.ceil(math.max(tat, resume) - now + tonumber(ARGV[5])))
return {string.format(f, wait), epoch}
"""


class RedisRateStore(RateStore):
    """The accounts' buckets in Redis hashes, changed by one Lua script (atomic, on the
    server's clock, so hosts need no synchronised clocks). Needs ``engage-soap[redis]``.

    Short socket timeouts and no client-side retries keep a dead server from holding a
    call; a forked child opens its own connections.
    """

    def __init__(self, url: str) -> None:
        try:
            import redis  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(
                "a redis:// rate store needs redis-py: pip install 'engage-soap[redis]'"
            ) from exc
        super().__init__(store_name(url))
        self._url = url
        self._connect()
        renew_after_fork(self)

    def _connect(self) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            self._redis = redis.Redis.from_url(
                self._url, socket_timeout=STORE_TIMEOUT, socket_connect_timeout=STORE_TIMEOUT,
                retry=Retry(NoBackoff(), 0), health_check_interval=0)
        except ValueError as exc:
            raise ConfigurationError(f"rate store {self.name}: {exc}") from None
        self._script = self._redis.register_script(_SCRIPT)

    def _run(self, key: str, *args: str | float) -> tuple[float, int]:
        wait, epoch = self._script(keys=[key], args=list(args))
        return float(wait), int(epoch)

    def _reserve(self, key: str, interval: float, tolerance: float) -> tuple[float, int]:
        return self._run(key, "reserve", repr(interval), repr(tolerance), RATE_MEMORY, _IDLE)

    def _epoch(self, key: str) -> int:
        return self._run(key, "epoch")[1]

    def _pause(self, key: str, seconds: float) -> None:
        self._run(key, "pause", repr(float(seconds)), 0, 0, _IDLE)

    def close(self) -> None:
        self._redis.close()

    def _after_fork(self) -> None:
        # the parent's sockets are dropped (closed, not shut down) with its pool
        self._connect()


def open_rate_store(spec: str | os.PathLike[str]) -> RateStore:
    """The store named by ``spec``: a file path or ``file://`` URL, or a ``redis://``,
    ``rediss://`` or ``unix://`` URL. Raises ConfigurationError for anything else."""
    if not isinstance(spec, (str, os.PathLike)) or not os.fspath(spec):
        raise ConfigurationError("rate_store must be a file path or a file://, redis:// or "
                                 "rediss:// URL")
    text = os.fspath(spec)
    scheme = urlsplit(text).scheme.lower() if "://" in text else ""
    if scheme in ("redis", "rediss", "unix"):
        return RedisRateStore(text)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigurationError(f"rate store {text!r}: a file:// URL names a local file, "
                                     "like file:///var/run/engage/rate.json")
        return FileRateStore(unquote(parts.path))
    if scheme:
        raise ConfigurationError(f"rate store {store_name(text)!r}: use a file path, or a "
                                 "file://, redis:// or rediss:// URL")
    return FileRateStore(os.path.expanduser(text))
