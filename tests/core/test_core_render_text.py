"""Requests are written as text in one pass: every value survives parsing unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from engage_soap import zeep_binding
from engage_soap.envelope import ECM_NS, SOAP11_NS, render_request
from engage_soap.schema import ComplexPlan, Field, simple_plan

LOADED = zeep_binding.load_wsdl(None)
GET = LOADED.operations["contactGet"]
SEND = LOADED.operations["messageSendSingle"]

# Every character XML 1.0 can carry (the plans refuse the others before writing).
XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=[
    *map(chr, [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0xFFFE, 0xFFFF])]))


def _parse(data: bytes) -> etree._Element:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False))
    assert root.tag == f"{{{SOAP11_NS}}}Envelope"
    return root[0][0]


@settings(max_examples=300, deadline=None)
@given(XML_TEXT)
def test_any_text_value_reads_back_as_it_was_given(value: str) -> None:
    wrapper = _parse(render_request(GET, {"identifier": {"type": "EMAIL", "value": value}}))
    assert wrapper.tag == f"{{{ECM_NS}}}contactGet"
    assert wrapper.findtext("identifier/value") == value
    assert wrapper.findtext("identifier/type") == "EMAIL"


def test_markup_characters_are_escaped_not_interpreted() -> None:
    value = '<a href="x">&amp;</a>]]>\r\n\'"'
    data = render_request(SEND, {"messageId": 1, "recipientId": 2, "additionalContent": {
        "parameters": [{"name": "N&<", "value": value}], "attachments": []}})
    assert b"<a href" not in data and b"&amp;amp;" in data and b"&#13;" in data
    param = _parse(data).find("additionalContent/parameters")
    assert param is not None
    assert param.findtext("name") == "N&<" and param.findtext("value") == value


def test_qualified_children_and_nil_are_written_with_their_namespaces() -> None:
    ns = "urn:example:tenant"
    text = simple_plan("string", "string")
    inner = ComplexPlan("inner", (Field("v", f"{{{ns}}}v", 1, 1, text),))
    plan = ComplexPlan("req", (
        Field("q", f"{{{ns}}}q", 1, 1, inner),
        Field("n", "n", 1, 1, text, nillable=True),
        Field("r", "r", 0, None, text),
    ))
    op = type(GET)(name="op", soap_action="", request_tag=f"{{{ns}}}op", request=plan,
                   response_tag=f"{{{ns}}}opResponse", response=plan)
    wrapper = _parse(render_request(op, {"q": {"v": "x"}, "n": None, "r": ["a", "b"]}))
    assert wrapper.tag == f"{{{ns}}}op"
    assert [c.tag for c in wrapper] == [f"{{{ns}}}q", "n", "r", "r"]
    assert wrapper[0][0].tag == f"{{{ns}}}v" and wrapper[0][0].text == "x"
    assert wrapper[1].get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true"
