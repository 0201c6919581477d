"""mypy --strict on programs using the typed ``call``: the bundled WSDL's and typegen's."""

from __future__ import annotations

import pytest
from programs import BUNDLED, TENANT
from typed_support import Checked

pytestmark = pytest.mark.long(6)

MISTAKES = [name for name in (*BUNDLED, *TENANT) if not name.endswith("_ok")
            and name != "readme_example"]


@pytest.mark.parametrize("name", ["bundled_ok", "tenant_ok"])
def test_correct_program_passes(checked: Checked, name: str) -> None:
    assert checked.errors.get(name) is None, checked.output


def test_revealed_types_tell_what_the_reader_returns(checked: Checked) -> None:
    revealed = [text for _line, text in checked.notes["bundled_ok"]
                if text.startswith("Revealed type")]
    assert revealed[0].startswith('Revealed type is "TypedDict(engage_soap.typed_operations.User')
    assert revealed[0].endswith('}) | None"')  # the reader gives None for a missing <user>
    assert revealed[1:4] == ['Revealed type is "int | None"',
                             'Revealed type is "list[str | None]"',
                             'Revealed type is "str | None"']
    assert "UserGetByEmailReply" in revealed[4]  # awaited from AsyncTypedCalls


def test_tenant_module_types_its_own_operation(checked: Checked) -> None:
    revealed = [text for _line, text in checked.notes["tenant_ok"]]
    assert revealed == ['Revealed type is "int | None"',
                        'Revealed type is "list[str | None]"']
    assert checked.errors.get("tenant_typed") is None, checked.output  # passes --strict


@pytest.mark.parametrize("name", MISTAKES)
def test_each_mistake_is_an_error_naming_it(checked: Checked, name: str) -> None:
    [(line, text)] = checked.expected(name)
    got = checked.errors.get(name, [])
    assert got, f"mypy found no error in {name}"
    assert {n for n, _ in got} == {line}, got  # on that line only
    assert any(text in message for _, message in got), got


def test_readme_example_errs_where_it_says(checked: Checked) -> None:
    marks = checked.expected("readme_example")
    got = checked.errors.get("readme_example", [])
    assert len(marks) == 3
    assert {line for line, _ in got} == {line for line, _ in marks}, checked.output
    for line, text in marks:
        assert any(n == line and text in message for n, message in got), (text, got)
    assert ('Revealed type is "int | None"'
            in [text for _, text in checked.notes["readme_example"]])
