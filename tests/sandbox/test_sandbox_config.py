"""Constructor checks (api_version, latency, state file), run-time errors, -v logging and the
persistence of memberships, attribute definitions and transactional sends."""

from __future__ import annotations

import base64
import errno
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time

import pytest
import requests

from engage_soap.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    Sandbox,
    SandboxState,
    SandboxStateError,
)
from engage_soap.sandbox.wire import shorten_for_log

VERSION = "<ecm:systemGetApiVersion/>"


# -- api_version --------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v8", "8.", ".8", "8a", "", " 8", "8 ", "8..1", "٨", "8-1",
                                     "latest", 8, None])
def test_api_version_must_be_dotted_digits(version):
    with pytest.raises(ValueError, match="api_version"):
        Sandbox(api_version=version)


@pytest.mark.parametrize(("version", "path"), [("8", "/api/soap/v8/"),
                                               ("8.1", "/api/soap/v8/"),
                                               ("19.0.2", "/api/soap/v19/")])
def test_dotted_api_version(make_soap, version, path):
    with Sandbox(api_version=version, rate_limit=None) as sandbox:
        assert sandbox.path == path
        reply = make_soap(sandbox).call(VERSION)
        assert reply.payload.findtext("version") == version


# -- latency ------------------------------------------------------------------------------

def test_latency_delays_every_reply(make_soap):
    with Sandbox(rate_limit=None, latency=0.3) as slow:
        assert slow.latency == 0.3
        soap = make_soap(slow)
        for body in (VERSION, soap.contact_get("EMAIL", "nobody@example.com")):
            started = time.monotonic()
            soap.call(body)
            assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        with requests.get(slow.wsdl_url, timeout=30) as response:
            assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
        slow.latency = 0
        started = time.monotonic()
        soap.call(VERSION)
        assert time.monotonic() - started < 0.3


def test_latency_adds_to_an_injected_latency(soap):
    soap.sandbox.latency = 0.2
    soap.sandbox.faults.inject("systemGetApiVersion", latency=0.2, times=1)
    started = time.monotonic()
    assert soap.call(VERSION).payload is not None
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "1", True, None])
def test_latency_must_be_a_non_negative_number(sandbox, bad):
    with pytest.raises(ValueError, match="latency"):
        Sandbox(latency=bad)
    with pytest.raises(ValueError, match="latency"):
        sandbox.latency = bad
    assert sandbox.latency == 0


def test_stop_does_not_wait_for_the_latency():
    sandbox = Sandbox(rate_limit=None, latency=60).start()
    calls: list[BaseException | int] = []

    def call() -> None:
        try:
            with requests.post(sandbox.url, auth=(DEFAULT_USERNAME, DEFAULT_PASSWORD),
                               data=b"<x/>", timeout=30) as response:
                calls.append(response.status_code)
        except requests.RequestException as exc:
            calls.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.3)
    started = time.monotonic()
    sandbox.stop()
    caller.join(30)
    assert not caller.is_alive() and calls
    assert time.monotonic() - started < 20


# -- the state file -----------------------------------------------------------------------

def test_state_file_in_a_missing_directory(tmp_path):
    path = tmp_path / "no" / "such" / "state.json"
    with pytest.raises(SandboxStateError) as caught:
        Sandbox(state_file=path)
    error = caught.value
    assert isinstance(error, OSError)
    assert error.errno == errno.ENOENT
    assert error.filename == str(path)
    assert str(error) == (f"cannot write the sandbox state file {path}: its directory "
                          f"{path.parent} does not exist")
    assert not path.parent.exists()  # not created behind the user's back


def test_state_file_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    path = tmp_path / "plain" / "state.json"
    with pytest.raises(SandboxStateError, match="is not a directory") as caught:
        Sandbox(state_file=path)
    assert str(path) in str(caught.value)


def test_state_file_is_a_directory(tmp_path):
    # It exists, so it is read first: that fails.
    with pytest.raises(SandboxStateError) as caught:
        Sandbox(state_file=tmp_path)
    assert caught.value.errno == errno.EISDIR
    assert str(caught.value) == (f"cannot read the sandbox state file {tmp_path}: "
                                 "Is a directory")
    state = SandboxState()
    state.state_file = tmp_path
    with pytest.raises(SandboxStateError, match="it is a directory"):
        state.check_writable()


def test_state_file_not_writable(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    SandboxState(path).save()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: (
        False if str(p) == str(path) and mode == os.W_OK else real_access(p, mode, **kw)))
    with pytest.raises(SandboxStateError, match="not writable") as caught:
        Sandbox(state_file=path)
    assert caught.value.errno == errno.EACCES
    assert str(path) in str(caught.value)


def test_state_directory_not_writable(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(SandboxStateError) as caught:
        Sandbox(state_file=tmp_path / "state.json")
    assert str(caught.value) == (f"cannot write the sandbox state file {tmp_path}/state.json: "
                                 f"Permission denied ({tmp_path})")


def test_start_checks_the_state_file_again(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    sandbox = Sandbox(state_file=folder / "s.json")
    folder.rmdir()
    with pytest.raises(SandboxStateError, match="does not exist"):
        sandbox.start()
    assert not sandbox.running


def test_state_file_unreadable_is_reported(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    SandboxState(path).save()

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(type(path), "read_text", refuse)
    with pytest.raises(SandboxStateError, match="cannot read the sandbox state file"):
        SandboxState(path)


def test_a_run_time_failure_is_logged_with_its_operation_and_cause(tmp_path, make_soap, caplog):
    folder = tmp_path / "state"
    folder.mkdir()
    with Sandbox(state_file=folder / "s.json", rate_limit=None) as sandbox:
        soap = make_soap(sandbox)
        shutil.rmtree(folder)
        caplog.set_level(logging.ERROR, logger="engage_soap.sandbox")
        reply = soap.call("<ecm:contactCreate><contact><emailAddress>n@example.com"
                          "</emailAddress></contact></ecm:contactCreate>")
    assert reply.detail_name == "UnexpectedErrorException"
    assert reply.fields["errorActor"] == "SERVER"
    assert reply.fields["errorCode"] == "UNEXPECTED_ERROR"
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "sandbox: contactCreate failed unexpectedly"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], SandboxStateError)
    assert f"cannot write the sandbox state file {folder / 's.json'}" in caplog.text
    assert "None" not in record.getMessage()


def test_an_unexpected_error_outside_the_operation_is_logged_with_its_name(soap, caplog,
                                                                             monkeypatch):
    def broken(user: str) -> bool:
        raise RuntimeError("limiter exploded")

    monkeypatch.setattr(soap.sandbox.limiter, "allow", broken)
    caplog.set_level(logging.ERROR, logger="engage_soap.sandbox")
    reply = soap.call(soap.contact_get("ID", "33457"))
    assert reply.detail_name == "UnexpectedErrorException"
    assert "unexpected error while answering contactGet" in caplog.text
    assert "limiter exploded" in caplog.text
    # systemGetApiVersion declares no fault: the same failure, without detail
    assert soap.call(VERSION).detail_name is None


# -- logging of envelopes -----------------------------------------------------------------

def test_request_and_reply_envelopes_are_logged_at_debug(soap, caplog):
    caplog.set_level(logging.DEBUG, logger="engage_soap.sandbox")
    soap.call(VERSION)
    soap.call(soap.contact_get("EMAIL", "nobody@example.com"))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("sandbox: request systemGetApiVersion:\n<soapenv:Envelope")
               for m in messages)
    assert any(m.startswith("sandbox: reply to systemGetApiVersion: HTTP 200\n<?xml")
               and "<version>8</version>" in m for m in messages)
    assert any(m.startswith("sandbox: request contactGet:") and "nobody@example.com" in m
               for m in messages)
    assert any(m.startswith("sandbox: reply to contactGet: HTTP 500\n")
               and "NoSuchObjectException" in m for m in messages)
    token = base64.b64encode(f"{DEFAULT_USERNAME}:{DEFAULT_PASSWORD}".encode()).decode()
    for secret in ("Authorization", DEFAULT_PASSWORD, token):
        assert secret not in caplog.text


def test_injected_replies_are_logged(http_soap, caplog):
    soap = http_soap
    caplog.set_level(logging.DEBUG, logger="engage_soap.sandbox")
    soap.sandbox.faults.inject("systemGetApiVersion", "http_502", times=1)
    soap.post(soap.envelope(VERSION))
    assert "sandbox: reply to systemGetApiVersion: HTTP 502" in caplog.text
    soap.sandbox.faults.inject("systemGetApiVersion", "reset", times=1)
    with pytest.raises(requests.ConnectionError):
        soap.post(soap.envelope(VERSION))
    assert "sandbox: reply to systemGetApiVersion: connection reset (no reply)" in caplog.text


def test_big_attachments_are_shortened_in_the_log(soap, caplog):
    caplog.set_level(logging.DEBUG, logger="engage_soap.sandbox")
    blob = os.urandom(3 * 1024 * 1024)
    encoded = base64.b64encode(blob).decode()
    content = ("<attachments><name>big.bin</name><contentType>application/octet-stream"
               f"</contentType><content>{encoded}</content></attachments>")
    assert soap.call(soap.send_single(23541, 33457, content)).payload is not None
    assert soap.sandbox.state.outbox[0].attachments[0].content == blob
    assert f"<content>{encoded[:32]}...[{len(encoded)} chars]</content>" in caplog.text
    assert encoded[:1000] not in caplog.text
    assert len(caplog.text) < 20_000


def test_nothing_is_formatted_when_debug_is_off(soap, caplog, monkeypatch):
    calls: list[object] = []
    monkeypatch.setattr("engage_soap.sandbox.app.shorten_for_log",
                        lambda body: calls.append(body) or "")
    caplog.set_level(logging.INFO, logger="engage_soap.sandbox")
    soap.call(VERSION)
    assert calls == []


def test_shorten_for_log():
    pdf = "JVBERi0x" + "A" * 27962008
    text = shorten_for_log(f"<a><content>{pdf}</content><contentType>x</contentType></a>")
    assert text == (f"<a><content>{pdf[:32]}...[27962016 chars]</content>"
                    "<contentType>x</contentType></a>")
    short = "<content>aGVsbG8=</content>"  # 32 characters or fewer: kept as they are
    assert shorten_for_log(short.encode()) == short
    assert shorten_for_log(f"<x:content>{'B' * 40}</x:content>") == (
        f"<x:content>{'B' * 32}...[40 chars]</x:content>")
    huge = shorten_for_log("<p>" + "z" * 300_000 + "</p>")
    assert len(huge) < 100_100 and huge.endswith("more chars]")


# -- persistence of the new data ----------------------------------------------------------

def test_memberships_definitions_and_formulas_persist(tmp_path, make_soap):
    path = tmp_path / "s.json"
    with Sandbox(state_file=path, rate_limit=None, attributes=["SHOE_SIZE"]) as first:
        soap = make_soap(first)
        soap.op("membershipSubscribe", ("userId", 33457), ("groupId", 4713),
                ("subscriptionMode", "DOUBLE_OPT_IN"))
        soap.op("membershipUpdateAttributes", ("userId", 33457), ("groupId", 4713),
                soap.attributes({"source": "web"}))
        soap.op("userUpdateProfile", ("userId", 33458), soap.attributes({"SHOE_SIZE": "44"}))
        first.state.define_attributes("LATER")
        first.state.add_group(5000, "VIP", "desc", "vip@example.com")
        soap.call("<ecm:messageSendTransactional><messageId>23541</messageId>"
                  "<externalTransactionFormula>F-1</externalTransactionFormula>"
                  "<recipientId>33459</recipientId><additionalContent/>"
                  "</ecm:messageSendTransactional>")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == 3
    assert {"SHOE_SIZE", "LATER", "FIRSTNAME"} <= set(data["attribute_definitions"])
    with Sandbox(state_file=path, rate_limit=None) as second:
        state = second.state
        membership = state.groups[4713].memberships[33457]
        assert membership.subscription_mode == "DOUBLE_OPT_IN"
        assert membership.attributes == {"source": "web"}
        assert state.groups[4711].memberships[33459].subscription_mode is None
        assert (state.groups[5000].description, state.groups[5000].email) == (
            "desc", "vip@example.com")
        assert state.outbox[0].external_transaction_formula == "F-1"
        assert {"SHOE_SIZE", "LATER"} <= state.attribute_definitions
        soap = make_soap(second)
        found = soap.op("membershipFindAll", ("userId", 33457))
        assert [m.findtext("groupId") for m in found.payload.iterfind("memberships")] == ["4713"]
        assert soap.op("userGetProfile", ("userId", 33458)).payload is not None


def test_a_format_1_state_file_is_read(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({
        "format": 1, "next_contact_id": 12,
        "contacts": [{"contact_id": 11, "email_address": "old@example.com",
                      "mobile_number": None, "application_alias": None, "identifier": None,
                      "attributes": {"LEGACY": "1"}}],
        "messages": [{"message_id": 7, "name": "M", "group_id": 70}],
        "groups": [{"group_id": 70, "name": "G", "members": [11]}],
        "outbox": [{"message_id": 7, "recipient_id": 11, "email_address": "old@example.com",
                    "group_id": 70, "parameters": [["P", "v"]], "attachments": [],
                    "timestamp": 1.0}],
    }), encoding="utf-8")
    state = SandboxState(path)
    assert state.groups[70].members == [11]
    assert state.groups[70].memberships[11].subscription_mode is None
    assert state.group_members(7) == [11]
    assert "LEGACY" in state.attribute_definitions  # names in use stay usable
    assert state.outbox[0].external_transaction_formula is None
    state.save()
    assert json.loads(path.read_text(encoding="utf-8"))["format"] == 3  # migrated
    assert [e.recipient_id for e in SandboxState(path).outbox] == [11]  # now in the journal
