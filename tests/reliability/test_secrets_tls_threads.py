"""Secrets never leak; TLS, a caller's transport and proxies; threads; pickling of errors."""

from __future__ import annotations

import logging
import pickle
import re
import socket
import ssl
import tempfile
import threading
import time

import pytest

import engage_soap.errors as errors_mod
from engage_soap import EngageClient, EngageError, RetryPolicy, TransportError
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.testing import HttpReply, HttpRequest, MockTransport

from .conftest import FAST, PASSWORD, TOKEN, USER
from .fakeserver import (
    THROTTLE_FAULT,
    VERSION_OK,
    FakeServer,
    Handler,
    Recorded,
    Reply,
    contact_reply,
    default_responder,
    fault,
)

pytestmark = pytest.mark.long(4)


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(logging.Formatter("%(name)s %(message)s").format(record))


def test_secrets_never_leak(make_client, tmp_path) -> None:
    cap = _Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(cap)
    root.setLevel(logging.DEBUG)
    names = ("urllib3", "zeep", "engage_soap", "requests")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    seen: list[object] = []
    state = {"n": 0}
    bodies = [Reply(500, fault("NoSuchObjectException", actor="CLIENT", code="NO_SUCH_OBJECT")),
              Reply(500, fault()), Reply(500, THROTTLE_FAULT),
              Reply(503, b"<html/>", content_type="text/html"), Reply(401, b"no"),
              Reply(200, b"garbage"), Reply(200, b"")]

    def responder(req: Recorded):
        if req.method == "GET":
            return Reply(200, (bundled_xsd() if "xsd" in req.path else bundled_wsdl())
                         .read_bytes())
        state["n"] += 1
        if state["n"] <= len(bodies):
            return bodies[state["n"] - 1]
        if state["n"] == len(bodies) + 1:
            return Handler.reset
        return default_responder(req)
    try:
        with FakeServer(responder) as srv:
            c = make_client(srv.url, wsdl=srv.url + "?wsdl", wsdl_cache_dir=tmp_path,
                            retry=RetryPolicy.none())
            seen += [c, repr(c), c._http]
            for _ in range(len(bodies) + 1):
                try:
                    c.contact_get(email="a@example.com")
                except EngageError as exc:
                    seen.append(exc)
                seen.append(c.last_exchange)
            r = make_client(srv.url, retry=FAST)
            for call in (lambda: r.api_version(), lambda: r.message_send_single(1, 2),
                         lambda: r.contact_create(email="x@example.com")):
                call()
                seen.append(r.last_exchange)
            state["n"] = len(bodies)  # a retried read: reset, then success
            r.contact_get(email="a@example.com")
            seen.append(c.service.contactGet(identifier={"type": "EMAIL", "value": "z@x.y"}))
        with pytest.raises(TransportError) as ei:  # connection refused
            c.contact_get(email="a@example.com")
        seen.append(ei.value)
    finally:
        root.removeHandler(cap)
        root.setLevel(old)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert any("request" in t for t in cap.texts) and len(cap.texts) > 10
    texts = list(cap.texts)
    for obj in seen:
        texts += [str(obj), repr(obj)]
        if isinstance(obj, BaseException):
            texts += [repr(obj.__dict__), str(obj.__cause__), repr(obj.__cause__)]
        if obj is not None and hasattr(obj, "request_headers"):
            texts += [repr(dict(obj.request_headers)), repr(obj.request_body),
                      repr(dict(obj.response_headers))]
    blob = "\n".join(texts)
    assert "Authorization" not in blob or TOKEN not in blob
    assert TOKEN not in blob
    assert PASSWORD not in blob


# ------------------------------------------------------------------ TLS

def _https(cert: tuple[str, str], *, client_ca: str | None = None) -> FakeServer:
    srv = FakeServer()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    if client_ca:  # ask for a client certificate signed by client_ca
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(client_ca)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    return srv


def test_tls_verified_by_default_and_verify_accepts_a_ca_bundle(make_client, cert) -> None:
    with _https(cert) as srv:
        url = f"https://127.0.0.1:{srv.port}/api/soap/v8/"
        with pytest.raises(TransportError, match="TLS failure") as err:
            make_client(url, retry=RetryPolicy.none()).api_version()
        assert "certificate verify failed: self-signed certificate" in str(err.value)
        assert err.value.request_sent is False
        assert make_client(url, verify=cert[0]).api_version() == "v8"
        assert srv.count == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_and_client_certificates(make_client, cert) -> None:
    with _https(cert, client_ca=cert[0]) as srv:
        url = f"https://127.0.0.1:{srv.port}/api/soap/v8/"
        with pytest.raises(TransportError):  # the server wants a certificate: none given
            make_client(url, verify=cert[0], retry=RetryPolicy.none()).api_version()
        assert make_client(url, verify=cert[0], cert=cert).api_version() == "v8"
        assert make_client(url, verify=False, cert=cert).api_version() == "v8"
        assert srv.count == 2


def test_a_transport_of_the_callers_carries_every_request(make_client) -> None:
    wsdl = bundled_wsdl().read_bytes()

    def answer(req: HttpRequest) -> HttpReply:
        if req.method == "GET":
            xsd = req.url.endswith("ecmapi.xsd")
            return HttpReply(200, {}, bundled_xsd().read_bytes() if xsd else wsdl)
        return HttpReply(200, {"Content-Type": "text/xml"}, VERSION_OK)

    fake = MockTransport(answer)
    url = "https://tenant.example.invalid/api/soap/v8/"
    c = make_client(url, transport=fake, timeout=None, wsdl=url + "?wsdl",
                    wsdl_cache_dir=tempfile.mkdtemp())
    assert c.api_version() == "v8"
    assert [(r.method, r.url) for r in fake.requests] == [
        ("GET", url + "?wsdl"), ("GET", url + "ecmapi.xsd"), ("POST", url)]
    assert all(r.headers["Authorization"] == f"Basic {TOKEN}" for r in fake.requests)
    c.close()
    assert fake.closed


@pytest.mark.filterwarnings("ignore:the endpoint http:UserWarning")  # on purpose
def test_environment_proxy_is_honoured_and_no_proxy_respected(make_client, monkeypatch) -> None:
    with FakeServer() as proxy, FakeServer() as direct:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "localhost")
        monkeypatch.setenv("no_proxy", "localhost")
        make_client("http://example.invalid/api/soap/v8/").api_version()
        assert proxy.requests[0].path == "http://example.invalid/api/soap/v8/"
        make_client(f"http://localhost:{direct.port}/api/soap/v8/").api_version()
        assert direct.count == 1 and proxy.count == 1


# ------------------------------------------------------------------ threads

def _echo(req: Recorded) -> Reply:
    m = re.search(rb"<value>(.*?)</value>", req.body)
    value = m.group(1).decode() if m else "?"
    from xml.sax.saxutils import unescape
    return Reply(200, contact_reply(unescape(value)))


def test_threads_share_one_client(make_client) -> None:
    with FakeServer(_echo) as srv:
        c = make_client(srv.url, retry=RetryPolicy.none())
        problems: list[str] = []
        done = threading.Event()

        def worker(t: int) -> None:
            for i in range(250):
                email = f"t{t}-{i}@example.com"
                got = c.contact_get(email=email).email
                if got != email:
                    problems.append(f"{email} got {got}")

        def watcher() -> None:
            while not done.is_set():
                ex = c.last_exchange
                if ex is not None and ex.response_body is not None:
                    sent = re.search(rb"<value>(.*?)</value>", ex.request_body)
                    if sent is None or sent.group(1) not in ex.response_body:
                        problems.append("torn last_exchange")
                time.sleep(0.0002)  # look often, but leave the GIL to the workers
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        w = threading.Thread(target=watcher)
        w.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        w.join()
        assert problems == []
        assert srv.count == 2000  # nothing lost, nothing sent twice


# ------------------------------------------------------------------ pickling

def _real_errors() -> list[EngageError]:
    out: list[EngageError] = []
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    bodies = [Reply(500, fault("NoSuchObjectException", actor="CLIENT", code="NO_SUCH_OBJECT",
                               extra="<objectType>Contact</objectType>")),
              Reply(500, THROTTLE_FAULT), Reply(503, b"<html/>"), Reply(403, b""),
              Reply(200, b"junk"), Reply(500, fault("InvalidParameterException", actor="CLIENT",
                                                     code="INVALID_PARAMETER"))]
    try:
        for b in bodies:
            with FakeServer(lambda r, b=b: b) as srv, EngageClient(
                    srv.url, USER, PASSWORD, retry=RetryPolicy.none(), rate_limit=None) as c:
                try:
                    c.contact_get(email="a@example.com")
                except EngageError as e:
                    out.append(e)
        with EngageClient(f"http://127.0.0.1:{port}/api/soap/v8/", USER, PASSWORD,
                          retry=RetryPolicy.none()) as c:
            try:
                c.api_version()
            except EngageError as e:
                out.append(e)
    finally:
        s.close()
    return out


def test_every_error_pickles_with_its_fields() -> None:
    made: list[EngageError] = []
    for name in errors_mod.__all__:
        cls = getattr(errors_mod, name)
        if not (isinstance(cls, type) and issubclass(cls, EngageError)):
            continue
        if issubclass(cls, errors_mod.HTTPStatusError):
            made.append(cls("m", status_code=502, body_excerpt="x"))
        elif issubclass(cls, errors_mod.EngageFault):
            made.append(cls("m", fault_code="S:Server", error_code="E", detail={"a": "b"},
                            detail_xml=b"<d/>", http_status=500, operation="op"))
        else:
            made.append(cls("m", retryable=True, request_sent=True))
    real = _real_errors()
    assert len(real) == 7 and len({type(e) for e in real}) >= 6
    for e in made + real:
        back = pickle.loads(pickle.dumps(e))
        assert type(back) is type(e) and str(back) == str(e)
        assert back.__dict__ == e.__dict__
