"""A tenant's WSDL for the typegen tests: the bundled one plus one operation of its own.

``tenantScore(contactId: long, level: scoreLevel (LOW|HIGH), tags: string*, weight?: decimal)
-> {score: int, labels: string*}``; ``with_choice`` puts an xs:choice (unsupported) in it.
"""

from __future__ import annotations

from pathlib import Path

from engage_soap.resources import bundled_wsdl, bundled_xsd

_TYPES = """
  <xs:simpleType name="scoreLevel">
    <xs:restriction base="xs:string">
      <xs:enumeration value="LOW"/>
      <xs:enumeration value="HIGH"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:element name="tenantScore" type="tns:tenantScore"/>
  <xs:element name="tenantScoreResponse" type="tns:tenantScoreResponse"/>
  <xs:complexType name="tenantScore">
    <xs:sequence>
      <xs:element name="contactId" type="xs:long"/>
      <xs:element name="level" type="tns:scoreLevel"/>
      <xs:element name="tags" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
      <xs:element name="weight" type="xs:decimal" minOccurs="0"/>
    </xs:sequence>
  </xs:complexType>
  <xs:complexType name="tenantScoreResponse">
    <xs:sequence>
      <xs:element name="score" type="xs:int"/>
      <xs:element name="labels" type="xs:string" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence>
  </xs:complexType>
"""
_CHOICE = """
  <xs:complexType name="tenantScoreResponse">
    <xs:choice>
      <xs:element name="score" type="xs:int"/>
      <xs:element name="label" type="xs:string"/>
    </xs:choice>
  </xs:complexType>
"""
_MESSAGES = """
  <message name="tenantScore"><part name="parameters" element="tns:tenantScore"/></message>
  <message name="tenantScoreResponse">
    <part name="parameters" element="tns:tenantScoreResponse"/>
  </message>
"""
_PORT = """
    <operation name="tenantScore">
      <input message="tns:tenantScore"/>
      <output message="tns:tenantScoreResponse"/>
    </operation>
"""
_BINDING = """
    <operation name="tenantScore">
      <soap:operation soapAction=""/>
      <input><soap:body use="literal"/></input>
      <output><soap:body use="literal"/></output>
    </operation>
"""


def _insert(text: str, before: str, extra: str) -> str:
    assert text.count(before) == 1, before
    return text.replace(before, extra + before)


def tenant_wsdl(folder: Path, *, with_choice: bool = False) -> Path:
    """Write ``tenant.wsdl`` and its ``tenant.xsd`` into ``folder``; return the WSDL's path."""
    types = _TYPES
    if with_choice:
        start = types.index('  <xs:complexType name="tenantScoreResponse">')
        types = types[:start] + _CHOICE
    xsd = _insert(bundled_xsd().read_text(encoding="utf-8"), "</xs:schema>", types)
    wsdl = bundled_wsdl().read_text(encoding="utf-8").replace(
        'schemaLocation="ecmapi.xsd"', 'schemaLocation="tenant.xsd"')
    wsdl = _insert(wsdl, '  <portType name="Ecm">', _MESSAGES)
    wsdl = _insert(wsdl, "  </portType>", _PORT)
    wsdl = _insert(wsdl, "  </binding>", _BINDING)
    (folder / "tenant.xsd").write_text(xsd, encoding="utf-8")
    path = folder / "tenant.wsdl"
    path.write_text(wsdl, encoding="utf-8")
    return path
