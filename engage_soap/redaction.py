"""Pseudonymising recorded exchanges: what a cassette keeps, what it replaces, and the key.

A cassette keeps what a replay needs and nothing personal. **Kept**: the structure, the
operation names, ids and numbers, booleans, enumeration values (identifier types, error
codes), the names of attributes and parameters, fault codes and a few structural names
(:data:`STRUCTURE`). **Replaced**, by default: every other text value (attribute and
parameter values, e-mail addresses, mobile numbers, names, free text such as fault
messages, attachment names and content), and the password wherever it shows. What is a
number or an enumeration comes from the WSDL's schema, so a replaced value never breaks
it. ``redact=`` / ENGAGE_REDACT widens this and ``keep=`` / ENGAGE_REDACT_KEEP narrows
it, by element name or by attribute or parameter name (``CITY``, ``ORDER_ID``).
REST exchanges go by the same rules (:meth:`Redactor.redact_json`): a JSON member is an
element of the same name, the query parameters are the request's top-level fields and the
body the value of the route's body argument (or of the reply element), and JSON numbers,
booleans and null are kept as the schema keeps numbers and booleans.

A replaced value becomes a fake of its kind: ``user-<h>@example.com``, ``+1555<7
digits>``, ``REDACTED-<h>``, or base64 of ``REDACTED-<h>`` for content, where ``<h>`` is
an HMAC-SHA256 of the value under the developer's key. The key is ENGAGE_REDACT_KEY, else
the file ``redact.key`` in the engage-soap config folder (``~/.config/engage-soap/``),
made on first use and never committed: the same value always gives the same fake with
the same key (a re-recording gives the same bytes), and someone holding only the cassette
and this code cannot test a guessed value against it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lxml import etree

from .config import CONFIG_ENV, default_config_path
from .envelope import SOAP11_NS, OperationPlan, parse_xml
from .errors import ConfigurationError, ProtocolError
from .schema import ComplexPlan, Field, SimplePlan

__all__ = ["KEY_ENV", "STRUCTURE", "Redactor", "key_file", "redaction_key"]

KEY_ENV = "ENGAGE_REDACT_KEY"
# String elements whose text is structure, not data (kept unless redact= names them).
STRUCTURE = frozenset({
    "faultcode", "errorActor", "errorCode", "errorId", "objectType", "propertyName",
    "parameterName", "attributeName", "attributeNames", "contentType", "version", "type",
    "messageId", "messageIds", "queueId", "status", "code"})
_SOAP_ENV = SOAP11_NS
_EMAIL = re.compile(r"[\w.%+'-]+@[\w-]+(?:\.[\w-]+)*\.\w{2,}")  # \w: any script's letters
_PHONE = re.compile(r"^(?:\+|00)\d[\d /()-]{5,20}\d$")
_ID = re.compile(r"^(?:id|.*Id)$")
_FAKE = re.compile(r"^(?:user-[0-9a-f]{12}@example\.com|\+1555\d{7}|REDACTED-[0-9a-f]{12}"
                   r"|UkVEQUNURUQt[A-Za-z0-9+/=]{16})$")  # the last: base64 of REDACTED-<h>


def key_file() -> Path:
    """``redact.key`` in the per-user engage-soap config folder (~/.config/engage-soap)."""
    environ = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    return default_config_path(environ).parent / "redact.key"


def redaction_key(*, create: bool) -> bytes | None:
    """ENGAGE_REDACT_KEY, else the key file (made, mode 0600, when ``create``), else None."""
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    path = key_file()
    try:
        return path.read_bytes().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    except OSError as exc:
        raise ConfigurationError(f"cannot read the redaction key {path}: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    except FileExistsError:  # another process made it first
        pass
    except OSError as exc:
        raise ConfigurationError(f"cannot create the redaction key {path} ({exc}); set "
                                 f"{KEY_ENV} instead") from exc
    return path.read_bytes().strip()


def key_id(key: bytes) -> str:
    """A name for a key that tells nothing about it (written into a cassette)."""
    return hmac.new(key, b"engage_soap:key-id", hashlib.sha256).hexdigest()[:16]


def _names(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values if v.strip())


class Redactor:
    """Replaces personal data and secrets in envelopes with keyed, stable fakes.

    ``redact``: more names to replace, ``keep``: names to keep verbatim (element names,
    or attribute or parameter names; a name given to both is replaced); ``key``: the
    HMAC key (default :func:`redaction_key`); ``plans``: the operation plans of the WSDL
    in use (default the bundled WSDL's), which say what is a number or an enumeration.
    ``password``: replaced wherever it shows; :meth:`check` refuses output that holds it.
    """

    def __init__(self, *, password: str | None = None, elements: Iterable[str] = (),
                 keep: Iterable[str] = (), key: bytes | str | None = None,
                 plans: Mapping[str, OperationPlan] | None = None) -> None:
        self.password = password or None
        self.elements = _names(elements)
        self.keep = _names(keep) - self.elements
        self._key = key.encode() if isinstance(key, str) else key
        self.plans = plans  # set before the first redact()
        self._tags: dict[str, ComplexPlan] | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = redaction_key(create=True)
        assert self._key is not None
        return self._key

    # ------------------------------------------------------------ fakes

    def _hash(self, kind: str, value: str) -> str:
        return hmac.new(self.key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def email(self, value: str) -> str:
        return f"user-{self._hash('email', value.strip().lower())[:12]}@example.com"

    def mobile(self, value: str) -> str:
        digits = re.sub(r"\D", "", value)
        return f"+1555{int(self._hash('mobile', digits), 16) % 10**7:07d}"

    def text(self, value: str) -> str:
        return f"REDACTED-{self._hash('text', value.strip())[:12]}"

    def binary(self, value: str) -> str:
        fake = f"REDACTED-{self._hash('binary', ''.join(value.split()))[:12]}"
        return base64.b64encode(fake.encode()).decode("ascii")

    @staticmethod
    def is_fake(text: str) -> bool:
        """Whether ``text`` has the form of a fake this class makes."""
        return bool(_FAKE.match(text))

    def fake_like(self, fake: str, value: str) -> str:
        """The fake ``value`` gets when replaced as ``fake`` was (same kind)."""
        if fake.startswith("user-"):
            return self.email(value)
        if fake.startswith("+1555"):
            return self.mobile(value)
        if fake.startswith("REDACTED-"):
            return self.text(value)
        return self.binary(value)

    # ------------------------------------------------------------ envelopes

    def _operations(self) -> Mapping[str, OperationPlan]:
        if self.plans is None:
            from .zeep_binding import load_wsdl

            self.plans = load_wsdl(None).operations
        return self.plans

    def _plan_of(self, tag: str) -> ComplexPlan | None:
        if self._tags is None:
            self._tags = {}
            for op in self._operations().values():
                self._tags[op.request_tag] = op.request
                self._tags[op.response_tag] = op.response
        return self._tags.get(tag)

    def _fake(self, local: str, names: set[str], value: str, plan: SimplePlan | None) -> str:
        if (plan is not None and plan.kind == "base64Binary") or local == "content":
            return self.binary(value)
        if _EMAIL.fullmatch(value.strip()):
            return self.email(value)
        if any("mobile" in n or "phone" in n for n in names) or _PHONE.match(value.strip()):
            return self.mobile(value)
        return self.text(value)

    def _leaf(self, local: str, value: str, sibling: Callable[[str], str | None],
              field: Field | None, inherited: str | None) -> str:
        """The text to record for the leaf ``local`` holding ``value``; ``sibling(name)``
        is the text of the leaf ``name`` beside it (None: no such leaf). One rule for
        XML elements and JSON members alike."""
        names = {local.lower()}
        if local == "value":  # an attribute, parameter or identifier
            names |= {(sibling("name") or "").lower(), (sibling("type") or "").lower()}
        if names & self.elements or inherited == "redact":
            return self._fake(local, names, value, None)
        if names & self.keep or inherited == "keep":
            return value
        plan = field.plan if field is not None and isinstance(field.plan, SimplePlan) else None
        if plan is not None and plan.kind not in ("string", "base64Binary"):
            return value  # a number, boolean, date...: ids and counts
        if plan is not None and plan.choices is not None:
            return value  # an enumeration value
        pair_name = local == "name" and sibling("value") is not None
        identifier_id = local == "value" and (sibling("type") or "") == "ID"
        unplanned_id = field is None and _ID.match(local) and value.strip().isdigit()
        if local in STRUCTURE or pair_name or identifier_id or unplanned_id:
            return value
        return self._fake(local, names, value, plan)

    def _mode(self, name: str, inherited: str | None) -> str | None:
        lowered = {name.lower()}
        return ("redact" if lowered & self.elements else
                "keep" if lowered & self.keep else inherited)

    def _walk(self, element: etree._Element, plan: ComplexPlan | None,
              inherited: str | None) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            local = etree.QName(child).localname
            mode = self._mode(local, inherited)
            field = plan.by_tag.get(child.tag) if plan is not None else None
            if len(child):
                self._walk(child, field.complex if field is not None else None, mode)
            elif child.text and child.text.strip():
                child.text = self._leaf(local, child.text, element.findtext, field, mode)

    # ------------------------------------------------------------ JSON (REST)

    def _json(self, data: dict[str, Any], plan: ComplexPlan | None, inherited: str | None
              ) -> dict[str, Any]:
        """A JSON object with its string leaves replaced as :meth:`_leaf` says; numbers,
        booleans and null are kept (the JSON type says what the schema says in XML)."""
        def sibling(name: str) -> str | None:
            value = data.get(name)
            return None if value is None else str(value)

        out: dict[str, Any] = {}
        for key, value in data.items():
            mode = self._mode(key, inherited)
            field = plan.by_name.get(key) if plan is not None else None
            out[key] = self._json_value(key, value, sibling, field, mode)
        return out

    def _json_value(self, key: str, value: Any, sibling: Callable[[str], str | None],
                    field: Field | None, mode: str | None) -> Any:
        if isinstance(value, list):
            return [self._json_value(key, v, sibling, field, mode) for v in value]
        if isinstance(value, dict):
            return self._json(value, field.complex if field is not None else None, mode)
        if isinstance(value, str) and value.strip():
            return self._leaf(key, value, sibling, field, mode)
        return value

    def redact_json(self, operation: str | None, values: dict[str, Any], *, reply: bool
                    ) -> dict[str, Any]:
        """``values`` (request or reply fields of ``operation`` by their SOAP names: the
        query parameters and the body under its argument's name, or the reply body under
        its element's name) with personal data replaced; an error bean or an unknown
        operation is walked without a plan, by names alone."""
        op = self._operations().get(operation or "")
        plan = None if op is None else op.response if reply else op.request
        return self._json(values, plan, self._mode(operation or "", None))

    def _free_text(self, text: str) -> str:
        text = _EMAIL.sub(lambda m: self.email(m.group()), text)
        if self.password:
            text = text.replace(self.password, "REDACTED-PASSWORD")
        return text

    def redact(self, body: bytes, *, pretty: bool = True) -> bytes:
        """``body`` with personal data replaced. XML is pretty-printed when ``pretty`` (for
        requests) or kept in the server's layout (replies); other bodies get e-mail
        addresses and the password replaced."""
        try:
            root = parse_xml(body)
        except ProtocolError:
            return self._free_text(body.decode("utf-8", "replace")).encode("utf-8")
        soap_body = root.find(f"{{{_SOAP_ENV}}}Body")
        if soap_body is None:
            self._walk(root, None, None)
        else:
            for payload in soap_body:
                if isinstance(payload.tag, str):
                    self._walk(payload, self._plan_of(payload.tag),
                               self._mode(etree.QName(payload).localname, None))
        for element in root.iter():
            for key, value in element.attrib.items():  # xsi:nil, xsi:type...
                element.set(key, self._free_text(str(value)))
        if pretty:
            for element in root.iter():
                if element.text is not None and not element.text.strip() and len(element):
                    element.text = None
                if element.tail is not None and not element.tail.strip():
                    element.tail = None
        if pretty:
            data: bytes = etree.tostring(root, pretty_print=True, xml_declaration=True,
                                         encoding="utf-8")
            return data
        # the server's layout, its XML declaration included (JAX-WS: one line)
        declaration = body[:body.index(b"?>") + 2] if body.startswith(b"<?xml") else b""
        return declaration + etree.tostring(root, encoding="UTF-8", xml_declaration=False)

    def check(self, data: bytes, what: str) -> None:
        """Refuse ``data`` if it still holds the password (plain, or XML-escaped)."""
        if not self.password:
            return
        needles = {self.password.encode(), escape(self.password).encode(),
                   escape(self.password, {'"': "&quot;"}).encode(),
                   json.dumps(self.password, ensure_ascii=False)[1:-1].encode()}
        if any(n in data for n in needles):
            raise ConfigurationError(f"refusing to record {what}: it would still contain "
                                     "the password")
