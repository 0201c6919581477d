"""engage_replay over REST: the same cassettes, redaction and replay as SOAP, with JSON."""

from __future__ import annotations

import json
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
    json_differences,
)
from engage_soap.transport import HttpTransport

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.usefixtures("own_key")

USER_TEST = '''
import os

def test_rest(engage_replay):
    client = engage_replay("cassettes/rest")
    assert "/api/rest/v" in client.endpoint
    value = os.environ.get("VALUE", "Jo")
    contact = client.contact_get(email="j.mcexample@example.com")
    assert contact.email == "j.mcexample@example.com"  # mapped back on replay
    assert "LASTNAME" in contact.attributes  # its value: the real one, or a fake on replay
    client.message_send_single(23541, contact.id, sender_profile="tls-profile-1",
                               parameters={"FIRSTNAME": value, "NOTE": "secret-7"})
    user = client.call("userGetByEmail", email="j.mcexample@example.com")
    assert user["user"]["email"] == "j.mcexample@example.com"
    assert client.contact_get(mobile_number="+4915112345678").id == 33458
'''
REAL = ("j.mcexample@example.com", "+4915112345678", "McExample", DEFAULT_PASSWORD,
        "secret-7", '"Jo"', "tls-profile-1", "mcexample")
def _record(pytester: pytest.Pytester, sandbox: Sandbox,
            monkeypatch: pytest.MonkeyPatch) -> dict[str, bytes]:
    monkeypatch.setenv("ENGAGE_ENDPOINT", sandbox.rest_url)
    monkeypatch.setenv("ENGAGE_USERNAME", DEFAULT_USERNAME)
    monkeypatch.setenv("ENGAGE_PASSWORD", DEFAULT_PASSWORD)
    run(pytester, "--engage-record").assert_outcomes(passed=1)
    for name in ("ENGAGE_ENDPOINT", "ENGAGE_USERNAME", "ENGAGE_PASSWORD"):
        monkeypatch.delenv(name)
    folder = pytester.path / "cassettes" / "rest"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_rest_record_then_replay_round_trips(pytester: pytest.Pytester, sandbox: Sandbox,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    first = _record(pytester, sandbox, monkeypatch)
    assert list(first) == [
        "001-contactGet.meta.json", "001-contactGet.request.json",
        "001-contactGet.response.json",
        "002-messageSendSingle.meta.json", "002-messageSendSingle.request.json",
        "002-messageSendSingle.response.txt",
        "003-userGetByEmail.meta.json", "003-userGetByEmail.request.json",
        "003-userGetByEmail.response.json",
        "004-contactGet.meta.json", "004-contactGet.request.json",
        "004-contactGet.response.json", "cassette.json"]
    blob = b"".join(first.values())
    for real in REAL:  # complete: no address, number, name, value, profile or password
        assert real.encode() not in blob, real
    r = Redactor(key=KEY)
    email, mobile = r.email("j.mcexample@example.com"), r.mobile("+4915112345678")
    assert json.loads(first["003-userGetByEmail.meta.json"]) == {  # ?email= redacted too
        "method": "GET", "path": "user/getByEmail", "query": {"email": email}}
    assert json.loads(first["001-contactGet.request.json"]) == {"type": "EMAIL",
                                                                "value": email}
    assert json.loads(first["004-contactGet.request.json"]) == {"type": "MOBILE",
                                                                "value": mobile}
    send = json.loads(first["002-messageSendSingle.meta.json"])
    assert send["query"]["messageId"] == "23541" and send["query"]["recipientId"] == "33457"
    assert send["status"] == 204 and send["content_type"] is None
    assert first["002-messageSendSingle.response.txt"] == b""
    params = json.loads(first["002-messageSendSingle.request.json"])["parameters"]
    assert params == [{"name": "FIRSTNAME", "value": r.text("Jo")},  # names kept
                      {"name": "NOTE", "value": r.text("secret-7")}]
    contact = json.loads(first["001-contactGet.response.json"])
    assert contact["contactId"] == 33457 and contact["emailAddress"] == email  # ids kept
    assert {a["name"] for a in contact["attributes"]} >= {"FIRSTNAME", "LASTNAME", "CITY"}

    second = _record(pytester, sandbox, monkeypatch)
    assert second == first  # stable: the same exchanges give the same bytes

    calls = len(sandbox.state.calls)
    run(pytester).assert_outcomes(passed=1)  # replay, with no sandbox involved
    assert len(sandbox.state.calls) == calls


def test_rest_replay_fails_with_a_readable_diff_and_honours_any_in_json(
        pytester: pytest.Pytester, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    _record(pytester, sandbox, monkeypatch)
    monkeypatch.setenv("VALUE", "Joanna")
    result = run(pytester)
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "request 2 differs from the recording 002-messageSendSingle" in text
    jo = Redactor(key=KEY).text("Jo")  # with the recording's key a changed value shows
    assert re.search(rf'^-\s+"value": "{jo}"\s*$', text, re.M), text
    assert re.search(r'^\+\s+"value": "Joanna"\s*$', text, re.M), text
    assert not re.search(r'^[-+]\s+"(method|path|messageId)"', text, re.M)  # only that

    recorded = pytester.path / "cassettes" / "rest" / "002-messageSendSingle.request.json"
    body = json.loads(recorded.read_bytes())
    body["parameters"][0]["value"] = "{{any}}"
    recorded.write_text(json.dumps(body))
    run(pytester).assert_outcomes(passed=1)


# ------------------------------------------------------------------ in-process


def _record_in_process(sandbox: Sandbox, folder: Path,
                       calls: Callable[[EngageClient], None]) -> None:
    transport = RecordingTransport(HttpTransport(timeout=10), Cassette(folder),
                                   Redactor(key=KEY, password=DEFAULT_PASSWORD))
    with EngageClient(sandbox.rest_url, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                      transport=transport, rate_limit=None) as client:
        calls(client)
    transport.commit()


def _lookups(client: EngageClient) -> None:
    for contact_id in (33457, 33458, 33459, 33460):
        client.call("userGet", userId=contact_id)
    client.call("userGetByEmail", email="j.mcexample@example.com")


def test_rest_replay_serves_concurrent_calls_and_maps_fakes_back_without_the_key(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _record_in_process(sandbox, tmp_path / "c", _lookups)
    monkeypatch.delenv("ENGAGE_REDACT_KEY")  # a CI machine: no key at all
    with ReplayServer(tmp_path / "c") as replay, EngageClient(
            replay.url, "u", "p", rate_limit=None) as client:
        assert replay.url.endswith("/api/rest/v8/")
        with ThreadPoolExecutor(6) as pool:  # in any order, at once
            got = list(pool.map(lambda i: client.call("userGet", userId=i)["user"]["id"],
                                [33460, 33459, 33458, 33457]))
        assert got == [33460, 33459, 33458, 33457]
        user = client.call("userGetByEmail", email="other@example.com")
        assert user["user"]["email"] == "other@example.com"  # the value the test sent
    assert replay.problems == [] and replay.unused == []


def test_rest_with_the_key_a_changed_query_value_fails(sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    _record_in_process(sandbox, tmp_path / "c",
                       lambda c: c.call("userGetByEmail", email="j.mcexample@example.com"))
    with ReplayServer(tmp_path / "c") as replay, EngageClient(
            replay.url, "u", "p", rate_limit=None, retry=RetryPolicy.none()) as client:
        with pytest.raises(EngageError, match="engage_replay: request 1 differs"):
            client.call("userGetByEmail", email="other@example.com")
    fake = Redactor(key=KEY).email("j.mcexample@example.com")
    [problem] = replay.problems
    assert re.search(rf'^-\s+"email": "{fake}"$', problem, re.M), problem
    assert re.search(r'^\+\s+"email": "other@example.com"$', problem, re.M), problem


def test_json_differences_compare_structurally_with_any() -> None:
    a = b'{"b": [1, {"x": "y"}], "a": true}'
    assert json_differences(a, b'{\n "a": true, "b": [1, {"x": "y"}]}') is None
    assert json_differences(a, b'{"a": true, "b": [1, "{{any}}"]}') is None
    assert json_differences(a, b'{"a": "{{any}}", "b": "{{any}}"}') is None
    assert json_differences(a, b'{"a": 1, "b": [1, {"x": "y"}]}') is not None  # types
    assert json_differences(a, b'{"a": true, "b": [{"x": "y"}, 1]}') is not None  # order
    assert json_differences(a, b'{"a": true}') is not None  # members
    diff = json_differences(b'{"k": "2"}', b'{"k": "1"}') or ""
    assert '-  "k": "1"' in diff and '+  "k": "2"' in diff


def test_rest_redaction_walks_json_with_the_schema_plans_and_the_names() -> None:
    r = Redactor(key=KEY)
    values = {"email": "a.b@example.com", "mobileNumber": "+4915112345678",
              "attributes": [{"name": "CITY", "value": "Bonn"},
                             {"name": "ORDER_ID", "value": "A-17"}]}
    out = r.redact_json("userCreate", values, reply=False)
    assert out == {"email": r.email("a.b@example.com"),
                   "mobileNumber": r.mobile("+4915112345678"),
                   "attributes": [{"name": "CITY", "value": r.text("Bonn")},
                                  {"name": "ORDER_ID", "value": r.text("A-17")}]}
    narrowed = Redactor(key=KEY, keep=["CITY"], elements=["name"])
    out = narrowed.redact_json("userCreate", values, reply=False)
    assert out["attributes"][0] == {"name": narrowed.text("CITY"), "value": "Bonn"}
    bean = {"errorActor": "CLIENT", "errorCode": "NO_SUCH_OBJECT", "objectType": "USER",
            "propertyValue": "a.b@example.com", "message": "User a.b@example.com missing"}
    out = r.redact_json(None, bean, reply=True)
    assert {k: out[k] for k in ("errorActor", "errorCode", "objectType")} == {
        "errorActor": "CLIENT", "errorCode": "NO_SUCH_OBJECT", "objectType": "USER"}
    assert "a.b@example.com" not in json.dumps(out)


def test_a_rest_recording_that_would_hold_the_password_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "cassette"
    reply = HttpReply(200, {"Content-Type": "application/json"}, b'{"pw-Secret-1": 1}')
    transport = RecordingTransport(MockTransport(lambda r: reply), Cassette(folder),
                                   Redactor(key=KEY, password="pw-Secret-1"))
    with pytest.raises(ConfigurationError, match=r"response\.json: it would still contain"):
        transport.request("GET", "http://h/api/rest/v8/system/getApiVersion", None, {})
    transport.discard()
    assert not folder.exists()


def _rest_cassette(folder: Path) -> None:
    folder.mkdir()
    (folder / "001-userGet.meta.json").write_text(
        '{"method": "GET", "path": "user/get", "query": {"userId": "1"}}')
    (folder / "001-userGet.request.json").write_text("null\n")
    (folder / "001-userGet.response.json").write_text('{"id": 1}')


@pytest.mark.parametrize(("name", "content", "message"), [
    ("001-userGet.request.json", "{not json", "001-userGet.request.json: not a JSON"),
    ("001-userGet.response.json", '{"id": ', "001-userGet.response.json: not a JSON"),
    ("001-userGet.meta.json", "{", "001-userGet.meta.json: not a JSON"),
    ("001-userGet.meta.json", '{"path": "user/get"}', "001-userGet.meta.json: method must"),
    ("001-userGet.meta.json", '{"method": "GET", "path": "user/get", "query": {"a": 1}}',
     "001-userGet.meta.json: query must"),
    ("001-userGet.meta.json", '{"method": "GET", "path": "x", "body": 1}',
     "001-userGet.meta.json: expected"),
])
def test_a_hand_edited_rest_cassette_is_a_configuration_error_naming_the_file(
        tmp_path: Path, name: str, content: str, message: str) -> None:
    _rest_cassette(tmp_path / "c")
    (tmp_path / "c" / name).write_text(content)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ReplayServer(tmp_path / "c")


def test_a_rest_exchange_needs_its_meta_and_a_cassette_is_one_protocol(
        tmp_path: Path) -> None:
    _rest_cassette(tmp_path / "c")
    (tmp_path / "c" / "001-userGet.meta.json").unlink()
    with pytest.raises(ConfigurationError, match=r"001-userGet\.meta\.json: a REST exchange"):
        ReplayServer(tmp_path / "c")
    _rest_cassette(tmp_path / "d")
    (tmp_path / "d" / "002-contactGet.request.xml").write_bytes(b"<a/>")
    (tmp_path / "d" / "002-contactGet.response.xml").write_bytes(b"<b/>")
    with pytest.raises(ConfigurationError, match="SOAP or REST, not both"):
        ReplayServer(tmp_path / "d")
