"""Transport guards: credentials only where they belong, bounded deadline bookkeeping,
strict timeout values."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from engage_soap import ConfigurationError, EngageClient
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.transport import WATCHDOG, HttpTransport, Watchdog, _Attempt

from .conftest import TOKEN
from .fakeserver import FakeServer, Recorded, Reply, default_responder

# ------------------------------------------------------------------ netrc


def test_netrc_does_not_replace_our_credentials(make_client, server, tmp_path,
                                                monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert requests.utils.get_netrc_auth(server.url) == ("netrc-user", "netrc-secret")
    client = make_client(server.url)
    client.api_version()
    client.message_send_single(1, 2)
    sent = [r.headers.get("Authorization") for r in server.requests]
    assert sent == [f"Basic {TOKEN}"] * 2


# ------------------------------------------------------------------ WSDL imports


def test_wsdl_import_from_another_host_gets_no_credentials(make_client, tmp_path) -> None:
    wsdl, xsd = bundled_wsdl().read_bytes(), bundled_xsd().read_bytes()
    with FakeServer(lambda r: Reply(200, xsd)) as other:
        good = wsdl.replace(b'schemaLocation="ecmapi.xsd"',
                            f'schemaLocation="http://localhost:{other.port}/ecmapi.xsd"'.encode())

        def own(req: Recorded) -> Reply:
            return Reply(200, good) if req.method == "GET" else default_responder(req)
        with FakeServer(own) as srv:
            url = f"http://127.0.0.1:{srv.port}/api/soap/v8/?wsdl&foreign-auth"
            client = make_client(srv.url, wsdl=url, wsdl_cache_dir=tmp_path,
                                 wsdl_allowed_hosts=["localhost"])
            assert client.api_version() == "v8"
            own_auth = [r.headers.get("Authorization") for r in srv.requests]
        assert other.count == 1
        assert "Authorization" not in other.requests[0].headers
        assert TOKEN not in repr(other.requests[0])
    assert own_auth == [f"Basic {TOKEN}"] * 2  # the WSDL's own host: the WSDL and the call


def test_the_transport_adds_no_credentials_of_its_own(server) -> None:
    http = HttpTransport(timeout=5)
    try:
        http.request("GET", server.url + "?a")
        http.request("GET", server.url + "?b", headers={"Authorization": "Basic eDp5"})
    finally:
        http.close()
    assert [r.headers.get("Authorization") for r in server.requests] == [None, "Basic eDp5"]


# ------------------------------------------------------------------ the deadline watchdog


def test_watchdog_entries_stay_bounded() -> None:
    dog = Watchdog()
    a, b = socket.socketpair()
    try:
        far = _Attempt(time.monotonic() + 3600)
        for _ in range(10_000):
            dog.unwatch(dog.watch(far, a))
        assert len(dog) <= 40
        held = [dog.watch(far, a) for _ in range(100)]  # calls in flight are all kept
        assert len(dog) >= 100
        for token in held:
            dog.unwatch(token)
        for _ in range(1000):
            dog.unwatch(dog.watch(far, a))
        assert len(dog) <= 40
    finally:
        a.close()
        b.close()


def test_many_calls_leave_few_deadline_entries(make_client, server) -> None:
    client = make_client(server.url, timeout=60)
    for _ in range(300):
        client.message_send_single(1, 2)
    assert len(WATCHDOG) <= 40  # was one per call until each deadline passed


# ------------------------------------------------------------------ timeouts


@pytest.mark.parametrize("bad", [True, False, 0, -1, float("nan"), float("inf"), "5"])
def test_timeout_must_be_a_positive_number_not_a_bool(bad) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        HttpTransport(timeout=bad)
    with pytest.raises(ConfigurationError, match="timeout"):
        EngageClient("http://127.0.0.1:9/x/", "u", "p", timeout=bad)
