"""Connection settings for the command line: flags, then environment, then a TOML file.

The file (``--config FILE``, else ``$ENGAGE_SOAP_CONFIG``, else
``$XDG_CONFIG_HOME/engage-soap/config.toml``, i.e. ``~/.config/engage-soap/config.toml``)
holds an ``[engage]`` table::

    [engage]
    endpoint = "https://host/api/soap/v8/"
    username = "api-user"
    password = "secret"        # better: the ENGAGE_PASSWORD environment variable
    wsdl = "/path/to/ecmapi.wsdl"
    timeout = 30

This module imports nothing heavy (no requests, no zeep).
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_TIMEOUT",
    "ENV_VARS",
    "KEYS",
    "ConnectionSettings",
    "default_config_path",
    "load_config_file",
    "resolve_settings",
]

CONFIG_ENV = "ENGAGE_SOAP_CONFIG"
DEFAULT_TIMEOUT = 30.0
KEYS = ("endpoint", "username", "password", "wsdl", "timeout")
ENV_VARS: Mapping[str, str] = {
    "endpoint": "ENGAGE_ENDPOINT",
    "username": "ENGAGE_USERNAME",
    "password": "ENGAGE_PASSWORD",
    "wsdl": "ENGAGE_WSDL",
    "timeout": "ENGAGE_TIMEOUT",
}
_TABLE = "engage"


@dataclass(frozen=True)
class ConnectionSettings:
    """Resolved settings; ``sources`` names where each value came from (never the value)."""

    endpoint: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    wsdl: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    sources: Mapping[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    warnings: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """The required settings that have no value (endpoint, username, password)."""
        return [key for key in ("endpoint", "username", "password")
                if not getattr(self, key)]


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$ENGAGE_SOAP_CONFIG``, else the per-user file under ``$XDG_CONFIG_HOME`` or ~/.config."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path("~/.config").expanduser())
    return Path(base) / "engage-soap" / "config.toml"


def _timeout(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{where}: timeout must be a number of seconds")
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{where}: timeout must be a number of seconds, "
                                 f"got {value!r}") from None
    if not (number > 0 and math.isfinite(number)):
        raise ConfigurationError(f"{where}: timeout must be a finite number > 0, got {value!r}")
    return number


def load_config_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[str]]:
    """The ``[engage]`` table of a TOML file and warnings about it; raises ConfigurationError."""
    p = Path(path)
    try:
        with p.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(p)!r}: "
                                 f"{exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {str(p)!r} is not valid TOML: {exc}") from exc
    table = data.get(_TABLE, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"config file {str(p)!r}: [{_TABLE}] must be a table")
    warnings: list[str] = []
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        warnings.append(f"config file {p}: unknown key(s) in [{_TABLE}] ignored: "
                        f"{', '.join(unknown)} (known: {', '.join(KEYS)})")
    values: dict[str, Any] = {}
    for key in KEYS:
        if key not in table:
            continue
        value = table[key]
        if key == "timeout":
            values[key] = _timeout(value, f"config file {p}")
        elif not isinstance(value, str):
            raise ConfigurationError(f"config file {p}: {key} must be a string")
        else:
            values[key] = value
    if "password" in values and os.name == "posix":
        try:
            mode = p.stat().st_mode
        except OSError:  # pragma: no cover - it was just read
            mode = 0
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(f"config file {p} holds a password and is readable by other "
                            f"users; run: chmod 600 {p}")
    return values, warnings


def resolve_settings(flags: Mapping[str, object | None], *,
                     config_file: str | os.PathLike[str] | None = None,
                     environ: Mapping[str, str] | None = None) -> ConnectionSettings:
    """Merge flags > environment > config file > defaults, key by key.

    ``flags`` maps setting names to the command-line values (None: not given). An explicit
    ``config_file`` or ``$ENGAGE_SOAP_CONFIG`` must exist; the per-user default may be absent.
    Empty environment values count as unset.
    """
    env = os.environ if environ is None else environ
    explicit = config_file is not None or bool(env.get(CONFIG_ENV))
    path = Path(config_file).expanduser() if config_file is not None \
        else default_config_path(env)
    file_values: dict[str, Any] = {}
    warnings: list[str] = []
    used_file: Path | None = None
    if explicit or path.is_file():
        file_values, warnings = load_config_file(path)
        used_file = path
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        flag = flags.get(key)
        env_value = env.get(ENV_VARS[key]) or None
        if flag is not None:
            values[key], sources[key] = flag, f"--{key}"
        elif env_value is not None:
            values[key] = (_timeout(env_value, ENV_VARS[key]) if key == "timeout"
                           else env_value)
            sources[key] = ENV_VARS[key]
        elif key in file_values:
            values[key], sources[key] = file_values[key], f"config file {path}"
    timeout = values.pop("timeout", DEFAULT_TIMEOUT)
    if "timeout" in sources:
        timeout = _timeout(timeout, sources["timeout"])
    return ConnectionSettings(timeout=timeout, sources=sources, config_file=used_file,
                              warnings=tuple(warnings), **values)
