"""The public import surface and the credential-free last_exchange."""

from __future__ import annotations

import dataclasses
import importlib

import pytest
from pytest_httpserver import HTTPServer
from recorded import PASSWORD, TOKEN, load, serve

import engage_soap
import engage_soap.errors
from engage_soap import ContactNotFoundError, EngageClient, EngageError

PUBLIC = [
    "AsyncEngageClient", "Attachment", "AuthenticationError", "BulkReport",
    "ConfigurationError", "Contact",
    "ContactNotFoundError", "EngageClient", "EngageError", "EngageFault", "Exchange",
    "HTTPStatusError", "Identifier", "IdentifierType", "InvalidInputError",
    "InvalidParameterError", "NoSuchObjectError", "ObjectAlreadyExistsError",
    "PermissionDeniedError", "ProtocolError", "RateLimitedError", "RateLimiter",
    "RequestTimeoutError", "RetryPolicy", "SendResult", "TransportError",
    "UnexpectedServerError", "__version__",
]


def test_public_names_are_pinned() -> None:
    assert sorted(engage_soap.__all__) == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_public_name_imports_from_the_top_level(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from engage_soap import {name}", namespace)
    assert namespace[name] is getattr(importlib.import_module("engage_soap"), name)


def test_every_exception_class_is_re_exported() -> None:
    classes = [n for n in engage_soap.errors.__all__
               if isinstance(getattr(engage_soap.errors, n), type)]
    assert len(classes) == 16
    for name in classes:
        assert getattr(engage_soap, name) is getattr(engage_soap.errors, name), name
        assert issubclass(getattr(engage_soap, name), EngageError)
    defined = {n for n, v in vars(engage_soap.errors).items()
               if isinstance(v, type) and issubclass(v, EngageError)}
    assert defined == set(classes)


def _assert_credential_free(value: object) -> None:
    text = repr(value) + str(value)
    assert PASSWORD not in text and TOKEN not in text


def test_last_exchange_has_bodies_and_status_but_no_credentials(
        httpserver: HTTPServer, client: EngageClient) -> None:
    assert client.last_exchange is None
    serve(httpserver, "contactGet/email_found", "contactGet/not_found")
    client.contact_get(email="j.mcexample@example.com")
    ex = client.last_exchange
    assert ex is not None
    assert ex.operation == "contactGet"
    assert ex.url == httpserver.url_for("/api/soap/v8/")
    assert ex.status_code == 200
    assert ex.request_body == httpserver.log[0][0].get_data()
    assert ex.response_body == load("contactGet/email_found").response
    assert ex.elapsed >= 0
    assert "contactGet" in repr(ex)

    with pytest.raises(ContactNotFoundError):
        client.contact_get(email="new.contact@example.com")
    ex = client.last_exchange
    assert ex is not None and ex.status_code == 500
    assert ex.response_body == load("contactGet/not_found").response

    # the request did carry credentials on the wire...
    assert httpserver.log[1][0].headers["Authorization"] == f"Basic {TOKEN}"
    # ...but nothing the client keeps does
    for headers in (ex.request_headers, ex.response_headers):
        assert "authorization" not in {k.lower() for k in headers}
    for f in dataclasses.fields(ex):
        _assert_credential_free(getattr(ex, f.name))
    _assert_credential_free(ex)
    _assert_credential_free(client)
    for body in (ex.request_body, ex.response_body or b""):
        assert PASSWORD.encode() not in body and TOKEN.encode() not in body
