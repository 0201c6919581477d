"""Fixtures for the CLI tests: an isolated environment and a runner bound to the sandbox."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engage_soap.cli import cli
from engage_soap.config import CONFIG_ENV, ENV_VARS
from engage_soap.pytest_plugin import EngageSandbox

Invoke = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ENGAGE_* variables and no per-user config file leak into a test."""
    for var in (*ENV_VARS.values(), CONFIG_ENV, "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def invoke() -> Invoke:
    """Run the CLI in-process: ``invoke("contact", "get", ...)`` -> click Result."""
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def sb(engage_sandbox: EngageSandbox, monkeypatch: pytest.MonkeyPatch) -> EngageSandbox:
    """The plugin's sandbox, with ENGAGE_* variables pointing the CLI at it."""
    for name, value in engage_sandbox.env().items():
        monkeypatch.setenv(name, value)
    return engage_sandbox


@pytest.fixture
def console_script() -> str:
    """The installed ``engage-soap`` script next to this interpreter."""
    script = Path(sys.executable).parent / "engage-soap"
    if script.exists():
        return str(script)
    found = shutil.which("engage-soap")
    assert found is not None, "the engage-soap console script is not installed"
    return found


@pytest.fixture
def child_env(isolated_env: None) -> dict[str, str]:
    """The isolated environment, for a child process."""
    return dict(os.environ)
