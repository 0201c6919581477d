"""engage_replay: record a cassette against a sandbox, replay it, and fail readably."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from engage_soap import ConfigurationError
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
from engage_soap.testing import (
    Cassette,
    HttpReply,
    MockTransport,
    RecordingTransport,
    Redactor,
    xml_differences,
)

pytest_plugins = ["pytester"]

USER_TEST = '''
import os

def test_welcome(engage_replay):
    client = engage_replay("cassettes/welcome", allow_unused=bool(os.environ.get("ALLOW")))
    value = os.environ.get("VALUE", "Jo")
    result = client.send_prepared_message(23541, email="j.mcexample@example.com",
                                          parameters={"FIRSTNAME": value, "NOTE": "secret-7"})
    assert result.contact.id == 33457
    if not os.environ.get("SHORT"):
        assert client.contact_get(mobile_number="+4915112345678").id == 33458
'''
REAL = ("j.mcexample@example.com", "+4915112345678", "mo.bile@example.com",
        DEFAULT_PASSWORD)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sb:
        yield sb


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W",
                                         "error::ResourceWarning", *args)


def _record(pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
            *args: str) -> dict[str, bytes]:
    monkeypatch.setenv("ENGAGE_ENDPOINT", sandbox.url)
    monkeypatch.setenv("ENGAGE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    monkeypatch.setenv("ENGAGE_REDACT", "NOTE_VALUE,ecmVersion")
    _run(pytester, *args).assert_outcomes(passed=1)
    for name in ("ENGAGE_ENDPOINT", "ENGAGE_USERNAME", "ENGAGE_PASSWORD", "ENGAGE_RECORD"):
        monkeypatch.delenv(name, raising=False)
    folder = pytester.path / "cassettes" / "welcome"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_record_then_replay_round_trips(pytester: pytest.Pytester, sandbox: Sandbox,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    first = _record(pytester, sandbox, monkeypatch, "--engage-record")
    assert list(first) == ["001-contactGet.request.xml", "001-contactGet.response.xml",
                           "002-messageSendSingle.request.xml",
                           "002-messageSendSingle.response.xml",
                           "003-contactGet.request.xml", "003-contactGet.response.xml"]
    blob = b"".join(first.values())
    for real in REAL:  # redaction is complete: no real address, number or password
        assert real.encode() not in blob, real
    fake = Redactor().email("j.mcexample@example.com")
    assert fake.encode() in first["001-contactGet.request.xml"]
    assert fake.encode() in first["001-contactGet.response.xml"]
    assert Redactor().mobile("+4915112345678").encode() in first["003-contactGet.request.xml"]
    assert first["002-messageSendSingle.request.xml"].startswith(b"<?xml")
    assert b"\n  <soapenv:Body>" in first["002-messageSendSingle.request.xml"]  # pretty
    assert len(sandbox.state.outbox) == 1

    monkeypatch.setenv("ENGAGE_RECORD", "1")  # the environment variable works as the flag
    second = _record(pytester, sandbox, monkeypatch)
    assert second == first  # stable: the same exchanges give the same bytes

    _run(pytester).assert_outcomes(passed=1)  # replay, with no sandbox involved
    assert len(sandbox.state.outbox) == 2


def test_replay_fails_with_a_readable_diff_and_honours_any(
        pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _record(pytester, sandbox, monkeypatch, "--engage-record")
    monkeypatch.setenv("VALUE", "Joanna")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "request 2 differs from the recording 002-messageSendSingle" in text
    assert re.search(r"-\s+<value>Jo\s*$", text, re.M), text
    assert re.search(r"\+\s+<value>Joanna\s*$", text, re.M), text

    recorded = pytester.path / "cassettes" / "welcome" / "002-messageSendSingle.request.xml"
    recorded.write_bytes(recorded.read_bytes().replace(b"<value>Jo</value>",
                                                       b"<value>{{any}}</value>"))
    _run(pytester).assert_outcomes(passed=1)


def test_unused_exchanges_fail_unless_allowed(pytester: pytest.Pytester, sandbox: Sandbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _record(pytester, sandbox, monkeypatch, "--engage-record")
    monkeypatch.setenv("SHORT", "1")
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*recorded exchanges were never requested: 003-contactGet*"])
    monkeypatch.setenv("ALLOW", "1")
    _run(pytester).assert_outcomes(passed=1)


def test_recording_without_an_endpoint_is_a_usage_error(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENGAGE_ENDPOINT", "ENGAGE_USERNAME", "ENGAGE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_user=USER_TEST)
    result = _run(pytester, "--engage-record")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--engage-record needs ENGAGE_ENDPOINT*"])


def test_a_recording_that_would_hold_the_password_is_refused(tmp_path: Path) -> None:
    reply = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
             b'<x note="pw-Secret-1"/></S:Body></S:Envelope>')
    replies = [reply, b"<ok/>"]
    transport = RecordingTransport(MockTransport(lambda r: HttpReply(200, {}, replies.pop(0))),
                                   Cassette(tmp_path), Redactor(password="pw-Secret-1"))
    with pytest.raises(ConfigurationError, match="would still contain the password"):
        transport.request("POST", "http://h/", b"<a>hello</a>", {})
    assert list(tmp_path.iterdir()) == []  # nothing was written
    # where redaction can reach it, the password is replaced, and the exchange recorded
    transport.request("POST", "http://h/", b"<a>pw-Secret-1</a>", {})
    assert b"REDACTED-PASSWORD" in (tmp_path / "001-unknown.request.xml").read_bytes()


def test_redaction_is_stable_and_keeps_structure() -> None:
    r = Redactor(elements=["apiKey"])
    body = (b"<a><email>A.B@Real.org</email><mobileNumber>+49 151 1234</mobileNumber>"
            b"<msg>Contact with identifier=a.b@real.org does not exist.</msg>"
            b"<apiKey>k-123</apiKey><id>24011454555</id></a>")
    once, twice = r.redact(body), r.redact(body)
    assert once == twice
    assert b"real.org" not in once.lower() and b"1234" not in once and b"k-123" not in once
    assert b"<id>24011454555</id>" in once  # ids are not phone numbers
    assert once.count(r.email("a.b@real.org").encode()) == 2  # case-insensitive, stable


def test_xml_differences_ignore_prefixes_and_layout() -> None:
    a = b'<x:a xmlns:x="urn:n"><b>1</b></x:a>'
    b = b'<y:a xmlns:y="urn:n">\n  <b>1</b>\n</y:a>'
    assert xml_differences(a, b) is None
    assert xml_differences(a, b.replace(b"1", b"{{any}}")) is None
    assert "<b>2" in (xml_differences(a.replace(b"1", b"2"), b) or "")


def test_one_class_is_named_redactor_the_cli_filter_is_secret_filter() -> None:
    from engage_soap import cli

    assert not hasattr(cli, "Redactor")
    mask = cli.SecretFilter("pw-Secret-1")
    assert mask("x pw-Secret-1 https://u:p@h/ Authorization: Basic dTpw") == (
        "x *** https://***@h/ Authorization: Basic ***")
