"""Helpers for reading what the CLI printed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from click.testing import Result

Invoke = Callable[..., Result]  # the ``invoke`` fixture of tests/cli/conftest.py


def one_json(stdout: str) -> dict[str, Any]:
    """Exactly one JSON object on stdout."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data
