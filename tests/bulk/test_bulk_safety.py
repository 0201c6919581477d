"""Bulk sending's safety rules (issue 15): one rule for "may this write be repeated?",
one run per journal, a journal that knows its job, a dry run, wrong usages refused."""

from __future__ import annotations

import ast
import inspect
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import engage_soap
from engage_soap import EngageClient, RetryPolicy, bulk
from engage_soap.bulk import JobIdentity, Journal, JournalBusyError, JournalError
from engage_soap.errors import (
    AuthenticationError,
    ConfigurationError,
    EngageError,
    InvalidInputError,
    InvalidParameterError,
    NoSuchObjectError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
    UnexpectedServerError,
)
from engage_soap.procedures import may_have_acted
from engage_soap.sandbox import DEFAULT_USERNAME, Sandbox

from .test_bulk import MESSAGE, _client, _people, sandbox

__all__ = ["sandbox"]  # the fixture, shared with test_bulk

def _states(journal: Path) -> dict[str, int]:
    db = sqlite3.connect(journal)
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM recipient GROUP BY state"))
    finally:
        db.close()


# ------------------------------------------------------------- one rule: may_have_acted


def _fault(cls: type[EngageError], actor: str, code: str) -> EngageError:
    return cls(f"x [{code}]", error_actor=actor, error_code=code)  # type: ignore[call-arg]


CASES: list[tuple[str, EngageError, bool]] = [
    ("throttle", RateLimitedError("throttled", request_sent=True), False),
    ("401", AuthenticationError("denied", status_code=401), False),
    ("CLIENT fault", _fault(InvalidParameterError, "CLIENT", "INVALID_PARAMETER"), False),
    ("unknown object", _fault(NoSuchObjectError, "CLIENT", "NO_SUCH_OBJECT"), False),
    ("not sent", TransportError("refused", retryable=True, request_sent=False), False),
    ("SERVER fault", _fault(UnexpectedServerError, "SERVER", "UNEXPECTED_ERROR"), True),
    ("timeout after sending", RequestTimeoutError("slow", retryable=True, request_sent=True),
     True),
]


@pytest.mark.parametrize(("case", "error", "acted"), CASES, ids=[c[0] for c in CASES])
def test_one_rule_for_the_retry_policy_and_the_journal(case: str, error: EngageError,
                                                       acted: bool) -> None:
    assert may_have_acted(error, "messageSendSingle") is acted
    assert may_have_acted(error, "contactGet") is False  # a read never acts
    # the retry policy repeats a write only when the rule says nothing was done
    delay = RetryPolicy(jitter=False, rate_limited_delay=0).delay_for(
        error, attempt=1, idempotent=False, waited=0)
    if acted:
        assert delay is None


def test_a_server_fault_on_a_send_is_unknown_and_not_sent_again(sandbox: Sandbox,
                                                                tmp_path: Path) -> None:
    emails = _people(sandbox, 5)
    journal = tmp_path / "job.sqlite"
    # an UnexpectedErrorException, errorActor SERVER, on the second send
    sandbox.faults.inject("messageSendSingle", "fault", times=1)
    client = _client(sandbox.url)
    first = client.send_bulk(MESSAGE, emails, journal=journal, workers=1)
    assert (first.sent, first.unknown, first.failed) == (4, 1, 0)
    assert first.unknowns[0].error_class == "UnexpectedServerError"
    assert _states(journal) == {"sent": 4, "unknown": 1}
    again = client.send_bulk(MESSAGE, emails, journal=journal)
    assert (again.sent, again.already_sent, again.unknown) == (0, 4, 1)
    assert len(sandbox.state.outbox) == 4  # not sent again
    resent = client.send_bulk(MESSAGE, emails, journal=journal, resend_unknown=True)
    assert (resent.sent, resent.already_sent) == (1, 4) and resent.ok
    assert len(sandbox.state.outbox) == 5


# ------------------------------------------------------------- one run per journal, its job


def test_a_second_run_on_a_journal_in_use_fails_at_once(tmp_path: Path) -> None:
    job = JobIdentity(MESSAGE, None, "p")
    first = Journal(tmp_path / "j.sqlite", job)
    try:
        with pytest.raises(JournalBusyError, match="in use by another run"):
            Journal(tmp_path / "j.sqlite", job)
        with pytest.raises(JournalBusyError):  # a dry run reads it: it waits its turn too
            Journal(tmp_path / "j.sqlite", job, dry_run=True)
    finally:
        first.close()
    Journal(tmp_path / "j.sqlite", job).close()  # released by close (and by the process end)


def test_the_journal_knows_its_job(sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 6)
    journal = tmp_path / "weekly.sqlite"
    client = _client(sandbox.url)
    client.send_bulk(MESSAGE, emails[:3], journal=journal, parameters={"WEEK": "1"})
    with pytest.raises(JournalError, match="another input"):  # next week's recipients
        client.send_bulk(MESSAGE, emails[3:], journal=journal, parameters={"WEEK": "1"})
    with pytest.raises(JournalError, match="other parameters"):
        client.send_bulk(MESSAGE, emails[:3], journal=journal, parameters={"WEEK": "2"})
    with pytest.raises(JournalError, match="belongs to message 23541, not 23542"):
        client.send_bulk(23542, emails[:3], journal=journal, parameters={"WEEK": "1"})
    with pytest.raises(JournalError, match="pass --resume"):
        client.send_bulk(MESSAGE, emails[:3], journal=journal, parameters={"WEEK": "1"},
                         resume=False)
    assert len(sandbox.state.outbox) == 3  # none of those sent anything
    same = client.send_bulk(MESSAGE, list(reversed(emails[:3])), journal=journal,
                            parameters={"WEEK": "1"})  # the same rows in another order
    assert same.already_sent == 3 and same.sent == 0


def test_a_journal_in_which_nothing_went_out_does_not_block_the_next_run(
        sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 4)
    journal = tmp_path / "j.sqlite"
    denied = EngageClient(sandbox.url, DEFAULT_USERNAME, "wrong", rate_limit=None,
                          retry=RetryPolicy.none())
    with pytest.raises(AuthenticationError):
        denied.send_bulk(MESSAGE, emails, journal=journal, workers=1, resume=False)
    client = _client(sandbox.url)
    report = client.send_bulk(MESSAGE, emails, journal=journal, resume=False)
    assert report.sent == 4 and report.ok
    empty = client.send_bulk(MESSAGE, [], journal=tmp_path / "empty.sqlite", resume=False)
    assert empty.ok and empty.done == 0
    again = client.send_bulk(MESSAGE, emails[:1], journal=tmp_path / "empty.sqlite",
                             resume=False)
    assert again.ok and len(sandbox.state.outbox) == 5


def test_an_unreachable_endpoint_stops_the_job_with_the_transport_error(
        tmp_path: Path) -> None:
    client = EngageClient("http://127.0.0.1:9/api/soap/v8/", "u", "p", rate_limit=None,
                          retry=RetryPolicy.none(), timeout=5)
    rows = [f"r{i}@example.com" for i in range(200)]
    with pytest.raises(TransportError) as failure:
        client.send_bulk(MESSAGE, rows, journal=tmp_path / "j.sqlite", workers=2)
    assert failure.value.request_sent is False
    assert sum(_states(tmp_path / "j.sqlite").values()) < 20  # it stopped


# ------------------------------------------------------------- dry run, wrong usages


def test_a_dry_run_reads_only_and_writes_no_journal(sandbox: Sandbox, tmp_path: Path) -> None:
    emails = _people(sandbox, 3)
    client = _client(sandbox.url)
    journal = tmp_path / "j.sqlite"
    rows: list[object] = [*emails, "new@example.com", {"email": "bad\x00@example.com"}]
    contacts = len(sandbox.state.contacts)
    plan = client.send_bulk(MESSAGE, rows, journal=journal, create_if_missing=True,
                            dry_run=True)
    assert plan.dry_run and (plan.sent, plan.failed) == (4, 1)  # the new one would be created
    assert plan.lines()[0].startswith("dry run, nothing sent: would send: 4")
    assert not journal.exists()
    assert sandbox.state.outbox == [] and len(sandbox.state.contacts) == contacts
    assert {c.operation for c in sandbox.state.calls} == {"contactGet"}
    client.send_bulk(MESSAGE, emails[:2], journal=journal)
    before = journal.read_bytes()
    plan = client.send_bulk(MESSAGE, emails[:2], journal=journal, dry_run=True)
    assert (plan.already_sent, plan.sent) == (2, 0)  # it reads an existing journal
    assert journal.read_bytes() == before


def test_a_bare_string_as_recipients_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    client = _client(sandbox.url)
    for wrong in ("a@example.com", b"a@example.com", {"email": "a@example.com"}):
        with pytest.raises(InvalidInputError, match="recipients must be an iterable"):
            client.send_bulk(MESSAGE, wrong, journal=tmp_path / "j.sqlite")
    assert sandbox.state.calls == [] and not (tmp_path / "j.sqlite").exists()


def test_rows_follow_the_facades_identifier_rules(tmp_path: Path) -> None:
    rows = list(bulk.recipients_from([{"contact_id": "12"}, {"email": "", "mobile_number": "+49"},
                                      {"contact_id": 12}]))
    assert "contact id must be a positive int, not str" in (rows[0].problem or "")
    assert "exactly one of" in (rows[1].problem or "")
    assert rows[2].key == "ID:12"
    data = tmp_path / "ids.csv"
    data.write_text("contact_id\n12\n\nx1\n")
    from_file = list(bulk.read_rows(data, "contact_id"))
    assert from_file[0].key == "ID:12"  # a file's text says 12 as digits
    assert "positive whole number" in (from_file[1].problem or "")


def test_retry_takes_a_number_of_attempts_or_is_refused() -> None:
    client = EngageClient("https://t.invalid/api/soap/v8/", "u", "p", retry=3)
    assert client.retry == RetryPolicy(max_attempts=3)
    client.close()
    wrongs: list[Any] = [True, "3", 2.5]
    for wrong in wrongs:
        with pytest.raises(ConfigurationError, match="retry must be a RetryPolicy or an int"):
            EngageClient("https://t.invalid/api/soap/v8/", "u", "p", retry=wrong)
    with pytest.raises(ConfigurationError, match="at least 1"):
        EngageClient("https://t.invalid/api/soap/v8/", "u", "p", retry=0)
    with pytest.raises(ConfigurationError, match="max_attempts must be an int"):
        RetryPolicy(max_attempts="3")  # type: ignore[arg-type]


def test_bulk_report_is_public_and_bulk_uses_only_the_clients_public_methods() -> None:
    assert engage_soap.BulkReport is bulk.BulkReport
    assert "BulkReport" in engage_soap.__all__
    tree = ast.parse(inspect.getsource(bulk))
    private = [ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
               and n.attr.startswith("_") and not n.attr.startswith("__")
               and ast.unparse(n.value).endswith("client")]
    assert private == []
