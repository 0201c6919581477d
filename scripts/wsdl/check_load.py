#!/usr/bin/env python3
"""Load ecmapi.xsd with lxml and ecmapi.wsdl with zeep (strict, offline), list the
operations of EcmWSPortBinding, compare their number with Ecm.java, and run a few
sample documents (from engage-api.md) through the schema and through zeep.

Usage: python check_load.py [--git-dir DIR] [--dir OUTPUT_DIR]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

import zeep
from lxml import etree

TNS = "http://ecircle.com/developer/ecmapi"

SAMPLES_VALID = {
    "contactGet request": f"""<ecm:contactGet xmlns:ecm="{TNS}">
      <identifier><type>EMAIL</type><value>j.mcexample@example.com</value></identifier></ecm:contactGet>""",
    "contactGetResponse with unknown qualified trailing element": f"""<ns2:contactGetResponse xmlns:ns2="{TNS}"
      xmlns:x="urn:example:later"><contact><contactId>42</contactId><emailAddress>a@example.com</emailAddress>
      <attributes><name>FirstName</name><value>Tom</value></attributes>
      <unifiedIdentifiers><name>u</name><value>1</value></unifiedIdentifiers>
      <x:somethingNew>1</x:somethingNew></contact></ns2:contactGetResponse>""",
    "messageSendSingle request": f"""<ecm:messageSendSingle xmlns:ecm="{TNS}"><messageId>23541</messageId>
      <recipientId>33457</recipientId><additionalContent>
      <parameters><name>FIRSTNAME</name><value>Tom</value></parameters>
      <attachments><name>invoice.pdf</name><contentType>application/pdf</contentType><content>JVBERi0x</content></attachments>
      </additionalContent></ecm:messageSendSingle>""",
    "messageSendSingle request, empty additionalContent": f"""<ecm:messageSendSingle xmlns:ecm="{TNS}">
      <messageId>1</messageId><recipientId>2</recipientId><additionalContent/></ecm:messageSendSingle>""",
    "messageSendSingleResponse (empty)": f'<ns2:messageSendSingleResponse xmlns:ns2="{TNS}"/>',
    "systemGetApiVersionResponse": f'<ns2:systemGetApiVersionResponse xmlns:ns2="{TNS}"><version>8</version></ns2:systemGetApiVersionResponse>',
    "NoSuchObjectException detail": f"""<ns2:NoSuchObjectException xmlns:ns2="{TNS}">
      <errorActor>CLIENT</errorActor><errorCode>NO_SUCH_OBJECT</errorCode>
      <message>Contact with identifier=x@example.com does not exist.</message>
      <objectType>Contact</objectType><propertyName>identifier</propertyName><propertyValue>x@example.com</propertyValue>
      </ns2:NoSuchObjectException>""",
    "contactDeleteResponse (empty)": f'<ns2:contactDeleteResponse xmlns:ns2="{TNS}"/>',
}
SAMPLES_INVALID = {
    "attribute without value": f"""<ecm:messageSendSingle xmlns:ecm="{TNS}"><messageId>1</messageId>
      <recipientId>2</recipientId><additionalContent><parameters><name>A</name></parameters></additionalContent>
      </ecm:messageSendSingle>""",
    "messageSendSingle without additionalContent": f"""<ecm:messageSendSingle xmlns:ecm="{TNS}">
      <messageId>1</messageId><recipientId>2</recipientId></ecm:messageSendSingle>""",
    "contactGet with empty identifier value": f"""<ecm:contactGet xmlns:ecm="{TNS}">
      <identifier><type>EMAIL</type><value></value></identifier></ecm:contactGet>""",
    "contactGet with lower-case type": f"""<ecm:contactGet xmlns:ecm="{TNS}">
      <identifier><type>email</type><value>a@b</value></identifier></ecm:contactGet>""",
    "qualified child element": f"""<ecm:contactGet xmlns:ecm="{TNS}">
      <ecm:identifier><type>EMAIL</type><value>a</value></ecm:identifier></ecm:contactGet>""",
    "systemGetApiVersionResponse with return": f'<ns2:systemGetApiVersionResponse xmlns:ns2="{TNS}"><return>8</return></ns2:systemGetApiVersionResponse>',
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--git-dir", default=os.environ.get("ECM_CONNECTOR_GIT", "eCmConnector/.git"))
    ap.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    ok = True
    xsd_path = os.path.join(a.dir, "ecmapi.xsd")
    wsdl_path = os.path.join(a.dir, "ecmapi.wsdl")

    schema = etree.XMLSchema(etree.parse(xsd_path))
    print(f"lxml: {xsd_path} compiles")
    for name, doc in SAMPLES_VALID.items():
        good = schema.validate(etree.fromstring(doc))
        print(f"  valid sample   {'ok  ' if good else 'FAIL'} {name}")
        ok &= good
    for name, doc in SAMPLES_INVALID.items():
        bad = not schema.validate(etree.fromstring(doc))
        print(f"  invalid sample {'ok  ' if bad else 'FAIL'} {name} (rejected: {bad})")
        ok &= bad

    settings = zeep.Settings(strict=True, forbid_external=True, forbid_dtd=True)
    doc = zeep.wsdl.Document(wsdl_path, zeep.Transport(), settings=settings)
    binding = doc.bindings["{%s}EcmWSPortBinding" % TNS]
    ops = list(binding._operations)
    ecm = subprocess.run(["git", f"--git-dir={a.git_dir}", "show",
                          "HEAD:src/com/ecircle/developer/ecmapi/Ecm.java"],
                         capture_output=True, text=True, check=True).stdout
    n_web = len(re.findall(r"^\s*@WebMethod\b", ecm, re.M))
    print(f"zeep (strict, forbid_external, forbid_dtd): binding EcmWSPortBinding has {len(ops)} operations; "
          f"Ecm.java has {n_web} @WebMethod + 4 contact ops = {n_web + 4}")
    ok &= len(ops) == n_web + 4
    print("  " + " ".join(ops))

    # zeep builds requests and parses replies
    client = zeep.Client(wsdl_path, settings=settings)
    svc = client.create_service("{%s}EcmWSPortBinding" % TNS, "https://engage.example.invalid/api/soap/v8/")
    env = client.create_message(svc, "messageSendSingle", messageId=1, recipientId=2,
                                additionalContent={"parameters": [{"name": "A", "value": ""}]})
    body = etree.tostring(env).decode()
    good = "<additionalContent><parameters><name>A</name><value></value></parameters>" in body.replace(
        "<value/>", "<value></value>")
    print(f"  zeep builds messageSendSingle with unqualified children: {'ok' if good else 'FAIL'}")
    ok &= good
    env = client.create_message(svc, "contactGet", identifier={"type": "EMAIL", "value": "a@example.com"})
    good = schema.validate(env.find(".//{%s}contactGet" % TNS))
    print(f"  zeep-built contactGet validates against the XSD: {'ok' if good else 'FAIL'}")
    ok &= good
    op = binding.get("systemGetApiVersion")
    reply = etree.fromstring(
        '<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>'
        f'<ns2:systemGetApiVersionResponse xmlns:ns2="{TNS}"><version>8</version>'
        '</ns2:systemGetApiVersionResponse></S:Body></S:Envelope>')
    val = op.process_reply(reply)
    print(f"  zeep parses systemGetApiVersionResponse -> {val!r}")
    ok &= val == "8"
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
