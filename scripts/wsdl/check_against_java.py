#!/usr/bin/env python3
"""Cross-check ecmapi.xsd / ecmapi.wsdl against the JAX-WS Java sources.

Independent of gen_from_java.py on purpose: it does NOT read the Javadoc schema
fragments. It derives every expectation from the annotations and Java signatures
(regexes): Ecm.java (@WebMethod, @WebResult, @WebParam, @RequestWrapper,
@ResponseWrapper, throws), @WebFault on *_Exception, @XmlType(name, propOrder),
@XmlElement(required, nillable, name), field types, @XmlEnum constants,
ObjectFactory @XmlElementDecl, package-info. The documented v7 contact operations
are checked against the shapes written in the brief / engage-api.md.

Usage: python check_against_java.py [--git-dir DIR | --src-dir DIR] [--dir OUTPUT_DIR]
Exit status 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from lxml import etree

TNS = "http://ecircle.com/developer/ecmapi"
XS = "{http://www.w3.org/2001/XMLSchema}"
W = "{http://schemas.xmlsoap.org/wsdl/}"
SOAP = "{http://schemas.xmlsoap.org/wsdl/soap/}"
PKG = "src/com/ecircle/developer/ecmapi"

errors: list[str] = []
checked: dict[str, int] = {}


def bump(k: str, n: int = 1) -> None:
    checked[k] = checked.get(k, 0) + n


def expect(cond: bool, msg: str) -> None:
    bump("assertions")
    if not cond:
        errors.append(msg)


def sources(git_dir, src_dir):
    out = {}
    if src_dir:
        for fn in os.listdir(src_dir):
            if fn.endswith(".java"):
                out[fn[:-5]] = open(os.path.join(src_dir, fn), encoding="utf-8").read()
        return out
    ls = subprocess.run(["git", f"--git-dir={git_dir}", "ls-tree", "--name-only", "HEAD", PKG + "/"],
                        capture_output=True, text=True, check=True).stdout.split()
    for p in ls:
        if p.endswith(".java"):
            out[os.path.basename(p)[:-5]] = subprocess.run(
                ["git", f"--git-dir={git_dir}", "show", "HEAD:" + p],
                capture_output=True, text=True, check=True).stdout
    return out


# ------------------------------------------------------------------ Java side
PRIM = {"long": "long", "int": "int", "boolean": "boolean", "short": "short", "double": "double",
        "float": "float", "byte": "byte"}
BOXED = {"String": "string", "Long": "long", "Integer": "int", "Boolean": "boolean", "Short": "short",
         "Double": "double", "Float": "float", "byte[]": "base64Binary", "XMLGregorianCalendar": "dateTime",
         "Object": "anyType", "BigDecimal": "decimal", "BigInteger": "integer", "QName": "QName"}


def java_model(src):
    xmltype = {}   # class -> xsd type name
    for c, s in src.items():
        m = re.search(r'@XmlType\(name\s*=\s*"([^"]*)"', s)
        if m:
            xmltype[c] = m.group(1)
    types = {}     # xsd name -> ("complex", [(elem, ns, local, min, max, nillable)]) | ("enum", [consts])
    unmapped = []
    for c, s in src.items():
        if c not in xmltype:
            continue
        name = xmltype[c]
        if re.search(r"public\s+class\s+\w+\s+extends\s+(\w+)", s):
            unmapped.append(f"{c}: extends (inheritance) - check by hand")
        if "@XmlEnum" in s:
            body = re.search(r"public\s+enum\s+\w+\s*\{(.*?);", s, re.S).group(1)
            vals = [v.strip() for v in body.split(",") if v.strip()]
            if "@XmlEnumValue" in s:
                unmapped.append(f"{c}: @XmlEnumValue")
            types[name] = ("enum", vals)
            continue
        pm = re.search(r"propOrder\s*=\s*\{([^}]*)\}", s)
        prop = re.findall(r'"(\w*)"', pm.group(1)) if pm else []
        prop = [p for p in prop if p]
        for bad in ("@XmlAttribute", "@XmlValue", "@XmlAnyElement", "@XmlElementRef", "@XmlElements",
                    "JAXBElement", "@XmlMixed", "@XmlList"):
            if bad in s:
                unmapped.append(f"{c}: uses {bad}")
        elems = []
        for p in prop:
            fm = re.search(r"((?:@\w+(?:\([^)]*\))?\s*)*)protected\s+([\w<>\[\]]+)\s+" + p + r"\s*;", s)
            if not fm:
                unmapped.append(f"{c}.{p}: field not found")
                continue
            ann, jt = fm.group(1), fm.group(2)
            xe = re.search(r"@XmlElement\(([^)]*)\)", ann)
            xe = xe.group(1) if xe else ""
            ename = re.search(r'name\s*=\s*"([^"]+)"', xe)
            ename = ename.group(1) if ename else p
            nill = "nillable = true" in xe
            req = "required = true" in xe
            lst = jt.startswith("List<")
            inner = jt[5:-1] if lst else jt
            if inner in PRIM:
                ns, local = "xs", PRIM[inner]
            elif inner in BOXED:
                ns, local = "xs", BOXED[inner]
            elif inner in xmltype:
                ns, local = "tns", xmltype[inner]
            else:
                unmapped.append(f"{c}.{p}: Java type {jt}")
                continue
            if lst:
                mn, mx = 0, "unbounded"
            else:
                mn, mx = (1 if (inner in PRIM or req) else 0), "1"
            elems.append((ename, ns, local, mn, mx, nill))
        types[name] = ("complex", elems)
    faults = {}
    for c, s in src.items():
        m = re.search(r'@WebFault\(name\s*=\s*"([^"]+)",\s*targetNamespace\s*=\s*"([^"]+)"', s)
        if m:
            bean = re.search(r"(\w+)\s+getFaultInfo\(", s).group(1)
            faults[c] = (m.group(1), m.group(2), xmltype[bean])
    gelems = {}
    for ns, n, cls in re.findall(r'@XmlElementDecl\(namespace\s*=\s*"([^"]*)",\s*name\s*=\s*"([^"]+)"\)\s*'
                                 r'public\s+JAXBElement<(\w+)>', src["ObjectFactory"]):
        gelems[n] = (ns, xmltype[cls])
    ops = []
    ecm = src["Ecm"]
    for chunk in re.split(r"(?=@WebMethod)", ecm)[1:]:
        chunk = chunk[: chunk.index(";")]
        wm = re.match(r"@WebMethod(\(([^)]*)\))?", chunk)
        action = ""
        if wm.group(2):
            a = re.search(r'action\s*=\s*"([^"]*)"', wm.group(2))
            action = a.group(1) if a else ""
        res = re.search(r'@WebResult\(name\s*=\s*"([^"]+)",\s*targetNamespace\s*=\s*"([^"]*)"', chunk)
        rq = re.search(r'@RequestWrapper\(localName\s*=\s*"([^"]+)",\s*targetNamespace\s*=\s*"([^"]+)",\s*'
                       r'className\s*=\s*"[\w.]*?(\w+)"', chunk)
        rs = re.search(r'@ResponseWrapper\(localName\s*=\s*"([^"]+)",\s*targetNamespace\s*=\s*"([^"]+)",\s*'
                       r'className\s*=\s*"[\w.]*?(\w+)"', chunk)
        sig = re.search(r"public\s+([\w<>]+)\s+(\w+)\(", chunk)
        params = re.findall(r'@WebParam\(name\s*=\s*"([^"]+)",\s*targetNamespace\s*=\s*"([^"]*)"\)\s*'
                            r'([\w<>\[\]]+)\s+\w+', chunk)
        thr = re.search(r"throws\s+([\w\s,]+)$", chunk.strip())
        excs = [t.strip() for t in thr.group(1).split(",")] if thr else []
        ops.append(dict(name=sig.group(2), ret=sig.group(1), action=action,
                        result=res.groups() if res else None, req=rq.groups(), resp=rs.groups(),
                        params=params, faults=[faults[e][0] for e in excs],
                        fault_ns=[faults[e][1] for e in excs]))
    efd_q = "XmlNsForm.QUALIFIED" in src["package-info"]
    ns_ok = f'namespace = "{TNS}"' in src["package-info"]
    return dict(xmltype=xmltype, types=types, faults=faults, gelems=gelems, ops=ops,
                unmapped=unmapped, efd_qualified=efd_q, ns_ok=ns_ok,
                n_webmethod=len(re.findall(r"^\s*@WebMethod\b", ecm, re.M)))


# ------------------------------------------------------------------ XSD / WSDL side
def xsd_model(path):
    x = etree.parse(path).getroot()
    nsmap = x.nsmap

    def q(v):
        p, l = v.split(":")
        return ("xs" if nsmap[p] == XS[1:-1] else "tns" if nsmap[p] == TNS else "?" + nsmap[p]), l

    ctypes, stypes, gelems = {}, {}, {}
    for el in x:
        if el.tag == XS + "element":
            gelems[el.get("name")] = q(el.get("type"))
        elif el.tag == XS + "complexType":
            seq = el.find(XS + "sequence")
            assert len([c for c in el if isinstance(c.tag, str)]) == 1, el.get("name")
            elems, anys = [], []
            for c in seq:
                if not isinstance(c.tag, str):
                    continue
                if c.tag == XS + "element":
                    ns, l = q(c.get("type"))
                    elems.append((c.get("name"), ns, l, int(c.get("minOccurs", "1")), c.get("maxOccurs", "1"),
                                  c.get("nillable") == "true"))
                elif c.tag == XS + "any":
                    anys.append(dict(c.attrib))
                else:
                    raise AssertionError(f"unexpected {c.tag} in {el.get('name')}")
            ctypes[el.get("name")] = (elems, anys)
        elif el.tag == XS + "simpleType":
            r = el.find(XS + "restriction")
            stypes[el.get("name")] = (q(r.get("base")), [e.get("value") for e in r.findall(XS + "enumeration")],
                                      [(f.tag[len(XS):], f.get("value")) for f in r
                                       if isinstance(f.tag, str) and f.tag != XS + "enumeration"])
    return dict(root=x, ctypes=ctypes, stypes=stypes, gelems=gelems,
                efd=x.get("elementFormDefault"), tns=x.get("targetNamespace"))


def wsdl_model(path):
    w = etree.parse(path).getroot()

    def local(qn):
        return qn.split(":", 1)[1]

    msgs = {m.get("name"): [(p.get("name"), local(p.get("element"))) for p in m.findall(W + "part")]
            for m in w.findall(W + "message")}
    pt = w.find(W + "portType")
    ops = {}
    for o in pt.findall(W + "operation"):
        ops[o.get("name")] = dict(inp=local(o.find(W + "input").get("message")),
                                  out=local(o.find(W + "output").get("message")),
                                  faults=[(f.get("name"), local(f.get("message"))) for f in o.findall(W + "fault")])
    b = w.find(W + "binding")
    bops = {}
    for o in b.findall(W + "operation"):
        bops[o.get("name")] = dict(
            action=o.find(SOAP + "operation").get("soapAction"),
            inuse=o.find(W + "input").find(SOAP + "body").get("use"),
            outuse=o.find(W + "output").find(SOAP + "body").get("use"),
            faults=[(f.get("name"), f.find(SOAP + "fault").get("name"), f.find(SOAP + "fault").get("use"))
                    for f in o.findall(W + "fault")])
    svc = w.find(W + "service")
    port = svc.find(W + "port")
    return dict(root=w, msgs=msgs, pt_name=pt.get("name"), ops=ops, b_name=b.get("name"),
                b_style=b.find(SOAP + "binding").get("style"),
                b_transport=b.find(SOAP + "binding").get("transport"), b_type=b.get("type"), bops=bops,
                svc=svc.get("name"), port=port.get("name"), port_binding=port.get("binding"),
                address=port.find(SOAP + "address").get("location"), name=w.get("name"),
                imports=[(i.get("namespace"), i.get("schemaLocation"))
                         for i in w.iter("{http://www.w3.org/2001/XMLSchema}import")])


CONTACT = {
    # op: (request children, response children, faults)
    "contactGet": ([("identifier", "tns", "contactIdentifier", 1, "1", False)],
                   [("contact", "tns", "contact", 1, "1", False)],
                   ["NoSuchObjectException", "InvalidParameterException", "UnexpectedErrorException"]),
    "contactCreate": ([("contact", "tns", "contact", 1, "1", False)],
                      [("contact", "tns", "contact", 1, "1", False)],
                      ["InvalidParameterException", "ObjectAlreadyExistsException", "UnexpectedErrorException"]),
    "contactUpdate": ([("identifierType", "tns", "contactIdentifierType", 1, "1", False),
                       ("contact", "tns", "contact", 1, "1", False)],
                      [("contact", "tns", "contact", 1, "1", False)],
                      ["NoSuchObjectException", "InvalidParameterException", "UnexpectedErrorException"]),
    "contactDelete": ([("identifier", "tns", "contactIdentifier", 1, "1", False)], [],
                      ["NoSuchObjectException", "InvalidParameterException", "UnexpectedErrorException"]),
}
CONTACT_TYPES = {
    "contactIdentifier": [("type", "tns", "contactIdentifierType", 1, "1", False),
                          ("value", "tns", "nonEmptyString", 1, "1", False)],
    "contact": [("contactId", "xs", "long", 0, "1", False), ("emailAddress", "xs", "string", 0, "1", False),
                ("mobileNumber", "xs", "string", 0, "1", False), ("applicationAlias", "xs", "string", 0, "1", False),
                ("identifier", "xs", "string", 0, "1", False),
                ("attributes", "tns", "attribute", 0, "unbounded", False),
                ("unifiedIdentifiers", "tns", "attribute", 0, "unbounded", False),
                ("channelAddresses", "tns", "attribute", 0, "unbounded", False)],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--git-dir", default=os.environ.get("ECM_CONNECTOR_GIT", "eCmConnector/.git"))
    ap.add_argument("--src-dir")
    ap.add_argument("--dir", default=os.path.dirname(os.path.abspath(__file__)))
    a = ap.parse_args()
    J = java_model(sources(None if a.src_dir else a.git_dir, a.src_dir))
    X = xsd_model(os.path.join(a.dir, "ecmapi.xsd"))
    D = wsdl_model(os.path.join(a.dir, "ecmapi.wsdl"))

    # schema-level
    expect(J["ns_ok"] and X["tns"] == TNS, "targetNamespace")
    expect(X["efd"] == ("qualified" if J["efd_qualified"] else "unqualified"), "elementFormDefault")
    expect(D["name"] == "EcmWS" and D["pt_name"] == "Ecm" and D["b_name"] == "EcmWSPortBinding"
           and D["b_type"] == "tns:Ecm" and D["svc"] == "EcmWS" and D["port"] == "EcmWSPort"
           and D["port_binding"] == "tns:EcmWSPortBinding", "WSDL names")
    expect(D["b_style"] == "document" and D["b_transport"] == "http://schemas.xmlsoap.org/soap/http", "soap:binding")
    expect(D["address"] == "https://engage.example.invalid/api/soap/v8/", "address")
    expect(D["imports"] == [(TNS, "ecmapi.xsd")], f"WSDL imports {D['imports']}")
    expect(not any(el.tag in (XS + "import", XS + "include", XS + "redefine") for el in X["root"].iter()),
           "XSD must not import/include")

    # every type class
    for tname, (kind, body) in J["types"].items():
        bump("type classes")
        if kind == "enum":
            st = X["stypes"].get(tname)
            expect(st is not None, f"simpleType {tname} missing")
            if st:
                expect(st[0] == ("xs", "string") and st[1] == body and not st[2], f"simpleType {tname}: {st} vs {body}")
                bump("enum values", len(body))
            continue
        ct = X["ctypes"].get(tname)
        expect(ct is not None, f"complexType {tname} missing")
        if ct:
            expect(ct[0] == body, f"complexType {tname}:\n   xsd  {ct[0]}\n   java {body}")
            expect(not ct[1], f"complexType {tname} has xs:any")
            bump("type elements (name, order, type, min, max, nillable)", len(body))

    # global elements
    for n, (ns, t) in J["gelems"].items():
        bump("ObjectFactory global elements")
        expect(ns == TNS and X["gelems"].get(n) == ("tns", t), f"global element {n}: {X['gelems'].get(n)} vs {t}")

    # operations from Ecm.java
    expect(len(J["ops"]) == J["n_webmethod"], "op parse count")
    for o in J["ops"]:
        bump("Java operations")
        n = o["name"]
        rq_el, rq_ns, rq_cls = o["req"]
        rs_el, rs_ns, rs_cls = o["resp"]
        expect(rq_ns == TNS and rs_ns == TNS, f"{n}: wrapper namespace")
        expect(rq_el == n and rs_el == n + "Response", f"{n}: wrapper names {rq_el}/{rs_el}")
        wo = D["ops"].get(n)
        expect(wo is not None, f"{n}: missing from portType")
        if not wo:
            continue
        expect(wo["inp"] == n and D["msgs"].get(n) == [("parameters", rq_el)], f"{n}: input message")
        expect(wo["out"] == n + "Response" and D["msgs"].get(n + "Response") == [("parameters", rs_el)],
               f"{n}: output message")
        expect(X["gelems"].get(rq_el) == ("tns", J["xmltype"][rq_cls]), f"{n}: request element type")
        expect(X["gelems"].get(rs_el) == ("tns", J["xmltype"][rs_cls]), f"{n}: response element type")
        # request children == @WebParam, in order, typed from the Java signature
        rq_children = X["ctypes"][J["xmltype"][rq_cls]][0]
        expect([c[0] for c in rq_children] == [p[0] for p in o["params"]],
               f"{n}: request children {[c[0] for c in rq_children]} vs @WebParam {[p[0] for p in o['params']]}")
        expect(all(p[1] == "" for p in o["params"]), f"{n}: qualified @WebParam")
        for c, (pn, _, jt) in zip(rq_children, o["params"]):
            lst = jt.startswith("List<")
            expect((c[3], c[4]) == ((0, "unbounded") if lst else (c[3], "1")), f"{n}.{pn}: list-ness")
            if jt in PRIM:
                expect(c[3] == 1 and c[1:3] == ("xs", PRIM[jt]), f"{n}.{pn}: primitive {jt} -> {c}")
            bump("request children")
        rs_children = X["ctypes"][J["xmltype"][rs_cls]][0]
        if o["result"]:
            expect([c[0] for c in rs_children] == [o["result"][0]] and o["result"][1] == "",
                   f"{n}: response children {rs_children} vs @WebResult {o['result']}")
            if rs_children:
                lst = o["ret"].startswith("List<")
                expect((rs_children[0][4] == "unbounded") == lst, f"{n}: response list-ness")
                if o["ret"] in PRIM:
                    expect(rs_children[0][1:4] == ("xs", PRIM[o["ret"]], 1), f"{n}: primitive result")
            bump("response children")
        else:
            expect(o["ret"] == "void" and rs_children == [], f"{n}: void op must have empty response")
        # faults (portType order == throws order; binding same)
        expect([f[0] for f in wo["faults"]] == o["faults"], f"{n}: portType faults {wo['faults']} vs throws {o['faults']}")
        expect(all(f[0] == f[1] and D["msgs"].get(f[1]) == [("fault", f[0])] for f in wo["faults"]),
               f"{n}: fault messages")
        expect(all(ns == TNS for ns in o["fault_ns"]), f"{n}: fault namespace")
        for f in o["faults"]:
            bean = [v[2] for v in J["faults"].values() if v[0] == f][0]
            expect(X["gelems"].get(f) == ("tns", bean), f"{n}: fault element {f} type")
        bump("declared faults", len(o["faults"]))
        bo = D["bops"].get(n)
        expect(bo is not None, f"{n}: missing from binding")
        if bo:
            expect(bo["action"] == o["action"], f"{n}: soapAction {bo['action']!r} vs {o['action']!r}")
            expect(bo["inuse"] == bo["outuse"] == "literal", f"{n}: body use")
            expect([(f, f, "literal") for f in o["faults"]] == bo["faults"], f"{n}: binding faults {bo['faults']}")

    # documented contact operations
    for n, (rq, rs, faults) in CONTACT.items():
        bump("contact operations")
        wo, bo = D["ops"].get(n), D["bops"].get(n)
        expect(wo is not None and bo is not None, f"{n} missing")
        if not wo:
            continue
        expect(X["gelems"].get(n) == ("tns", n) and X["gelems"].get(n + "Response") == ("tns", n + "Response"),
               f"{n}: wrapper elements")
        expect(X["ctypes"][n] == (rq, []), f"{n}: request {X['ctypes'][n]}")
        expect(X["ctypes"][n + "Response"] == (rs, []), f"{n}: response {X['ctypes'][n + 'Response']}")
        expect(D["msgs"][n] == [("parameters", n)] and D["msgs"][n + "Response"] == [("parameters", n + "Response")],
               f"{n}: messages")
        expect([f[0] for f in wo["faults"]] == faults, f"{n}: faults {wo['faults']}")
        expect(bo["faults"] == [(f, f, "literal") for f in faults] and bo["action"] == "", f"{n}: binding")
    for t, body in CONTACT_TYPES.items():
        expect(X["ctypes"].get(t, (None,))[0] == body, f"contact type {t}")
    expect(X["ctypes"]["contact"][1] == [{"namespace": "##other", "processContents": "lax", "minOccurs": "0",
                                          "maxOccurs": "unbounded"}], "contact xs:any")
    expect(X["stypes"].get("contactIdentifierType") == (("xs", "string"),
                                                        ["EMAIL", "MOBILE", "APP_ALIAS", "EXTERNAL", "ID"], []),
           "contactIdentifierType")
    expect(X["stypes"].get("nonEmptyString") == (("xs", "string"), [], [("minLength", "1")]), "nonEmptyString")
    expect(X["ctypes"]["attribute"][0] == [("name", "xs", "string", 1, "1", False),
                                           ("value", "xs", "string", 1, "1", False)], "attribute reused, real shape")

    # nothing extra / nothing dangling
    known_ct = {t for t, (k, _) in J["types"].items() if k == "complex"} | set(CONTACT_TYPES) | \
        {n for n in CONTACT} | {n + "Response" for n in CONTACT}
    known_st = {t for t, (k, _) in J["types"].items() if k == "enum"} | {"contactIdentifierType", "nonEmptyString"}
    expect(set(X["ctypes"]) == known_ct, f"extra/missing complexTypes {set(X['ctypes']) ^ known_ct}")
    expect(set(X["stypes"]) == known_st, f"extra/missing simpleTypes {set(X['stypes']) ^ known_st}")
    known_ge = set(J["gelems"]) | set(CONTACT) | {n + "Response" for n in CONTACT}
    expect(set(X["gelems"]) == known_ge, f"extra/missing global elements {set(X['gelems']) ^ known_ge}")
    all_ops = [o["name"] for o in J["ops"]] + list(CONTACT)
    expect(list(D["ops"]) == all_ops and list(D["bops"]) == all_ops, "op set/order in portType/binding")
    used_msgs = {o for o in all_ops} | {o + "Response" for o in all_ops} | \
        {f for o in D["ops"].values() for _, f in o["faults"]}
    expect(set(D["msgs"]) == used_msgs, f"unused/missing messages {set(D['msgs']) ^ used_msgs}")
    for t, (elems, _) in X["ctypes"].items():
        for e in elems:
            expect(e[1] == "xs" or e[2] in X["ctypes"] or e[2] in X["stypes"], f"{t}.{e[0]}: dangling {e}")

    print(f"Java: {J['n_webmethod']} @WebMethod, {len(J['types'])} @XmlType classes, "
          f"{len(J['gelems'])} ObjectFactory elements, {len(J['faults'])} @WebFault classes")
    print(f"WSDL: {len(D['ops'])} portType operations ({J['n_webmethod']} + {len(CONTACT)} contact), "
          f"{len(D['msgs'])} messages")
    for k, v in checked.items():
        print(f"  checked {k}: {v}")
    print("  could not map:", J["unmapped"] or "nothing")
    if errors:
        print(f"FAILED: {len(errors)}")
        for e in errors:
            print("  -", e)
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
