"""mypy over small programs: written once per session (see conftest), checked in one run.

Each program is a file; a line that must fail ends with ``# E: <text>``, and the run's
errors are matched to those marks. The tenant module comes from ``engage-soap typegen``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from programs import BUNDLED, TENANT
from tenant_wsdl import tenant_wsdl

from engage_soap.cli import cli
from engage_soap.config import CONFIG_ENV, ENV_VARS

_LINE = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): (?P<kind>error|note): (?P<text>.*)$")


@dataclass
class Checked:
    """What mypy said about each program: errors and revealed types, by file and line."""

    errors: dict[str, list[tuple[int, str]]]
    notes: dict[str, list[tuple[int, str]]]
    folder: Path
    output: str

    def expected(self, name: str) -> list[tuple[int, str]]:
        """The ``# E: <text>`` marks of program ``name``."""
        lines = (self.folder / f"{name}.py").read_text().splitlines()
        return [(n, line.split("# E: ", 1)[1]) for n, line in enumerate(lines, 1)
                if "# E: " in line]


def check_all(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Every program of programs.py, the tenant module made by typegen, one mypy run."""
    folder = tmp_path_factory.mktemp("typed")
    wsdl = tenant_wsdl(tmp_path_factory.mktemp("tenant-wsdl"))
    result = CliRunner().invoke(cli, ["typegen", "--wsdl", str(wsdl), "-o",
                                      str(folder / "tenant_typed.py")],
                                env={**dict.fromkeys([*ENV_VARS.values(), CONFIG_ENV]),
                                     "XDG_CONFIG_HOME": str(folder)},  # no settings
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (folder / "mypy.ini").write_text("[mypy]\n")  # no user configuration
    for name, text in {**BUNDLED, **TENANT}.items():
        (folder / f"{name}.py").write_text(text)
    cache = tmp_path_factory.mktemp("mypy-cache")
    files = sorted(p.name for p in folder.glob("*.py"))
    run = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
                          "--no-error-summary", "--config-file", str(folder / "mypy.ini"),
                          *files], cwd=folder, capture_output=True, text=True, timeout=600,
                         check=False)
    assert run.returncode in (0, 1), run.stdout + run.stderr
    errors: dict[str, list[tuple[int, str]]] = {}
    notes: dict[str, list[tuple[int, str]]] = {}
    for line in run.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            into = errors if m["kind"] == "error" else notes
            into.setdefault(m["file"][:-3], []).append((int(m["line"]), m["text"]))
    return Checked(errors, notes, folder, run.stdout)
