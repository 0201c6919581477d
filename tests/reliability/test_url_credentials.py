"""A password written into a URL never shows: refused in the endpoint and the WSDL URL,
masked by transport.display_url wherever a URL is shown anyway; bad wsdl arguments."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from engage_soap import ConfigurationError, EngageClient, TransportError
from engage_soap.transport import HttpTransport, display_url

from .conftest import FAST, PASSWORD, USER

SECRET = "pa:ss@w0rd-9c1e"
MakeClient = Callable[..., EngageClient]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("url", "shown"), [
    (f"https://user:{SECRET}@engage.example.com/api/soap/v8/",
     "https://***@engage.example.com/api/soap/v8/"),
    ("http://user@127.0.0.1:8080/x?y=1", "http://***@127.0.0.1:8080/x?y=1"),
    ("https://engage.example.com/api/soap/v8/", "https://engage.example.com/api/soap/v8/"),
])
def test_display_url_masks_user_info(url: str, shown: str) -> None:
    assert display_url(url) == shown


@pytest.mark.parametrize("keyword", ["endpoint", "wsdl"])
def test_credentials_in_a_url_are_refused_without_showing_them(keyword: str) -> None:
    url = f"https://user:{SECRET}@engage.example.com/api/soap/v8/"
    endpoint = url if keyword == "endpoint" else "https://engage.example.com/api/soap/v8/"
    kwargs: dict[str, Any] = {"wsdl": url} if keyword == "wsdl" else {}
    with pytest.raises(ConfigurationError) as caught:
        EngageClient(endpoint, USER, PASSWORD, **kwargs)
    message = str(caught.value)
    assert SECRET not in message and "pa:ss" not in message
    assert "***@engage.example.com" in message
    assert "username and password" in message


def test_transport_errors_mask_user_info() -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{_closed_port()}/api/soap/v8/"
    with HttpTransport(timeout=5) as http, pytest.raises(TransportError) as caught:
        http.request("POST", url, b"<x/>")
    assert SECRET not in str(caught.value) and "user:" not in str(caught.value)
    assert "***@127.0.0.1" in str(caught.value)
    with HttpTransport(timeout=5) as http, pytest.raises(TransportError) as caught:
        http.request("POST", f"ftp://user:{SECRET}@example.com/")
    assert SECRET not in str(caught.value)


def test_the_repr_and_the_retry_warning_mask_user_info(
        make_client: MakeClient, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(f"http://127.0.0.1:{_closed_port()}/api/soap/v8/", retry=FAST)
    # What a URL with user info would show, had it got past the constructor's check.
    leaky = client.endpoint.replace("://", f"://user:{SECRET}@")
    client.endpoint = client._wire.endpoint = leaky  # type: ignore[attr-defined]
    assert SECRET not in repr(client) and "***@127.0.0.1" in repr(client)
    with caplog.at_level(logging.WARNING, "engage_soap"), pytest.raises(TransportError) as exc:
        client.api_version()  # a read: retried, with a WARNING per retry
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(SECRET not in w and "***@127.0.0.1" in w for w in warnings)
    assert SECRET not in str(exc.value)


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"wsdl": 123}, "wsdl must be None (the bundled WSDL), a file path or an http(s) URL, "
                    "not int"),
    ({"wsdl": b"/tmp/x.wsdl"}, "not bytes"),
    ({"wsdl_allowed_hosts": "example.com"}, "wsdl_allowed_hosts must be a list of host "
                                            "names, e.g. ['schemas.example.com'], not str"),
    ({"wsdl_allowed_hosts": 7}, "not int"),
    ({"wsdl_allowed_hosts": ["ok.example.com", 7, ""]},
     "wsdl_allowed_hosts must hold host names (non-empty str), not '', 7"),
])
def test_bad_wsdl_arguments_are_configuration_errors(kwargs: dict[str, Any],
                                                     says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        EngageClient("https://engage.example.com/api/soap/v8/", USER, PASSWORD, **kwargs)
    assert says in str(caught.value)


def test_the_async_client_masks_user_info_and_checks_allowed_hosts() -> None:
    from engage_soap import AsyncEngageClient

    leaky = AsyncEngageClient(f"https://user:{SECRET}@engage.example.invalid/api/soap/v8/",
                              USER, PASSWORD)
    assert SECRET not in repr(leaky) and "***@engage.example.invalid" in repr(leaky)
    hosts = AsyncEngageClient("https://engage.example.invalid/api/soap/v8/", USER, PASSWORD,
                              wsdl_allowed_hosts="example.com")

    async def both() -> None:
        for client in (leaky, hosts):
            try:
                with pytest.raises(ConfigurationError,
                                   match=r"credentials|wsdl_allowed_hosts must be a list",
                                   ) as caught:
                    await client.api_version()  # refused before any request
                assert SECRET not in str(caught.value)
            finally:
                await client.aclose()

    asyncio.run(both())
