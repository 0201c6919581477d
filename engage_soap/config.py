"""Settings of the command line: the connection options, the config file, their sources.

Each option is declared once (:func:`shared_options`) with its ENGAGE_* variable; an eager
``--config`` loads the file's ``[engage]`` table (keys: :data:`KEYS`) into ``ctx.default_map``,
so click applies command line > environment > config file > default, key by key, and
``ctx.get_parameter_source()`` tells where each value came from. The file is ``--config
FILE``, else ``$ENGAGE_SOAP_CONFIG``, else ``$XDG_CONFIG_HOME/engage-soap/config.toml`` (i.e.
``~/.config/engage-soap/config.toml``). Other tables and keys are refused.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from . import defaults
from .errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["CONFIG_ENV", "ENV_VARS", "KEYS", "SHARED_NAMES", "Settings", "default_config_path",
           "load_config_file", "output_options", "resolve_settings", "shared_options"]

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_ENV = "ENGAGE_SOAP_CONFIG"
DEFAULT_TIMEOUT = defaults.TIMEOUT
DEFAULT_RETRIES = defaults.MAX_ATTEMPTS - 1
_FILE = "engage_soap.config_file"  # ctx.meta key: the config file loaded


# name: (environment variable, what the file may hold, click.option keywords)
_OPTIONS: dict[str, tuple[str, tuple[type, ...], dict[str, Any]]] = {
    "endpoint": ("ENGAGE_ENDPOINT", (str,), {
        "metavar": "URL", "help": "Endpoint, https://<host>/api/soap/v<N>/ (or /api/rest/v<N>/)."}),
    "username": ("ENGAGE_USERNAME", (str,), {"help": "API user name."}),
    "password": ("ENGAGE_PASSWORD", (str,), {
        "help": "API password; prefer the environment variable."}),
    "wsdl": ("ENGAGE_WSDL", (str,), {
        "metavar": "FILE|URL", "help": "WSDL to use instead of the bundled one."}),
    "timeout": ("ENGAGE_TIMEOUT", (int, float), {
        "type": click.FloatRange(min=0, min_open=True), "default": DEFAULT_TIMEOUT,
        "show_default": True, "help": "Deadline of each call, in seconds."}),
    "retries": ("ENGAGE_RETRIES", (int,), {
        "type": click.IntRange(min=0), "default": DEFAULT_RETRIES, "show_default": True,
        "metavar": "N", "help": "Retries after a failed first try, where safe."}),
    "ca_bundle": ("ENGAGE_CA_BUNDLE", (str,), {
        "metavar": "PATH", "help": "CA file or directory to verify TLS with (default: "
                                   "$REQUESTS_CA_BUNDLE, $CURL_CA_BUNDLE, else certifi's)."}),
    "rate_store": ("ENGAGE_RATE_STORE", (str,), {
        "metavar": "PATH|URL", "help": "Share the account's rate budget with other processes: "
                                       "a file (one host) or redis://host/0 (many hosts)."}),
    "protocol": ("ENGAGE_PROTOCOL", (str,), {
        "type": click.Choice(["soap", "rest"]),
        "help": "soap or rest (default: what the endpoint's path says, /api/soap/ or "
                "/api/rest/)."}),
}
KEYS = tuple(_OPTIONS)
ENV_VARS: Mapping[str, str] = {name: spec[0] for name, spec in _OPTIONS.items()}
SHARED_NAMES = (*KEYS, "config", "sandbox", "json", "verbose")  # what a command gets


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$ENGAGE_SOAP_CONFIG``, else the per-user file under ``$XDG_CONFIG_HOME`` or ~/.config."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "engage-soap" / "config.toml"


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``[engage]`` table of a TOML file, checked; raises ConfigurationError."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(p)!r}: "
                                 f"{exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {str(p)!r} is not valid TOML: {exc}") from exc
    if set(data) - {"engage"}:
        raise ConfigurationError(f"config file {p}: only an [engage] table is allowed, found "
                                 f"{', '.join(sorted(set(data) - {'engage'}))}")
    table = data.get("engage", {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"config file {p}: [engage] must be a table")
    if set(table) - set(KEYS):
        raise ConfigurationError(
            f"config file {p}: unknown key(s) in [engage]: "
            f"{', '.join(sorted(set(table) - set(KEYS)))} (known: {', '.join(KEYS)})")
    for key, value in table.items():
        _env, kinds, options = _OPTIONS[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            what = "a string" if kinds == (str,) else "a number"
            raise ConfigurationError(f"config file {p}: {key} must be {what}, got {value!r}")
        try:
            options.get("type", click.STRING).convert(value, None, None)
        except click.BadParameter as exc:
            raise ConfigurationError(f"config file {p}: {key}: {exc.message}") from None
    return dict(table)


def _given(ctx: click.Context, name: str) -> tuple[Any, ParameterSource | None]:
    """A shared option's value and source: the command's own, unless only an enclosing
    group got it on the command line (options may come before the subcommand)."""
    if ctx.get_parameter_source(name) is not ParameterSource.COMMANDLINE:
        parent = ctx.parent
        while parent is not None:
            if parent.get_parameter_source(name) is ParameterSource.COMMANDLINE:
                return parent.params[name], ParameterSource.COMMANDLINE
            parent = parent.parent
    return ctx.params.get(name), ctx.get_parameter_source(name)


def _load_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    """Eager --config: load the file into ctx.default_map (below flags and environment)."""
    if ctx.get_parameter_source("config") is not ParameterSource.COMMANDLINE:
        value = _given(ctx, "config")[0] or value  # given before the subcommand, or env
    if _given(ctx, "sandbox")[0]:
        return value  # --sandbox reads no config file (and refuses --config)
    path = Path(value).expanduser() if value else default_config_path()
    if value or path.is_file():
        ctx.default_map = load_config_file(path)
        ctx.meta[_FILE] = path
    return value


def output_options(fn: F) -> F:
    """``--json`` and ``-v``."""
    fn = click.option("--json", "json", is_flag=True, help="Print one JSON object on stdout.")(fn)
    return click.option("-v", "--verbose", count=True,
                        help="Show the SOAP envelopes on stderr (credentials redacted) "
                             "and where each setting came from.")(fn)


def shared_options(*, group: bool = False) -> Callable[[F], F]:
    """The connection options, --config, --sandbox, --json and -v, each with its ENGAGE_*
    variable; on a ``group`` only their command-line values count (no environment, no
    file): the subcommand resolves them (see :func:`resolve_settings`)."""

    def decorate(fn: F) -> F:
        fn = output_options(fn)
        for name, (env, _kinds, options) in reversed(_OPTIONS.items()):
            fn = click.option(f"--{name.replace('_', '-')}", name, show_envvar=not group,
                              envvar=None if group else env, **options)(fn)
        fn = click.option("--config", metavar="FILE", is_eager=True, show_envvar=not group,
                          envvar=None if group else CONFIG_ENV,
                          callback=None if group else _load_config,
                          help="TOML file with an [engage] table (default "
                               "~/.config/engage-soap/config.toml).")(fn)
        return click.option("--sandbox", is_flag=True, is_eager=True,
                            help="Run against an embedded sandbox (its state lasts this "
                                 "command; no environment or config file is read).")(fn)

    return decorate


@dataclass(frozen=True)
class Settings:
    """The resolved options of a command; ``sources`` says where each came from (never the
    value). ``verify`` is what EngageClient and HttpTransport take (None: their default)."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    wsdl: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    protocol: str | None = None
    ca_bundle: str | None = None
    rate_store: str | None = None
    sandbox: bool = False
    json: bool = False
    verbose: int = 0
    config_file: Path | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def verify(self) -> str | None:
        return self.ca_bundle

    def describe(self) -> list[str]:
        """One line per setting and its source, the password hidden (for -v)."""
        from .rate_store import store_name

        shown = {"password": "***" if self.password else None, "timeout": f"{self.timeout:g} s",
                 "wsdl": self.wsdl or "bundled", "ca_bundle": self.ca_bundle or "default",
                 "rate_store": store_name(self.rate_store) if self.rate_store else "none",
                 "protocol": self.protocol or "from the endpoint"}
        return [f"{key} {shown.get(key, getattr(self, key))} ({self.sources.get(key, 'default')})"
                for key in KEYS]


def resolve_settings(ctx: click.Context) -> Settings:
    """The shared options of ``ctx``'s command (or of a group above it) as Settings; warns on
    stderr about a password other users can read."""
    config_file: Path | None = ctx.meta.get(_FILE)
    sandbox = bool(_given(ctx, "sandbox")[0])
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in KEYS:
        value, source = _given(ctx, name)
        if value is None or (sandbox and source is not ParameterSource.COMMANDLINE):
            continue  # with --sandbox, only the command line counts
        values[name] = value
        sources[name] = {ParameterSource.COMMANDLINE: "from command line",
                         ParameterSource.ENVIRONMENT: f"from environment {ENV_VARS[name]}",
                         ParameterSource.DEFAULT_MAP: f"from config file {config_file}",
                         }.get(source or ParameterSource.DEFAULT, "default")
    clash = [f"--{k}" for k in ("endpoint", "username", "password", "config")
             if _given(ctx, k)[1] is ParameterSource.COMMANDLINE]
    if sandbox and clash:
        raise click.UsageError(f"--sandbox cannot be combined with {', '.join(clash)}")
    if sources.get("password") == "from command line":
        click.echo("warning: a password on the command line is visible to other users (ps, "
                   "shell history); set ENGAGE_PASSWORD instead", err=True)
    elif (config_file and sources.get("password", "").startswith("from config") and
          os.name == "posix" and config_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)):
        click.echo(f"warning: config file {config_file} holds the password and is readable "
                   f"by other users; run: chmod 600 {config_file}", err=True)
    return Settings(**values, sandbox=sandbox, json=bool(_given(ctx, "json")[0]),
                    verbose=_given(ctx, "verbose")[0] or 0, config_file=config_file,
                    sources=sources)
