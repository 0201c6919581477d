"""What a newcomer trips over: names, messages and warnings that say what to do."""

from __future__ import annotations

import re
import warnings
from decimal import Decimal
from typing import Any

import pytest

import engage_soap
from engage_soap import EngageClient, HTTPStatusError, InvalidInputError, RetryPolicy
from engage_soap.envelope import ECM_NS as ECM
from engage_soap.models import IDENTIFIERS, Exchange
from engage_soap.testing import HttpReply, HttpRequest, MockTransport

SENT = (b'<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
        b'<ns2:messageSendSingleResponse xmlns:ns2="' + ECM.encode() + b'"/></S:Body>'
        b"</S:Envelope>")


def _client(answer: Any = None, url: str = "https://tenant.example.invalid/api/soap/v8/",
            ) -> tuple[EngageClient, MockTransport]:
    mock = MockTransport(answer or (lambda r: HttpReply(200, {}, SENT)))
    return EngageClient(url, "u", "p", transport=mock, rate_limit=None,
                        retry=RetryPolicy.none()), mock


def test_dir_of_the_package_lists_the_facade() -> None:
    assert "EngageClient" in dir(engage_soap)
    assert set(engage_soap.__all__) <= set(dir(engage_soap))


def test_exchange_repr_names_its_real_attributes() -> None:
    ex = Exchange("contactGet", "https://h/api/soap/v8/", {}, b"abc", 200, {}, b"hello", 0.1)
    text = repr(ex)
    assert "request_body=<3 bytes>" in text and "response_body=<5 bytes>" in text
    for name in re.findall(r"(\w+)=", text):
        assert hasattr(ex, name), name


def test_one_name_per_identifier_everywhere() -> None:
    assert [f.name for f in IDENTIFIERS] == ["email", "mobile_number", "app_alias",
                                             "external_id", "contact_id"]
    import inspect
    for method in (EngageClient.contact_get, EngageClient.send_prepared_message):
        assert {f.name for f in IDENTIFIERS} <= set(inspect.signature(method).parameters)
    create = set(inspect.signature(EngageClient.contact_create).parameters)
    assert {f.name for f in IDENTIFIERS if f.name != "contact_id"} <= create


@pytest.mark.parametrize(("value", "wire"), [
    ("Jo", "Jo"), (7, "7"), (1.5, "1.5"), (0.1, "0.1"), (1e21, "1e+21"),
    (Decimal("19.990"), "19.990"), ("", ""),
])
def test_parameters_take_text_and_numbers_without_loss(value: object, wire: str) -> None:
    client, mock = _client()
    client.message_send_single(1, 2, parameters={"P": value})
    assert f"<value>{wire}</value>".encode() in mock.requests[0].body


@pytest.mark.parametrize(("value", "says"), [
    (True, "must be a str, int, float or Decimal, not bool"),
    (float("nan"), "must be a finite number"),
    (Decimal("Infinity"), "must be a finite number"),
    (b"x", "must be a str, int, float or Decimal, not bytes"),
])
def test_parameters_say_exactly_what_they_accept(value: object, says: str) -> None:
    client, mock = _client()
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        client.message_send_single(1, 2, parameters={"P": value})
    assert mock.requests == []


def test_plain_http_to_another_host_warns_once_per_client() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _client(url="http://engage.example.invalid/api/soap/v8/")
        _client(url="http://127.0.0.1:8080/api/soap/v8/")
        _client(url="http://localhost:8080/api/soap/v8/")
        _client(url="https://engage.example.invalid/api/soap/v8/")
    texts = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert texts == ["the endpoint http://engage.example.invalid/ is not https: the password "
                     "goes over the network in clear text"]


def test_a_404_says_to_check_the_endpoint_form() -> None:
    def not_found(request: HttpRequest) -> HttpReply:
        return HttpReply(404, {"Content-Type": "text/html"}, b"<html>Not Found</html>")

    client, _ = _client(not_found, url="https://tenant.example.invalid/api/soap/v8")
    with pytest.raises(HTTPStatusError) as err:
        client.api_version()
    assert err.value.status_code == 404
    assert "https://<host>/api/soap/v<N>/, with the trailing /" in str(err.value)


def test_debug_logs_shorten_attachment_content(caplog: pytest.LogCaptureFixture) -> None:
    import base64
    import logging
    import os

    from engage_soap import Attachment

    client, mock = _client()
    big = os.urandom(3 * 1024 * 1024)
    with caplog.at_level(logging.DEBUG, "engage_soap"):
        client.message_send_single(1, 2, attachments=[Attachment("big.bin", big)])
    encoded = base64.b64encode(big).decode()
    assert encoded in mock.requests[0].body.decode()  # the wire carries all of it
    [request_log] = [r.getMessage() for r in caplog.records if "request to" in r.getMessage()]
    assert f"<content>{encoded[:32]}...[{len(encoded)} chars]</content>" in request_log
    assert len(request_log) < 2000
