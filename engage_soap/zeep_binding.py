"""The one module that imports zeep: WSDL loading, schema compilation and ``client.service``.

A WSDL is parsed once per process per source and shared by every client (see
:func:`load_wsdl`). From zeep's parsed schema each operation is compiled once into the
protocol-neutral :class:`~engage_soap.service.ServiceModel` (schema plans, read or write,
declared faults) and its SOAP binding (:class:`~engage_soap.envelope.OperationPlan`),
with which the SOAP wire writes and reads envelopes with lxml alone. zeep's own service
object stays available as the escape hatch.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import requests
import zeep
import zeep.cache
import zeep.xsd
from lxml import etree
from zeep.wsdl import Document

from .envelope import OperationPlan, hardened_parser, http_status_error
from .errors import (
    AuthenticationError,
    ConfigurationError,
    EngageError,
    ProtocolError,
    TransportError,
)
from .resources import bundled_wsdl
from .schema import ComplexPlan, Field, SimplePlan, simple_plan
from .service import Operation, ServiceModel
from .transport import DEFAULT_MAX_REPLY_BYTES, HttpTransport, Transport, display_url

__all__ = ["LoadedWsdl", "default_cache_dir", "load_wsdl", "make_service"]

log = logging.getLogger("engage_soap")

SERVICE = "EcmWS"
PORT = "EcmWSPort"


@dataclass(frozen=True)
class LoadedWsdl:
    """A parsed WSDL, its service model and SOAP bindings (immutable, shared)."""

    source: str
    document: Any  # zeep.wsdl.Document
    binding_name: str
    operations: Mapping[str, OperationPlan]  # the SOAP binding of each operation
    documents: Mapping[str, bytes]  # every WSDL/XSD document read, by location
    model: ServiceModel


_LOADED: dict[tuple[str, str], LoadedWsdl] = {}
_LOCK = threading.Lock()


def default_cache_dir() -> Path:
    """Where fetched WSDLs are kept: $ENGAGE_SOAP_CACHE_DIR, else the user's cache folder."""
    env = os.environ.get("ENGAGE_SOAP_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "engage_soap" / "wsdl"


def _settings(*, forbid_external: bool) -> zeep.Settings:
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True,
                         forbid_external=forbid_external, xml_huge_tree=False,
                         force_https=False)


def _disk_cache(folder: Path) -> Any:
    """zeep's SQLite cache in ``folder``, never expiring (a tenant's WSDL changes with its
    version, i.e. with the URL); None, with a warning, when the folder is not writable."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        cache_class: Any = zeep.cache.SqliteCache
        return cache_class(path=str(folder / "wsdl-cache.sqlite"), timeout=None)
    except (OSError, sqlite3.Error) as exc:
        log.warning("no WSDL cache in %s: %s", folder, exc)
        return None


class _ZeepTransport(zeep.Transport):
    """zeep's Transport seam, routed through our Transport (deadline, size cap, fork safety).

    Every WSDL and schema document zeep reads passes through :meth:`load`, the one place
    that decides what may be read. A WSDL fetched over http(s) (``origin`` set) may import
    only from its own origin and the ``allowed_hosts``, never a local file; a local WSDL
    file imports local files only (zeep refuses http(s) imports with
    ``forbid_external``), each at most ``max_bytes`` long, like a fetched reply. The
    ``authorization`` header goes only to ``auth_host`` (the WSDL's own host, or the
    endpoint's for calls).
    """

    def __init__(self, http: Transport | None, *, cache: Any = None,
                 origin: tuple[str, str, int | None] | None = None,
                 allowed_hosts: frozenset[str] = frozenset(),
                 authorization: str | None = None, auth_host: str | None = None,
                 max_bytes: int = DEFAULT_MAX_REPLY_BYTES) -> None:
        # zeep's own __init__ would create a requests session; none is needed.
        self.cache = None
        self.load_timeout = self.operation_timeout = None
        self.logger = logging.getLogger("engage_soap.zeep")
        self.session = None
        self._close_session = False
        self._http = http
        self._disk = cache
        self._origin = origin
        self._allowed_hosts = allowed_hosts
        self._auth = ({"Authorization": authorization}
                      if authorization is not None and auth_host else {})
        self._auth_host = auth_host
        self._max_bytes = max_bytes
        self.documents: dict[str, bytes] = {}  # what was loaded, for facets and validation
        self.content_types: dict[str, str] = {}  # of the documents fetched over http(s)

    def _headers(self, url: str, headers: Mapping[str, str] | None = None) -> dict[str, str]:
        own = urlsplit(url).hostname == self._auth_host
        return {**(headers or {}), **(self._auth if own else {})}

    def load(self, url: str) -> bytes:
        data = self._load(url)
        self.documents[url] = data
        return data

    def _load(self, url: str) -> bytes:
        parts = urlsplit(url)
        remote = parts.scheme in ("http", "https")
        if self._origin is None:
            if remote:  # zeep's forbid_external refuses these first; never fetch them
                raise ConfigurationError(f"the local WSDL refers to {display_url(url)!r} on "
                                         "the network; refused")
            return self._read_file(url[7:] if parts.scheme == "file" else url)
        if not remote:
            raise ConfigurationError(
                f"the WSDL fetched from the network refers to {display_url(url)!r}, which is "
                "not on its own server; refused (a remote WSDL never reads local files)")
        if _origin(url) != self._origin and parts.hostname not in self._allowed_hosts:
            raise ConfigurationError(
                f"the WSDL refers to {display_url(url)!r} on another host; refused (allow "
                "it with wsdl_allowed_hosts)")
        cached = self._cached(url)
        if cached is not None:
            return cached
        if self._http is None:
            raise ConfigurationError(f"cannot fetch {display_url(url)!r}: no HTTP transport")
        # The credentials go to the WSDL's own host only, never to a host it imports from.
        reply = self._http.request("GET", url, headers=self._headers(url))
        if reply.status != 200:
            raise http_status_error(reply.status, reply.body,
                                    f"fetching the WSDL {display_url(url)!r}")
        self.content_types[url] = reply.headers.get("Content-Type", "")
        if self._disk is not None:
            try:
                self._disk.add(url, reply.body)
            except sqlite3.Error as exc:  # a broken cache must not break the client
                log.warning("cannot write the WSDL cache: %s", exc)
        return reply.body

    def _read_file(self, path: str) -> bytes:
        """A local document, refused beyond the cap (as a fetched one would be)."""
        with open(os.path.expanduser(path), "rb") as fh:
            data = fh.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise ConfigurationError(
                f"{path} is larger than the {self._max_bytes} byte cap of a WSDL or schema "
                "document (max_reply_bytes); refused")
        return data

    def _cached(self, url: str) -> bytes | None:
        if self._disk is None:
            return None
        try:
            data: bytes | None = self._disk.get(url)
        except sqlite3.Error as exc:
            log.warning("cannot read the WSDL cache: %s", exc)
            return None
        return data

    def post(self, address: str, message: bytes, headers: Mapping[str, str]) -> Any:
        assert self._http is not None
        reply = self._http.request("POST", address, message, self._headers(address, headers))
        resp = requests.Response()  # what zeep reads replies from
        resp.status_code = reply.status
        resp.headers.update(reply.headers)
        resp._content = reply.body
        resp.url = address
        resp.encoding = "utf-8"
        return resp

    def get(self, address: str, params: Any, headers: Mapping[str, str]) -> Any:
        raise ConfigurationError("HTTP GET bindings are not supported")


# ---------------------------------------------------------------- compiling plans

_XS = "http://www.w3.org/2001/XMLSchema"
# zeep's builtin type classes -> the converter kind (the first match in a type's MRO)
_KINDS = {"Long": "long", "Int": "int", "Short": "short", "Byte": "byte",
          "Integer": "integer", "Boolean": "boolean", "Decimal": "decimal",
          "Float": "decimal", "Double": "decimal", "Base64Binary": "base64Binary",
          "AnySimpleType": "string"}


def _enumerations(documents: Mapping[str, bytes]) -> dict[str, frozenset[str]]:
    """``{namespace}name`` of each named simple type with enumerations -> its values.

    zeep does not keep facets, so they are read from the schema documents it loaded.
    """
    found: dict[str, frozenset[str]] = {}
    parser = hardened_parser()
    for data in documents.values():
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError:
            continue
        for schema in root.iter(f"{{{_XS}}}schema"):
            tns = schema.get("targetNamespace", "")
            for simple in schema.iterfind(f"{{{_XS}}}simpleType[@name]"):
                values = [e.get("value", "") for e in simple.iterfind(
                    f"{{{_XS}}}restriction/{{{_XS}}}enumeration")]
                if values:
                    found[f"{{{tns}}}{simple.get('name')}"] = frozenset(values)
    return found


class _Compiler:
    """Turns zeep's parsed types into plans; refuses what the plans cannot express."""

    def __init__(self, enumerations: Mapping[str, frozenset[str]]) -> None:
        self._enums = enumerations
        self._complex: dict[int, ComplexPlan | None] = {}  # None: being compiled
        self._simple: dict[str, SimplePlan] = {}

    def simple(self, xsd_type: Any) -> SimplePlan:
        kind = next((_KINDS[c.__name__] for c in type(xsd_type).__mro__
                     if c.__name__ in _KINDS), "string")
        qname = getattr(xsd_type, "qname", None)
        name = qname.localname if qname is not None else kind
        key = qname.text if qname is not None else kind
        plan = self._simple.get(key)
        if plan is None:
            plan = self._simple[key] = simple_plan(kind, name, self._enums.get(key))
        return plan

    def complex(self, xsd_type: Any, where: str) -> ComplexPlan:
        key = id(xsd_type)
        if key in self._complex:
            done = self._complex[key]
            if done is None:
                raise ConfigurationError(f"{where}: recursive type {xsd_type.name!r} is not "
                                         "supported")
            return done
        self._complex[key] = None
        name = str(xsd_type.name or "anonymous")
        if xsd_type._attributes:
            raise ConfigurationError(f"{where}: type {name!r} declares XML attributes, which "
                                     "engage_soap does not support")
        fields: list[Field] = []
        open_ = self._particles(xsd_type._element, fields, f"{where} (type {name!r})")
        plan = ComplexPlan(name, tuple(fields), open_)
        self._complex[key] = plan
        return plan

    def _particles(self, particle: Any, fields: list[Field], where: str) -> bool:
        """Add the elements of ``particle`` to ``fields``; True if it holds a wildcard."""
        if particle is None:
            return False
        if isinstance(particle, zeep.xsd.Sequence) and particle.min_occurs == 1 == \
                particle.max_occurs:
            open_ = False
            for child in particle:
                if open_:
                    raise ConfigurationError(f"{where}: an element after a wildcard "
                                             "(xs:any) is not supported")
                open_ = self._particles(child, fields, where)
            return open_
        if isinstance(particle, zeep.xsd.Any):
            return True
        if isinstance(particle, zeep.xsd.Element) and not isinstance(particle, zeep.xsd.Any):
            child_where = f"{where}/{particle.name}"
            xsd_type = particle.type
            if isinstance(xsd_type, zeep.xsd.ComplexType):
                plan: SimplePlan | ComplexPlan = self.complex(xsd_type, child_where)
            elif type(xsd_type) is zeep.xsd.AnyType:
                raise ConfigurationError(f"{child_where}: xs:anyType elements are not "
                                         "supported")
            else:
                plan = self.simple(xsd_type)
            if particle.name == "_value_1":
                raise ConfigurationError(f"{where}: simple content is not supported")
            max_occurs = (None if particle.max_occurs == "unbounded"
                          else int(particle.max_occurs))
            fields.append(Field(str(particle.name), particle.qname.text, int(particle.min_occurs),
                                max_occurs, plan, bool(particle.nillable)))
            return False
        kind = type(particle).__name__
        raise ConfigurationError(f"{where}: xs:{kind.lower()} is not supported (engage_soap "
                                 "reads sequences of elements)")


def _compile(binding: Any, documents: Mapping[str, bytes],
             source: str) -> tuple[dict[str, OperationPlan], ServiceModel]:
    """Each operation's SOAP binding, and the service model they share the plans with."""
    plans: dict[str, OperationPlan] = {}
    model: dict[str, Operation] = {}
    compiler = _Compiler(_enumerations(documents))
    for name, op in binding._operations.items():
        body_in = getattr(op.input, "body", None)
        body_out = getattr(op.output, "body", None)
        if body_in is None or body_out is None:
            raise ConfigurationError(f"operation {name!r} is not document/literal wrapped")
        request = compiler.complex(body_in.type, name)
        reply = compiler.complex(body_out.type, f"{name}Response")
        plans[name] = OperationPlan(
            name=name, soap_action=op.soapaction or "", request_tag=body_in.qname.text,
            request=request, response_tag=body_out.qname.text, response=reply)
        model[name] = Operation(name, request, reply, frozenset(getattr(op, "faults", ())))
    return plans, ServiceModel(model, source)


# ---------------------------------------------------------------- loading


def load_wsdl(wsdl: str | os.PathLike[str] | None, *, http: Transport | None = None,
              authorization: str | None = None,
              cache_dir: str | os.PathLike[str] | None = None,
              allowed_hosts: frozenset[str] = frozenset()) -> LoadedWsdl:
    """The parsed WSDL for ``wsdl`` (None: the bundled copy), built once per process."""
    if wsdl is None:
        source = str(bundled_wsdl())
        is_url = False
    else:
        source = os.fspath(wsdl)
        is_url = urlsplit(source).scheme in ("http", "https")
        if not is_url:
            source = str(Path(source).expanduser().resolve())
    key = ("url" if is_url else "file", source)
    loaded = _LOADED.get(key)
    if loaded is not None:
        return loaded
    with _LOCK:
        loaded = _LOADED.get(key)
        if loaded is None:
            loaded = _load(source, is_url, http, authorization, cache_dir, allowed_hosts)
            _LOADED[key] = loaded
    return loaded


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


def _received(transport: _ZeepTransport, source: str) -> str:
    """What was read from ``source``: its size, content type and first bytes."""
    data = transport.documents.get(source)
    if data is None:
        return ""
    kind = transport.content_types.get(source)
    return (f" (received {len(data)} bytes{f' of {kind}' if kind else ''}, starting "
            f"{data[:80]!r})")


def _load(source: str, is_url: bool, http: Transport | None, authorization: str | None,
          cache_dir: str | os.PathLike[str] | None,
          allowed_hosts: frozenset[str]) -> LoadedWsdl:
    shown = display_url(source)
    if is_url:
        host = urlsplit(source).hostname or ""
        disk = _disk_cache(Path(cache_dir) if cache_dir else default_cache_dir())
        transport = _ZeepTransport(http, cache=disk, origin=_origin(source),
                                   allowed_hosts=allowed_hosts,
                                   authorization=authorization, auth_host=host)
        settings = _settings(forbid_external=False)
    else:
        if not Path(source).is_file():
            raise ConfigurationError(f"WSDL file not found: {source}")
        cap = http.max_reply_bytes if isinstance(http, HttpTransport) else \
            DEFAULT_MAX_REPLY_BYTES
        transport = _ZeepTransport(None, max_bytes=cap)
        settings = _settings(forbid_external=True)
    try:
        document = Document(source, transport, settings=settings)  # type: ignore[arg-type]
        if not document.services or not all(s.ports for s in document.services.values()):
            raise ConfigurationError(f"it declares no service with a port: not a WSDL"
                                     f"{_received(transport, source)}")
        service = document.services[SERVICE] if SERVICE in document.services else next(
            iter(document.services.values()))
        port = service.ports[PORT] if PORT in service.ports else next(
            iter(service.ports.values()))
        binding = port.binding
        plans, model = _compile(binding, transport.documents, source)
    except EngageError as exc:
        if isinstance(exc, AuthenticationError):
            raise
        if isinstance(exc, TransportError | ProtocolError | ConfigurationError):
            raise ConfigurationError(f"cannot load the WSDL {shown!r}: {exc}") from exc
        raise
    except Exception as exc:  # zeep, lxml and OS errors: zeep lets many kinds through
        raise ConfigurationError(
            f"cannot load the WSDL {shown!r}: {type(exc).__name__}: {exc}"
            f"{_received(transport, source)}") from exc
    log.debug("loaded WSDL %s (%d operations)", shown, len(plans))
    return LoadedWsdl(source, document, binding.name.text, MappingProxyType(plans),
                      MappingProxyType(dict(transport.documents)), model)


def make_service(loaded: LoadedWsdl, endpoint: str, http: Transport,
                 authorization: str) -> Any:
    """zeep's ServiceProxy for ``loaded``'s binding at ``endpoint``, over ``http``."""
    client_cls: Any = zeep.Client
    transport = _ZeepTransport(http, authorization=authorization,
                               auth_host=urlsplit(endpoint).hostname)
    client = client_cls(loaded.document, transport=transport,
                         settings=_settings(forbid_external=True))
    return client.create_service(loaded.binding_name, endpoint)
