"""The one HTTP stack (urllib3 under engage_soap.transport): every kind of reply, keep-alive,
headers, TLS settings and memory. Nothing here is timed; the numbers live in benchmarks/.
"""

from __future__ import annotations

import gc
import gzip
import http.client
import socket
import ssl
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability.fakeserver import (
    ECM,
    SEND_OK,
    FakeServer,
    Handler,
    Recorded,
    Reply,
    client_factory,
    contact_reply,
    envelope,
)

from engage_soap import (
    ContactNotFoundError,
    EngageClient,
    EngageError,
    HTTPStatusError,
    ProtocolError,
    RetryPolicy,
    TransportError,
    transport,
    zeep_binding,
)

pytestmark = pytest.mark.long(7)

USER, PASSWORD = "perf-user", "perf-secret"
NONE = RetryPolicy.none()


@pytest.fixture
def make() -> Iterator[Callable[..., EngageClient]]:
    with client_factory(USER, PASSWORD, rate_limit=None, retry=NONE, timeout=5.0) as build:
        yield build


def _connections(client: EngageClient) -> int:
    """How many connections the client's transport has opened so far (and still holds)."""
    return len(client._http._connections)  # type: ignore[attr-defined]


def _contact(extra: str = "", contact_id: str = "4711") -> bytes:
    return envelope(f'<ns2:contactGetResponse xmlns:ns2="{ECM}"><contact><contactId>'
                    f"{contact_id}</contactId><emailAddress>a@example.com</emailAddress>"
                    f"{extra}<attributes><name>n</name><value>v</value></attributes>"
                    "</contact></ns2:contactGetResponse>")


def _chunked(handler: Handler) -> None:
    body = contact_reply()
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: "
                        b"chunked\r\n\r\n" + b"".join(
                            b"%x\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7])
                            for i in range(0, len(body), 7)) + b"0\r\n\r\n")


def _raw(data: bytes) -> Callable[[Handler], None]:
    def act(handler: Handler) -> None:
        handler.wfile.write(data)
        handler.close_connection = True
    return act


def _raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush()


REPLIES: dict[str, Callable[[Recorded], Any]] = {
    "undeclared-field-ignored": lambda r: Reply(body=_contact(
        "<unifiedIdentifiers><name>x</name></unifiedIdentifiers><brandNew>1</brandNew>")),
    "wrong-type": lambda r: Reply(body=_contact(contact_id="not-a-number")),
    "missing-contact": lambda r: Reply(body=envelope(
        f'<ns2:contactGetResponse xmlns:ns2="{ECM}"/>')),
    "gzip": lambda r: Reply(body=gzip.compress(_contact()),
                            headers={"Content-Encoding": "gzip"}),
    "chunked": lambda r: _chunked,
    "deflate": lambda r: Reply(body=zlib.compress(_contact()),
                               headers={"Content-Encoding": "deflate"}),
    "raw-deflate": lambda r: Reply(body=_raw_deflate(_contact()),
                                   headers={"Content-Encoding": "deflate"}),
    "gzip-two-members": lambda r: Reply(body=gzip.compress(_contact()[:50])
                                        + gzip.compress(_contact()[50:]),
                                        headers={"Content-Encoding": "gzip"}),
    "corrupt-gzip": lambda r: Reply(body=b"\x1f\x8b\x08\x00junkjunkjunk",
                                    headers={"Content-Encoding": "gzip"}),
    "http10-until-close": lambda r: _raw(b"HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n"
                                         + contact_reply()),
    "garbage-status-line": lambda r: _raw(b"HELLO THERE\r\n\r\n"),
    "closed-before-reply": lambda r: _raw(b""),
    "fault": lambda r: Reply(500, envelope(
        "<S:Fault><faultcode>S:Server</faultcode><faultstring>no</faultstring><detail>"
        f'<ns2:NoSuchObjectException xmlns:ns2="{ECM}"><errorActor>CLIENT</errorActor>'
        "<errorCode>NO_SUCH_OBJECT</errorCode><objectType>Contact</objectType>"
        "</ns2:NoSuchObjectException></detail></S:Fault>")),
    "html-502": lambda r: Reply(502, b"<html>bad gateway</html>", content_type="text/html"),
    "not-xml": lambda r: Reply(200, b"<S:Envelope"),
    "truncated": lambda r: Reply(200, contact_reply(), headers={"Content-Length": "9999"},
                                 close=True),
    "over-cap": lambda r: Reply(body=gzip.compress(b" " * 200_000 + _contact()),
                                headers={"Content-Encoding": "gzip"}),
}


def _outcome(client: EngageClient) -> Any:
    try:
        return client.contact_get(email="a@example.com").id
    except EngageError as exc:
        return (type(exc), exc.retryable, exc.request_sent)


OK = 33457
SENT_BROKEN = (TransportError, True, True)
EXPECTED: dict[str, Any] = {
    "undeclared-field-ignored": 4711,
    "wrong-type": (ProtocolError, False, True),
    "missing-contact": (ProtocolError, False, True),
    "gzip": 4711, "chunked": OK, "deflate": 4711, "raw-deflate": 4711,
    "gzip-two-members": 4711, "http10-until-close": OK,
    "corrupt-gzip": (TransportError, False, True),
    "garbage-status-line": SENT_BROKEN,
    "closed-before-reply": SENT_BROKEN,
    "fault": (ContactNotFoundError, False, True),
    "html-502": (HTTPStatusError, True, True),
    "not-xml": (ProtocolError, False, True),
    "truncated": (ProtocolError, True, True),
    "over-cap": (TransportError, False, True),
}


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_every_kind_of_reply_has_its_outcome(make: Callable[..., EngageClient],
                                             name: str) -> None:
    with FakeServer(REPLIES[name]) as srv:
        got = _outcome(make(srv.url, max_reply_bytes=100_000))
        assert got == EXPECTED[name]
        assert srv.count == 1


def test_schema_rules_hold(make: Callable[..., EngageClient]) -> None:
    with FakeServer(REPLIES["undeclared-field-ignored"]) as srv:
        contact = make(srv.url).contact_get(email="a@example.com")
    assert contact.id == 4711 and dict(contact.attributes) == {"n": "v"}


@pytest.mark.filterwarnings("ignore:the endpoint http:UserWarning")  # on purpose
def test_env_proxy_is_honoured_and_no_proxy_goes_direct(
        make: Callable[..., EngageClient], monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer() as proxy:
        for var in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.url.rsplit("/api", 1)[0])
        monkeypatch.setenv("http_proxy", proxy.url.rsplit("/api", 1)[0])
        client = make("http://engage.invalid/api/soap/v8/")
        assert client.contact_get(email="a@example.com").id == 33457
        assert proxy.posts()[0].path == "http://engage.invalid/api/soap/v8/"
        conn = next(iter(client._http._connections))  # type: ignore[attr-defined]
        assert conn.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)  # no Nagle stall
        with FakeServer() as direct:  # NO_PROXY for the endpoint: straight there
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            monkeypatch.setenv("no_proxy", "127.0.0.1")
            client = make(direct.url)
            client.message_send_single(1, 2)
            assert direct.count == 1 and proxy.count == 1


def test_proxy_is_chosen_once_per_origin(make: Callable[..., EngageClient],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = transport.urllib.request.proxy_bypass_environment

    def counting(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args)

    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setattr(transport.urllib.request, "proxy_bypass_environment", counting)
    with FakeServer() as srv:
        client = make(srv.url)
        for _ in range(20):
            client.contact_get(email="a@example.com")
    assert calls == 1


def test_second_client_shares_the_parsed_wsdl(make: Callable[..., EngageClient],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = make("https://engage.example.invalid/api/soap/v8/")

    def no_reparse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the WSDL was parsed again")

    monkeypatch.setattr(zeep_binding, "Document", no_reparse)
    second = make("https://other.example.invalid/api/soap/v8/")
    assert second._loaded is first._loaded
    assert second._loaded.operations is first._loaded.operations


def test_a_dead_pooled_connection_is_not_used_and_nothing_is_sent_twice(
        make: Callable[..., EngageClient]) -> None:
    def reply_then_close_silently(req: Recorded) -> Any:
        def act(handler: Handler) -> None:
            handler.wfile.write(handler.reply_bytes(Reply(body=SEND_OK)))
            handler.close_connection = True  # no "Connection: close" header: a stale socket
        return act

    with FakeServer(reply_then_close_silently) as srv:
        client = make(srv.url)
        for _ in range(5):
            client.message_send_single(1, 2)
            time.sleep(0.05)  # let the FIN arrive (not a timing assertion)
        assert len(srv.posts("messageSendSingle")) == 5


def test_each_header_is_sent_once_with_nodelay(make: Callable[..., EngageClient],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sends: list[bytes] = []
    socks: list[socket.socket] = []
    real = http.client.HTTPConnection.send

    def recording(self: Any, data: Any) -> None:
        sends.append(bytes(data))
        socks.append(self.sock)
        real(self, data)

    monkeypatch.setattr(http.client.HTTPConnection, "send", recording)
    with FakeServer() as srv:
        client = make(srv.url)
        client.message_send_single(1, 2)
        assert socks[0].getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    wire = b"".join(sends)
    assert wire.startswith(b"POST ") and wire.endswith(b"</soapenv:Envelope>")
    head = wire.split(b"\r\n\r\n", 1)[0].lower()
    for name in (b"host", b"accept-encoding", b"authorization", b"content-length",
                 b"user-agent", b"soapaction", b"content-type"):
        assert head.count(b"\r\n" + name + b":") == 1, name
    assert b"\r\nuser-agent: engage-soap/" in head


def test_keep_alive_reuses_one_connection(make: Callable[..., EngageClient]) -> None:
    with FakeServer() as srv:
        client = make(srv.url)
        for _ in range(10):
            client.contact_get(email="a@example.com")
        assert _connections(client) == 1
        conn = next(iter(client._http._connections))  # type: ignore[attr-defined]
        client.close()
        assert conn.sock is None  # closed with the client
        with pytest.raises(TransportError, match="closed") as closed:
            client.contact_get(email="a@example.com")
        assert closed.value.request_sent is False
        assert srv.count == 10


def test_connect_failure_is_not_sent(make: Callable[..., EngageClient]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    outcome = _outcome(make(f"http://127.0.0.1:{port}/api/soap/v8/"))
    assert outcome == (TransportError, True, False)


def test_tls_is_verified_with_certifi_by_default(make: Callable[..., EngageClient],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    ctx = transport.ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 50  # certifi's bundle, not an empty store
    with FakeServer() as srv:  # plain HTTP behind an https URL: a TLS failure, not sent
        err = _outcome(make(srv.url.replace("http://", "https://")))
        assert err == (TransportError, False, False)


def test_verify_false_turns_verification_off() -> None:
    ctx = transport.ssl_context(False)
    assert ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_memory_does_not_grow_over_many_calls(make: Callable[..., EngageClient]) -> None:
    with FakeServer() as srv:
        client = make(srv.url)
        for _ in range(200):  # warm up caches, pools and the server's threads
            client.contact_get(email="a@example.com")
            client.message_send_single(1, 2, parameters={"a": "b"})
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.take_snapshot()
            for _ in range(500):
                client.contact_get(email="a@example.com")
                client.message_send_single(1, 2, parameters={"a": "b"})
            gc.collect()
            after = tracemalloc.take_snapshot()
        finally:
            tracemalloc.stop()
    grown = [s for s in after.compare_to(before, "lineno")
             if "engage_soap" in (s.traceback[0].filename if s.traceback else "")]
    growth = sum(s.size_diff for s in grown)
    # 32 KiB over 1,000 calls: 32 bytes per call
    assert growth < 32 * 1024, [str(s) for s in grown if s.size_diff > 4096]
