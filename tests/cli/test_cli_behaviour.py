"""Issue 10 on the command line: JSON usage errors, which step of send-prepared failed,
Ctrl-C, TLS and plain-http warnings, the sandbox command's options, hidden old flag names,
and adding a command with one decorator."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from cli_output import one_json
from click.testing import Result

import engage_soap.sandbox
from engage_soap.cli import (
    EXIT_CONFIG,
    EXIT_FAULT,
    EXIT_INTERRUPTED,
    EXIT_NOT_FOUND,
    EXIT_TRANSPORT,
    EXIT_USAGE,
    Session,
    build_client,
    cli,
    emit,
    engage_command,
)
from engage_soap.client import EngageClient
from engage_soap.pytest_plugin import EngageSandbox

Invoke = Callable[..., Result]
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"



# ------------------------------------------------------------------ --json and usage errors


@pytest.mark.parametrize(("args", "kind", "needle"), [
    (("contact", "get", "--json", "--bogus"), "NoSuchOption", "No such option '--bogus'"),
    (("--json", "--bogus", "ping"), "NoSuchOption", "No such option '--bogus'"),
    (("--json", "message", "send", "--recipient-id", "1"), "MissingParameter",
     "Missing option '--message-id'"),
    (("send-prepared", "--json", "--message-id", "1", "--email", "a@example.com",
      "--param", "NOEQUALS"), "BadParameter", "expected NAME=VALUE"),
    (("contact", "get", "--json"), "UsageError", "give exactly one of --email"),
    (("ping", "--json"), "UsageError", "no endpoint, username, password given"),
    (("sandbox", "--json", "--api-version", "abc"), "BadParameter", "'abc' is not digits"),
])
def test_usage_errors_with_json_print_the_error_object(invoke: Invoke, args: tuple[str, ...],
                                                       kind: str, needle: str) -> None:
    result = invoke(*args)
    assert result.exit_code == EXIT_USAGE
    data = one_json(result.stdout)
    assert data["ok"] is False
    assert data["error"]["type"] == kind
    assert data["error"]["exit_code"] == EXIT_USAGE
    assert needle in data["error"]["message"]
    assert f"Error: {data['error']['message']}" in result.stderr  # the usual stderr line too


def test_usage_error_without_json_prints_nothing_on_stdout(invoke: Invoke) -> None:
    result = invoke("contact", "get", "--bogus")
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""


def test_json_after_a_double_dash_is_an_argument(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("call", "systemGetApiVersion", "--", "--json")
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert "expected NAME=VALUE, got '--json'" in result.stderr


# ------------------------------------------------------------------ send-prepared steps


def test_create_if_missing_with_contact_id_is_a_usage_error(sb: EngageSandbox,
                                                            invoke: Invoke) -> None:
    result = invoke("send-prepared", "--message-id", "23541", "--contact-id", "33457",
                    "--create-if-missing")
    assert result.exit_code == EXIT_USAGE
    assert "--create-if-missing needs an identifier other than --contact-id" in result.stderr
    assert result.stdout == ""
    assert sb.state.calls == []


@pytest.fixture
def no_last_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    """The steps come from the error's .operation, never from the last SOAP request."""
    def refuse(self: EngageClient) -> None:
        raise AssertionError("the CLI read last_exchange")
    monkeypatch.setattr(EngageClient, "last_exchange", property(refuse))


@pytest.mark.parametrize(("fault_on", "args", "steps", "code"), [
    ("contactGet", ("--email", "j.mcexample@example.com"),
     ["lookup: EMAIL j.mcexample@example.com -> failed"], EXIT_TRANSPORT),
    ("contactCreate", ("--email", "fresh@example.com", "--create-if-missing"),
     ["lookup: EMAIL fresh@example.com -> not found", "create: failed"], EXIT_TRANSPORT),
    ("messageSendSingle", ("--external-id", "CRM-000042"),
     ["lookup: EXTERNAL CRM-000042 -> found", "send: message 23541 -> failed"],
     EXIT_TRANSPORT),
])
def test_send_prepared_names_the_failed_step(sb: EngageSandbox, invoke: Invoke,
                                             no_last_exchange: None, fault_on: str,
                                             args: tuple[str, ...], steps: list[str],
                                             code: int) -> None:
    sb.faults.inject(fault_on, "http_503")
    result = invoke("send-prepared", "--retries", "0", "--message-id", "23541", *args)
    assert result.exit_code == code, result.output
    assert result.stdout.splitlines() == steps
    # the message does not name the operation: the step comes from the error's .operation
    assert result.stderr == "error: HTTPStatusError: HTTP 503 with a reply that is not the API's\n"


def test_send_prepared_input_refused_before_any_step(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("send-prepared", "--message-id", "23541", "--email",
                    "j.mcexample@example.com", "--param", "A=bad\x01value")
    assert result.exit_code == EXIT_FAULT
    assert result.stdout == ""  # no step ran: none is reported
    assert result.stderr.startswith("error: InvalidInputError: ")
    assert sb.state.calls == []


def test_send_prepared_steps_stay_off_stdout_with_json(sb: EngageSandbox,
                                                       invoke: Invoke) -> None:
    result = invoke("send-prepared", "--json", "--message-id", "999", "--email",
                    "j.mcexample@example.com")
    assert result.exit_code == EXIT_NOT_FOUND
    assert one_json(result.stdout)["error"]["type"] == "NoSuchObjectError"


# ------------------------------------------------------------------ Ctrl-C


def test_ctrl_c_exits_130_with_one_line(sb: EngageSandbox, invoke: Invoke,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(self: EngageClient) -> str:
        raise KeyboardInterrupt
    monkeypatch.setattr(EngageClient, "api_version", interrupted)
    result = invoke("ping")
    assert result.exit_code == EXIT_INTERRUPTED == 130
    assert result.stderr == "interrupted\n"
    assert result.stdout == ""
    data = one_json(invoke("ping", "--json").stdout)
    assert data["error"] == {"type": "KeyboardInterrupt", "message": "interrupted",
                             "exit_code": 130}


def test_exit_code_table_in_help_lists_130(invoke: Invoke) -> None:
    assert "130 interrupted" in invoke("--help").stdout


# ------------------------------------------------------------------ TLS


@pytest.fixture
def https_endpoint(cert: tuple[str, str]) -> Iterator[str]:
    """An https server with a self-signed certificate answering systemGetApiVersion."""
    reply = (FIXTURES / "systemGetApiVersion" / "version.response.xml").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/api/soap/v8/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def https_env(https_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ENGAGE_ENDPOINT", https_endpoint)
    monkeypatch.setenv("ENGAGE_USERNAME", "u")
    monkeypatch.setenv("ENGAGE_PASSWORD", "pw-secret")
    return https_endpoint


def test_tls_failure_prints_the_whole_reason(https_env: str, invoke: Invoke) -> None:
    result = invoke("ping", "--retries", "0")
    assert result.exit_code == EXIT_TRANSPORT
    host = https_env.split("/")[2]
    assert result.stderr.startswith(f"error: TransportError: TLS failure talking to {host}: "
                                    "certificate verify failed: self-signed certificate")
    assert len(result.stderr.splitlines()) == 1


def test_ca_bundle_flag_env_and_file(https_env: str, invoke: Invoke, cert: tuple[str, str],
                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = f"ok: {https_env} answers, API version 8\n"
    result = invoke("ping", "--ca-bundle", cert[0])
    assert (result.exit_code, result.stdout) == (0, ok), result.output
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[engage]\nca_bundle = "{cert[0]}"\n', encoding="utf-8")
    result = invoke("--config", str(cfg), "-v", "ping")
    assert (result.exit_code, result.stdout) == (0, ok), result.output
    assert f"debug: ca_bundle {cert[0]} (from config file {cfg})" in result.stderr
    monkeypatch.setenv("ENGAGE_CA_BUNDLE", cert[0])
    result = invoke("ping")
    assert (result.exit_code, result.stdout) == (0, ok), result.output


def test_unreadable_ca_bundle_is_a_configuration_error(https_env: str, invoke: Invoke,
                                                       tmp_path: Path) -> None:
    result = invoke("ping", "--ca-bundle", str(tmp_path / "none.pem"))
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr.startswith("error: ConfigurationError: cannot load the CA bundle")


# ------------------------------------------------------------------ plain http


def test_plain_http_to_another_host_warns_in_one_line(sb: EngageSandbox,
                                                      invoke: Invoke) -> None:
    # 0.0.0.0 reaches this machine but is not a loopback name: the library warns
    endpoint = sb.url.replace("127.0.0.1", "0.0.0.0")
    result = invoke("ping", "--endpoint", endpoint)
    assert result.exit_code == 0, result.output
    port = endpoint.split(":")[2].split("/")[0]
    assert result.stderr == (f"warning: the endpoint http://0.0.0.0:{port}/ is not https: the "
                             "password goes over the network in clear text\n")


def test_plain_http_to_loopback_is_quiet(sb: EngageSandbox, invoke: Invoke) -> None:
    assert invoke("ping").stderr == ""


# ------------------------------------------------------------------ the sandbox command


@pytest.fixture
def run_args(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """engage_soap.sandbox.run replaced: records its arguments instead of serving."""
    seen: dict[str, Any] = {}

    def fake_run(host: str, port: int, **kwargs: Any) -> None:
        seen.update(kwargs, host=host, port=port)
    monkeypatch.setattr(engage_soap.sandbox, "run", fake_run)
    return seen


def test_sandbox_options_reach_run(invoke: Invoke, run_args: dict[str, Any]) -> None:
    result = invoke("sandbox", "--port", "0", "--latency", "0.25", "--attribute", "LOYALTY",
                    "--attribute", "TIER", "--api-version", "8.1")
    assert result.exit_code == 0, result.output
    assert run_args["latency"] == 0.25
    assert tuple(run_args["attributes"]) == ("LOYALTY", "TIER")
    assert run_args["api_version"] == "8.1"
    assert run_args["port"] == 0


@pytest.mark.parametrize(("args", "needle"), [
    (("--api-version", "abc"), "'abc' is not digits, optionally dotted"),
    (("--api-version", "8."), "is not digits"),
    (("--latency", "-1"), "--latency"),
    (("--latency", "soon"), "--latency"),
])
def test_sandbox_bad_options_exit_2(invoke: Invoke, run_args: dict[str, Any],
                                    args: tuple[str, ...], needle: str) -> None:
    result = invoke("sandbox", *args)
    assert result.exit_code == EXIT_USAGE
    assert needle in result.stderr
    assert run_args == {}


def test_sandbox_state_file_that_cannot_be_written_exit_7(invoke: Invoke,
                                                          tmp_path: Path) -> None:
    state = tmp_path / "missing-dir" / "state.json"
    result = invoke("sandbox", "--port", "0", "--state", str(state))
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr == (
        f"error: SandboxStateError: cannot start the sandbox on 127.0.0.1:0: cannot write the "
        f"sandbox state file {state}: its directory {state.parent} does not exist\n")


def test_sandbox_help_says_the_state_directory_must_exist(invoke: Invoke) -> None:
    text = " ".join(invoke("sandbox", "--help").stdout.split())
    assert "its directory must exist" in text
    assert "--latency SECONDS" in text and "--attribute NAME" in text


def test_unknown_attribute_needs_the_sandbox_to_know_it(sb: EngageSandbox,
                                                        invoke: Invoke) -> None:
    result = invoke("contact", "create", "--email", "new@example.com", "--attr", "LOYALTY=gold")
    assert result.exit_code == EXIT_FAULT
    assert "LOYALTY" in result.stderr


# ------------------------------------------------------------------ one name per identifier


@pytest.mark.parametrize("command", [("contact", "get"), ("contact", "create"),
                                     ("send-prepared",)])
def test_help_shows_only_the_new_identifier_names(invoke: Invoke,
                                                  command: tuple[str, ...]) -> None:
    text = invoke(*command, "--help").stdout
    for flag in ("--email", "--mobile-number", "--app-alias", "--external-id"):
        assert flag in text
    assert ("--contact-id" in text) is (command != ("contact", "create"))
    for old in ("--mobile ", "--mobile,", "--external ", "--external,", "--id "):
        assert old not in text


def test_contact_create_old_names_still_work(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--mobile", "+4917", "--external", "CRM-9", "--json")
    assert result.exit_code == 0, result.output
    contact = one_json(result.stdout)["contact"]
    assert (contact["mobile_number"], contact["external_id"]) == ("+4917", "CRM-9")


def test_contact_create_has_no_contact_id(invoke: Invoke) -> None:
    result = invoke("contact", "create", "--contact-id", "5")
    assert result.exit_code == EXIT_USAGE
    assert "No such option '--contact-id'" in result.stderr


# ------------------------------------------------------------------ adding a command


@pytest.fixture
def added_command() -> Iterator[click.Command]:
    """A command as the other commands are written: one decorator, a few lines."""
    @cli.command("probe")
    @click.option("--twice", is_flag=True)
    @engage_command
    def probe(session: Session, twice: bool) -> None:
        from engage_soap.transport import HttpTransport

        settings = session.settings
        HttpTransport(timeout=settings.timeout, verify=settings.verify).close()
        with session.client() as client:
            versions = [client.api_version() for _ in range(2 if twice else 1)]
        if settings.json:
            emit({"ok": True, "versions": versions, "timeout": settings.timeout})
        else:
            click.echo(" ".join(versions))
        build_client(settings).close()  # what a command may also do itself

    try:
        yield probe
    finally:
        cli.commands.pop("probe")


def test_a_new_command_gets_options_json_and_exit_codes(sb: EngageSandbox, invoke: Invoke,
                                                        added_command: click.Command) -> None:
    assert invoke("probe", "--twice").stdout == "8 8\n"
    data = one_json(invoke("--timeout", "4", "probe", "--json").stdout)
    assert data == {"ok": True, "versions": ["8"], "timeout": 4.0}
    sb.faults.inject("systemGetApiVersion", "throttle")
    result = invoke("probe", "--json", "--retries", "0")
    assert result.exit_code == EXIT_TRANSPORT
    assert one_json(result.stdout)["error"]["type"] == "RateLimitedError"
    assert result.stderr.startswith("error: RateLimitedError: ")
