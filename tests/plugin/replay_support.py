"""What the record/replay tests share besides their fixtures (conftest.py): the key, a run."""

from __future__ import annotations

import pytest

KEY = "test-redaction-key-1"


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest (in this process) in the pytester folder, ResourceWarnings as errors."""
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W",
                                        "error::ResourceWarning", *args)
