"""The pytest11 entry point: a fresh pytest process finds the engage_sandbox fixture."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.long(5)

# pytester is not enabled project-wide; a test module may ask for it.
pytest_plugins = ["pytester"]

USER_TEST = '''
import pytest

def test_order_confirmation(engage_sandbox):
    engage_sandbox.client.send_prepared_message(
        23541, email="j.mcexample@example.com", parameters={"ORDER": "42"})
    [sent] = engage_sandbox.outbox
    assert sent.parameter_dict == {"ORDER": "42"}

def test_fresh_state(engage_sandbox):
    assert engage_sandbox.outbox == []

@pytest.mark.engage_sandbox(rate_limit=5)
def test_marker(engage_sandbox):
    assert engage_sandbox.sandbox.rate_limit == 5
'''


def test_entry_point_provides_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    # A subprocess, so nothing from this session's plugin registration leaks in:
    # the fixture must come from the installed entry point.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers",
                                           "-W", "error::ResourceWarning")
    result.assert_outcomes(passed=3)


def test_plugin_is_listed_and_registers_the_marker(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.engage_sandbox(**kwargs)*"])


def test_plugin_import_is_cheap(pytester: pytest.Pytester) -> None:
    heavy = ("zeep", "requests", "engage_soap.sandbox", "engage_soap.client")
    code = ("import sys, engage_soap.pytest_plugin\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n")
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["[[][]]"])

