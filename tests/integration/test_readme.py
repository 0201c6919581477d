"""The README's Python examples run as written against the sandbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from engage_soap.pytest_plugin import EngageSandbox
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_the_five_examples() -> None:
    assert len(BLOCKS) == 9  # the asyncio ones: tests/asyncio/test_async_readme.py; REST:
    # tests/rest/test_rest_protocol.py


def test_quick_start_and_the_parts(engage_sandbox: EngageSandbox, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    quick_start = (BLOCKS[0]
                   .replace('"https://<host>/api/soap/v8/"', repr(engage_sandbox.url))
                   .replace('"api-user"', repr(DEFAULT_USERNAME)))
    namespace: dict[str, Any] = {"password": DEFAULT_PASSWORD}
    exec(compile(quick_start, "README quick start", "exec"), namespace)
    assert capsys.readouterr().out.strip() == "33457"
    assert engage_sandbox.outbox[-1].parameter_dict == {"FIRSTNAME": "Jo"}

    monkeypatch.chdir(tmp_path)
    (tmp_path / "invoice.pdf").write_bytes(b"%PDF-1.4 example")
    parts: dict[str, Any] = {"client": engage_sandbox.client}
    exec(compile(BLOCKS[1], "README parts", "exec"), parts)
    assert parts["contact"].id == 33460
    assert parts["new"].email == "new@example.com"
    sent = engage_sandbox.outbox[-1]
    assert (sent.recipient_id, sent.attachments[0].name) == (33460, "invoice.pdf")


def test_call_example(engage_sandbox: EngageSandbox) -> None:
    namespace: dict[str, Any] = {"client": engage_sandbox.client}
    exec(compile(BLOCKS[2], "README call example", "exec"), namespace)
    group = engage_sandbox.state.groups[4711]
    assert 33457 in group.members
    assert engage_sandbox.client.last_exchange is not None
    assert engage_sandbox.client.last_exchange.operation == "userGetByEmail"


def test_bulk_example(engage_sandbox: EngageSandbox, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    for email in ("a@example.com", "b@example.com"):
        engage_sandbox.state.add_contact(email_address=email)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"client": engage_sandbox.client}
    exec(compile(BLOCKS[3], "README bulk example", "exec"), namespace)
    report = namespace["report"]
    assert (report.sent, report.failed, report.unknown) == (2, 0, 0)
    assert [e.parameter_dict for e in engage_sandbox.outbox] in (
        [{"CAMPAIGN": "w1"}, {"CAMPAIGN": "w1", "FIRSTNAME": "Bo"}],
        [{"CAMPAIGN": "w1", "FIRSTNAME": "Bo"}, {"CAMPAIGN": "w1"}])
    assert (tmp_path / "welcome.journal.sqlite").exists()


def test_pytest_fixture_example(engage_sandbox: EngageSandbox) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(BLOCKS[-1], "README fixture example", "exec"), namespace)
    namespace["test_welcome_mail"](engage_sandbox)
    assert len(engage_sandbox.outbox) == 1
