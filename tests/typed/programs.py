"""The programs mypy checks: correct ones, and one mistake each (marked ``# E: <text>``)."""
# ruff: noqa: E501  (a mistake and its expected error share a line)

from __future__ import annotations

import re
import textwrap
from pathlib import Path

_HEAD = "from __future__ import annotations\n\nfrom engage_soap import EngageClient\n\n\n"

BUNDLED = {
    "bundled_ok": _HEAD + '''from engage_soap.typed_operations import AsyncTypedCalls


def use(client: EngageClient) -> list[int]:
    reply = client.call("userGetByEmail", email="a@example.com")
    reveal_type(reply["user"])
    user = reply["user"]
    assert user is not None
    reveal_type(user["id"])
    client.call("membershipSubscribeByEmail", email="a@example.com", groupId=4711,
                subscriptionMode="OPT_IN")
    found = client.call("contactGet", identifier={"type": "EMAIL", "value": "a@example.com"})
    contact = found["contact"]
    names = [a["name"] for a in contact["attributes"] if a] if contact else []
    reveal_type(names)
    client.call("messageSendSingle", messageId=23541, recipientId=1,
                additionalContent={"parameters": [{"name": "FIRSTNAME", "value": "Jo"}]})
    client.call("contactUpdate", identifierType="EMAIL",
                contact={"emailAddress": "a@example.com", "attributes": []})
    version: str | None = client.call("systemGetApiVersion")["version"]
    reveal_type(version)
    group = client.call("groupGet", groupId=4711)["group"]
    return [group["id"] or 0] if group else []


async def use_async(client: AsyncTypedCalls) -> None:
    reply = await client.call("userGetByEmail", email="a@example.com")
    reveal_type(reply)
''',
    "bundled_misspelt": _HEAD + '''def use(client: EngageClient) -> None:
    client.call("userGetByEmail", emial="a@example.com")  # E: Unexpected keyword argument "emial"
''',
    "bundled_wrong_type": _HEAD + '''def use(client: EngageClient) -> None:
    client.call("membershipSubscribeByEmail", email="a@example.com", groupId="4711",  # E: matches argument types "str", "str", "str", "str"
                subscriptionMode="OPT_IN")
''',
    "bundled_enumeration": _HEAD + '''def use(client: EngageClient) -> None:
    client.call("membershipSubscribeByEmail", email="a@example.com", groupId=4711,  # E: matches argument types "str", "str", "int", "str"
                subscriptionMode="OPT_OUT")
''',
    "bundled_reply_key": _HEAD + '''def use(client: EngageClient) -> None:
    client.call("userGetByEmail", email="a@example.com")["usr"]  # E: TypedDict "UserGetByEmailReply" has no key "usr"
''',
}

_TENANT_HEAD = _HEAD + "from decimal import Decimal\n\nfrom tenant_typed import typed\n\n\n"

TENANT = {
    "tenant_ok": _TENANT_HEAD + '''def use(client: EngageClient) -> int:
    tenant = typed(client)
    reply = tenant.call("tenantScore", contactId=1, level="HIGH", tags=["vip"],
                        weight=Decimal("1.5"))
    reveal_type(reply["score"])
    reveal_type(reply["labels"])
    tenant.call("tenantScore", contactId=2, level="LOW", weight=0.5)
    user = tenant.call("userGetByEmail", email="a@example.com")["user"]
    return (user["id"] or 0) if user else reply["score"] or 0
''',
    "tenant_misspelt": _TENANT_HEAD + '''def use(client: EngageClient) -> None:
    typed(client).call("tenantScore", contactID=1, level="LOW")  # E: Unexpected keyword argument "contactID"
''',
    "tenant_wrong_type": _TENANT_HEAD + '''def use(client: EngageClient) -> None:
    typed(client).call("tenantScore", contactId="1", level="LOW")  # E: matches argument types "str", "str", "str"
''',
    "tenant_enumeration": _TENANT_HEAD + '''def use(client: EngageClient) -> None:
    typed(client).call("tenantScore", contactId=1, level="MEDIUM")  # E: matches argument types "str", "int", "str"
''',
    "tenant_reply_key": _TENANT_HEAD + '''def use(client: EngageClient) -> None:
    typed(client).call("tenantScore", contactId=1, level="LOW")["scores"]  # E: TypedDict "TenantScoreReply" has no key "scores"
''',
}


def readme_example() -> str:
    """The README's typed-call example, as a function of a client; ``# error:`` marks kept."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Typed calls"):]
    code = re.search(r"```py\n(.*?)```", section, re.S)
    assert code is not None
    body = textwrap.indent(code.group(1).replace("# error: ", "# E: "), "    ")
    return _HEAD + f"def example(client: EngageClient) -> None:\n{body}"


BUNDLED["readme_example"] = readme_example()
