"""Which wire a client speaks: the protocol, decided once from the endpoint or told.

:func:`open_wire` is the one place that knows both wires; the facade only holds the
:class:`~engage_soap.soap.Wire` it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import ConfigurationError
from .soap import SoapWire, Wire
from .transport import Transport

if TYPE_CHECKING:
    from .zeep_binding import LoadedWsdl

__all__ = ["PROTOCOLS", "open_wire", "protocol_for"]

# protocol -> the path segment that names it in an endpoint
PROTOCOLS = {"soap": "/api/soap/", "rest": "/api/rest/"}


def protocol_for(endpoint: str, protocol: str | None) -> str:
    """``protocol`` checked, or the one ``endpoint``'s path names; ConfigurationError when
    it names none (or the other one)."""
    path = urlsplit(endpoint).path
    named = [p for p, segment in PROTOCOLS.items() if segment in path]
    if protocol is None:
        if len(named) != 1:
            raise ConfigurationError(
                f"the endpoint {endpoint!r} names neither /api/soap/ nor /api/rest/: say "
                "which protocol it speaks with protocol='soap' or protocol='rest'")
        return named[0]
    if protocol not in PROTOCOLS:
        raise ConfigurationError(f"protocol must be 'soap' or 'rest', not {protocol!r}")
    if named and protocol not in named:
        raise ConfigurationError(f"protocol={protocol!r}, but the endpoint {endpoint!r} is a "
                                 f"{named[0].upper()} endpoint")
    return protocol


def open_wire(endpoint: str, protocol: str | None, loaded: LoadedWsdl, http: Transport,
              authorization: str, *, validate: bool = False) -> Wire:
    """The wire for ``endpoint`` in ``protocol`` (None: as its path says)."""
    chosen = protocol_for(endpoint, protocol)
    if chosen == "soap":
        return SoapWire(endpoint, loaded, http, authorization, validate=validate)
    if validate:
        raise ConfigurationError("validate=True checks SOAP envelopes against the XSD; on "
                                 "REST every request is checked against the same schema "
                                 "plans already (leave validate off)")
    from .rest import RestWire

    return RestWire(endpoint, loaded.model, http, authorization)
