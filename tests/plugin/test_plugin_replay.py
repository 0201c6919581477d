"""engage_replay: record a cassette against a sandbox, replay it, and fail readably."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from replay_support import KEY, run

from engage_soap import ConfigurationError, EngageClient, EngageError, RetryPolicy
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
from engage_soap.testing import (
    Cassette,
    HttpReply,
    MockTransport,
    RecordingTransport,
    Redactor,
    ReplayServer,
    xml_differences,
)
from engage_soap.transport import HttpTransport

pytest_plugins = ["pytester"]
pytestmark = [pytest.mark.usefixtures("own_key"), pytest.mark.long(5)]

USER_TEST = '''
import os

def test_welcome(engage_replay):
    client = engage_replay("cassettes/welcome", allow_unused=bool(os.environ.get("ALLOW")))
    value = os.environ.get("VALUE", "Jo")
    result = client.send_prepared_message(23541, email="j.mcexample@example.com",
                                          parameters={"FIRSTNAME": value, "NOTE": "secret-7"})
    assert result.contact.id == 33457
    assert result.contact.email == "j.mcexample@example.com"  # mapped back on replay
    if not os.environ.get("SHORT"):
        assert client.contact_get(mobile_number="+4915112345678").id == 33458
'''
REAL = ("j.mcexample@example.com", "+4915112345678", "mo.bile@example.com",
        DEFAULT_PASSWORD, "secret-7", "<value>Jo<")
def _record(pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
            *args: str) -> dict[str, bytes]:
    monkeypatch.setenv("ENGAGE_ENDPOINT", sandbox.url)
    monkeypatch.setenv("ENGAGE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    monkeypatch.setenv("ENGAGE_REDACT", "NOTE_VALUE,ecmVersion")
    run(pytester, *args).assert_outcomes(passed=1)
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
                           "003-contactGet.request.xml", "003-contactGet.response.xml",
                           "cassette.json"]
    blob = b"".join(first.values())
    for real in REAL:  # redaction is complete: no real address, number, value or password
        assert real.encode() not in blob, real
    fake = Redactor(key=KEY).email("j.mcexample@example.com")
    assert fake.encode() in first["001-contactGet.request.xml"]
    assert fake.encode() in first["001-contactGet.response.xml"]
    assert Redactor(key=KEY).mobile("+4915112345678").encode() in first[
        "003-contactGet.request.xml"]
    assert first["001-contactGet.response.xml"].startswith(  # the server's JAX-WS shape
        b"<?xml version='1.0' encoding='UTF-8'?><S:Envelope")
    assert first["002-messageSendSingle.request.xml"].startswith(b"<?xml")
    assert b"\n  <soapenv:Body>" in first["002-messageSendSingle.request.xml"]  # pretty
    assert len(sandbox.state.outbox) == 1

    monkeypatch.setenv("ENGAGE_RECORD", "1")  # the environment variable works as the flag
    second = _record(pytester, sandbox, monkeypatch)
    assert second == first  # stable: the same exchanges give the same bytes

    run(pytester).assert_outcomes(passed=1)  # replay, with no sandbox involved
    assert len(sandbox.state.outbox) == 2


def test_replay_fails_with_a_readable_diff_and_honours_any(
        pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _record(pytester, sandbox, monkeypatch, "--engage-record")
    monkeypatch.setenv("VALUE", "Joanna")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "request 2 differs from the recording 002-messageSendSingle" in text
    jo = Redactor(key=KEY).text("Jo")  # with the recording's key a changed value shows
    assert re.search(rf"-\s+<value>{jo}\s*$", text, re.M), text
    assert re.search(r"\+\s+<value>Joanna\s*$", text, re.M), text

    recorded = pytester.path / "cassettes" / "welcome" / "002-messageSendSingle.request.xml"
    recorded.write_bytes(recorded.read_bytes().replace(f"<value>{jo}</value>".encode(),
                                                       b"<value>{{any}}</value>"))
    run(pytester).assert_outcomes(passed=1)


def test_unused_exchanges_fail_unless_allowed(pytester: pytest.Pytester, sandbox: Sandbox,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _record(pytester, sandbox, monkeypatch, "--engage-record")
    monkeypatch.setenv("SHORT", "1")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*recorded exchanges were never requested: 003-contactGet*"])
    monkeypatch.setenv("ALLOW", "1")
    run(pytester).assert_outcomes(passed=1)


def test_recording_without_an_endpoint_is_a_usage_error(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENGAGE_ENDPOINT", "ENGAGE_USERNAME", "ENGAGE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_user=USER_TEST)
    result = run(pytester, "--engage-record")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*--engage-record needs ENGAGE_ENDPOINT*"])


def test_a_recording_that_would_hold_the_password_is_refused(tmp_path: Path) -> None:
    reply = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
             b"<pw-Secret-1/></S:Body></S:Envelope>")  # where redaction cannot reach it
    replies = [reply, b"<ok/>"]
    folder = tmp_path / "cassette"
    transport = RecordingTransport(MockTransport(lambda r: HttpReply(200, {}, replies.pop(0))),
                                   Cassette(folder), Redactor(password="pw-Secret-1"))
    with pytest.raises(ConfigurationError, match="would still contain the password"):
        transport.request("POST", "http://h/", b"<a>hello</a>", {})
    # where redaction can reach it, the password is replaced, and the exchange recorded
    transport.request("POST", "http://h/", b"<a note='pw-Secret-1'>x</a>", {})
    transport.commit()
    assert [p.name for p in sorted(folder.iterdir())] == [
        "001-unknown.request.xml", "001-unknown.response.xml", "cassette.json"]
    assert b"REDACTED-PASSWORD" in (folder / "001-unknown.request.xml").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["cassette"]  # no staging folder left


SEND = (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        b'xmlns:ecm="http://ecircle.com/developer/ecmapi"><soapenv:Body><ecm:messageSendSingle>'
        b"<messageId>23541</messageId><recipientId>33457</recipientId><additionalContent>"
        b"<parameters><name>CITY</name><value>Bonn</value></parameters>"
        b"<parameters><name>IBAN</name><value>DE89370400440532013000</value></parameters>"
        b"<parameters><name>PHONE</name><value>0228 123456</value></parameters>"
        b"<attachments><name>invoice-smith.pdf</name><contentType>application/pdf"
        b"</contentType><content>JVBERi0xLjQ=</content></attachments>"
        b"</additionalContent></ecm:messageSendSingle></soapenv:Body></soapenv:Envelope>")
FAULT = ("<S:Envelope xmlns:S='http://schemas.xmlsoap.org/soap/envelope/'><S:Body><S:Fault>"
         "<faultcode>S:Server</faultcode><faultstring>Contact Jürgen Müller "
         "jürgen.müller@exämple.de does not exist.</faultstring><detail>"
         "<ns2:NoSuchObjectException xmlns:ns2='http://ecircle.com/developer/ecmapi'>"
         "<errorActor>CLIENT</errorActor><errorCode>NO_SUCH_OBJECT</errorCode><propertyValue>"
         "jürgen.müller@exämple.de</propertyValue></ns2:NoSuchObjectException></detail>"
         "</S:Fault></S:Body></S:Envelope>").encode()


def test_a_cassette_holds_no_personal_data_by_default() -> None:
    r = Redactor(key=KEY)
    sent, fault = r.redact(SEND), r.redact(FAULT, pretty=False)
    for real in (b"Bonn", b"DE89370400440532013000", b"0228 123456", b"invoice-smith",
                 b"JVBERi0xLjQ=", "Müller".encode(), "exämple".encode(), b"does not exist"):
        assert real not in sent + fault, real
    for kept in (b"<messageId>23541</messageId>", b"<recipientId>33457</recipientId>",
                 b"<name>CITY</name>", b"<name>IBAN</name>", b"application/pdf",
                 b"<errorCode>NO_SUCH_OBJECT</errorCode>", b"<faultcode>S:Server</faultcode>"):
        assert kept in sent + fault, kept
    # a non-ASCII address is replaced whole, by the same fake as its ASCII-cased twin
    assert r.email("JÜRGEN.müller@exämple.de").encode() in fault
    assert r.redact(SEND) == sent  # stable: the same bytes again
    assert Redactor(key="another key").redact(SEND) != sent  # keyed
    unkeyed = hashlib.sha256(b"engage_soap:bonn").hexdigest()[:10].encode()
    assert unkeyed not in sent  # not an unkeyed hash anyone can recompute


def test_redaction_is_narrowed_and_widened_by_attribute_or_parameter_name() -> None:
    r = Redactor(key=KEY, keep=["CITY", "faultstring"], elements=["IBAN", "contentType"])
    sent, fault = r.redact(SEND), r.redact(FAULT, pretty=False)
    assert b"<value>Bonn</value>" in sent  # kept by parameter name
    assert b"DE89370400440532013000" not in sent and b"application/pdf" not in sent
    assert "Jürgen Müller".encode() in fault  # kept by element name
    assert "<propertyValue>jürgen".encode() not in fault


def test_xml_differences_ignore_prefixes_and_layout() -> None:
    a = b'<x:a xmlns:x="urn:n"><b>1</b></x:a>'
    b = b'<y:a xmlns:y="urn:n">\n  <b>1</b>\n</y:a>'
    assert xml_differences(a, b) is None
    assert xml_differences(a, b.replace(b"1", b"{{any}}")) is None
    assert "<b>2" in (xml_differences(a.replace(b"1", b"2"), b) or "")
    assert xml_differences(b"<a>x<b/>y</a>", b"<a>x<b/>z</a>") is not None  # tails count
    assert xml_differences(b'<a k="1"/>', b'<a k="2"/>') is not None


def test_one_class_is_named_redactor_the_cli_filter_is_secret_filter() -> None:
    from engage_soap import cli

    assert not hasattr(cli, "Redactor")
    mask = cli.SecretFilter("pw-Secret-1")
    assert mask("x pw-Secret-1 https://u:p@h/ Authorization: Basic dTpw") == (
        "x *** https://***@h/ Authorization: Basic ***")


# ------------------------------------------------------------------ in-process record/replay


def _record_in_process(sandbox: Sandbox, folder: Path, calls: Callable[[EngageClient], None],
                       key: str = KEY) -> RecordingTransport:
    transport = RecordingTransport(HttpTransport(timeout=10), Cassette(folder),
                                   Redactor(key=key, password=DEFAULT_PASSWORD))
    with EngageClient(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, transport=transport,
                      rate_limit=None, validate=True) as client:
        calls(client)
    return transport


def _lookups(client: EngageClient) -> None:
    for contact_id in (33457, 33458, 33459, 33460):
        client.contact_get(contact_id=contact_id)
    client.contact_get(email="j.mcexample@example.com")


def test_replay_without_the_key_maps_fakes_back_and_serves_concurrent_calls(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record_in_process(sandbox, tmp_path / "c", _lookups).commit()
    monkeypatch.delenv("ENGAGE_REDACT_KEY")  # a CI machine: no key at all
    with ReplayServer(tmp_path / "c") as replay, EngageClient(
            replay.url, "u", "p", rate_limit=None, validate=True) as client:
        with ThreadPoolExecutor(6) as pool:  # in any order, at once
            got = list(pool.map(lambda i: client.contact_get(contact_id=i).id,
                                [33460, 33459, 33458, 33457]))
        assert got == [33460, 33459, 33458, 33457]
        contact = client.contact_get(email="j.mcexample@example.com")
        assert contact.email == "j.mcexample@example.com"  # the value the test sent
    assert replay.problems == [] and replay.unused == []
    assert not list((tmp_path / "config").glob("**/redact.key"))  # replay made no key


def test_with_the_key_a_changed_value_fails_without_it_fakes_match_by_position(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record_in_process(sandbox, tmp_path / "c", lambda c: c.contact_get(
        email="j.mcexample@example.com")).commit()
    for key, problems in ((KEY, 1), (None, 0)):
        if key is None:
            monkeypatch.delenv("ENGAGE_REDACT_KEY")
        with ReplayServer(tmp_path / "c") as replay, EngageClient(
                replay.url, "u", "p", rate_limit=None, retry=RetryPolicy.none()) as client:
            if problems:
                with pytest.raises(EngageError, match="engage_replay: request 1 differs"):
                    client.contact_get(email="other@example.com")
            else:
                assert client.contact_get(email="other@example.com").email == \
                    "other@example.com"
        assert len(replay.problems) == problems


def test_a_failed_re_recording_leaves_the_old_cassette(sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    folder = tmp_path / "cassettes" / "c"
    _record_in_process(sandbox, folder, _lookups).commit()
    (folder / "NOTES.md").write_text("why this cassette exists")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    failing = _record_in_process(sandbox, folder, lambda c: c.contact_get(contact_id=33457))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # untouched so far
    failing.discard()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    again = _record_in_process(sandbox, folder, _lookups)
    again.commit()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # same bytes
    assert [p.name for p in folder.parent.iterdir()] == ["c"]  # nothing left beside it


@pytest.mark.parametrize(("name", "content", "message"), [
    ("001-contactGet.request.xml",
     b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "001-contactGet.request.xml: not a "
                                                  "well-formed request"),
    ("001-contactGet.request.xml", b"<a>&nbsp;</a>", "001-contactGet.request.xml"),
    ("001-contactGet.meta.json", b"{not json", "001-contactGet.meta.json: not a JSON"),
    ("001-contactGet.meta.json", b"[500]", "001-contactGet.meta.json: expected"),
    ("001-contactGet.meta.json", b'{"status": 1000}', "status must be an HTTP status"),
    ("001-contactGet.meta.json", b'{"status": 500, "x": 1}', "meta.json: expected"),
    ("cassette.json", b"{", "cassette.json: not a JSON"),
])
def test_a_hand_edited_cassette_is_a_configuration_error_naming_the_file(
        tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / "001-contactGet.request.xml").write_bytes(b"<a/>")
    (tmp_path / "001-contactGet.response.xml").write_bytes(b"<b/>")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ReplayServer(tmp_path)


USER_VERIFY = '''
def test_verify(engage_replay):
    client = engage_replay("cassettes/v", verify=False, timeout=5)
    assert client.api_version() == "8"
'''


def test_record_mode_gives_http_settings_to_the_real_transport(
        pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_VERIFY)
    monkeypatch.setenv("ENGAGE_ENDPOINT", sandbox.url)
    monkeypatch.setenv("ENGAGE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    result = run(pytester, "--engage-record")
    result.assert_outcomes(passed=1)
    assert "your transport" not in result.stdout.str()


@pytest.mark.parametrize("value", ["false", "no", "off", "False", ""])
def test_engage_record_false_replays(pytester: pytest.Pytester, sandbox: Sandbox,
                                     monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    pytester.makepyfile(test_user=USER_VERIFY)
    monkeypatch.setenv("ENGAGE_ENDPOINT", sandbox.url)
    monkeypatch.setenv("ENGAGE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    monkeypatch.setenv("ENGAGE_RECORD", value)
    result = run(pytester)
    result.assert_outcomes(failed=1)  # it replays: there is no cassette to replay
    result.stdout.fnmatch_lines(["*no cassette folder*"])
    assert sandbox.state.calls == []  # nothing reached the endpoint


def test_engage_record_that_is_no_boolean_is_a_usage_error(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_VERIFY)
    monkeypatch.setenv("ENGAGE_RECORD", "maybe")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ENGAGE_RECORD='maybe' is not a boolean*"])
