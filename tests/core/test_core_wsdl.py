"""WSDL loading: bundled, from files, from URLs (auth, disk cache, hosts), sharing, errors."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from recorded import PASSWORD, PATH, USER, assert_sent, serve
from werkzeug import Request, Response

from engage_soap import ConfigurationError, EngageClient, RetryPolicy, zeep_binding
from engage_soap.resources import bundled_wsdl, bundled_xsd
from engage_soap.testing import HttpReply, MockTransport

MakeClient = Callable[..., EngageClient]
WSDL = bundled_wsdl().read_bytes()
XSD = bundled_xsd().read_bytes()


def _authorised(body: bytes, seen: list[str]) -> Callable[[Request], Response]:
    def handler(request: Request) -> Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        seen.append(base64.b64decode(token).decode() if scheme == "Basic" else "")
        return Response(body, 200, content_type="text/xml;charset=utf-8")
    return handler


def _serve_wsdl(httpserver: HTTPServer, wsdl: bytes = WSDL) -> tuple[str, list[str]]:
    """Serve the WSDL and its XSD under a fresh path; return the ?wsdl URL and auth seen."""
    base = f"/{uuid.uuid4().hex}/api/soap/v8/"
    seen: list[str] = []
    httpserver.expect_oneshot_request(base + "ecmapi.wsdl", method="GET",
                                      query_string="wsdl").respond_with_handler(
        _authorised(wsdl, seen))
    httpserver.expect_oneshot_request(base + "ecmapi.xsd", method="GET").respond_with_handler(
        _authorised(XSD, seen))
    return httpserver.url_for(base + "ecmapi.wsdl") + "?wsdl", seen


SECOND_PROCESS = """
import sys
from engage_soap import EngageClient, RetryPolicy, zeep_binding
url, cache, endpoint, user, password = sys.argv[1:]
with EngageClient(endpoint, user, password, wsdl=url, wsdl_cache_dir=cache, rate_limit=None,
                  retry=RetryPolicy.none(), timeout=5):
    print(len(zeep_binding.load_wsdl(url).operations))
"""


def test_wsdl_from_url_uses_basic_auth_and_a_disk_cache_shared_across_processes(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    url, seen = _serve_wsdl(httpserver)
    client = make_client(wsdl=url, wsdl_cache_dir=tmp_path)
    assert seen == [f"{USER}:{PASSWORD}"] * 2  # the WSDL, then the XSD it imports
    assert sorted(u.rsplit("/", 1)[1] for u in _cached_urls(tmp_path)) == [
        "ecmapi.wsdl?wsdl", "ecmapi.xsd"]
    serve(httpserver, "contactGet/email_found")
    assert client.contact_get(email="j.mcexample@example.com").id == 1001
    assert [(req.method, req.path.rsplit("/", 1)[1]) for req, _ in httpserver.log] == [
        ("GET", "ecmapi.wsdl"), ("GET", "ecmapi.xsd"), ("POST", "")]

    # From now on the server fails everything: a second process must not ask it at all.
    requests_before = len(httpserver.log)
    httpserver.clear_all_handlers()
    httpserver.expect_request(re.compile(".*")).respond_with_data(b"down", 500)
    proc = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", SECOND_PROCESS, url,
         str(tmp_path), httpserver.url_for(PATH), USER, PASSWORD],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "67"  # the whole contract, from the cache alone
    assert len(httpserver.log) == requests_before


def test_wsdl_url_importing_from_another_host_is_refused(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    assert httpserver.host == "localhost"
    other = httpserver.url_for("/elsewhere/ecmapi.xsd").replace("localhost", "127.0.0.1")
    wsdl = WSDL.replace(b'schemaLocation="ecmapi.xsd"', f'schemaLocation="{other}"'.encode())
    assert wsdl != WSDL
    url, _ = _serve_wsdl(httpserver, wsdl)
    with pytest.raises(ConfigurationError, match="another host"):
        make_client(wsdl=url, wsdl_cache_dir=tmp_path)
    wsdl_path = url.split("?")[0].removeprefix(httpserver.url_for("/")[:-1])
    assert [req.path for req, _ in httpserver.log] == [wsdl_path]  # nothing from elsewhere
    # the unused XSD expectation is fine; the refused import never reached the server
    httpserver.clear_all_handlers()


def test_wsdl_url_import_from_an_allowed_host_loads(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    other = httpserver.url_for("/elsewhere/ecmapi.xsd").replace("localhost", "127.0.0.1")
    wsdl = WSDL.replace(b'schemaLocation="ecmapi.xsd"', f'schemaLocation="{other}"'.encode())
    url, seen = _serve_wsdl(httpserver, wsdl)
    httpserver.expect_oneshot_request("/elsewhere/ecmapi.xsd").respond_with_data(
        XSD, content_type="text/xml")
    client = make_client(wsdl=url, wsdl_cache_dir=tmp_path, wsdl_allowed_hosts=["127.0.0.1"])
    assert any(req.path == "/elsewhere/ecmapi.xsd" for req, _ in httpserver.log)
    assert seen == [f"{USER}:{PASSWORD}"]  # the WSDL only: its XSD came from the other host
    serve(httpserver, "systemGetApiVersion/version")
    assert client.api_version() == "8"
    httpserver.clear_all_handlers()  # the XSD next to the WSDL was not needed


def test_wsdl_fetch_failure_is_a_configuration_error(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    httpserver.expect_request("/down/ecmapi.wsdl").respond_with_data(b"no", 503)
    with pytest.raises(ConfigurationError):
        make_client(wsdl=httpserver.url_for("/down/ecmapi.wsdl"), wsdl_cache_dir=tmp_path)
    assert _cached_urls(tmp_path) == []  # a failed fetch is not cached


def _cached_urls(folder: Path) -> list[str]:
    """The URLs held by the WSDL disk cache in ``folder`` (zeep's SQLite cache)."""
    db = folder / "wsdl-cache.sqlite"
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT url FROM request")]


def test_clients_from_one_source_share_one_parsed_wsdl(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(bundled_wsdl(), tmp_path / "ecmapi.wsdl")
    shutil.copy(bundled_xsd(), tmp_path / "ecmapi.xsd")
    parses: list[Any] = []
    real = zeep_binding.Document

    def counting(*args: Any, **kwargs: Any) -> Any:
        parses.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(zeep_binding, "Document", counting)
    first = make_client(wsdl=tmp_path / "ecmapi.wsdl")
    second = make_client(wsdl=str(tmp_path / ".." / tmp_path.name / "ecmapi.wsdl"))
    assert parses == [str(tmp_path / "ecmapi.wsdl")]
    loaded = zeep_binding.load_wsdl(tmp_path / "ecmapi.wsdl")
    assert first._loaded is second._loaded is loaded
    assert len(parses) == 1
    assert httpserver.log == []


def test_the_bundled_wsdl_loads_without_any_request(
        httpserver: HTTPServer, client: EngageClient) -> None:
    assert zeep_binding.load_wsdl(None) is zeep_binding.load_wsdl(bundled_wsdl())
    assert httpserver.log == []


def test_client_service_escape_hatch(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "systemGetApiVersion/version")
    assert client.service.systemGetApiVersion() == "8"
    assert_sent(httpserver, "systemGetApiVersion/version")


def test_api_version(httpserver: HTTPServer, client: EngageClient) -> None:
    serve(httpserver, "systemGetApiVersion/version")
    assert client.api_version() == "8"
    assert_sent(httpserver, "systemGetApiVersion/version")


@pytest.mark.parametrize("content", [
    b"", b"this is not XML", b"<definitions/>", b"<a><b></a>",
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>',
], ids=["empty", "text", "no-services", "broken", "external-entity"])
def test_garbage_wsdl_is_a_configuration_error(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path, content: bytes) -> None:
    path = tmp_path / f"{uuid.uuid4().hex}.wsdl"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError):
        make_client(wsdl=path)
    assert httpserver.log == []


def test_missing_wsdl_file_is_a_configuration_error(
        make_client: MakeClient, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        make_client(wsdl=tmp_path / "missing.wsdl")


@pytest.mark.parametrize("endpoint", [
    "ftp://example.com/api/soap/v8/", "example.com/api/soap/v8/", "", "http:///api/soap/v8/",
    "mailto:api@example.com", None, 42, b"https://example.com/api/soap/v8/",
])
def test_bad_endpoint_is_a_configuration_error(httpserver: HTTPServer, endpoint: Any) -> None:
    with pytest.raises(ConfigurationError):
        EngageClient(endpoint, USER, PASSWORD, rate_limit=None, retry=RetryPolicy.none(),
                     timeout=5)
    assert httpserver.log == []


@pytest.mark.parametrize("kwargs", [
    {"timeout": 0}, {"timeout": -1}, {"timeout": float("inf")}, {"timeout": "5"},
    {"username": ""}, {"password": None}, {"transport": object()},
    {"transport": MockTransport(lambda r: HttpReply(200, {}, b"")), "timeout": 5},
    {"verify": 1}, {"verify": "/no/such/ca-bundle.pem"}, {"cert": "/no/such/cert.pem"},
    {"max_reply_bytes": 0}, {"max_reply_bytes": True},
], ids=["timeout-0", "timeout-negative", "timeout-inf", "timeout-str", "blank-user",
        "password-none", "transport-without-request", "transport-and-timeout",
        "verify-int", "verify-missing-bundle", "cert-missing", "cap-0", "cap-bool"])
def test_bad_settings_are_configuration_errors(httpserver: HTTPServer,
                                               kwargs: dict[str, Any]) -> None:
    args = {"username": USER, "password": PASSWORD, **kwargs}
    with pytest.raises(ConfigurationError):
        EngageClient(httpserver.url_for(PATH), args.pop("username"), args.pop("password"),
                     rate_limit=None, retry=RetryPolicy.none(), **args)


def test_an_unusable_cache_folder_only_costs_the_cache(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    url, seen = _serve_wsdl(httpserver)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    client = make_client(wsdl=url, wsdl_cache_dir=not_a_folder / "cache")
    assert "contactGet" in client._loaded.operations
    assert len(seen) == 2
    assert any("no WSDL cache" in r.getMessage() for r in caplog.records)
