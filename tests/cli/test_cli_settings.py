"""Settings: command line > environment > config file > default, key by key; the file's rules;
where each value came from (-v); password warnings; the exit code table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engage_soap.cli import EXIT_AUTH, EXIT_CONFIG, EXIT_TRANSPORT, EXIT_USAGE, exit_code_for
from engage_soap.config import KEYS, default_config_path, load_config_file
from engage_soap.errors import (
    AuthenticationError,
    ConfigurationError,
    ContactNotFoundError,
    EngageError,
    EngageFault,
    HTTPStatusError,
    InvalidInputError,
    NoSuchObjectError,
    ObjectAlreadyExistsError,
    ProtocolError,
    RateLimitedError,
    RequestTimeoutError,
    TransportError,
)
from engage_soap.pytest_plugin import EngageSandbox

Invoke = Callable[..., Result]
DEAD = "http://127.0.0.1:1/api/soap/v8/"  # nothing listens on port 1


def write_config(path: Path, text: str | None = None, mode: int = 0o600,
                 **values: object) -> Path:
    lines = ["[engage]"] + [f"{key} = {value!r}" if not isinstance(value, str)
                            else f'{key} = "{value}"' for key, value in values.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else "\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(mode)
    return path


def sources(stderr: str) -> dict[str, str]:
    """The -v lines about settings: {"endpoint": "<value> (<source>)", ...}."""
    out = {}
    for line in stderr.splitlines():
        name, _, rest = line.removeprefix("debug: ").partition(" ")
        if line.startswith("debug: ") and name in KEYS and "(" in rest:
            out[name] = rest
    return out


# ------------------------------------------------------------------ precedence and -v


def test_precedence_key_by_key_with_sources(engage_sandbox: EngageSandbox, invoke: Invoke,
                                            tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    cfg = write_config(tmp_path / "c.toml", endpoint=DEAD, username=sb.username,
                       password=sb.password, timeout=7, retries=1)
    monkeypatch.setenv("ENGAGE_SOAP_CONFIG", str(cfg))
    monkeypatch.setenv("ENGAGE_ENDPOINT", sb.url)  # env beats the file's dead endpoint
    monkeypatch.setenv("ENGAGE_RETRIES", "0")
    monkeypatch.setenv("ENGAGE_TIMEOUT", "8")
    monkeypatch.setenv("ENGAGE_RATE_STORE", str(tmp_path / "rate.json"))
    result = invoke("-v", "ping", "--timeout", "9")  # the flag beats env and file
    assert result.exit_code == 0, result.output
    assert sources(result.stderr) == {
        "endpoint": f"{sb.url} (from environment ENGAGE_ENDPOINT)",
        "username": f"{sb.username} (from config file {cfg})",
        "password": f"*** (from config file {cfg})",
        "wsdl": "bundled (default)",
        "timeout": "9 s (from command line)",
        "retries": "0 (from environment ENGAGE_RETRIES)",
        "ca_bundle": "default (default)",
        "rate_store": f"{tmp_path / 'rate.json'} (from environment ENGAGE_RATE_STORE)",
        "protocol": "from the endpoint (default)",
    }
    assert sb.password not in result.output


def test_file_values_and_defaults(engage_sandbox: EngageSandbox, invoke: Invoke,
                                  tmp_path: Path) -> None:
    sb = engage_sandbox
    cfg = write_config(tmp_path / "c.toml", endpoint=sb.url, username=sb.username,
                       password=sb.password, retries=1)
    result = invoke("-v", "--config", str(cfg), "ping")
    assert result.exit_code == 0, result.output
    found = sources(result.stderr)
    assert found["retries"] == f"1 (from config file {cfg})"
    assert found["timeout"] == "30 s (default)"


def test_options_before_and_after_the_subcommand(engage_sandbox: EngageSandbox,
                                                 invoke: Invoke,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    monkeypatch.setenv("ENGAGE_PASSWORD", sb.password)
    monkeypatch.setenv("ENGAGE_TIMEOUT", "5")
    result = invoke("--endpoint", sb.url, "-v", "--timeout", "6", "ping",
                    "--username", sb.username, "--retries", "0")
    assert result.exit_code == 0, result.output
    found = sources(result.stderr)
    assert found["endpoint"] == f"{sb.url} (from command line)"
    assert found["timeout"] == "6 s (from command line)"
    assert found["username"] == f"{sb.username} (from command line)"
    assert found["retries"] == "0 (from command line)"
    # after the subcommand wins over before it
    result = invoke("--timeout", "6", "ping", "--endpoint", sb.url, "--username", sb.username,
                    "--timeout", "4", "-v")
    assert sources(result.stderr)["timeout"] == "4 s (from command line)"


def test_retries_from_file_and_environment(engage_sandbox: EngageSandbox, invoke: Invoke,
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    for name, value in sb.env().items():
        monkeypatch.setenv(name, value)

    def attempts(*args: str) -> int:
        sb.state.calls.clear()
        sb.faults.inject("systemGetApiVersion", "http_502")  # every time
        result = invoke(*args, "ping")
        assert result.exit_code == EXIT_TRANSPORT, result.output
        sb.faults.clear()
        time.sleep(0.1)  # the sandbox logs a call just after its reply
        return len(sb.state.calls)

    cfg = write_config(tmp_path / "c.toml", retries=1)
    assert attempts("--config", str(cfg)) == 2
    monkeypatch.setenv("ENGAGE_RETRIES", "0")
    assert attempts("--config", str(cfg)) == 1
    assert attempts("--retries", "2") == 3


def test_missing_endpoint_is_a_clear_usage_error(invoke: Invoke) -> None:
    result = invoke("contact", "get", "--email", "a@example.com")
    assert result.exit_code == EXIT_USAGE
    assert "Error: no endpoint, username, password given" in result.stderr
    assert "ENGAGE_ENDPOINT" in result.stderr and "ENGAGE_PASSWORD" in result.stderr
    assert "Traceback" not in result.output


def test_missing_password_only(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_ENDPOINT", DEAD)
    monkeypatch.setenv("ENGAGE_USERNAME", "u")
    result = invoke("ping")
    assert result.exit_code == EXIT_USAGE
    assert "no password given: use ENGAGE_PASSWORD" in result.stderr


@pytest.mark.parametrize(("var", "value", "code", "needle"), [
    ("ENGAGE_TIMEOUT", "soon", EXIT_USAGE, "ENGAGE_TIMEOUT"),
    ("ENGAGE_TIMEOUT", "0", EXIT_USAGE, "ENGAGE_TIMEOUT"),
    ("ENGAGE_TIMEOUT", "nan", EXIT_CONFIG, "timeout must be a finite number"),
    ("ENGAGE_RETRIES", "-1", EXIT_USAGE, "ENGAGE_RETRIES"),
])
def test_bad_values_in_the_environment(invoke: Invoke, monkeypatch: pytest.MonkeyPatch,
                                       var: str, value: str, code: int, needle: str) -> None:
    monkeypatch.setenv("ENGAGE_PASSWORD", "pw-1234")
    monkeypatch.setenv(var, value)
    result = invoke("ping", "--endpoint", DEAD, "--username", "u")
    assert result.exit_code == code, result.output
    assert needle in result.stderr


def test_empty_env_values_count_as_unset(engage_sandbox: EngageSandbox, invoke: Invoke,
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    cfg = write_config(tmp_path / "c.toml", endpoint=sb.url, username=sb.username,
                       password=sb.password)
    monkeypatch.setenv("ENGAGE_USERNAME", "")
    monkeypatch.setenv("ENGAGE_TIMEOUT", "")
    assert invoke("--config", str(cfg), "ping").exit_code == 0


# ------------------------------------------------------------------ where the file is


def test_config_path_lookup(tmp_path: Path) -> None:
    assert default_config_path({"ENGAGE_SOAP_CONFIG": str(tmp_path / "x.toml")}) \
        == tmp_path / "x.toml"
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) \
        == tmp_path / "engage-soap" / "config.toml"
    home = Path("~").expanduser()
    assert default_config_path({}) == home / ".config" / "engage-soap" / "config.toml"


def test_default_user_file_is_read_when_present(engage_sandbox: EngageSandbox, invoke: Invoke,
                                                tmp_path: Path) -> None:
    sb = engage_sandbox
    # the isolated_env fixture points XDG_CONFIG_HOME at tmp_path / "xdg"
    cfg = write_config(tmp_path / "xdg" / "engage-soap" / "config.toml", endpoint=sb.url,
                       username=sb.username, password=sb.password)
    result = invoke("ping", "-v")
    assert result.exit_code == 0, result.output
    assert sources(result.stderr)["endpoint"] == f"{sb.url} (from config file {cfg})"


def test_env_config_file_must_exist(invoke: Invoke, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGE_SOAP_CONFIG", str(tmp_path / "none.toml"))
    result = invoke("ping")
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr.startswith("error: ConfigurationError: cannot read config file")


def test_explicit_missing_config_file_exit_7(invoke: Invoke, tmp_path: Path) -> None:
    for args in (("--config", str(tmp_path / "missing.toml"), "ping"),
                 ("ping", "--config", str(tmp_path / "missing.toml"))):
        result = invoke(*args)
        assert result.exit_code == EXIT_CONFIG
        assert result.stderr.startswith("error: ConfigurationError: cannot read config file")


# ------------------------------------------------------------------ what the file may hold


@pytest.mark.parametrize(("text", "match"), [
    ("[engage\n", "not valid TOML"),
    ("engage = 1\n", "must be a table"),
    ('endpoint = "https://x/"\n', "only an [engage] table is allowed, found endpoint"),
    ('[engage]\nendpoint = "https://x/"\n[other]\nkey = 1\n',
     "only an [engage] table is allowed, found other"),
    ('[engage]\npasword = "typo"\n', "unknown key(s) in [engage]: pasword (known: endpoint, "
                                     "username, password, wsdl, timeout, retries, ca_bundle, "
                                     "rate_store, protocol)"),
    ("[engage.sub]\nx = 1\n", "unknown key(s) in [engage]: sub"),
    ("[engage]\nendpoint = 5\n", "endpoint must be a string"),
    ("[engage]\ntimeout = 'soon'\n", "timeout must be a number"),
    ("[engage]\ntimeout = -1\n", "timeout: -1.0 is not in the range x>0"),
    ("[engage]\ntimeout = true\n", "timeout must be a number"),
    ("[engage]\nretries = 1.5\n", "retries must be a number"),
    ("[engage]\nretries = -1\n", "retries: -1 is not in the range x>=0"),
])
def test_bad_config_files(invoke: Invoke, tmp_path: Path, text: str, match: str) -> None:
    cfg = write_config(tmp_path / "c.toml", text)
    with pytest.raises(ConfigurationError) as err:
        load_config_file(cfg)
    assert match in str(err.value)
    result = invoke("--config", str(cfg), "ping")
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr == f"error: ConfigurationError: {' '.join(str(err.value).split())}\n"


def test_every_key_is_accepted(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", endpoint="https://h/api/soap/v8/", username="u",
                       password="p", wsdl="w.wsdl", timeout=2.5, retries=0, ca_bundle="ca.pem")
    assert load_config_file(cfg) == {"endpoint": "https://h/api/soap/v8/", "username": "u",
                                     "password": "p", "wsdl": "w.wsdl", "timeout": 2.5,
                                     "retries": 0, "ca_bundle": "ca.pem"}


# ------------------------------------------------------------------ passwords


def readable_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "readable by other users" in line]


@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_world_readable_file_warned_only_if_its_password_is_used(
        engage_sandbox: EngageSandbox, invoke: Invoke, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    loose = write_config(tmp_path / "loose.toml", mode=0o644, endpoint=sb.url,
                         username=sb.username, password=sb.password)
    result = invoke("--config", str(loose), "ping")
    assert result.exit_code == 0, result.output
    assert readable_warnings(result.stderr) == [
        f"warning: config file {loose} holds the password and is readable by other users; "
        f"run: chmod 600 {loose}"]
    assert sb.password not in result.output
    # the password comes from the environment or the command line: the file's is not used
    monkeypatch.setenv("ENGAGE_PASSWORD", sb.password)
    assert readable_warnings(invoke("--config", str(loose), "ping").stderr) == []
    monkeypatch.delenv("ENGAGE_PASSWORD")
    flag = invoke("--config", str(loose), "ping", "--password", sb.password)
    assert readable_warnings(flag.stderr) == []
    assert "password on the command line" in flag.stderr
    # no password in the file, or a private file: nothing to say
    monkeypatch.setenv("ENGAGE_PASSWORD", sb.password)
    bare = write_config(tmp_path / "bare.toml", mode=0o644, endpoint=sb.url,
                        username=sb.username)
    assert invoke("--config", str(bare), "ping").stderr == ""
    monkeypatch.delenv("ENGAGE_PASSWORD")
    loose.chmod(0o600)
    assert invoke("--config", str(loose), "ping").stderr == ""


def test_password_on_command_line_warns_and_is_never_echoed(
        engage_sandbox: EngageSandbox, invoke: Invoke) -> None:
    sb = engage_sandbox
    for password, code in ((sb.password, 0), ("Wrong-Secret-123", EXIT_AUTH)):
        result = invoke("-v", "--endpoint", sb.url, "--username", sb.username,
                        "--password", password, "contact", "get", "--contact-id", "33457")
        assert result.exit_code == code, result.output
        warnings = [line for line in result.stderr.splitlines()
                    if "password on the command line" in line]
        assert len(warnings) == 1
        assert "ENGAGE_PASSWORD" in warnings[0]
        assert password not in result.output


def test_password_in_json_error_is_not_echoed(invoke: Invoke) -> None:
    secret = "S3cret-in-url"
    result = invoke("--json", "--endpoint", f"http://user:{secret}@127.0.0.1:1/api/soap/v8/",
                    "--username", "u", "--password", secret, "--retries", "0", "ping")
    assert result.exit_code == EXIT_CONFIG  # credentials in the URL are refused
    assert secret not in result.output


# ------------------------------------------------------------------ --sandbox


def test_sandbox_reads_no_environment_or_config_file(invoke: Invoke, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path / "xdg" / "engage-soap" / "config.toml", "[engage\n")  # broken
    monkeypatch.setenv("ENGAGE_ENDPOINT", DEAD)
    monkeypatch.setenv("ENGAGE_TIMEOUT", "3")
    result = invoke("ping", "--sandbox", "-v")
    assert result.exit_code == 0, result.output
    found = sources(result.stderr)
    assert found["endpoint"].endswith("(from --sandbox)")
    assert found["password"] == "*** (from --sandbox)"
    assert found["timeout"] == "30 s (default)"


@pytest.mark.parametrize("args", [
    ("--sandbox", "--endpoint", "http://127.0.0.1:9/", "ping"),
    ("--endpoint", "http://127.0.0.1:9/", "ping", "--sandbox"),
])
def test_sandbox_flag_conflicts_with_endpoint(invoke: Invoke, args: tuple[str, ...]) -> None:
    result = invoke(*args)
    assert result.exit_code == EXIT_USAGE
    assert "--sandbox cannot be combined with --endpoint" in result.stderr


# ------------------------------------------------------------------ -v


def test_verbose_shows_envelopes_without_credentials(engage_sandbox: EngageSandbox,
                                                     invoke: Invoke,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in engage_sandbox.env().items():
        monkeypatch.setenv(name, value)
    result = invoke("-v", "send-prepared", "--message-id", "23541", "--email",
                    "j.mcexample@example.com", "--param", "FIRSTNAME=Jo")
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert "contactGet request to" in err and "<ecm:contactGet" in err
    assert "contactGetResponse" in err
    assert "<name>FIRSTNAME</name><value>Jo</value>" in err
    assert "messageSendSingleResponse" in err
    assert "sandbox: request" not in err  # the in-process sandbox's own log stays out
    assert engage_sandbox.password not in result.output
    assert "Authorization" not in result.output and "Basic " not in result.output
    # stdout keeps only the steps
    assert result.stdout.splitlines()[0].startswith("lookup: EMAIL")


def test_verbose_shortens_attachments(engage_sandbox: EngageSandbox, invoke: Invoke,
                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in engage_sandbox.env().items():
        monkeypatch.setenv(name, value)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(300_000))
    result = invoke("-v", "message", "send", "--message-id", "23541", "--recipient-id", "33457",
                    "--attach", str(big))
    assert result.exit_code == 0, result.output
    assert "messageSendSingle request to" in result.stderr
    assert len(result.stderr) < 20_000  # 400 kB of base64 shortened by the library


def test_verbose_does_not_leak_into_later_runs(engage_sandbox: EngageSandbox,
                                               invoke: Invoke,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in engage_sandbox.env().items():
        monkeypatch.setenv(name, value)
    assert "debug:" in invoke("-v", "ping").stderr
    assert invoke("ping").stderr == ""


# ------------------------------------------------------------------ exit codes


@pytest.mark.parametrize(("exc", "code"), [
    (ContactNotFoundError("x"), 3),
    (NoSuchObjectError("x"), 3),
    (ObjectAlreadyExistsError("x"), 4),
    (EngageFault("x"), 4),
    (InvalidInputError("x"), 4),
    (EngageError("x"), 4),
    (TransportError("x"), 5),
    (RequestTimeoutError("x"), 5),
    (RateLimitedError("x"), 5),
    (HTTPStatusError("x", status_code=502), 5),
    (ProtocolError("x"), 5),
    (AuthenticationError("x", status_code=401), 6),
    (ConfigurationError("x"), 7),
    (RuntimeError("x"), 1),
])
def test_exit_code_table(exc: BaseException, code: int) -> None:
    assert exit_code_for(exc) == code
