"""Sandbox state (seed, reset, persistence, concurrency) and lifecycle (start, stop, run)."""

from __future__ import annotations

import base64
import json
import selectors
import signal
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from engage_soap.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    DuplicateContactError,
    Sandbox,
    SandboxState,
)


def test_seed():
    state = SandboxState()
    vendor = state.contacts[33457]
    assert vendor.email_address == "j.mcexample@example.com"
    assert vendor.attributes["FIRSTNAME"] == "J."
    assert vendor.attributes["LASTNAME"] == "McExample"
    assert state.find_contact("MOBILE", "+4915112345678").contact_id == 33458
    assert state.find_contact("APP_ALIAS", "app-7f3c9a21").contact_id == 33459
    assert state.find_contact("EXTERNAL", "CRM-000042").contact_id == 33460
    assert set(state.messages) == {23541, 23542, 23543}
    for message in state.messages.values():
        assert state.groups[message.group_id].members == []
    assert state.outbox == []


def test_add_contact_checks_duplicates():
    state = SandboxState()
    with pytest.raises(DuplicateContactError) as caught:
        state.add_contact(email_address="J.McExample@example.com")
    assert caught.value.property_name == "emailAddress"
    with pytest.raises(ValueError):
        state.add_contact(attributes={"A": "b"})


def test_reset_restores_the_seed(soap):
    soap.call(soap.send_single(23541, 33457))
    soap.call("<ecm:contactCreate><contact><emailAddress>n@example.com</emailAddress>"
              "</contact></ecm:contactCreate>")
    state = soap.sandbox.state
    assert state.outbox and 33461 in state.contacts and state.calls
    state.reset()
    assert state.outbox == [] and 33461 not in state.contacts and state.calls == []
    assert state.group_members(23541) == []
    created = soap.call("<ecm:contactCreate><contact><emailAddress>n@example.com</emailAddress>"
                        "</contact></ecm:contactCreate>")
    assert created.payload.find("contact").findtext("contactId") == "33461"


def test_persistence_across_restarts(tmp_path, make_soap):
    path = tmp_path / "state" / "sandbox.json"
    path.parent.mkdir()
    blob = bytes(range(256))
    content = ("<parameters><name>P</name><value>v</value></parameters>"
               "<attachments><name>b.bin</name><contentType>application/octet-stream"
               f"</contentType><content>{base64.b64encode(blob).decode()}</content></attachments>")
    with Sandbox(state_file=path, rate_limit=None) as first:
        soap = make_soap(first)
        soap.call("<ecm:contactCreate><contact><emailAddress>kept@example.com</emailAddress>"
                  "<attributes><name>CITY</name><value>y</value></attributes>"
                  "</contact></ecm:contactCreate>")
        soap.call(soap.send_single(23543, 33461, content))
    journal = [json.loads(line) for line in
               (path.parent / "sandbox.json.outbox").read_text(encoding="utf-8").splitlines()]
    assert journal[0]["attachments"][0]["content"] == base64.b64encode(blob).decode()
    assert sorted(p.name for p in path.parent.iterdir()) == [  # no temp files left
        "sandbox.json", "sandbox.json.outbox"]

    with Sandbox(state_file=path, rate_limit=None) as second:
        state = second.state
        assert state.contacts[33461].email_address == "kept@example.com"
        assert state.contacts[33461].attributes == {"CITY": "y"}
        (entry,) = state.outbox
        assert (entry.message_id, entry.recipient_id) == (23543, 33461)
        assert entry.parameters == [("P", "v")]
        assert entry.attachments[0].content == blob
        assert entry.attachments[0].content_type == "application/octet-stream"
        assert state.group_members(23543) == [33461]
        soap = make_soap(second)
        found = soap.call(soap.contact_get("EMAIL", "kept@example.com"))
        assert found.payload.find("contact").findtext("contactId") == "33461"
        created = soap.call("<ecm:contactCreate><contact><emailAddress>next@example.com"
                            "</emailAddress></contact></ecm:contactCreate>")
        assert created.payload.find("contact").findtext("contactId") == "33462"
        state.reset()
    assert (path.parent / "sandbox.json.outbox").read_bytes() == b""
    assert SandboxState(path).outbox == []


def test_unreadable_state_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        SandboxState(path)


def test_concurrent_creates_get_unique_ids(soap):
    def create(n: int) -> str:
        reply = soap.call(f"<ecm:contactCreate><contact><emailAddress>c{n}@example.com"
                          "</emailAddress></contact></ecm:contactCreate>")
        return reply.payload.find("contact").findtext("contactId")

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(create, range(40)))
    assert len(set(ids)) == 40
    assert len(soap.sandbox.state.contacts) == 44


# -- lifecycle ----------------------------------------------------------------------------

def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_url_and_defaults():
    sandbox = Sandbox()
    with pytest.raises(RuntimeError):
        _ = sandbox.url
    assert sandbox.users == {DEFAULT_USERNAME: DEFAULT_PASSWORD}
    assert (DEFAULT_USERNAME, DEFAULT_PASSWORD) == ("sandbox-api", "sandbox-secret")
    with sandbox:
        assert sandbox.running
        assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/api/soap/v8/"
        assert sandbox.wsdl_url == sandbox.url + "?wsdl"
    assert not sandbox.running
    sandbox.stop()  # idempotent


def test_stop_releases_the_port(soap):
    sandbox = soap.sandbox
    port = sandbox.port
    soap.call("<ecm:systemGetApiVersion/>")  # leaves a kept-alive connection open
    sandbox.stop()
    assert _port_is_free(port)
    restarted = Sandbox(port=port, rate_limit=None).start()
    try:
        assert restarted.port == port
    finally:
        restarted.stop()


def test_stop_with_idle_keep_alive_connections_does_not_hang():
    sandbox = Sandbox(rate_limit=None).start()
    with requests.Session() as http:
        for _ in range(3):
            with http.get(sandbox.wsdl_url, timeout=30) as response:
                assert response.status_code == 200
        stopper = threading.Thread(target=sandbox.stop)
        stopper.start()
        stopper.join(20)
        assert not stopper.is_alive()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_blocks_until_signal_and_stops_cleanly(sig):
    code = ("from engage_soap.sandbox import run\n"
            "run('127.0.0.1', 0, rate_limit=None, ready=lambda s: print(s.url, flush=True))\n"
            "print('stopped', flush=True)\n")
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(proc.stdout, selectors.EVENT_READ)
                assert selector.select(60), "the sandbox did not start"
            url = proc.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:")
            with requests.get(url + "?wsdl", timeout=30) as response:
                assert response.status_code == 200
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped"
    assert "Traceback" not in err
