"""Each command's text and JSON output and exit codes, against the plugin's sandbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_output import one_json
from click.testing import Result

from engage_soap.cli import (
    EXIT_AUTH,
    EXIT_CONFIG,
    EXIT_FAULT,
    EXIT_NOT_FOUND,
    EXIT_TRANSPORT,
    EXIT_USAGE,
)
from engage_soap.pytest_plugin import EngageSandbox

Invoke = Callable[..., Result]


def settled_operations(sb: EngageSandbox, expected: int) -> list[str | None]:
    """The operations of the sandbox's call log once ``expected`` calls are in it.

    The sandbox logs a call just after sending its reply, so the client may see the
    reply before the call is logged: wait (briefly) for the log to catch up.
    """
    deadline = time.monotonic() + 5
    while len(sb.state.calls) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # a retry, if there were one, would show up now
    return [call.operation for call in sb.state.calls]



# ------------------------------------------------------------------ contact get


@pytest.mark.parametrize(("flag", "value", "contact_id"), [
    ("--email", "j.mcexample@example.com", 33457),
    ("--mobile-number", "+4915112345678", 33458),
    ("--app-alias", "app-7f3c9a21", 33459),
    ("--external-id", "CRM-000042", 33460),
    ("--contact-id", "33457", 33457),
    # the old spellings still work (hidden from --help)
    ("--mobile", "+4915112345678", 33458),
    ("--external", "CRM-000042", 33460),
    ("--id", "33457", 33457),
])
def test_contact_get_text(sb: EngageSandbox, invoke: Invoke, flag: str, value: str,
                          contact_id: int) -> None:
    result = invoke("contact", "get", flag, value)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"contact id:  {contact_id}"
    assert result.stderr == ""


def test_contact_get_text_shows_fields_and_attributes(sb: EngageSandbox,
                                                      invoke: Invoke) -> None:
    result = invoke("contact", "get", "--email", "j.mcexample@example.com")
    assert result.stdout.splitlines() == [
        "contact id:  33457",
        "email:       j.mcexample@example.com",
        "attribute:   CITY = Munich",
        "attribute:   FIRSTNAME = J.",
        "attribute:   LASTNAME = McExample",
    ]


def test_contact_get_json(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "get", "--mobile-number", "+4915112345678", "--json")
    assert result.exit_code == 0
    data = one_json(result.stdout)
    assert data == {"ok": True, "lookup": {"type": "MOBILE", "value": "+4915112345678"},
                    "contact": {"id": 33458, "email": "mo.bile@example.com",
                                "mobile_number": "+4915112345678", "app_alias": None,
                                "external_id": None,
                                "attributes": {"FIRSTNAME": "Mo", "LASTNAME": "Bile"}}}


def test_global_options_go_before_or_after_the_subcommand(sb: EngageSandbox,
                                                          invoke: Invoke) -> None:
    before = invoke("--json", "contact", "get", "--contact-id", "33459")
    after = invoke("contact", "get", "--contact-id", "33459", "--json")
    assert before.exit_code == after.exit_code == 0
    assert one_json(before.stdout) == one_json(after.stdout)


@pytest.mark.parametrize("args", [
    (),
    ("--email", "a@example.com", "--contact-id", "1"),
])
def test_contact_get_needs_exactly_one_identifier(sb: EngageSandbox, invoke: Invoke,
                                                  args: tuple[str, ...]) -> None:
    result = invoke("contact", "get", *args)
    assert result.exit_code == EXIT_USAGE
    assert ("exactly one of --email, --mobile-number, --app-alias, --external-id, "
            "--contact-id") in result.stderr
    assert sb.state.calls == []


def test_contact_get_not_found_exit_3(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "get", "--email", "nobody@example.com")
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stdout == ""
    assert result.stderr == ("error: ContactNotFoundError: contactGet: Contact with "
                             "identifier=nobody@example.com does not exist. "
                             "[NO_SUCH_OBJECT]\n")


def test_error_with_json_also_prints_a_json_error(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("--json", "contact", "get", "--email", "nobody@example.com")
    assert result.exit_code == EXIT_NOT_FOUND
    data = one_json(result.stdout)
    assert data["ok"] is False
    assert data["error"] == {"type": "ContactNotFoundError", "exit_code": EXIT_NOT_FOUND,
                             "message": "contactGet: Contact with identifier="
                                        "nobody@example.com does not exist. [NO_SUCH_OBJECT]"}
    assert result.stderr.startswith("error: ContactNotFoundError: ")


# ------------------------------------------------------------------ contact create


def test_contact_create_text(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--email", "new@example.com",
                    "--attr", "FIRSTNAME=New", "--attr", "CITY=a=b")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "created: contact id 33461"
    assert "attribute:   CITY = a=b" in lines
    stored = sb.state.find_contact("EMAIL", "new@example.com")
    assert stored is not None and stored.attributes == {"FIRSTNAME": "New", "CITY": "a=b"}


def test_contact_create_json(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--external-id", "CRM-1", "--mobile-number", "+491",
                    "--json")
    assert result.exit_code == 0
    data = one_json(result.stdout)
    assert data["created"] is True
    assert data["contact"] == {"id": 33461, "email": None, "mobile_number": "+491",
                               "app_alias": None, "external_id": "CRM-1", "attributes": {}}


def test_contact_create_existing_is_a_fault_exit_4(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--email", "j.mcexample@example.com")
    assert result.exit_code == EXIT_FAULT
    assert result.stderr.startswith("error: ObjectAlreadyExistsError: ")


@pytest.mark.parametrize("attr", ["NOVALUE", "=x"])
def test_contact_create_bad_attr_is_usage_error(sb: EngageSandbox, invoke: Invoke,
                                                attr: str) -> None:
    result = invoke("contact", "create", "--email", "x@example.com", "--attr", attr)
    assert result.exit_code == EXIT_USAGE
    assert "expected NAME=VALUE" in result.stderr
    assert sb.state.calls == []


def test_contact_create_needs_an_identifier(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--attr", "A=1")
    assert result.exit_code == EXIT_USAGE
    assert ("at least one of --email, --mobile-number, --app-alias, --external-id"
            in result.stderr)
    assert "--contact-id" not in result.stderr


def test_contact_create_invalid_input_exit_4(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("contact", "create", "--email", "bad\x01@example.com")
    assert result.exit_code == EXIT_FAULT
    assert result.stderr.startswith("error: InvalidInputError: ")
    assert sb.state.calls == []


# ------------------------------------------------------------------ message send


def test_message_send_text_and_outbox(sb: EngageSandbox, invoke: Invoke,
                                      tmp_path: Path) -> None:
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(b"%PDF-1.4 test")
    result = invoke("message", "send", "--message-id", "23541", "--recipient-id", "33457",
                    "--param", "FIRSTNAME=Jo", "--param", "ORDER=42", "--attach", str(pdf))
    assert result.exit_code == 0, result.output
    assert result.stdout == "send: message 23541 -> contact 33457: sent\n"
    [entry] = sb.outbox
    assert (entry.message_id, entry.recipient_id) == (23541, 33457)
    assert entry.parameter_dict == {"FIRSTNAME": "Jo", "ORDER": "42"}
    [attachment] = entry.attachments
    assert (attachment.name, attachment.content_type, attachment.content) == (
        "invoice.pdf", "application/pdf", b"%PDF-1.4 test")


def test_message_send_json(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("message", "send", "--message-id", "23542", "--recipient-id", "33458",
                    "--json")
    assert result.exit_code == 0
    assert one_json(result.stdout) == {"ok": True, "message_id": 23542, "recipient_id": 33458,
                                       "sent": True}
    assert len(sb.outbox) == 1


def test_message_send_unknown_message_exit_3(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("message", "send", "--message-id", "999", "--recipient-id", "33457")
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stderr.startswith("error: NoSuchObjectError: messageSendSingle: Message")
    assert sb.outbox == []


@pytest.mark.parametrize(("args", "needle"), [
    (("--message-id", "0", "--recipient-id", "1"), "--message-id"),
    (("--message-id", "x", "--recipient-id", "1"), "--message-id"),
    (("--recipient-id", "1"), "Missing option '--message-id'"),
    (("--message-id", "1", "--recipient-id", "1", "--param", "NOEQUALS"), "NAME=VALUE"),
    (("--message-id", "1", "--recipient-id", "1", "--param", "A=1", "--param", "A=2"),
     "given twice"),
    (("--message-id", "1", "--recipient-id", "1", "--attach", "/nonexistent/file"),
     "--attach"),
    (("--message-id", "1", "--recipient-id", "1", "--bogus"), "No such option"),
])
def test_message_send_bad_flags_exit_2(sb: EngageSandbox, invoke: Invoke,
                                       args: tuple[str, ...], needle: str) -> None:
    result = invoke("message", "send", *args)
    assert result.exit_code == EXIT_USAGE
    assert needle in result.stderr
    assert "Traceback" not in result.output
    assert sb.state.calls == []


def test_message_send_sender_profile_unsupported_exit_7(sb: EngageSandbox,
                                                        invoke: Invoke) -> None:
    result = invoke("message", "send", "--message-id", "23541", "--recipient-id", "33457",
                    "--sender-profile", "tls-profile")
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr.startswith("error: ConfigurationError: sender_profile was given")
    assert sb.outbox == []


def test_injected_http_503_on_send_exit_5(sb: EngageSandbox, invoke: Invoke) -> None:
    sb.faults.inject("messageSendSingle", "http_503")
    result = invoke("message", "send", "--message-id", "23541", "--recipient-id", "33457")
    assert result.exit_code == EXIT_TRANSPORT
    assert result.stderr.startswith("error: HTTPStatusError: ")
    # a send that may have reached the server is never retried
    assert settled_operations(sb, 1) == ["messageSendSingle"]


# ------------------------------------------------------------------ send-prepared


def test_send_prepared_text(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("send-prepared", "--message-id", "23541",
                    "--email", "j.mcexample@example.com", "--param", "FIRSTNAME=Jo")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "lookup: EMAIL j.mcexample@example.com -> contact id 33457",
        "send: message 23541 -> contact 33457: sent",
    ]
    assert sb.outbox[-1].parameter_dict == {"FIRSTNAME": "Jo"}


def test_send_prepared_json(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("send-prepared", "--json", "--message-id", "23543",
                    "--external-id", "CRM-000042")
    data = one_json(result.stdout)
    assert result.exit_code == 0
    assert data["lookup"] == {"type": "EXTERNAL", "value": "CRM-000042"}
    assert data["created"] is False
    assert (data["message_id"], data["recipient_id"], data["sent"]) == (23543, 33460, True)
    assert "sandbox_outbox" not in data  # only with --sandbox


def test_send_prepared_create_if_missing(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("send-prepared", "--message-id", "23541", "--email", "fresh@example.com",
                    "--create-if-missing")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "lookup: EMAIL fresh@example.com -> not found",
        "create: contact id 33461 created",
        "send: message 23541 -> contact 33461: sent",
    ]
    assert sb.outbox[-1].email_address == "fresh@example.com"


def test_send_prepared_not_found_exit_3(sb: EngageSandbox, invoke: Invoke) -> None:
    result = invoke("send-prepared", "--message-id", "23541", "--email", "nobody@example.com")
    assert result.exit_code == EXIT_NOT_FOUND
    assert result.stdout == "lookup: EMAIL nobody@example.com -> not found\n"
    assert result.stderr.startswith("error: ContactNotFoundError: ")
    assert sb.outbox == []


@pytest.mark.parametrize(("flag", "value", "found"), [
    ("--email", "j.mcexample@example.com", "found"),  # the facade does not say which id
    ("--contact-id", "33457", "contact id 33457"),
])
def test_send_prepared_unknown_message_shows_steps(sb: EngageSandbox, invoke: Invoke, flag: str,
                                                   value: str, found: str) -> None:
    result = invoke("send-prepared", "--message-id", "999", flag, value)
    assert result.exit_code == EXIT_NOT_FOUND
    kind = "EMAIL" if flag == "--email" else "ID"
    assert result.stdout.splitlines() == [
        f"lookup: {kind} {value} -> {found}",
        "send: message 999 -> failed",
    ]
    assert result.stderr.startswith("error: NoSuchObjectError: messageSendSingle: ")


def test_send_prepared_with_embedded_sandbox(invoke: Invoke, tmp_path: Path) -> None:
    """The main job, in-process: lookup, send and what the sandbox's outbox received."""
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"hello")
    result = invoke("send-prepared", "--sandbox", "--message-id", "23541",
                    "--email", "j.mcexample@example.com", "--param", "FIRSTNAME=Jo",
                    "--attach", str(notes))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "lookup: EMAIL j.mcexample@example.com -> contact id 33457",
        "send: message 23541 -> contact 33457: sent",
        "sandbox outbox: message 23541 -> contact 33457 <j.mcexample@example.com>, group 4711",
        "  parameter FIRSTNAME = Jo",
        "  attachment notes.txt (text/plain, 5 bytes)",
    ]


def test_send_prepared_with_embedded_sandbox_json(invoke: Invoke) -> None:
    result = invoke("--sandbox", "--json", "send-prepared", "--message-id", "23541",
                    "--email", "j.mcexample@example.com", "--param", "FIRSTNAME=Jo")
    assert result.exit_code == 0, result.output
    data = one_json(result.stdout)
    assert data["sandbox_outbox"] == [{
        "message_id": 23541, "recipient_id": 33457, "email_address": "j.mcexample@example.com",
        "group_id": 4711, "parameters": {"FIRSTNAME": "Jo"}, "attachments": []}]


def test_sandbox_flag_conflicts_with_endpoint(invoke: Invoke) -> None:
    result = invoke("--sandbox", "--endpoint", "http://127.0.0.1:9/", "ping")
    assert result.exit_code == EXIT_USAGE
    assert "--sandbox cannot be combined with --endpoint" in result.stderr


# ------------------------------------------------------------------ ping


def test_ping_text_and_json(sb: EngageSandbox, invoke: Invoke) -> None:
    text = invoke("ping")
    assert text.exit_code == 0
    assert text.stdout == f"ok: {sb.url} answers, API version 8\n"
    data = one_json(invoke("ping", "--json").stdout)
    assert data == {"ok": True, "endpoint": sb.url, "api_version": "8"}


def test_ping_embedded_sandbox(invoke: Invoke) -> None:
    result = invoke("ping", "--sandbox")
    assert result.exit_code == 0
    assert result.stdout.startswith("ok: http://127.0.0.1:")


# ------------------------------------------------------------------ failures by class


def test_injected_transport_fault_exit_5(sb: EngageSandbox, invoke: Invoke) -> None:
    sb.faults.inject("contactGet", "reset")
    result = invoke("--retries", "0", "contact", "get", "--email", "j.mcexample@example.com")
    assert result.exit_code == EXIT_TRANSPORT
    assert result.stderr.startswith("error: TransportError: ")
    assert len(result.stderr.splitlines()) == 1


def test_injected_proxy_page_is_retried_for_reads(sb: EngageSandbox, invoke: Invoke) -> None:
    sb.faults.inject("systemGetApiVersion", "http_502", times=1)
    result = invoke("ping")
    assert result.exit_code == 0, result.output
    assert "retrying" in result.stderr
    assert settled_operations(sb, 2) == ["systemGetApiVersion"] * 2


def test_throttled_exit_5(sb: EngageSandbox, invoke: Invoke) -> None:
    sb.faults.inject(None, "throttle")
    result = invoke("--retries", "0", "ping")
    assert result.exit_code == EXIT_TRANSPORT
    assert result.stderr.startswith("error: RateLimitedError: ")


def test_wrong_password_exit_6(sb: EngageSandbox, invoke: Invoke,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_PASSWORD", "not-the-password")
    result = invoke("contact", "get", "--contact-id", "33457")
    assert result.exit_code == EXIT_AUTH
    assert result.stderr.startswith("error: AuthenticationError: ")
    assert "not-the-password" not in result.output


def test_unreachable_endpoint_exit_5(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_PASSWORD", "whatever-secret")
    result = invoke("--endpoint", "http://127.0.0.1:1/api/soap/v8/", "--username", "u",
                    "--retries", "0", "ping")
    assert result.exit_code == EXIT_TRANSPORT
    assert result.stderr == ("error: TransportError: cannot connect to 127.0.0.1:1 "
                             "(Connection refused); nothing was sent\n")


def test_bad_endpoint_is_a_configuration_error(invoke: Invoke,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_PASSWORD", "whatever-secret")
    result = invoke("--endpoint", "ftp://host/", "--username", "u", "ping")
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr.startswith("error: ConfigurationError: endpoint must be an http(s)")


def test_version_and_help(invoke: Invoke) -> None:
    assert invoke("--version").stdout.startswith("engage-soap, version ")
    for args in [("--help",), ("contact", "get", "--help"), ("send-prepared", "-h"),
                 ("sandbox", "--help")]:
        result = invoke(*args)
        assert result.exit_code == 0
        assert result.stdout.startswith("Usage: engage-soap")
