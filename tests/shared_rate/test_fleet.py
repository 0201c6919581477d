"""Many processes on one account, against the sandbox's ceiling of 10 calls per second.

Two waves of scenarios, one sandbox each (so they do not share a ceiling); in a wave the
worker processes build their own client, then all start together. The ``ceiling`` wave
(file and Redis stores, two accounts, the shared back-off) must see no throttle beyond an
injected one, so its tests are marked ``serial``: ``make test`` runs them alone, since any
other load delays arrivals by more than the limiter's slack. The ``throttled`` wave (no
store, a Redis outage) expects throttles and runs beside the other tests (``make test``
gives each test file to one worker, so its fleet runs once). Each fleet is one launcher
that parses the WSDL once and forks its workers (as ``gunicorn --preload`` does). The
ceiling wave takes about 27 s, the throttled one about 15 s.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME

from .fleet import Fleet, Job, RedisServer, RemoteSandbox, Result, elapsed

pytestmark = pytest.mark.long(16)

CALLS = 60  # per process, 4 processes: 240 calls at 10/s
FLOOR = 4 * CALLS / 10.0  # 24 s: the physical minimum the issue names
BACK_OFF = 3.0
REDIS_SECRET = "s3cret-redis-pw"
USERS = {"alpha": "alpha-pw-1", "beta": "beta-pw-2"}
# per process: 7.5 shared before Redis stops at 3 s, at most 50 alone until the store is
# tried again (5 s after it failed, Redis back at 7 s), the rest shared again
OUTAGE_CALLS = 70


@dataclass
class Run:
    results: list[Result]
    calls: list[dict[str, Any]]  # what the sandbox answered: CallRecord fields

    @property
    def throttled(self) -> int:
        return sum(c["status"] == 500 for c in self.calls)


@dataclass
class Runs:
    by_name: dict[str, Run]
    redis_keys: list[str]

    def __getitem__(self, name: str) -> Run:
        return self.by_name[name]


def _jobs(sandbox: RemoteSandbox, n: int, calls: int, store: str | None,
          **kw: float) -> list[Job]:
    return [Job(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, calls, store, **kw)
            for _ in range(n)]


def _run_wave(fleets: dict[str, list[Job]], sandboxes: dict[str, RemoteSandbox],
              timers: list[threading.Timer]) -> dict[str, Run]:
    """Start every fleet, let them all go at once (and the timers), collect the runs."""
    started = {name: Fleet(jobs).start() for name, jobs in fleets.items()}
    try:
        for fleet in started.values():
            fleet.ready()
        for fleet in started.values():
            fleet.go()
        for timer in timers:
            timer.start()
        results = {name: fleet.results() for name, fleet in started.items()}
        for timer in timers:
            timer.join()
    finally:
        for fleet in started.values():
            fleet.kill()
    return {name: Run(results[name], sandboxes[name].stop()) for name in fleets}


@pytest.fixture(scope="module")
def ceiling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    folder = tmp_path_factory.mktemp("shared-rate")
    shared = RedisServer().start()
    sandboxes = {name: RemoteSandbox(USERS if name == "accounts" else None)
                 for name in ("file", "redis", "backoff", "accounts")}
    try:
        fleets = {
            "file": _jobs(sandboxes["file"], 4, CALLS, str(folder / "rate.json")),
            "redis": _jobs(sandboxes["redis"], 4, CALLS, shared.url),
            "backoff": _jobs(sandboxes["backoff"], 4, 30, shared.url, max_attempts=2,
                             rate_limited_delay=BACK_OFF),
            "accounts": [Job(sandboxes["accounts"].url, user, USERS[user], 30,
                             f"file://{folder / 'accounts.json'}")
                         for user in ("alpha", "alpha", "beta", "beta")],
        }
        runs = _run_wave(fleets, sandboxes,
                         [threading.Timer(3.0, sandboxes["backoff"].throttle_once)])
        yield Runs(runs, shared.keys())
    finally:
        for sb in sandboxes.values():
            sb.stop()
        shared.stop()


@pytest.fixture(scope="module")
def throttled() -> Iterator[Runs]:
    flaky = RedisServer(REDIS_SECRET).start()
    sandboxes = {name: RemoteSandbox(None) for name in ("none", "outage")}
    try:
        fleets = {"none": _jobs(sandboxes["none"], 4, CALLS, None),
                  "outage": _jobs(sandboxes["outage"], 4, OUTAGE_CALLS, flaky.url)}
        runs = _run_wave(fleets, sandboxes, [threading.Timer(3.0, flaky.stop),
                                             threading.Timer(7.0, flaky.start)])
        yield Runs(runs, [])
    finally:
        for sb in sandboxes.values():
            sb.stop()
        flaky.stop()


@pytest.mark.serial
@pytest.mark.parametrize("store", ["file", "redis"])
def test_four_processes_share_one_ceiling(ceiling: Runs, store: str) -> None:
    run = ceiling[store]
    assert all(r.ok == CALLS and not r.other_errors for r in run.results), [
        (r.ok, r.throttled, r.other_errors, r.log[:3]) for r in run.results]
    assert run.throttled == 0
    took = elapsed(run.results)
    assert FLOOR <= took <= 1.15 * FLOOR, f"{store}: {took:.2f} s for {4 * CALLS} calls"


def test_without_a_store_the_same_run_is_throttled(throttled: Runs) -> None:
    assert throttled["none"].throttled > 0
    assert sum(r.throttled for r in throttled["none"].results) == throttled["none"].throttled


@pytest.mark.serial
def test_one_throttle_holds_every_process_for_the_back_off(ceiling: Runs) -> None:
    calls = sorted(ceiling["backoff"].calls, key=lambda c: c["timestamp"])
    [throttle] = [c for c in calls if c["status"] == 500]
    assert throttle["injected"] == "throttle"
    at = throttle["timestamp"]
    after = [c["timestamp"] - at for c in calls if c["timestamp"] > at]
    # a call whose slot was taken before the throttle's reply came back may still start
    assert not [t for t in after if 0.3 < t < BACK_OFF - 0.1], after[:10]
    assert len(after) > 10 and all(r.ok == 30 for r in ceiling["backoff"].results)


def test_redis_stopped_midway_calls_go_on_with_one_warning_per_process(throttled: Runs) -> None:
    for result in throttled["outage"].results:
        assert result.ok + result.throttled == OUTAGE_CALLS and not result.other_errors
        assert result.store_warnings == 1
        assert result.store_back >= 1  # restarted: shared again
        assert not [line for line in result.log if REDIS_SECRET in line]
    assert any("redis://***@127.0.0.1" in line for line in throttled["outage"].results[0].log)


@pytest.mark.serial
def test_two_accounts_on_one_store_do_not_share_a_budget(ceiling: Runs) -> None:
    run = ceiling["accounts"]
    assert run.throttled == 0 and all(r.ok == 30 for r in run.results)
    # 60 calls per account at 10/s take about 6.3 s; one shared budget would take 12.6 s
    assert elapsed(run.results) < 0.75 * 120 / 9.5


@pytest.mark.serial
def test_store_keys_name_no_user(ceiling: Runs) -> None:
    assert len(ceiling.redis_keys) == 2  # the "redis" and "backoff" sandboxes: two accounts
    for key in ceiling.redis_keys:
        assert key.startswith("engage-soap:rate:") and DEFAULT_USERNAME not in key
        assert DEFAULT_PASSWORD not in key
