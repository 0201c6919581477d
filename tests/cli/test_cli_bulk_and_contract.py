"""engage-soap send-bulk (CSV, JSON lines, resume, SIGKILL mid-run) and contract check."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from pytest_httpserver import HTTPServer

from engage_soap.pytest_plugin import EngageSandbox
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.sandbox import Sandbox

pytestmark = pytest.mark.long(9)

Invoke = Callable[..., Result]


def _people(sb: EngageSandbox | Sandbox, n: int) -> list[str]:
    emails = [f"row{i}@example.com" for i in range(n)]
    for email in emails:
        sb.state.add_contact(email_address=email, save=False)
    return emails


def _csv(path: Path, emails: list[str], extra: str = "") -> Path:
    path.write_text("email,FIRSTNAME\n" + "".join(f"{e},N{i}\n" for i, e in enumerate(emails))
                    + extra, encoding="utf-8")
    return path


def test_send_bulk_from_csv_reports_resumes_and_writes_the_failed_rows(
        sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    emails = _people(sb, 12)
    extra = "nobody@example.com,X\n,empty\nnot-an-address,Y\n" + f"{emails[0]},again\n"
    data = _csv(tmp_path / "people.csv", emails, extra)
    failed = tmp_path / "failed.csv"
    result = invoke("send-bulk", "--message-id", "23541", "--input", str(data),
                    "--param", "CAMPAIGN=c1", "--failed-out", str(failed))
    assert result.exit_code == 1, result.output  # some failed: listed
    out = result.stdout
    assert "sent: 12, already sent: 0, skipped: 1, failed: 3, unknown: 0" in out
    assert "failed: line 14 EMAIL nobody@example.com: ContactNotFoundError" in out
    assert "failed: line 15 - -:" in out  # no identifier at all
    assert "line 16" in out and "failed by error code: " in out
    assert Counter(e.recipient_id for e in sb.outbox).most_common(1)[0][1] == 1
    assert sb.outbox[0].parameter_dict["CAMPAIGN"] == "c1"
    assert {e.parameter_dict["FIRSTNAME"] for e in sb.outbox} == {f"N{i}" for i in range(12)}
    # the failed rows exactly as the input held them: no --param value copied in
    assert failed.read_text().splitlines() == [
        "email,FIRSTNAME", "nobody@example.com,X", ",empty", "not-an-address,Y"]
    journal = tmp_path / "people.journal.sqlite"
    assert journal.exists()

    again = invoke("send-bulk", "--message-id", "23541", "--input", str(data),
                   "--param", "CAMPAIGN=c1")
    assert again.exit_code == 2 and "pass --resume" in again.stderr
    resumed = invoke("send-bulk", "--message-id", "23541", "--input", str(data), "--resume",
                     "--param", "CAMPAIGN=c1", "--json")
    report = json.loads(resumed.stdout)
    assert report["report"]["already_sent"] == 12 and report["report"]["sent"] == 0
    assert report["ok"] is False and resumed.exit_code == 1
    assert len(sb.outbox) == 12  # running it again sent nothing


def test_send_bulk_from_json_lines_with_another_id_column(sb: EngageSandbox, invoke: Invoke,
                                                          tmp_path: Path) -> None:
    data = tmp_path / "people.jsonl"
    data.write_text('{"contact_id": 33457, "FIRSTNAME": "Jo"}\n{"contact_id": 33458}\n'
                    "not json\n\n" + '{"contact_id": 33457}\n', encoding="utf-8")
    result = invoke("send-bulk", "--message-id", "23541", "--input", str(data),
                    "--id-column", "contact_id", "--json")
    report = json.loads(result.stdout)["report"]
    assert (report["sent"], report["skipped"], report["failed"]) == (2, 1, 1)
    assert report["failures"][0]["line"] == 3 and result.exit_code == 1
    assert sorted(e.recipient_id for e in sb.outbox) == [33457, 33458]


def test_send_bulk_usage_errors(sb: EngageSandbox, invoke: Invoke, tmp_path: Path) -> None:
    data = tmp_path / "people.csv"
    data.write_text("mail\nx@example.com\n")
    result = invoke("send-bulk", "--message-id", "23541", "--input", str(data))
    assert result.exit_code == 2 and "no 'email' column" in result.stderr
    all_sent = _csv(tmp_path / "ok.csv", _people(sb, 2))
    assert invoke("send-bulk", "--message-id", "23541", "--input", str(all_sent)
                  ).exit_code == 0


def test_send_bulk_killed_mid_run_then_resumed_sends_each_recipient_once(
        console_script: str, child_env: dict[str, str], tmp_path: Path) -> None:
    with Sandbox(rate_limit=None, latency=0.05) as sandbox:
        emails = _people(sandbox, 80)
        data = _csv(tmp_path / "people.csv", emails)
        env = {**child_env, "ENGAGE_ENDPOINT": sandbox.url,
               "ENGAGE_USERNAME": "sandbox-api", "ENGAGE_PASSWORD": "sandbox-secret"}
        argv = [console_script, "send-bulk", "--message-id", "23541", "--input", str(data),
                "--workers", "4", "--rate", "40", "--json"]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while len(sandbox.state.outbox) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
        proc.communicate(timeout=30)
        sent_before = len(sandbox.state.outbox)
        assert 15 <= sent_before < 80
        db = sqlite3.connect(tmp_path / "people.journal.sqlite")
        states = dict(db.execute("SELECT state, COUNT(*) FROM recipient GROUP BY state"))
        db.close()
        assert states.get("sent", 0) <= sent_before  # committed before, never after the fact

        resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True,
                                 timeout=120)
        report = json.loads(resumed.stdout)["report"]
        outbox = Counter(sandbox.state.find_contact("EMAIL", e.email_address).email_address
                         for e in sandbox.state.outbox)
        unknown = {r["identifier_value"] for r in report["unknowns"]}
    assert set(outbox.values()) == {1}  # nobody twice
    assert set(outbox) | unknown == set(emails)  # nobody missing: sent, or listed as unknown
    assert report["unknown"] == len(unknown) <= 4  # at most the calls in flight at the kill
    assert resumed.returncode == (1 if unknown else 0)


# ------------------------------------------------------------------ contract check


def _altered_copy(tmp_path: Path) -> Path:
    xsd = bundled_xsd().read_text().replace(
        '<xs:element name="recipientId" type="xs:long"/>',
        '<xs:element name="recipientId" type="xs:string"/>', 1)
    (tmp_path / "ecmapi.xsd").write_text(xsd)
    (tmp_path / "ecmapi.wsdl").write_bytes(bundled_wsdl().read_bytes())
    return tmp_path / "ecmapi.wsdl"


def test_contract_check_exit_codes_and_json(invoke: Invoke, tmp_path: Path) -> None:
    same = invoke("contract", "check", "--wsdl", str(bundled_wsdl()))
    assert same.exit_code == 0, same.output
    assert "0 differences; compatible" in same.stdout
    changed = _altered_copy(tmp_path)
    result = invoke("contract", "check", "--wsdl", str(changed), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"compatible": False, "differences": [{
        "kind": "type-changed", "operation": "messageSendSingle",
        "path": "request/recipientId", "bundled": "long", "tenant": "string",
        "breaking": True}]}
    only = invoke("contract", "check", "--wsdl", str(changed), "--operations", "contactGet")
    assert only.exit_code == 0
    every = invoke("contract", "check", "--wsdl", str(changed), "--all")
    assert every.exit_code == 1 and "messageSendTransactional" not in every.stdout
    assert invoke("contract", "check").exit_code == 2  # no --wsdl


def test_contract_check_of_a_url_uses_the_credentials_and_maps_failures(
        sb: EngageSandbox, invoke: Invoke, httpserver: HTTPServer) -> None:
    ok = invoke("contract", "check", "--wsdl", sb.sandbox.wsdl_url, "--all")
    assert ok.exit_code == 0, ok.output
    httpserver.expect_request("/api/soap/v8/").respond_with_data("no", 401)
    denied = invoke("contract", "check", "--wsdl", httpserver.url_for("/api/soap/v8/") + "?wsdl")
    assert denied.exit_code == 6, denied.output
    refused = invoke("contract", "check", "--wsdl", "http://127.0.0.1:9/api/soap/v8/?wsdl")
    assert refused.exit_code == 5, refused.output
