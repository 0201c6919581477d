"""The session's one mypy run over every program of programs.py (see typed_support)."""

from __future__ import annotations

import pytest
from typed_support import Checked, check_all


@pytest.fixture(scope="session")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """Every program, the tenant module made by typegen, one mypy run (cache shared)."""
    return check_all(tmp_path_factory)
