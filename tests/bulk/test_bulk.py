"""Bulk sending against the sandbox: exactly once, resumable, at the rate, one back-off."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engage_soap import EngageClient, Identifier, RetryPolicy
from engage_soap.bulk import BulkInterrupted, BulkRecipient
from engage_soap.errors import THROTTLE_TEXT, AuthenticationError, ConfigurationError
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
from engage_soap.testing import HttpReply, HttpRequest, MockTransport

pytestmark = pytest.mark.long(6)

MESSAGE = 23541
# six attempts: the five 502s injected below can never exhaust one lookup's retries
QUICK = RetryPolicy(max_attempts=6, base_delay=0.001, max_delay=0.01, rate_limited_delay=0.05,
                    max_total_wait=30)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sb:
        yield sb


def _client(url: str, **kw: Any) -> EngageClient:
    options: dict[str, Any] = {"rate_limit": None, "retry": QUICK, "timeout": 10}
    return EngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, **{**options, **kw})


def _people(sandbox: Sandbox, n: int) -> list[str]:
    emails = [f"bulk{i}@example.com" for i in range(n)]
    for email in emails:
        sandbox.state.add_contact(email_address=email, save=False)
    return emails


def _sends(sandbox: Sandbox) -> Counter[int]:
    return Counter(e.recipient_id for e in sandbox.state.outbox)


def test_hundreds_with_unknown_contacts_duplicates_malformed_rows_and_faults(
        sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 300)
    rows: list[object] = list(emails)
    rows += ["nobody1@example.com", "nobody2@example.com"]  # no such contact
    rows += [emails[0].upper(), emails[1]]  # given twice (case does not matter for e-mail)
    rows += ["", {"email": "x@example.com", "mobile_number": "+49"}, 42,  # malformed
             {"email": emails[2] + ".invalid", "parameters": {"P": "bad\x00value"}}]
    rows += [{"mobile_number": "+4915112345678", "parameters": {"FIRSTNAME": "Mo"}},
             Identifier.external("CRM-000042")]
    sandbox.faults.inject("contactGet", "http_502", times=5)  # reads: retried
    sandbox.faults.inject("messageSendSingle", "reset_after", times=3)  # handled, then reset
    sandbox.faults.inject("messageSendSingle", "throttle", times=4)  # the server did nothing
    client = _client(sandbox.url, rate_limit=500.0)
    progress: list[int] = []
    report = client.send_bulk(MESSAGE, rows, journal=tmp_path / "job.sqlite", workers=8,
                              parameters={"CAMPAIGN": "x"},
                              on_progress=lambda r: progress.append(r.done))
    sends = _sends(sandbox)
    assert set(sends.values()) == {1}  # nobody got the message twice
    assert len(sends) == 302 == report.sent + report.unknown
    assert report.unknown == 3  # the resets after handling: may have gone out, listed
    assert {r.identifier_value for r in report.unknowns} <= set(emails)
    assert report.skipped == 2 and all(r.message == "given twice: sent once"
                                       for r in report.skips)
    assert report.failed == 2 + 4
    by_class = Counter(r.error_class for r in report.failures)
    assert by_class == {"ContactNotFoundError": 2, "InvalidInputError": 4}
    assert report.failed_by_code["NO_SUCH_OBJECT"] == 2
    assert sorted(r.line for r in report.failures if r.error_class == "InvalidInputError") == [
        305, 306, 307, 308]
    assert progress[-1] == report.done == len(rows)
    mo = next(e for e in sandbox.state.outbox if e.recipient_id == 33458)
    assert mo.parameter_dict == {"CAMPAIGN": "x", "FIRSTNAME": "Mo"}
    assert not report.ok


def test_a_finished_job_run_again_sends_nothing_and_resend_unknown_sends_those(
        sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 40)
    journal = tmp_path / "job.sqlite"
    sandbox.faults.inject("messageSendSingle", "reset_after", times=2)
    client = _client(sandbox.url)
    first = client.send_bulk(MESSAGE, emails, journal=journal)
    assert (first.sent, first.unknown) == (38, 2)
    again = client.send_bulk(MESSAGE, emails, journal=journal)
    assert (again.sent, again.already_sent, again.unknown) == (0, 38, 2)
    assert len(sandbox.state.outbox) == 40  # nothing new went out
    resent = client.send_bulk(MESSAGE, emails, journal=journal, resend_unknown=True)
    assert (resent.sent, resent.already_sent, resent.unknown) == (2, 38, 0) and resent.ok
    assert len(sandbox.state.outbox) == 42  # only because it was asked for
    with pytest.raises(ConfigurationError, match="belongs to message 23541"):
        client.send_bulk(23542, emails, journal=journal)


def test_retryable_failures_are_retried_on_the_next_run(sandbox: Sandbox,
                                                        tmp_path: Path) -> None:
    emails = _people(sandbox, 10)
    sandbox.faults.inject("messageSendSingle", "reset", times=3)  # refused before handling
    client = _client(sandbox.url, retry=RetryPolicy.none())
    first = client.send_bulk(MESSAGE, emails, journal=tmp_path / "j.sqlite", workers=1)
    # a reset before the reply may also have reached the server: unknown, not failed
    assert first.sent + first.unknown + first.failed == 10
    db = sqlite3.connect(tmp_path / "j.sqlite")
    states = dict(db.execute("SELECT state, COUNT(*) FROM recipient GROUP BY state").fetchall())
    db.close()
    assert states.get("sent") == first.sent and sum(states.values()) == 10
    assert len(sandbox.state.outbox) == first.sent


def test_a_crash_while_sending_is_unknown_on_resume(sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 3)
    journal = tmp_path / "j.sqlite"
    client = _client(sandbox.url)
    client.send_bulk(MESSAGE, iter(emails[:1]), journal=journal)  # an iterator: no fingerprint
    db = sqlite3.connect(journal)  # as a SIGKILL between "sending" and the reply leaves it
    db.execute("INSERT INTO recipient (key, line, id_type, id_value, parameters, state) "
               f"VALUES ('EMAIL:{emails[1]}', 2, 'EMAIL', '{emails[1]}', '{{}}', 'sending')")
    db.commit()
    db.close()
    report = client.send_bulk(MESSAGE, emails, journal=journal)
    assert (report.already_sent, report.unknown, report.sent) == (1, 1, 1)
    assert _sends(sandbox)[sandbox.state.find_contact("EMAIL", emails[1]).contact_id] == 0


def test_the_rate_holds_with_slow_calls(tmp_path: Path) -> None:
    with Sandbox(rate_limit=10, latency=0.15) as sb:
        emails = _people(sb, 15)
        client = _client(sb.url, rate_limit=10.0)
        started = time.monotonic()
        report = client.send_bulk(MESSAGE, emails, journal=tmp_path / "j.sqlite", workers=8)
        elapsed = time.monotonic() - started
        assert report.sent == 15 and report.ok
        assert [c for c in sb.state.calls if c.status != 200] == []  # never throttled
    # 30 calls at 10/s: at least 2.9 s (the limiter's pacing, not the 150 ms per call:
    # 8 workers keep several calls in flight)
    assert elapsed >= 2.9


def test_one_throttle_holds_every_thread_for_the_back_off() -> None:
    ecm = "http://ecircle.com/developer/ecmapi"
    starts: list[float] = []
    throttled_at: list[float] = []
    lock = threading.Lock()
    ok = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
          b'<ns2:messageSendSingleResponse xmlns:ns2="' + ecm.encode() + b'"/>'
          b"</S:Body></S:Envelope>")
    throttle = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
                b"<S:Fault><faultcode>S:Server</faultcode><faultstring>" + THROTTLE_TEXT.encode()
                + b"</faultstring></S:Fault></S:Body></S:Envelope>")

    def answer(request: HttpRequest) -> HttpReply:
        with lock:
            now = time.monotonic()
            starts.append(now)
            if len(starts) == 5:
                throttled_at.append(now)
                return HttpReply(500, {}, throttle)
        time.sleep(0.01)
        return HttpReply(200, {}, ok)

    back_off = 0.5
    client = EngageClient("https://t.invalid/api/soap/v8/", "u", "p",
                          transport=MockTransport(answer), rate_limit=200.0,
                          retry=RetryPolicy(rate_limited_delay=back_off, jitter=False))

    def worker() -> None:
        for _ in range(5):
            client.message_send_single(MESSAGE, 1)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [t0] = throttled_at
    during = [s for s in starts if t0 < s < t0 + back_off - 0.02]
    assert during == []  # no thread started a call before the back-off ended
    assert len(starts) == 31  # 30 sends, the throttled one once more


def test_authentication_stops_the_job_and_raises(sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 20)
    client = EngageClient(sandbox.url, DEFAULT_USERNAME, "wrong", rate_limit=None,
                          retry=RetryPolicy.none())
    with pytest.raises(AuthenticationError):
        client.send_bulk(MESSAGE, emails, journal=tmp_path / "j.sqlite", workers=2)
    assert sandbox.state.outbox == []
    assert len(sandbox.state.calls) < 20  # it stopped instead of trying everyone


def test_ctrl_c_stops_after_the_calls_in_flight(sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 50)
    client = _client(sandbox.url)

    def rows() -> Iterator[object]:
        for i, email in enumerate(emails):
            if i == 20:
                raise KeyboardInterrupt
            yield BulkRecipient(i + 1, Identifier.email(email))

    with pytest.raises(BulkInterrupted) as stop:
        client.send_bulk(MESSAGE, rows(), journal=tmp_path / "j.sqlite", workers=4)
    report = stop.value.report
    assert report.interrupted and report.sent == len(sandbox.state.outbox) <= 20
    again = client.send_bulk(MESSAGE, emails, journal=tmp_path / "j.sqlite")
    assert again.already_sent == report.sent and again.sent == 50 - report.sent
    assert set(_sends(sandbox).values()) == {1}
