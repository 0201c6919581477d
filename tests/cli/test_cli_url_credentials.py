"""A password written into the endpoint URL shows neither on the error line nor in --json."""

from __future__ import annotations

import socket

import pytest
from cli_output import Invoke, one_json

SECRET = "pa:ss@w0rd-9c1e"


def _endpoint() -> str:
    with socket.socket() as sock:  # a closed port: nothing answers
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://user:{SECRET}@127.0.0.1:{port}/api/soap/v8/"


@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_credentials_in_the_endpoint_never_show(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                                json_flag: tuple[str, ...]) -> None:
    monkeypatch.setenv("ENGAGE_ENDPOINT", _endpoint())
    monkeypatch.setenv("ENGAGE_USERNAME", "api-user")
    monkeypatch.setenv("ENGAGE_PASSWORD", "another-password")
    result = invoke("ping", *json_flag)
    assert result.exit_code == 7, result.output
    shown = result.output + (result.stderr or "")
    assert SECRET not in shown and "pa:ss" not in shown and "w0rd" not in shown
    assert "***@127.0.0.1" in shown
    assert "username and password" in shown
    if json_flag:
        assert one_json(result.stdout)["error"]["type"] == "ConfigurationError"
