"""Validation of envelopes against the schema of the WSDL in use (``validate=True``).

The schema is compiled with lxml from the very documents the WSDL was loaded from (kept
by the loader), never fetched again: a resolver serves only those documents, so
validation touches no network and no file the loader did not read.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urljoin

from lxml import etree

from .envelope import hardened_parser
from .errors import ConfigurationError, InvalidInputError, ProtocolError
from .resources import bundled_wsdl, bundled_xsd

__all__ = ["SchemaValidator", "bundled_validator", "validator_for"]

_WSDL = "http://schemas.xmlsoap.org/wsdl/"
_XS = "http://www.w3.org/2001/XMLSchema"
_INLINE = "engage-soap-inline-schema-{}.xsd"


class _Documents(etree.Resolver):
    """Serves the loaded documents (and the WSDL's inline schemas); refuses anything else."""

    def __init__(self, documents: Mapping[str, bytes]) -> None:
        super().__init__()
        self._documents = dict(documents)
        for key in list(self._documents):  # file paths also by file: URL
            if key.startswith("/"):
                self._documents.setdefault(f"file://{key}", self._documents[key])

    def add(self, url: str, data: bytes) -> None:
        self._documents[url] = data

    def resolve(self, system_url: str, public_id: str,  # type: ignore[override]
                context: object) -> object:
        data = self._documents.get(system_url)
        if data is None:
            raise ConfigurationError(f"the schema refers to {system_url!r}, which was not "
                                     "loaded with the WSDL")
        return self.resolve_string(data, context, base_url=system_url)


def _compile(documents: Mapping[str, bytes], location: str) -> etree.XMLSchema:
    resolver = _Documents(documents)
    parser = hardened_parser()
    parser.resolvers.add(resolver)
    wsdl = etree.fromstring(documents[location], parser, base_url=location)
    driver = etree.Element(f"{{{_XS}}}schema", nsmap={"xs": _XS})
    for i, schema in enumerate(wsdl.iterfind(f"{{{_WSDL}}}types/{{{_XS}}}schema")):
        # each inline schema becomes a document of its own, beside the WSDL (so that
        # relative schemaLocations resolve as they did when the WSDL was loaded)
        url = urljoin(location, _INLINE.format(i))
        resolver.add(url, etree.tostring(schema))
        namespace = schema.get("targetNamespace")
        if namespace:
            etree.SubElement(driver, f"{{{_XS}}}import", namespace=namespace,
                             schemaLocation=url)
        else:  # a schema of no namespace (often one that only imports): included as is
            etree.SubElement(driver, f"{{{_XS}}}include", schemaLocation=url)
    root = etree.fromstring(etree.tostring(driver), parser, base_url=location)
    return etree.XMLSchema(root)


class SchemaValidator:
    """Checks request and reply payloads (the operation wrapper elements) against the
    schema; thread-safe. Building one compiles the schema once."""

    def __init__(self, documents: Mapping[str, bytes], location: str) -> None:
        try:
            self._schema = _compile(documents, location)
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, KeyError) as exc:
            raise ConfigurationError(
                f"cannot compile the schema of {location!r} for validation: {exc}") from exc
        self._lock = threading.Lock()  # an XMLSchema keeps one error log

    def error(self, element: etree._Element) -> Any | None:
        """The first schema error of ``element`` (an lxml log entry with ``message``,
        ``path`` and ``type_name``), or None when it fits."""
        with self._lock:
            if self._schema.validate(element):
                return None
            entries: list[Any] = list(cast(Any, self._schema.error_log))
        return entries[0] if entries else None

    def _problem(self, element: etree._Element) -> str | None:
        error = self.error(element)
        return None if error is None else f"at {error.path}: {error.message}"

    def check_request(self, element: etree._Element, operation: str) -> None:
        """InvalidInputError (nothing is sent) if the request does not fit the schema."""
        problem = self._problem(element)
        if problem is not None:
            raise InvalidInputError(f"{operation}: the request does not fit the schema "
                                    f"{problem}")

    def check_reply(self, element: etree._Element, operation: str) -> None:
        """ProtocolError if the reply does not fit the schema."""
        problem = self._problem(element)
        if problem is not None:
            raise ProtocolError(f"{operation}: the reply does not fit the schema {problem}",
                                request_sent=True)


_CACHE: dict[str, SchemaValidator] = {}
_CACHE_LOCK = threading.Lock()


def validator_for(documents: Mapping[str, bytes], location: str) -> SchemaValidator:
    """The validator of the WSDL at ``location``, compiled once per process."""
    with _CACHE_LOCK:
        found = _CACHE.get(location)
        if found is None:
            found = _CACHE[location] = SchemaValidator(documents, location)
        return found


def bundled_validator() -> SchemaValidator:
    """The validator of the bundled WSDL (the same one a client with validate=True shares;
    the sandbox validates with it too)."""
    wsdl, xsd = bundled_wsdl(), bundled_xsd()
    return validator_for({str(wsdl): wsdl.read_bytes(), str(xsd): xsd.read_bytes()},
                         str(wsdl))
