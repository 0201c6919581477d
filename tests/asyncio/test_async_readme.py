"""The README's asyncio examples run as written against the sandbox."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

from asyncio_support import CONTACT

from engage_soap.pytest_plugin import EngageSandbox

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## asyncio\n", 1)[1].split("\n## ", 1)[0]
USAGE, HANDLER, FIXTURE = re.findall(r"```python\n(.*?)```", SECTION, re.S)


def test_usage_example(engage_sandbox: EngageSandbox) -> None:
    source = (USAGE.replace('"https://<host>/api/soap/v8/"', repr(engage_sandbox.url))
              .replace('"api-user"', repr(engage_sandbox.username)))
    namespace: dict[str, Any] = {"password": engage_sandbox.password}
    code = compile(source, "README asyncio", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    async def main() -> None:
        await eval(code, namespace)

    asyncio.run(main())
    assert namespace["contact"].id == CONTACT
    assert namespace["result"].contact.id == CONTACT
    assert "contactGet" in namespace["ops"] and isinstance(namespace["reply"], dict)
    assert [e.recipient_id for e in engage_sandbox.outbox] == [CONTACT]


def test_handler_example(engage_sandbox: EngageSandbox) -> None:
    namespace: dict[str, Any] = {"ENDPOINT": engage_sandbox.url, "PASSWORD":
                                 engage_sandbox.password, "USERNAME": engage_sandbox.username}
    exec(compile(HANDLER, "README handler", "exec"), namespace)

    async def main() -> list[dict[str, Any]]:
        await namespace["startup"]()
        answers = [await namespace["order_mail"]({"email": email, "id": "A-1"})
                   for email in ("j.mcexample@example.com", "nobody@example.com")]
        await namespace["shutdown"]()
        return answers

    assert asyncio.run(main()) == [{"status": 200, "contact": CONTACT}, {"status": 404}]
    assert engage_sandbox.outbox[-1].parameter_dict == {"ORDER": "A-1"}


def test_fixture_example(engage_sandbox: EngageSandbox) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(FIXTURE, "README asyncio fixture", "exec"), namespace)
    namespace["test_order_mail"](engage_sandbox, engage_sandbox.make_async_client())
    assert len(engage_sandbox.outbox) == 1
