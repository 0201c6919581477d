"""The generator and ``engage-soap typegen``: output committed, run-time behaviour, failures."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import re
import shlex
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from tenant_wsdl import tenant_wsdl

from engage_soap import ConfigurationError, EngageClient, InvalidInputError
from engage_soap.cli import EXIT_CONFIG, cli
from engage_soap.config import CONFIG_ENV, ENV_VARS
from engage_soap.envelope import ECM_NS as ECM
from engage_soap.schema import ComplexPlan, Field, simple_plan
from engage_soap.testing import HttpRequest, MockTransport
from engage_soap.transport import HttpReply
from engage_soap.typed_operations import AsyncTypedCalls, TypedCalls
from engage_soap.typegen import _ARGUMENT, PACKAGE_MODULE, client_module, package_module
from engage_soap.zeep_binding import load_wsdl

USER_REPLY = (
    '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
    f'<ns2:userGetByEmailResponse xmlns:ns2="{ECM}"><user><id>33457</id>'
    "<email>a@example.com</email></user></ns2:userGetByEmailResponse></S:Body></S:Envelope>"
).encode()


def typegen(*args: str) -> Result:
    no_settings = {**dict.fromkeys([*ENV_VARS.values(), CONFIG_ENV]), "XDG_CONFIG_HOME": "/none"}
    return CliRunner().invoke(cli, ["typegen", *args], env=no_settings)


def test_committed_module_is_the_generators_output() -> None:
    regenerated = package_module(load_wsdl(None).model)
    assert PACKAGE_MODULE.read_text(encoding="utf-8") == regenerated, (
        "engage_soap/typed_operations.py is stale: run python -m engage_soap.typegen")


def test_call_is_the_one_call_path_and_returns_plain_data() -> None:
    seen: list[bytes] = []

    def answer(request: HttpRequest) -> HttpReply:
        seen.append(request.body or b"")
        return HttpReply(200, {"Content-Type": "text/xml"}, USER_REPLY)

    with EngageClient("https://engage.example.com/api/soap/v8/", "api", "secret",
                      transport=MockTransport(answer), rate_limit=None) as client:
        assert EngageClient.call is TypedCalls.call
        reply = client.call("userGetByEmail", email="a@example.com")
        assert reply == {"user": {"id": 33457, "email": "a@example.com", "mobileNumber": None,
                                  "identifier": None}}
        assert type(reply) is dict and type(reply["user"]) is dict
        with pytest.raises(InvalidInputError, match="groupId must be an int"):
            client.call("membershipSubscribeByEmail", email="a@example.com",  # type: ignore[call-overload]
                        groupId="4711", subscriptionMode="OPT_IN")
    assert len(seen) == 1


def test_async_mixin_returns_the_coroutine_of_call_underscore() -> None:
    class Fake(AsyncTypedCalls):
        async def _call(self, operation: str, arguments: Mapping[str, Any], /
                        ) -> dict[str, Any]:
            return {"operation": operation, **arguments}

    reply = asyncio.run(Fake().call("userGetByEmail", email="a@example.com"))
    assert reply == {"operation": "userGetByEmail", "email": "a@example.com"}  # type: ignore[comparison-overlap]


@pytest.mark.parametrize(("kind", "values"), [
    ("long", [1, 2**63 - 1]), ("int", [-5]), ("boolean", [True]),
    ("decimal", [Decimal("1.5"), 2.5, 3]),
    ("base64Binary", [b"\x00", bytearray(b"x"), memoryview(b"y"), "AAEC"]),
    ("string", ["text"])])
def test_argument_types_accept_what_the_writer_accepts(kind: str, values: list[Any]) -> None:
    plan = simple_plan(kind, kind)
    annotation = _ARGUMENT[typing.get_type_hints(plan.from_text)["return"]]
    admitted = eval(annotation, {"Decimal": Decimal})  # e.g. Decimal | float
    for value in values:
        plan.render(value, "x")  # the writer takes it, and so does the type (int as a float)
        assert isinstance(value, admitted) or (
            isinstance(value, int) and "float" in annotation), (annotation, value)
    if kind in ("long", "int"):
        with pytest.raises(InvalidInputError):
            plan.render("1", "x")  # a str for an int: refused at run time, as by mypy


def test_typegen_writes_a_module_of_stdlib_and_engage_soap(tmp_path: Path) -> None:
    wsdl = tenant_wsdl(tmp_path)
    out = tmp_path / "tenant_types.py"
    result = typegen("--wsdl", str(wsdl), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"ok": True, "module": str(out), "operations": 68}
    tree = ast.parse(out.read_text())
    checking = next(n for n in tree.body if isinstance(n, ast.If)
                    and ast.unparse(n.test) == "TYPE_CHECKING")
    for node in tree.body:  # what runs at import: the standard library only
        if isinstance(node, ast.Import | ast.ImportFrom):
            module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert (module or "").split(".")[0] in sys.stdlib_module_names, module
    guarded = {n.module for n in ast.walk(checking) if isinstance(n, ast.ImportFrom)}
    assert guarded <= {"typing", "typing_extensions", "engage_soap"}
    spec = importlib.util.spec_from_file_location("tenant_types", out)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with EngageClient("https://engage.example.com/api/soap/v8/", "api", "secret",
                      transport=MockTransport(lambda r: HttpReply(500, {}, b"")),
                      wsdl=wsdl) as client:
        assert module.typed(client) is client


def test_typegen_names_an_unsupported_construct_with_exit_7(tmp_path: Path) -> None:
    result = typegen("--wsdl", str(tenant_wsdl(tmp_path, with_choice=True)),
                     "-o", str(tmp_path / "out.py"))
    assert result.exit_code == EXIT_CONFIG == 7
    assert "xs:choice is not supported" in result.output
    assert "tenantScoreResponse" in result.output
    assert not (tmp_path / "out.py").exists()


def test_typegen_needs_a_wsdl(tmp_path: Path) -> None:
    result = typegen("-o", str(tmp_path / "out.py"))
    assert result.exit_code == 2
    assert "--wsdl" in result.output


@dataclass
class _Op:
    request: ComplexPlan
    reply: ComplexPlan


def _plan(*names: str) -> ComplexPlan:
    return ComplexPlan("t", tuple(Field(n, n, 1, 1, simple_plan("string", "string"))
                                  for n in names))


def test_an_argument_that_is_no_python_name_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match=r"op/from: the argument name 'from'"):
        client_module({"op": _Op(_plan("from"), _plan())}, "x.wsdl")


def test_a_reply_key_that_is_no_python_name_uses_the_functional_form() -> None:
    text = client_module({"op": _Op(_plan("a"), _plan("class", "x-y"))}, "x.wsdl")
    assert 'OpReply = TypedDict("OpReply", {"class": "str | None", "x-y": "str | None"})' in text
    assert "@overload" not in text  # one operation: a plain method


def test_readme_typegen_command_runs_on_a_fresh_clone(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Typed calls"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    [argv] = [shlex.split(line, comments=True) for line in block.group(1).splitlines()]
    (tmp_path / "wsdl").symlink_to(Path(__file__).resolve().parents[2] / "wsdl")
    monkeypatch.chdir(tmp_path)  # a checkout's layout, written into a scratch folder
    result = typegen(*argv[2:])
    assert result.exit_code == 0, result.output
    module = tmp_path / argv[argv.index("-o") + 1]
    assert 'Literal["userGetByEmail"]' in module.read_text()
