"""The README's command-line examples run as written (against the plugin's sandbox)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from engage_soap.pytest_plugin import EngageSandbox

Invoke = Callable[..., Result]
README = Path(__file__).resolve().parents[2] / "README.md"


def examples(*, serving: bool = False) -> list[list[str]]:
    """The ``engage-soap ...`` lines of the first sh block of the "Command line" section;
    with ``serving``, only those that serve until stopped (``engage-soap sandbox``)."""
    section = README.read_text(encoding="utf-8").split("\n## Command line\n", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    lines = [shlex.split(line, comments=True) for line in block.group(1).splitlines()
             if line.startswith("engage-soap ")]
    return [argv for argv in lines if (argv[1] == "sandbox") == serving]


def test_the_only_serving_example_is_the_sandbox_command() -> None:
    # it serves until Ctrl-C, so it is not run here: test_cli_subprocess starts the sandbox
    # command and stops it
    assert examples(serving=True) == [["engage-soap", "sandbox", "--port", "8080"]]


@pytest.mark.parametrize("argv", examples(), ids=lambda argv: " ".join(argv[1:3]))
def test_readme_command_line_example(sb: EngageSandbox, invoke: Invoke,
                                     argv: list[str]) -> None:
    result = invoke(*argv[1:])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
