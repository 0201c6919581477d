"""engage-soap send-bulk against the harms of issue 15: two runs at once, malformed CSV,
faithful failed rows, a journal of another job, exit codes and signals, --dry-run; and
`call` with a misspelt operation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engage_soap.pytest_plugin import EngageSandbox
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox

pytestmark = pytest.mark.long(17)

Invoke = Callable[..., Result]
SEND = ("send-bulk", "--message-id", "23541", "--input")


def _people(sb: EngageSandbox | Sandbox, n: int, prefix: str = "row") -> list[str]:
    emails = [f"{prefix}{i}@example.com" for i in range(n)]
    for email in emails:
        sb.state.add_contact(email_address=email, save=False)
    return emails


def _csv(path: Path, emails: list[str]) -> Path:
    path.write_text("email,FIRSTNAME\n" + "".join(f"{e},N{i}\n" for i, e in enumerate(emails)),
                    encoding="utf-8")
    return path


def _started(console_script: str, child_env: dict[str, str], sandbox: Sandbox, data: Path,
             sent: int, rate: float = 10.0,
             ) -> tuple[list[str], dict[str, str], subprocess.Popen[str]]:
    """The console script's send-bulk of ``data`` at ``rate`` calls per second started
    (argv, env, process), once the sandbox's outbox holds ``sent`` sends."""
    env = {**child_env, "ENGAGE_ENDPOINT": sandbox.url, "ENGAGE_USERNAME": DEFAULT_USERNAME,
           "ENGAGE_PASSWORD": DEFAULT_PASSWORD}
    argv = [console_script, *SEND, str(data), "--workers", "4", "--rate", str(rate), "--json"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for(lambda: len(sandbox.state.outbox) >= sent)
    return argv, env, proc


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


# ------------------------------------------------------------------ item 1: two runs at once


def test_two_runs_on_one_journal_never_send_anyone_twice(
        console_script: str, child_env: dict[str, str], tmp_path: Path) -> None:
    with Sandbox(rate_limit=None, latency=0.03) as sandbox:
        emails = _people(sandbox, 40)
        data = _csv(tmp_path / "people.csv", emails)
        # the first run is under way
        argv, env, first = _started(console_script, child_env, sandbox, data, 5)
        # a cron overlap, and an operator following the --resume hint meanwhile
        second = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                                timeout=60)
        third = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        out, _ = first.communicate(timeout=120)
        sends = Counter(e.recipient_id for e in sandbox.state.outbox)
    assert len(sends) == 40 and set(sends.values()) == {1}  # each recipient exactly once
    assert first.returncode == 0 and json.loads(out)["report"]["sent"] == 40
    for other in (second, third):  # failed at once, a code of their own, nothing done
        assert other.returncode == 75, other.stderr
        assert "in use by another run" in other.stderr
        assert json.loads(other.stdout)["error"]["exit_code"] == 75


# ------------------------------------------------------------------ item 2: a SERVER fault


def test_a_server_fault_on_a_send_is_unknown_until_resend_unknown(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    data = _csv(tmp_path / "people.csv", _people(sb, 3))
    sb.sandbox.faults.inject("messageSendSingle", "fault", times=1)  # errorActor SERVER
    first = invoke(*SEND, str(data), "--workers", "1")
    assert first.exit_code == 1 and "unknown: 1" in first.stdout
    again = invoke(*SEND, str(data), "--resume")
    assert again.exit_code == 1 and len(sb.outbox) == 2  # not sent again
    resent = invoke(*SEND, str(data), "--resume", "--resend-unknown")
    assert resent.exit_code == 0 and len(sb.outbox) == 3


# ------------------------------------------------------------------ item 3: malformed CSV


def test_malformed_csv_rows_are_reported_with_their_line_and_never_sent(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    emails = _people(sb, 4)
    data = tmp_path / "people.csv"
    big = "x" * (1024 * 1024)  # beyond csv.field_size_limit()
    data.write_text(f"email,FIRSTNAME\n{emails[0]},Jo\n{emails[1]},Smith, John\n{emails[2]}\n"
                    f"{emails[3]},{big}\n" + "ok@example.com,Ok\n", encoding="utf-8")
    sb.state.add_contact(email_address="ok@example.com", save=False)
    result = invoke(*SEND, str(data), "--json")
    report = json.loads(result.stdout)["report"]
    problems = {r["line"]: r["message"] for r in report["failures"]}
    assert problems[3] == "line 3 has 3 fields, the header has 2"
    assert problems[4] == "line 4 has 1 fields, the header has 2"
    assert "field larger than field limit" in problems[5]
    assert report["sent"] == 2 and result.exit_code == 1  # the job went on after line 5
    assert sorted(str(sb.state.contacts[e.recipient_id].email_address) for e in sb.outbox) == \
        sorted([emails[0], "ok@example.com"])

    twice = tmp_path / "twice.csv"
    twice.write_text("email,NAME,NAME\na@example.com,x,y\n")
    refused = invoke(*SEND, str(twice))
    assert refused.exit_code == 2 and "'NAME' more than once" in refused.stderr


# ------------------------------------------------------------------ item 4: the failed rows


def test_the_failed_rows_are_written_back_exactly_and_fail_the_same_way(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    data = tmp_path / "people.csv"
    lines = [b"email,FIRSTNAME,CAMPAIGN",
             b"nobody@example.com,Jo",                        # a missing cell
             b"x@example.com,Smith, John,c",                  # a surplus field
             b"bad\xff@example.com,Jo,c",                     # an undecodable byte
             b"=cmd|' /C calc'!A0@example.com,+1,-2",         # formula-leading cells
             b"'@quoted@example.com,@SUM(1),c"]               # an apostrophe already there
    data.write_bytes(b"\n".join(lines) + b"\n")
    failed = tmp_path / "failed.csv"
    first = invoke(*SEND, str(data), "--param", "CAMPAIGN=p", "--failed-out", str(failed),
                   "--json")
    written = failed.read_bytes()
    assert written.splitlines() == [
        b"email,FIRSTNAME,CAMPAIGN",
        b"nobody@example.com,Jo",
        b"x@example.com,Smith, John,c",
        b"bad\xff@example.com,Jo,c",
        b"'=cmd|' /C calc'!A0@example.com,'+1,'-2",
        b"'@quoted@example.com,'@SUM(1),c"]  # read as @quoted...: written the same
    again_out = tmp_path / "failed-again.csv"
    again = invoke(*SEND, str(failed), "--param", "CAMPAIGN=p", "--failed-out",
                   str(again_out), "--json")

    def failures(result: Result) -> list[tuple[str | None, str | None]]:
        return [(r["identifier_value"], r["message"])
                for r in sorted(json.loads(result.stdout)["report"]["failures"],
                                key=lambda r: r["line"])]

    assert failures(again) == failures(first) and len(failures(first)) == 5
    assert again_out.read_bytes() == written  # the same rows, the same way
    assert sb.outbox == []


def test_failed_json_lines_are_written_back_as_they_were(sb: EngageSandbox, invoke: Invoke,
                                                         tmp_path: Path) -> None:
    data = tmp_path / "people.jsonl"
    data.write_bytes(b'{"email": "nobody@example.com", "X": "=1"}\n{"email": "a\xfe"}\n')
    failed = tmp_path / "failed.jsonl"
    invoke(*SEND, str(data), "--failed-out", str(failed))
    assert failed.read_bytes() == data.read_bytes()


# ------------------------------------------------------------------ item 5: the job


def test_a_weekly_job_reusing_the_file_name_is_refused_on_resume(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    data = _csv(tmp_path / "recipients.csv", _people(sb, 3, "week1-"))
    assert invoke(*SEND, str(data)).exit_code == 0
    _csv(data, _people(sb, 3, "week2-"))  # next week, the same file name
    result = invoke(*SEND, str(data), "--resume")
    assert result.exit_code == 2
    assert "belongs to another input (the recipients differ)" in result.stderr
    other = invoke(*SEND, str(data), "--resume", "--journal", str(tmp_path / "week2.sqlite"))
    assert other.exit_code == 0 and len(sb.outbox) == 6


# ------------------------------------------------------------------ item 6: exits, signals


def test_an_unreachable_endpoint_exits_5(invoke: Invoke, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _csv(tmp_path / "people.csv", [f"r{i}@example.com" for i in range(30)])
    for name, value in {"ENGAGE_ENDPOINT": "http://127.0.0.1:9/api/soap/v8/",
                        "ENGAGE_USERNAME": "u", "ENGAGE_PASSWORD": "p",
                        "ENGAGE_RETRIES": "0"}.items():
        monkeypatch.setenv(name, value)
    result = invoke(*SEND, str(data))
    assert result.exit_code == 5 and "TransportError" in result.stderr


def test_a_wrong_password_leaves_no_journal_that_blocks_the_corrected_run(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = _csv(tmp_path / "people.csv", _people(sb, 5))
    monkeypatch.setenv("ENGAGE_PASSWORD", "wrong")
    assert invoke(*SEND, str(data)).exit_code == 6
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    corrected = invoke(*SEND, str(data))  # no --resume needed
    assert corrected.exit_code == 0, corrected.output
    assert len(sb.outbox) == 5


def test_a_header_only_input_exits_0_and_blocks_nothing(sb: EngageSandbox, invoke: Invoke,
                                                       tmp_path: Path) -> None:
    data = tmp_path / "people.csv"
    data.write_text("email,FIRSTNAME\n")
    assert invoke(*SEND, str(data)).exit_code == 0
    assert invoke(*SEND, str(data)).exit_code == 0
    _csv(data, _people(sb, 2))
    assert invoke(*SEND, str(data)).exit_code == 0 and len(sb.outbox) == 2


def test_sigterm_stops_after_the_calls_in_flight_and_reports(
        console_script: str, child_env: dict[str, str], tmp_path: Path) -> None:
    with Sandbox(rate_limit=None, latency=0.05) as sandbox:
        emails = _people(sandbox, 80)
        data = _csv(tmp_path / "people.csv", emails)
        # the sandbox throttles nothing here: 100 calls/s keeps the resumed run short
        argv, env, proc = _started(console_script, child_env, sandbox, data, 10, rate=100)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        sent_before = len(sandbox.state.outbox)
        report = json.loads(out)["report"]
        resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                                 timeout=120)
        sends = Counter(e.recipient_id for e in sandbox.state.outbox)
    assert proc.returncode == 143 and "terminated" in err
    assert report["interrupted"] is True and report["sent"] == sent_before < 80
    assert report["unknown"] == 0  # the calls in flight finished: nothing left in doubt
    assert resumed.returncode == 0 and json.loads(resumed.stdout)["report"]["sent"] == (
        80 - sent_before)
    assert len(sends) == 80 and set(sends.values()) == {1}


# ------------------------------------------------------------------ dry run, call


def test_dry_run_checks_and_looks_up_without_sending_or_a_journal(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    emails = _people(sb, 3)
    data = tmp_path / "people.csv"
    data.write_text("email,FIRSTNAME\n" + "".join(f"{e},x\n" for e in emails)
                    + "nobody@example.com,y\nbroken\n")
    result = invoke(*SEND, str(data), "--dry-run")
    assert result.exit_code == 1  # a real run would leave two rows failed
    assert "dry run, nothing sent: would send: 3, already sent: 0, skipped: 0, failed: 2" \
        in result.stdout
    assert sb.outbox == [] and not (tmp_path / "people.journal.sqlite").exists()
    created = invoke(*SEND, str(data), "--dry-run", "--create-if-missing", "--json")
    assert json.loads(created.stdout)["report"]["sent"] == 4
    assert sb.state.find_contact("EMAIL", "nobody@example.com") is None  # nothing created


def test_call_with_a_misspelt_operation_suggests_the_closest(sb: EngageSandbox,
                                                            invoke: Invoke) -> None:
    result = invoke("call", "contactget")
    assert result.exit_code == 2
    assert "no operation 'contactget'; did you mean contactGet" in result.stderr
    far = invoke("call", "zzzz")
    assert far.exit_code == 2 and "engage-soap operations lists them" in far.stderr
