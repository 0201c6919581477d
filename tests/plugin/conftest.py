"""Fixtures of the record/replay tests (used by name: ``pytestmark``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from replay_support import KEY

from engage_soap.sandbox import Sandbox


@pytest.fixture
def own_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test has its own config folder (no key file) and the same key in the env."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("ENGAGE_REDACT_KEY", KEY)
    monkeypatch.delenv("ENGAGE_RECORD", raising=False)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sb:
        yield sb
