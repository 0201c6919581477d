"""Connection settings: precedence flag > env > config file, errors, password handling, -v."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engage_soap.cli import EXIT_AUTH, EXIT_CONFIG, EXIT_USAGE, exit_code_for
from engage_soap.config import (
    ConnectionSettings,
    default_config_path,
    load_config_file,
    resolve_settings,
)
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


def write_config(path: Path, **values: object) -> Path:
    lines = ["[engage]"]
    for key, value in values.items():
        lines.append(f"{key} = {value!r}" if not isinstance(value, str)
                     else f'{key} = "{value}"')
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


# ------------------------------------------------------------------ resolve_settings


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", endpoint="https://file/", username="file-user",
                       password="file-pass", wsdl="file.wsdl", timeout=5)
    env = {"ENGAGE_ENDPOINT": "https://env/", "ENGAGE_USERNAME": "env-user"}
    settings = resolve_settings({"endpoint": "https://flag/"}, config_file=cfg, environ=env)
    assert (settings.endpoint, settings.username, settings.password, settings.wsdl,
            settings.timeout) == ("https://flag/", "env-user", "file-pass", "file.wsdl", 5.0)
    assert settings.sources == {"endpoint": "--endpoint", "username": "ENGAGE_USERNAME",
                                "password": f"config file {cfg}",
                                "wsdl": f"config file {cfg}",
                                "timeout": f"config file {cfg}"}
    assert settings.config_file == cfg
    assert "file-pass" not in repr(settings)


def test_defaults_and_missing(tmp_path: Path) -> None:
    settings = resolve_settings({}, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings == ConnectionSettings()
    assert settings.timeout == 30.0
    assert settings.missing() == ["endpoint", "username", "password"]


def test_empty_env_values_count_as_unset(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", username="file-user")
    settings = resolve_settings({}, config_file=cfg, environ={"ENGAGE_USERNAME": ""})
    assert settings.username == "file-user"


def test_config_path_lookup(tmp_path: Path) -> None:
    assert default_config_path({"ENGAGE_SOAP_CONFIG": str(tmp_path / "x.toml")}) \
        == tmp_path / "x.toml"
    assert default_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) \
        == tmp_path / "engage-soap" / "config.toml"
    home = Path("~").expanduser()
    assert default_config_path({}) == home / ".config" / "engage-soap" / "config.toml"


def test_default_user_file_is_read_when_present(tmp_path: Path) -> None:
    write_config(tmp_path / "engage-soap" / "config.toml", endpoint="https://xdg/")
    settings = resolve_settings({}, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.endpoint == "https://xdg/"


def test_env_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot read config file"):
        resolve_settings({}, environ={"ENGAGE_SOAP_CONFIG": str(tmp_path / "none.toml")})


@pytest.mark.parametrize(("text", "match"), [
    ("[engage\n", "not valid TOML"),
    ("engage = 1\n", "must be a table"),
    ("[engage]\nendpoint = 5\n", "endpoint must be a string"),
    ("[engage]\ntimeout = 'soon'\n", "timeout must be a number"),
    ("[engage]\ntimeout = -1\n", "finite number > 0"),
    ("[engage]\ntimeout = true\n", "timeout must be a number"),
])
def test_bad_config_files(tmp_path: Path, text: str, match: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=match):
        load_config_file(cfg)


def test_bad_timeout_in_env() -> None:
    with pytest.raises(ConfigurationError, match="ENGAGE_TIMEOUT"):
        resolve_settings({}, environ={"ENGAGE_TIMEOUT": "nan", "XDG_CONFIG_HOME": "/none"})


def test_unknown_keys_and_loose_permissions_warn(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.toml", pasword="typo", password="secret-pw")
    cfg.chmod(0o644)
    values, warnings = load_config_file(cfg)
    assert values == {"password": "secret-pw"}
    assert any("unknown key(s) in [engage] ignored: pasword" in w for w in warnings)
    if os.name == "posix":
        assert any("chmod 600" in w for w in warnings)
    assert not any("secret-pw" in w for w in warnings)


# ------------------------------------------------------------------ through the CLI


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


def test_cli_flag_beats_env_beats_file(engage_sandbox: EngageSandbox, invoke: Invoke,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    cfg = write_config(tmp_path / "c.toml", endpoint=DEAD, username=sb.username,
                       password=sb.password)
    monkeypatch.setenv("ENGAGE_SOAP_CONFIG", str(cfg))
    # file only: the dead endpoint
    assert invoke("--retries", "0", "ping").exit_code == 5
    # env beats file
    monkeypatch.setenv("ENGAGE_ENDPOINT", sb.url)
    assert invoke("ping").exit_code == 0
    # flag beats env
    monkeypatch.setenv("ENGAGE_ENDPOINT", DEAD)
    assert invoke("--endpoint", sb.url, "ping").exit_code == 0
    # the env password is wrong, the file's is right: env wins
    monkeypatch.setenv("ENGAGE_PASSWORD", "wrong-password")
    assert invoke("--endpoint", sb.url, "ping").exit_code == EXIT_AUTH


def test_verbose_names_the_sources(engage_sandbox: EngageSandbox, invoke: Invoke,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sb = engage_sandbox
    cfg = write_config(tmp_path / "c.toml", username=sb.username, timeout=7)
    monkeypatch.setenv("ENGAGE_PASSWORD", sb.password)
    result = invoke("-v", "--config", str(cfg), "--endpoint", sb.url, "ping")
    assert result.exit_code == 0, result.output
    assert (f"debug: endpoint {sb.url} (from --endpoint), user {sb.username} "
            f"(from config file {cfg}), password *** (from ENGAGE_PASSWORD), timeout 7 s"
            ) in result.stderr


def test_explicit_missing_config_file_exit_7(invoke: Invoke, tmp_path: Path) -> None:
    result = invoke("--config", str(tmp_path / "missing.toml"), "ping")
    assert result.exit_code == EXIT_CONFIG
    assert result.stderr.startswith("error: ConfigurationError: cannot read config file")


def test_broken_config_file_exit_7(invoke: Invoke, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[engage]\nendpoint = \n", encoding="utf-8")
    result = invoke("--config", str(cfg), "ping")
    assert result.exit_code == EXIT_CONFIG
    assert "not valid TOML" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_password_on_command_line_warns_and_is_never_echoed(
        engage_sandbox: EngageSandbox, invoke: Invoke) -> None:
    sb = engage_sandbox
    for password, code in ((sb.password, 0), ("Wrong-Secret-123", EXIT_AUTH)):
        result = invoke("-v", "--endpoint", sb.url, "--username", sb.username,
                        "--password", password, "contact", "get", "--id", "33457")
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
    assert result.exit_code == 5
    assert secret not in result.output


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
    assert engage_sandbox.password not in result.output
    assert "Authorization" not in result.output and "Basic " not in result.output
    # stdout keeps only the steps
    assert result.stdout.splitlines()[0].startswith("lookup: EMAIL")


def test_verbose_does_not_leak_into_later_runs(engage_sandbox: EngageSandbox,
                                               invoke: Invoke,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in engage_sandbox.env().items():
        monkeypatch.setenv(name, value)
    assert "debug:" in invoke("-v", "ping").stderr
    assert invoke("ping").stderr == ""


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
