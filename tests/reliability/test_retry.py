"""Retries and throttling: what is retried, what is sent exactly once, and the rate limiter."""

from __future__ import annotations

import logging
import socket
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

import engage_soap
from engage_soap import (
    EngageClient,
    InvalidParameterError,
    RateLimitedError,
    RateLimiter,
    RequestTimeoutError,
    RetryPolicy,
    TransportError,
    UnexpectedServerError,
)
from engage_soap.transport import HttpTransport

from .conftest import FAST, PASSWORD, USER
from .fakeserver import (
    THROTTLE_FAULT,
    FakeServer,
    Handler,
    Recorded,
    Reply,
    contact_reply,
    default_responder,
    fault,
)

pytestmark = pytest.mark.long(7)

READS = [("contactGet", lambda c: c.contact_get(email="a@example.com")),
         ("systemGetApiVersion", lambda c: c.api_version())]
WRITES = [("messageSendSingle", lambda c: c.message_send_single(23541, 33457)),
          ("contactCreate", lambda c: c.contact_create(email="new@example.com"))]


def failing_first(n: int, bad: Reply | object):
    """A responder that fails the first ``n`` requests with ``bad``, then answers normally."""
    seen = {"n": 0}
    lock = threading.Lock()

    def responder(req: Recorded):
        with lock:
            seen["n"] += 1
            k = seen["n"]
        return bad if k <= n else default_responder(req)
    return responder


def refused_url() -> tuple[socket.socket, str]:
    """A bound port nobody listens on (connect gets ECONNREFUSED)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, f"http://127.0.0.1:{s.getsockname()[1]}/api/soap/v8/"


# ------------------------------------------------------------------ the policy itself

def test_named_policies_and_top_level_export() -> None:
    assert engage_soap.RetryPolicy is RetryPolicy
    assert RetryPolicy.none().max_attempts == 1
    d = RetryPolicy.default()
    assert d.max_attempts >= 2 and d.rate_limited_delay >= 30 and d.jitter
    err = TransportError("x", retryable=True, request_sent=False)
    assert RetryPolicy.none().delay_for(err, attempt=1, idempotent=True, waited=0) is None


def test_backoff_is_capped_exponential_with_jitter_and_total_cap() -> None:
    p = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=0.5, max_total_wait=1.0)
    assert [p.backoff(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    err = TransportError("x", retryable=True, request_sent=False)
    delays = {p.delay_for(err, attempt=3, idempotent=True, waited=0) for _ in range(50)}
    assert all(d is not None and 0.2 <= d <= 0.4 for d in delays) and len(delays) > 1
    assert p.delay_for(err, attempt=1, idempotent=True, waited=0.95) is None  # total cap
    assert p.delay_for(err, attempt=10, idempotent=True, waited=0) is None  # attempts
    nojit = RetryPolicy(base_delay=0.3, jitter=False)
    assert nojit.delay_for(err, attempt=1, idempotent=True, waited=0) == 0.3


def test_client_uses_the_policy_given(make_client, server) -> None:
    c = make_client(server.url, retry=RetryPolicy.none())
    assert c.retry == RetryPolicy.none()
    assert make_client(server.url, retry=None).retry == RetryPolicy.default()


def test_delay_for_with_real_transport_errors() -> None:
    """The write rule decided on exceptions the transport really raises."""
    p = RetryPolicy(max_attempts=3, base_delay=0.01, jitter=False)
    sock, url = refused_url()
    t = HttpTransport(timeout=2.0)
    try:
        with pytest.raises(TransportError) as refused:
            t.request("POST", url, b"<x/>")
        assert refused.value.request_sent is False and refused.value.retryable
        assert p.delay_for(refused.value, attempt=1, idempotent=False, waited=0) == 0.01
        with pytest.raises(TransportError) as dns:
            t.request("POST", "http://no-such-host.invalid/api/", b"<x/>")
        assert dns.value.request_sent is False
        assert p.delay_for(dns.value, attempt=1, idempotent=False, waited=0) == 0.01

        def hang(h: Handler) -> None:
            h.server.stopping.wait(3)
        with FakeServer(lambda r: hang) as srv:
            t.timeout = 0.3
            with pytest.raises(RequestTimeoutError) as slow:
                t.request("POST", srv.url, b"<x/>")
        assert slow.value.request_sent is True
        assert p.delay_for(slow.value, attempt=1, idempotent=False, waited=0) is None
        assert p.delay_for(slow.value, attempt=1, idempotent=True, waited=0) == 0.01

        with FakeServer(lambda r: Handler.reset) as srv:
            with pytest.raises(TransportError) as reset:
                t.request("POST", srv.url, b"<x/>")
        assert reset.value.request_sent is True
        assert p.delay_for(reset.value, attempt=1, idempotent=False, waited=0) is None
    finally:
        t.close()
        sock.close()


# ------------------------------------------------------------------ reads are retried

@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize(("op", "call"), READS)
def test_read_retried_on_gateway_errors(make_client, op, call, status) -> None:
    bad = Reply(status, b"<html><body>Bad Gateway</body></html>", content_type="text/html")
    with FakeServer(failing_first(2, bad)) as srv:
        call(make_client(srv.url))
        assert len(srv.posts(op)) == 3


@pytest.mark.parametrize(("op", "call"), READS)
def test_read_retried_on_server_unexpected_error(make_client, op, call) -> None:
    with FakeServer(failing_first(1, Reply(500, fault()))) as srv:
        call(make_client(srv.url))
        assert len(srv.posts(op)) == 2


def test_read_gives_up_after_max_attempts(make_client) -> None:
    with FakeServer(lambda r: Reply(500, fault())) as srv:
        with pytest.raises(UnexpectedServerError):
            make_client(srv.url).contact_get(email="a@example.com")
        assert srv.count == FAST.max_attempts


def test_client_fault_is_not_retried(make_client) -> None:
    bad = Reply(500, fault("InvalidParameterException", actor="CLIENT",
                           code="INVALID_PARAMETER", message="bad"))
    with FakeServer(lambda r: bad) as srv:
        with pytest.raises(InvalidParameterError):
            make_client(srv.url).contact_get(email="a@example.com")
        assert srv.count == 1


def test_read_retried_on_read_timeout(make_client) -> None:
    seen = []

    def responder(req: Recorded):
        seen.append(req)
        if len(seen) == 1:
            return lambda h: h.server.stopping.wait(2)
        return default_responder(req)
    with FakeServer(responder) as srv:
        c = make_client(srv.url, timeout=0.3)
        assert c.contact_get(email="a@example.com").id == 33457
        assert srv.count == 2


def _late_server(sock: socket.socket) -> FakeServer:
    """A FakeServer on an already bound socket, not yet listening."""
    srv = FakeServer.__new__(FakeServer)
    ThreadingHTTPServer.__init__(srv, sock.getsockname(), Handler, bind_and_activate=False)
    srv.socket.close()
    srv.socket = sock
    srv.responder = default_responder
    srv.requests = []
    srv.stopping = threading.Event()
    srv._lock = threading.Lock()
    srv._conns = set()
    srv._thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                   daemon=True)
    return srv


class _ListenOnRetry(logging.Handler):
    """Starts the late server when the client logs its first retry."""

    def __init__(self, srv: FakeServer) -> None:
        super().__init__()
        self.srv = srv
        self.started = False

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage() and not self.started:
            self.started = True
            self.srv.server_activate()
            self.srv.start()


@pytest.mark.parametrize(("op", "call"), READS + WRITES)
def test_connection_refused_then_success_is_retried_for_reads_and_writes(make_client, op,
                                                                          call) -> None:
    sock, url = refused_url()
    srv = _late_server(sock)
    hook = _ListenOnRetry(srv)
    logger = logging.getLogger("engage_soap")
    logger.addHandler(hook)
    try:
        call(make_client(url))
        assert hook.started
        assert len(srv.posts(op)) == 1  # refused once, then delivered exactly once
    finally:
        logger.removeHandler(hook)
        if hook.started:
            srv.stop()
        else:
            srv.server_close()


def test_refused_forever_gives_up_with_typed_error(make_client, caplog) -> None:
    sock, url = refused_url()
    try:
        with caplog.at_level(logging.WARNING, "engage_soap"), pytest.raises(TransportError) as ei:
            make_client(url).message_send_single(1, 2)
        assert ei.value.request_sent is False
        assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == 2
    finally:
        sock.close()


# ------------------------------------------------------------------ writes: exactly once

@pytest.mark.parametrize(("op", "call"), WRITES)
def test_write_whose_reply_times_out_is_sent_exactly_once(make_client, op, call) -> None:
    with FakeServer(lambda r: (lambda h: h.server.stopping.wait(3))) as srv:
        with pytest.raises(RequestTimeoutError) as ei:
            call(make_client(srv.url, timeout=0.3))
        assert ei.value.request_sent is True
        assert len(srv.posts(op)) == 1


@pytest.mark.parametrize(("op", "call"), WRITES)
def test_write_reset_after_sending_is_sent_exactly_once(make_client, op, call) -> None:
    with FakeServer(lambda r: Handler.reset) as srv:
        with pytest.raises(TransportError) as ei:
            call(make_client(srv.url))
        assert ei.value.request_sent is True
        assert len(srv.posts(op)) == 1


@pytest.mark.parametrize("bad", [
    Reply(503, b"<html>Service Unavailable</html>", content_type="text/html"),
    Reply(502, b""),
    Reply(500, fault()),
    Reply(200, contact_reply()[:40]),  # truncated
], ids=["503", "empty-502", "server-fault", "truncated-200"])
def test_write_not_retried_once_the_server_got_it(make_client, bad) -> None:
    with FakeServer(lambda r: bad) as srv:
        with pytest.raises(engage_soap.EngageError):
            make_client(srv.url).message_send_single(23541, 33457)
        assert srv.count == 1


# ------------------------------------------------------------------ the vendor's throttle

THROTTLES = {
    "soap-fault": Reply(500, THROTTLE_FAULT),
    "plain-text": Reply(500, b"Database Access Limit Exceeded", content_type="text/plain"),
}


@pytest.mark.parametrize("kind", THROTTLES)
@pytest.mark.parametrize(("op", "call"), READS + WRITES)
def test_throttle_is_retried_after_the_advised_wait(make_client, kind, op, call,
                                                    caplog) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.001,
                         rate_limited_delay=0.15)
    with FakeServer(failing_first(1, THROTTLES[kind])) as srv:
        c = make_client(srv.url, retry=policy)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, "engage_soap"):
            call(c)
        assert time.monotonic() - started >= 0.15
        assert len(srv.posts(op)) == 2
    [rec] = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert "attempt 1" in rec.getMessage() and "RateLimitedError" in rec.getMessage()
    assert "0.15" in rec.getMessage()


@pytest.mark.parametrize("kind", THROTTLES)
def test_throttle_becomes_rate_limited_error(make_client, kind) -> None:
    with FakeServer(lambda r: THROTTLES[kind]) as srv:
        with pytest.raises(RateLimitedError) as ei:
            make_client(srv.url, retry=RetryPolicy.none()).message_send_single(1, 2)
    assert isinstance(ei.value, TransportError) and ei.value.retryable


def test_default_throttle_wait_is_at_least_30_seconds() -> None:
    err = RateLimitedError("throttled", request_sent=True)
    for idempotent in (True, False):
        d = RetryPolicy.default().delay_for(err, attempt=1, idempotent=idempotent, waited=0)
        assert d is not None and d >= 30


# ------------------------------------------------------------------ logging of retries

def test_retries_are_logged_with_attempt_and_wait(make_client, caplog) -> None:
    bad = Reply(503, b"", content_type=None)
    policy = RetryPolicy(max_attempts=3, base_delay=0.02, max_delay=0.05, jitter=False)
    with FakeServer(failing_first(2, bad)) as srv, caplog.at_level(logging.DEBUG,
                                                                  "engage_soap"):
        make_client(srv.url, retry=policy).api_version()
    msgs = [r for r in caplog.records if r.name == "engage_soap" and "retrying" in r.getMessage()]
    assert [r.levelno for r in msgs] == [logging.WARNING] * 2
    assert "attempt 1" in msgs[0].getMessage() and "0.02 s" in msgs[0].getMessage()
    assert "attempt 2" in msgs[1].getMessage() and "0.04 s" in msgs[1].getMessage()


# ------------------------------------------------------------------ client-side rate limit

def test_rate_limit_is_on_by_default(server) -> None:
    with EngageClient(server.url, USER, PASSWORD) as c:
        assert c._limiter is not None and c._limiter.rate == 10.0
    with EngageClient(server.url, USER, PASSWORD, rate_limit=None) as c:
        assert c._limiter is None


def test_rate_limiter_paces_calls_and_logs_waits(make_client, server, caplog) -> None:
    c = make_client(server.url, rate_limit=50.0)
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG, "engage_soap"):
        for _ in range(30):
            c.api_version()
    assert time.monotonic() - started >= 0.4
    paced = [r for r in caplog.records if "rate limit" in r.getMessage()]
    assert paced and all(r.levelno == logging.DEBUG for r in paced)
    assert "waited" in paced[0].getMessage()


def test_rate_limiter_is_shared_by_threads(make_client, server) -> None:
    c = make_client(server.url, rate_limit=50.0)

    def work() -> None:
        for _ in range(10):
            c.api_version()
    threads = [threading.Thread(target=work) for _ in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # 40 calls at 50/s: ~0.8 s if shared; ~0.2 s if each thread had its own bucket
    assert time.monotonic() - started >= 0.6
    assert server.count == 40


def test_rate_limiter_never_starts_more_than_rate_in_a_second() -> None:
    lim = RateLimiter(20.0)
    starts = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.3:
        lim.acquire()
        starts.append(time.monotonic())
    for i, s in enumerate(starts):
        assert sum(1 for x in starts[i:] if x - s < 1.0) <= 20
