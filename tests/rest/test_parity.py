"""Parity: the same facade scenarios against the sandbox over SOAP and over REST.

Each scenario runs on a freshly seeded sandbox once per protocol; its results (models,
plain dicts, the sandbox's outbox) and every exception (class and fields) must be equal.
Only what names the wire itself is left out of the comparison: the HTTP status of a fault
(500 on SOAP, 400 on REST), the SOAP fault code and the raw XML detail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engage_soap import Attachment, EngageClient, RetryPolicy
from engage_soap.errors import EngageError, EngageFault
from engage_soap.sandbox import DEFAULT_PASSWORD, DEFAULT_USERNAME, Sandbox
from engage_soap.sandbox.wire import SoapFault

WIRE_ONLY = {"http_status", "fault_code", "detail_xml", "body_excerpt"}
J = "j.mcexample@example.com"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(rate_limit=None) as sb:
        yield sb


def _error(exc: EngageError) -> dict[str, Any]:
    fields = {k: v for k, v in vars(exc).items() if k not in WIRE_ONLY}
    return {"class": type(exc).__name__, **fields}


def _outcome(step: Callable[[], Any]) -> Any:
    try:
        return ("ok", step())
    except EngageError as exc:
        return ("error", _error(exc))


Scenario = Callable[[EngageClient, Sandbox], list[Any]]


def contacts(c: EngageClient, _sb: Sandbox) -> list[Any]:
    return [_outcome(lambda: c.contact_get(email=J)),
            _outcome(lambda: c.contact_get(contact_id=33458)),
            _outcome(lambda: c.contact_get(app_alias="app-7f3c9a21")),
            _outcome(lambda: c.contact_get(email="nobody@example.com")),
            _outcome(lambda: c.contact_create(email="new@example.com",
                                              attributes={"FIRSTNAME": "N", "CITY": ""})),
            _outcome(lambda: c.contact_create(email="new@example.com")),
            _outcome(lambda: c.contact_create(email="x@example.com",
                                              attributes={"NOT_DEFINED": "1"})),
            _outcome(lambda: c.contact_get(email="not-an-address"))]


def update_and_delete(c: EngageClient, _sb: Sandbox) -> list[Any]:
    ident = {"type": "EMAIL", "value": J}
    return [_outcome(lambda: c.call("contactUpdate", identifierType="EMAIL", contact={
                "emailAddress": J, "attributes": [{"name": "FIRSTNAME", "value": "Janet"}]})),
            _outcome(lambda: c.call("contactGet", identifier=ident)),
            _outcome(lambda: c.call("contactDelete", identifier=ident)),
            _outcome(lambda: c.call("contactDelete", identifier=ident)),
            _outcome(lambda: c.contact_get(email=J))]


def sends(c: EngageClient, sb: Sandbox) -> list[Any]:
    out = [_outcome(lambda: c.message_send_single(
               23541, 33457, parameters={"ORDER": "A-1", "AMOUNT": 12.5},
               attachments=[Attachment("a.pdf", b"%PDF-1.4 x", "application/pdf")])),
           _outcome(lambda: c.message_send_single(99999, 33457)),
           _outcome(lambda: c.message_send_single(23541, 99999)),
           _outcome(lambda: c.send_prepared_message(23542, email="fresh@example.com",
                                                    create_if_missing=True)),
           _outcome(lambda: c.send_prepared_message(23542, email="absent@example.com"))]
    out.append([(e.message_id, e.recipient_id, e.email_address, e.group_id, e.parameters,
                 e.attachments) for e in sb.state.outbox])
    return out


def calls(c: EngageClient, _sb: Sandbox) -> list[Any]:
    return [_outcome(c.api_version),
            _outcome(lambda: c.call("systemGetEcmVersion")),
            _outcome(lambda: c.call("userGetByEmail", email=J)),
            _outcome(lambda: c.call("userGet", userId=33459)),
            _outcome(lambda: c.call("userGet", userId=1)),
            _outcome(lambda: c.call("groupGet", groupId=4711)),
            _outcome(lambda: c.call("groupGetPreparedMessages", groupId=4712)),
            _outcome(lambda: c.call("membershipSubscribeByEmail", email=J, groupId=4711,
                                    subscriptionMode="OPT_IN")),
            _outcome(lambda: c.call("membershipFindAllByEmail", email=J)),
            _outcome(lambda: c.call("userGetProfileByEmail", email=J)),
            _outcome(lambda: c.call("userUpdateProfile", userId=33457,
                                    attributes=[{"name": "CITY", "value": "Berlin"}])),
            _outcome(lambda: c.call("userGetProfile", userId=33457))]


def faults(c: EngageClient, sb: Sandbox) -> list[Any]:
    out = []
    sb.faults.inject("contactGet", "throttle", times=1)
    out.append(_outcome(lambda: c.contact_get(email=J)))
    sb.faults.inject("contactGet", "http_502", times=1)
    out.append(_outcome(lambda: c.contact_get(email=J)))
    sb.faults.inject("contactGet", "empty_503", times=1)
    out.append(_outcome(lambda: c.contact_get(email=J)))
    sb.faults.inject("contactGet", "fault", times=1, fault=SoapFault.unexpected(
        "Injected fault.", error_id="e-1"))
    out.append(_outcome(lambda: c.contact_get(email=J)))
    sb.faults.inject("messageSendSingle", "fault", times=1, fault=SoapFault.unexpected(
        "Denied.", error_id="e-2", error_code="PERMISSION_DENIED", error_actor="CLIENT"))
    out.append(_outcome(lambda: c.message_send_single(23541, 33457)))
    sb.rate_limit = 1
    try:
        out.append([_outcome(c.api_version) for _ in range(3)])
    finally:
        sb.rate_limit = None
    return out


def bulk(c: EngageClient, _sb: Sandbox, journal: Path) -> list[Any]:
    report = c.send_bulk(23543, [J, "bulk.new@example.com", {"contact_id": 99999}],
                         journal=journal, workers=1, create_if_missing=True)
    return [report.sent, report.failed, report.unknown,
            [(r.error_class, r.error_code) for r in report.failures]]


SCENARIOS: dict[str, Scenario] = {"contacts": contacts, "update_and_delete": update_and_delete,
                                  "sends": sends, "calls": calls, "faults": faults}


def _run(sandbox: Sandbox, url: str, scenario: Callable[[EngageClient, Sandbox], Any]) -> Any:
    sandbox.state.reset()
    sandbox.faults.clear()
    with EngageClient(url, DEFAULT_USERNAME, DEFAULT_PASSWORD, rate_limit=None,
                      retry=RetryPolicy.none(), timeout=10) as client:
        return scenario(client, sandbox)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_same_results_and_errors_over_soap_and_rest(sandbox: Sandbox, name: str) -> None:
    soap = _run(sandbox, sandbox.url, SCENARIOS[name])
    rest = _run(sandbox, sandbox.rest_url, SCENARIOS[name])
    assert rest == soap
    assert any(o[0] == "ok" for o in _flat(soap))


def _flat(outcomes: list[Any]) -> list[Any]:
    return [item for o in outcomes for item in (o if isinstance(o, list) else [o])
            if isinstance(item, tuple) and len(item) == 2]


def test_bulk_over_both(sandbox: Sandbox, tmp_path: Path) -> None:
    soap = _run(sandbox, sandbox.url, lambda c, sb: bulk(c, sb, tmp_path / "soap.db"))
    rest = _run(sandbox, sandbox.rest_url, lambda c, sb: bulk(c, sb, tmp_path / "rest.db"))
    assert rest == soap and soap[0] == 2


def test_the_scenarios_cover_each_error_class(sandbox: Sandbox) -> None:
    seen = set()
    for scenario in SCENARIOS.values():
        for kind, value in _flat(_run(sandbox, sandbox.rest_url, scenario)):
            if kind == "error":
                seen.add(value["class"])
    assert seen >= {"ContactNotFoundError", "NoSuchObjectError", "ObjectAlreadyExistsError",
                    "InvalidParameterError", "UnexpectedServerError", "PermissionDeniedError",
                    "RateLimitedError", "HTTPStatusError"}


def test_state_is_shared_between_the_two_fronts(sandbox: Sandbox) -> None:
    sandbox.state.reset()
    with EngageClient(sandbox.url, DEFAULT_USERNAME, DEFAULT_PASSWORD, rate_limit=None) as soap, \
            EngageClient(sandbox.rest_url, DEFAULT_USERNAME, DEFAULT_PASSWORD,
                         rate_limit=None) as rest:
        created = soap.contact_create(email="both@example.com")
        assert rest.contact_get(email="both@example.com") == created
        rest.call("contactDelete", identifier={"type": "EMAIL", "value": "both@example.com"})
        with pytest.raises(EngageFault):
            soap.contact_get(email="both@example.com")
    assert [c.operation for c in sandbox.state.calls] == [
        "contactCreate", "contactGet", "contactDelete", "contactGet"]
