"""Bad input: InvalidInputError before any request, or a request valid against the schema.

No socket: the client's requests go to an in-memory transport that answers like the
FakeServer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from engage_soap import Attachment, EngageClient, Identifier, InvalidInputError
from engage_soap.resources import bundled_xsd
from engage_soap.testing import MockTransport

from .conftest import PASSWORD, USER
from .fakeserver import SOAP_ENV, in_memory

SCHEMA = etree.XMLSchema(etree.parse(str(bundled_xsd())))
COUNT = {"examples": 0, "sent": 0, "rejected": 0}

ok_text = st.text(alphabet="ab1@.-_ \u00e9\u4e2d<&>]\"'", min_size=1, max_size=30)
any_text = st.one_of(
    ok_text,
    st.text(st.characters(blacklist_categories=())),  # includes lone surrogates, controls
    st.text(),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\x0bb", "\ufffe", "e\u0301", "\U0001f600",
                     "<![CDATA[", "]]>", "&amp;", "<x/>", "\t\n\r"]),
    st.integers(1, 3).map(lambda n: "x" * (n * 400_000)),  # huge strings
)
anything = st.one_of(ok_text, any_text, st.none(), st.integers(), st.floats(),
                     st.binary(max_size=20),
                     st.booleans(), st.lists(st.integers(), max_size=2))
keys = st.one_of(any_text, st.integers(), st.none())
ids = st.one_of(st.integers(min_value=-2, max_value=2**64),
                st.integers(1, 2**63 - 1), anything)


@pytest.fixture(scope="module")
def env() -> Iterator[tuple[MockTransport, EngageClient]]:
    transport = in_memory()
    with EngageClient("http://127.0.0.1:9/api/soap/v8/", USER, PASSWORD, rate_limit=None,
                      transport=transport) as client:
        yield transport, client


def check(env: tuple[MockTransport, EngageClient], action) -> None:
    """Run ``action``: InvalidInputError with nothing sent, or one schema-valid request."""
    transport, client = env
    before = len(transport.requests)
    COUNT["examples"] += 1
    try:
        action(client)
    except InvalidInputError:
        COUNT["rejected"] += 1
        assert len(transport.requests) == before, "a rejected call must send nothing"
        return
    COUNT["sent"] += 1
    assert len(transport.requests) == before + 1
    root = etree.fromstring(transport.requests[-1].body)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    payload = root.find(f"{{{SOAP_ENV}}}Body")[0]
    SCHEMA.assertValid(payload)


@given(kind=st.sampled_from(["email", "mobile_number", "app_alias", "external_id", "contact_id"]),
       value=st.one_of(ok_text, anything, ids))
def _contact_get_identifiers(env, kind, value) -> None:
    check(env, lambda c: c.contact_get(**{kind: value}))


@given(id_type=st.one_of(st.sampled_from(["EMAIL", "ID", "UNIFIED", "email"]), anything),
       value=anything)
def _identifier_objects(env, id_type, value) -> None:
    def act(c):
        c.contact_get(Identifier(id_type, value))
    check(env, act)


@given(mid=ids, rid=ids,
       params=st.one_of(st.none(), st.dictionaries(any_text, anything, max_size=3), anything),
       files=st.lists(st.tuples(anything, st.one_of(st.binary(max_size=64), anything),
                                st.one_of(st.none(), any_text)), max_size=2))
def _message_send_single(env, mid, rid, params, files) -> None:
    def act(c):
        attachments = [Attachment(n, b, t) for n, b, t in files]
        c.message_send_single(mid, rid, parameters=params, attachments=attachments)
    check(env, act)


@given(email=st.one_of(st.none(), anything), external=st.one_of(st.none(), anything),
       attributes=st.one_of(st.none(), st.dictionaries(keys, anything, max_size=3)))
def _contact_create(env, email, external, attributes) -> None:
    check(env, lambda c: c.contact_create(email=email, external_id=external,
                                          attributes=attributes))


PROPERTIES = {"contact_get": _contact_get_identifiers, "identifier": _identifier_objects,
              "message_send_single": _message_send_single, "contact_create": _contact_create}
# Of 150 examples, good input is common for these two (about 40 and 30 are sent); the other
# two strategies mostly build input the client must refuse.
MIN_SENT = {"contact_get": 10, "contact_create": 5}


@pytest.mark.parametrize("name", PROPERTIES)
def test_bad_input_is_refused_and_good_input_sent(env, name: str) -> None:
    before = dict(COUNT)
    PROPERTIES[name](env)  # hypothesis runs every example of the property here
    sent = COUNT["sent"] - before["sent"]
    rejected = COUNT["rejected"] - before["rejected"]
    print(f"\n{name}: {sent} sent, {rejected} rejected")
    assert sent + rejected == COUNT["examples"] - before["examples"] > 0
    assert rejected > 0, "the strategies must produce input the client refuses"
    assert sent >= MIN_SENT.get(name, 0), "the strategies must produce input that is sent"

