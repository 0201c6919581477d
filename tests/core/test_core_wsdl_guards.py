"""What loading a WSDL may read: a remote WSDL never reads local files or other origins,
local documents are capped like fetched ones, and what is not a WSDL says what it is."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from recorded import PASSWORD, USER

from engage_soap import AuthenticationError, ConfigurationError, EngageClient
from engage_soap.resources import bundled_wsdl, bundled_xsd

MakeClient = Callable[..., EngageClient]
WSDL = bundled_wsdl().read_bytes()
IMPORT = b'schemaLocation="ecmapi.xsd"'
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


def _serve(httpserver: HTTPServer, body: bytes, content_type: str = "text/xml") -> str:
    path = f"/{uuid.uuid4().hex}/ecmapi.wsdl"
    httpserver.expect_oneshot_request(path).respond_with_data(body, content_type=content_type)
    return httpserver.url_for(path)


@pytest.fixture
def local_xsd(tmp_path: Path) -> Path:
    path = tmp_path / "ecmapi.xsd"
    shutil.copy(bundled_xsd(), path)
    return path


def test_a_remote_wsdl_importing_a_local_file_is_refused(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path,
        local_xsd: Path) -> None:
    location = local_xsd.as_uri()  # a valid schema: without the guard it would compile
    url = _serve(httpserver, WSDL.replace(IMPORT, f'schemaLocation="{location}"'.encode()))
    with pytest.raises(ConfigurationError) as caught:
        make_client(wsdl=url, wsdl_cache_dir=tmp_path)
    assert location in str(caught.value)
    assert "never reads local files" in str(caught.value)


def test_a_remote_wsdl_importing_etc_passwd_is_refused(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    url = _serve(httpserver, WSDL.replace(IMPORT, b'schemaLocation="file:///etc/passwd"'))
    with pytest.raises(ConfigurationError, match=r"'file:///etc/passwd'.*never reads local"):
        make_client(wsdl=url, wsdl_cache_dir=tmp_path)


def test_a_remote_wsdl_import_of_a_local_wsdl_is_refused(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    shutil.copy(bundled_wsdl(), tmp_path / "ecmapi.wsdl")
    shutil.copy(bundled_xsd(), tmp_path / "ecmapi.xsd")
    location = (tmp_path / "ecmapi.wsdl").as_uri()
    wrapper = (f'<definitions xmlns="{WSDL_NS}" targetNamespace="urn:x">'
               f'<import namespace="http://ecircle.com/developer/ecmapi" '
               f'location="{location}"/></definitions>').encode()
    with pytest.raises(ConfigurationError, match=rf"'{re.escape(location)}'.*never reads local"):
        make_client(wsdl=_serve(httpserver, wrapper), wsdl_cache_dir=tmp_path / "cache")


def test_a_remote_wsdl_may_not_import_from_another_port_of_its_host(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    other = f"http://{httpserver.host}:1/ecmapi.xsd"  # same host, another origin
    url = _serve(httpserver, WSDL.replace(IMPORT, f'schemaLocation="{other}"'.encode()))
    with pytest.raises(ConfigurationError, match=re.escape(f"'{other}' on another host")):
        make_client(wsdl=url, wsdl_cache_dir=tmp_path)


def test_a_local_wsdl_still_imports_its_relative_local_schema(
        make_client: MakeClient, tmp_path: Path, local_xsd: Path) -> None:
    shutil.copy(bundled_wsdl(), tmp_path / "ecmapi.wsdl")
    client = make_client(wsdl=tmp_path / "ecmapi.wsdl")
    assert "contactGet" in client.operations()


def test_a_local_document_beyond_the_reply_cap_is_refused(
        make_client: MakeClient, tmp_path: Path) -> None:
    path = tmp_path / "big.wsdl"
    shutil.copy(bundled_wsdl(), path)
    shutil.copy(bundled_xsd(), tmp_path / "ecmapi.xsd")
    cap = len(WSDL) - 1  # the remote cap (max_reply_bytes) applies to local files too
    with pytest.raises(ConfigurationError, match=rf"big\.wsdl is larger than the {cap} byte"):
        make_client(wsdl=path, max_reply_bytes=cap)


def test_an_html_page_given_as_the_wsdl_says_what_was_received(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    page = b"<html><head><title>Sign in</title></head><body><p>Sign in</p></body></html>"
    url = _serve(httpserver, page, content_type="text/html; charset=utf-8")
    with pytest.raises(ConfigurationError) as caught:
        make_client(wsdl=url, wsdl_cache_dir=tmp_path)
    message = str(caught.value)
    assert "StopIteration" not in message
    assert "not a WSDL" in message
    assert "text/html; charset=utf-8" in message
    assert "<html><head><title>Sign in" in message


def test_a_refused_wsdl_fetch_is_an_authentication_error(
        httpserver: HTTPServer, make_client: MakeClient, tmp_path: Path) -> None:
    httpserver.expect_request("/locked/ecmapi.wsdl").respond_with_data(b"no", 401)
    with pytest.raises(AuthenticationError) as caught:
        make_client(wsdl=httpserver.url_for("/locked/ecmapi.wsdl"), wsdl_cache_dir=tmp_path)
    assert caught.value.status_code == 401
    assert "fetching the WSDL" in str(caught.value)
    assert PASSWORD not in str(caught.value) and USER not in str(caught.value)
