"""Hostile and broken replies: each is a typed EngageError, quickly, in bounded memory."""

from __future__ import annotations

import functools
import gzip
import struct
import time
import tracemalloc
import zlib

import pytest

from engage_soap import (
    ConfigurationError,
    EngageError,
    EngageFault,
    HTTPStatusError,
    ProtocolError,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
)

from .fakeserver import ECM, SOAP_ENV, FakeServer, Handler, Reply, contact_reply, envelope

pytestmark = pytest.mark.long(6)

NONE = RetryPolicy.none()


def call(make_client, url, **kw):
    return make_client(url, retry=NONE, **kw).contact_get(email="a@example.com")


def test_xxe_is_never_resolved(make_client) -> None:
    with FakeServer() as spy:  # a local "attacker" server the entity names
        for system in ("file:///etc/passwd", f"http://127.0.0.1:{spy.port}/x"):
            body = (f'<?xml version="1.0"?><!DOCTYPE S:Envelope [<!ENTITY xxe SYSTEM "{system}">]>'
                    ).encode() + contact_reply().split(b"?>", 1)[1].replace(b"j@example.com",
                                                                            b"&xxe;")
            assert b">&xxe;<" in body
            with FakeServer(lambda r, b=body: Reply(200, b)) as srv:
                with pytest.raises(ProtocolError):
                    call(make_client, srv.url)
        # the same entity in a fault (500) and hidden from byte scans in UTF-16
        with FakeServer(lambda r: Reply(200, body.replace(b'"1.0"', b'"1.0" encoding="utf-16"')
                                        .decode().encode("utf-16"))) as srv:
            with pytest.raises(ProtocolError):
                call(make_client, srv.url)
        with FakeServer(lambda r: Reply(500, body)) as srv:
            with pytest.raises(EngageError):
                call(make_client, srv.url)
        assert spy.count == 0


BILLION_LAUGHS = b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
    f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'.encode()
    for i in range(1, 10)) + b"]><lolz>&lol9;</lolz>"


@pytest.mark.parametrize("body", [
    BILLION_LAUGHS,
    b'<?xml version="1.0"?><!DOCTYPE S:Envelope SYSTEM "http://127.0.0.1:9/x.dtd">'
    + contact_reply().split(b"?>", 1)[1],
    b"<!DOCTYPE x []>" + contact_reply().split(b"?>", 1)[1],
    BILLION_LAUGHS.replace(b'"1.0"', b'"1.0" encoding="utf-16"').decode().encode("utf-16"),
], ids=["billion-laughs", "external-dtd", "empty-dtd", "utf16-billion-laughs"])
def test_any_dtd_is_refused(make_client, body) -> None:
    with FakeServer(lambda r: Reply(200, body)) as srv:
        t = time.monotonic()
        with pytest.raises(ProtocolError):  # "carries a DTD" or libxml2's amplification guard
            call(make_client, srv.url)
        assert time.monotonic() - t < 2


def test_remote_wsdl_importing_schema_from_other_host_is_refused(make_client) -> None:
    from engage_soap.resources import bundled_wsdl
    wsdl = bundled_wsdl().read_bytes()
    with FakeServer() as other:
        evil = wsdl.replace(b'schemaLocation="ecmapi.xsd"',
                            f'schemaLocation="http://localhost:{other.port}/ecmapi.xsd"'.encode())
        assert evil != wsdl
        with FakeServer(lambda r: Reply(200, evil)) as srv:
            url = f"http://127.0.0.1:{srv.port}/api/soap/v8/?wsdl&evil=1"
            with pytest.raises(ConfigurationError, match="another host"):
                make_client(srv.url, wsdl=url, wsdl_cache_dir=None)
        assert other.count == 0


def test_remote_wsdl_import_allowed_when_host_listed(make_client, tmp_path) -> None:
    from engage_soap.resources import bundled_wsdl, bundled_xsd
    wsdl, xsd = bundled_wsdl().read_bytes(), bundled_xsd().read_bytes()
    with FakeServer(lambda r: Reply(200, xsd)) as other:
        good = wsdl.replace(b'schemaLocation="ecmapi.xsd"',
                            f'schemaLocation="http://localhost:{other.port}/ecmapi.xsd"'.encode())
        with FakeServer(lambda r: Reply(200, good)) as srv:
            url = f"http://127.0.0.1:{srv.port}/api/soap/v8/?wsdl&allowed=1"
            make_client(srv.url, wsdl=url, wsdl_cache_dir=tmp_path,
                        wsdl_allowed_hosts=["localhost"])
        assert other.count == 1


def test_reply_larger_than_cap(make_client) -> None:
    pad = b"<!--" + b"x" * 300_000 + b"-->"
    body = contact_reply().replace(b"<S:Body>", b"<S:Body>" + pad)
    with FakeServer(lambda r: Reply(200, body)) as srv:
        with pytest.raises(TransportError, match="cap"):
            call(make_client, srv.url, max_reply_bytes=100_000)
        call(make_client, srv.url, max_reply_bytes=1_000_000)  # under the cap: fine
    from engage_soap.transport import DEFAULT_MAX_REPLY_BYTES
    assert 1 << 20 <= DEFAULT_MAX_REPLY_BYTES <= 64 << 20


@functools.cache
def _gzip_bomb(inflated: int) -> bytes:
    """A gzip stream of ``inflated`` zero bytes (a multiple of 1 MiB), built on first use.

    After a full flush deflate starts afresh, so every 1 MiB of zeros compresses to the
    same bytes: one block is compressed and repeated, and only the CRC walks the zeros.
    """
    block = bytes(1 << 20)
    piece = zlib.compressobj(9, zlib.DEFLATED, -15)
    repeated = piece.compress(block) + piece.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(inflated >> 20):
        crc = zlib.crc32(block, crc)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + repeated * (inflated >> 20) + end
            + struct.pack("<II", crc, inflated & 0xFFFFFFFF))


def test_the_gzip_bomb_is_a_valid_gzip_stream() -> None:
    assert gzip.decompress(_gzip_bomb(4 << 20)) == bytes(4 << 20)


def test_gzip_bomb_counted_after_decompression_in_bounded_memory(make_client) -> None:
    bomb = _gzip_bomb(1 << 30)  # ~1 MiB on the wire, 1 GiB inflated
    assert len(bomb) < 2 << 20
    reply = Reply(200, bomb, headers={"Content-Encoding": "gzip"})
    with FakeServer(lambda r: reply) as srv:
        c = make_client(srv.url, retry=NONE)
        tracemalloc.start()
        try:
            t = time.monotonic()
            with pytest.raises(TransportError, match="cap"):
                c.contact_get(email="a@example.com")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 100 << 20
        assert time.monotonic() - t < 10


@pytest.mark.parametrize("where", ["status-line", "headers", "body"])
def test_trickling_server_hits_the_call_deadline(make_client, where) -> None:
    body = contact_reply()
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)

    def trickle(h: Handler) -> None:
        if where == "body":
            h.wfile.write(head)
            h.trickle(body * 100, 0.2)
        elif where == "headers":
            h.wfile.write(b"HTTP/1.1 200 OK\r\n")
            h.trickle(b"X-Slow: " + b"z" * 200 + b"\r\n" + head[17:] + body, 0.2)
        else:
            h.trickle(head + body, 0.2)
    with FakeServer(lambda r: trickle) as srv:
        t = time.monotonic()
        with pytest.raises(RequestTimeoutError):
            call(make_client, srv.url, timeout=1.0)
        assert time.monotonic() - t < 2.0


WRONG = [
    ("invalid-utf8", 200, contact_reply().replace(b"j@example", b"j\xff\xfe@ex"), ProtocolError),
    ("wrong-namespace", 200, contact_reply().replace(ECM.encode(), b"urn:other"), ProtocolError),
    ("soap12-fault", 500, (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">'
                           b"<env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value>"
                           b"</env:Code><env:Reason><env:Text>boom</env:Text></env:Reason>"
                           b"</env:Fault></env:Body></env:Envelope>"), EngageError),
    ("fault-in-200", 200, envelope("<S:Fault><faultcode>S:Server</faultcode><faultstring>nope"
                                   "</faultstring></S:Fault>"), EngageFault),
    ("empty-200", 200, b"", ProtocolError),
    ("whitespace-200", 200, b"  \r\n ", ProtocolError),
    ("html-200", 200, b"<html><body>login</body></html>", ProtocolError),
    ("not-xml-200", 200, b"hello", ProtocolError),
    ("no-body", 200, f'<S:Envelope xmlns:S="{SOAP_ENV}"/>'.encode(), ProtocolError),
    ("html-502", 502, b"<html>bad gateway</html>", HTTPStatusError),
    ("deep-nesting", 200, b"<a>" * 100_000 + b"</a>" * 100_000, ProtocolError),
    ("bad-contact-id", 200, contact_reply().replace(b">33457<", b">x<"), ProtocolError),
]


@pytest.mark.parametrize(("name", "status", "body", "exc"), WRONG, ids=[w[0] for w in WRONG])
def test_broken_replies_are_typed(make_client, name, status, body, exc) -> None:
    with FakeServer(lambda r: Reply(status, body)) as srv:
        with pytest.raises(exc):
            call(make_client, srv.url)


def test_fault_with_garbage_detail_keeps_raw_detail(make_client) -> None:
    garbage = envelope("<S:Fault><faultcode>S:Server</faultcode><faultstring>odd</faultstring>"
                       "<detail><weird xmlns='urn:x'>\u2603<b>1</b></weird>junk text</detail>"
                       "</S:Fault>")
    with FakeServer(lambda r: Reply(500, garbage)) as srv:
        with pytest.raises(EngageFault) as ei:
            call(make_client, srv.url)
    assert ei.value.detail_xml is not None and b"weird" in ei.value.detail_xml
    assert ei.value.http_status == 500 and ei.value.fault_string == "odd"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_to_another_host_is_not_followed(make_client, status) -> None:
    with FakeServer() as other:
        loc = f"http://localhost:{other.port}/api/soap/v8/"
        with FakeServer(lambda r: Reply(status, b"", headers={"Location": loc})) as srv:
            with pytest.raises(HTTPStatusError) as ei:
                call(make_client, srv.url)
        assert ei.value.status_code == status
        assert other.count == 0
