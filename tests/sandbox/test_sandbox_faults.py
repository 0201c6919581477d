"""Fault injection and the rate ceiling ("Database Access Limit Exceeded")."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from engage_soap.sandbox import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    THROTTLE_MESSAGE,
    Sandbox,
    SoapFault,
    Throttle,
)

VERSION = "<ecm:systemGetApiVersion/>"


def test_latency_is_added(soap):
    soap.sandbox.faults.inject(latency=0.3)
    started = time.monotonic()
    assert soap.call(VERSION).payload is not None
    assert time.monotonic() - started >= 0.3


def test_latency_for_one_operation_only(soap):
    rule = soap.sandbox.faults.inject("contactGet", latency=0.05)
    soap.call(VERSION)
    assert rule.hits == 0
    soap.call(soap.contact_get("ID", "33457"))
    assert rule.hits == 1


def test_http_502_html_from_a_proxy_once(soap):
    soap.sandbox.faults.inject(operation="contactGet", kind="http_502", times=1)
    assert soap.call(VERSION).payload is not None  # other operations unaffected
    response = soap.post(soap.envelope(soap.contact_get("ID", "33457")))
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert "502 Bad Gateway" in response.text
    assert soap.call(soap.contact_get("ID", "33457")).payload is not None  # cleared
    assert soap.sandbox.faults.rules == []
    assert [c.injected for c in soap.sandbox.state.calls] == [None, "http_502", None]


def test_http_503_html(soap):
    soap.sandbox.faults.inject("*", "http_503")
    for _ in range(2):
        response = soap.post(soap.envelope(VERSION))
        assert response.status_code == 503
        assert response.headers["Content-Type"] == "text/html"
        assert "<html>" in response.text
    soap.sandbox.faults.clear()
    assert soap.call(VERSION).payload is not None


def test_empty_503(soap):
    soap.sandbox.faults.inject(kind="empty_503", times=1)
    response = soap.post(soap.envelope(VERSION))
    assert response.status_code == 503
    assert response.content == b""
    assert response.headers["Content-Length"] == "0"


def test_connection_reset_before_handling(http_soap):
    soap = http_soap
    soap.sandbox.faults.inject("messageSendSingle", "reset", times=1)
    with pytest.raises(requests.ConnectionError):
        soap.post(soap.envelope(soap.send_single(23541, 33457)))
    assert soap.sandbox.state.outbox == []  # never handled
    assert soap.call(soap.send_single(23541, 33457)).payload is not None
    assert len(soap.sandbox.state.outbox) == 1


def test_connection_reset_after_handling(http_soap):
    soap = http_soap
    soap.sandbox.faults.inject("messageSendSingle", "reset_after", times=1)
    with pytest.raises(requests.ConnectionError):
        soap.post(soap.envelope(soap.send_single(23541, 33457)))
    assert len(soap.sandbox.state.outbox) == 1  # handled, reply lost


def test_truncated_reply(http_soap):
    soap = http_soap
    soap.sandbox.faults.inject("contactGet", "truncated", times=1)
    try:
        response = soap.post(soap.envelope(soap.contact_get("ID", "33457")))
    except requests.RequestException:
        pass
    else:  # a client that does not enforce Content-Length sees a short body
        assert len(response.content) < int(response.headers["Content-Length"])
    assert soap.call(soap.contact_get("ID", "33457")).payload is not None


def test_injected_fault_for_the_next_calls(soap):
    soap.sandbox.faults.inject("contactGet", "fault", times=2)
    for _ in range(2):
        reply = soap.call(soap.contact_get("ID", "33457"))
        assert reply.detail_name == "UnexpectedErrorException"
        assert reply.fields["errorActor"] == "SERVER"
        assert reply.fields["errorCode"] == "UNEXPECTED_ERROR"
        assert reply.fields["errorId"]
    assert soap.call(soap.contact_get("ID", "33457")).payload is not None


def test_injected_custom_fault(soap):
    fault = SoapFault.no_such_object("Message with id=23541 does not exist.", "Message",
                                     "messageId", "23541")
    soap.sandbox.faults.inject("messageSendSingle", "fault", fault=fault, times=1)
    reply = soap.call(soap.send_single(23541, 33457))
    assert reply.fields["objectType"] == "Message"
    assert soap.sandbox.state.outbox == []


def test_injected_throttle_and_latency_together(soap):
    soap.sandbox.faults.inject(None, "throttle", latency=0.1, times=1)
    started = time.monotonic()
    reply = soap.call(VERSION)
    assert time.monotonic() - started >= 0.1
    assert reply.faultstring == THROTTLE_MESSAGE


def test_first_matching_rule_wins(soap):
    soap.sandbox.faults.inject("systemGetApiVersion", "empty_503", times=1)
    soap.sandbox.faults.inject("*", "http_502", times=1)
    assert soap.post(soap.envelope(VERSION)).status_code == 503
    assert soap.post(soap.envelope(VERSION)).status_code == 502
    assert soap.call(VERSION).payload is not None


@pytest.mark.parametrize("kwargs", [
    {"kind": "http_418"}, {}, {"latency": -1}, {"kind": "reset", "times": 0},
    {"kind": "reset", "fault": SoapFault("x")},
])
def test_inject_rejects_bad_arguments(sandbox, kwargs):
    with pytest.raises(ValueError):
        sandbox.faults.inject(**kwargs)


# -- the rate ceiling ---------------------------------------------------------------------

def test_throttling_above_the_rate_limit(make_soap):
    with Sandbox(rate_limit=3) as limited:
        soap = make_soap(limited)
        replies = [soap.call(VERSION) for _ in range(10)]
        assert replies[0].payload is not None
        throttled = [r for r in replies if r.payload is None]
        assert throttled, "10 quick calls with rate_limit=3 must be throttled"
        for reply in throttled:
            assert reply.status == 500
            assert reply.faultcode == "S:Server"
            assert reply.faultstring == THROTTLE_MESSAGE
            assert reply.detail_name is None  # no detail bean
        time.sleep(1.1)  # the one-second window has passed
        assert soap.call(VERSION).payload is not None


def test_default_rate_limit_is_ten_per_second(make_soap):
    with Sandbox() as default:
        assert default.rate_limit == 10.0
        soap = make_soap(default)
        replies = [soap.call(VERSION) for _ in range(25)]
        assert any(r.faultstring == THROTTLE_MESSAGE for r in replies)


def test_rate_limit_none_disables_throttling(soap):
    assert soap.sandbox.rate_limit is None
    assert all(soap.call(VERSION).payload is not None for _ in range(30))


def test_rate_limit_is_per_user():
    users = {"a": "1", "b": "2"}
    with Sandbox(users=users, rate_limit=2) as limited, requests.Session() as http:
        def status(user: str) -> int:
            with http.post(limited.url, auth=(user, users[user]), timeout=30,
                           data=b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/'
                                b'envelope/"><S:Body><e:systemGetApiVersion xmlns:e="http://'
                                b'ecircle.com/developer/ecmapi"/></S:Body></S:Envelope>'
                           ) as response:
                return response.status_code
        a_statuses = [status("a") for _ in range(6)]
        assert 500 in a_statuses
        assert status("b") == 200


def test_throttle_window():
    now = [100.0]
    limiter = Throttle(2, clock=lambda: now[0])
    assert [limiter.allow("u") for _ in range(3)] == [True, True, False]
    assert limiter.allow("v")
    now[0] += 0.5
    assert not limiter.allow("u")
    now[0] += 0.6
    assert limiter.allow("u") and limiter.allow("u") and not limiter.allow("u")
    limiter.limit = None
    assert all(limiter.allow("u") for _ in range(100))


def test_rate_limit_can_be_changed_at_runtime(soap):
    soap.sandbox.rate_limit = 1
    replies = [soap.call(VERSION) for _ in range(3)]
    assert replies[-1].faultstring == THROTTLE_MESSAGE
    soap.sandbox.rate_limit = None
    assert soap.call(VERSION).payload is not None


def test_stop_does_not_wait_for_injected_latency():
    sandbox = Sandbox(rate_limit=None).start()
    sandbox.faults.inject(latency=60)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with requests.post(sandbox.url, auth=(DEFAULT_USERNAME, DEFAULT_PASSWORD),
                               data=b"<x/>", timeout=30) as response:
                response.close()
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not sandbox.faults.rules[0].hits:
        time.sleep(0.01)
    started = time.monotonic()
    sandbox.stop()
    caller.join(30)
    assert not caller.is_alive()
    assert time.monotonic() - started < 20
