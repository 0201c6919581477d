"""Plain data types of the public API: identifiers, contacts, attachments, results.

They hold no wire types: the SOAP binding (and a REST one beside it) convert to and from
these. Constructors validate, so bad input fails before any request is made.
"""

from __future__ import annotations

import enum
import mimetypes
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from .errors import InvalidInputError

__all__ = [
    "IDENTIFIERS",
    "Attachment",
    "Contact",
    "Exchange",
    "Identifier",
    "IdentifierField",
    "IdentifierType",
    "SendResult",
    "check_id",
    "check_text",
]

# Characters XML 1.0 cannot carry at all (control characters, lone surrogates, U+FFFE/F).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The server's ids are xs:long.
_MAX_LONG = 2**63 - 1


def check_text(value: object, what: str, *, allow_blank: bool = False) -> str:
    """Return ``value`` if it is a str that XML can carry, else raise InvalidInputError."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a str, not {type(value).__name__}")
    if not allow_blank and not value.strip():
        raise InvalidInputError(f"{what} must not be blank")
    bad = _XML_ILLEGAL.search(value)
    if bad:
        raise InvalidInputError(
            f"{what} contains a character XML cannot carry (U+{ord(bad.group()):04X}) "
            f"at position {bad.start()}")
    return value


def check_id(value: object, what: str) -> int:
    """Return ``value`` if it is a positive int that fits an xs:long, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what} must be a positive int, not {type(value).__name__}")
    if not 0 < value <= _MAX_LONG:
        raise InvalidInputError(f"{what} must be a positive int up to 2**63-1, got {value}")
    return value


class IdentifierType(str, enum.Enum):
    """How a contact is looked up (the wire values are these names)."""

    EMAIL = "EMAIL"
    MOBILE = "MOBILE"
    APP_ALIAS = "APP_ALIAS"
    EXTERNAL = "EXTERNAL"
    ID = "ID"


@dataclass(frozen=True)
class IdentifierField:
    """One way to name a contact: the one table every layer reads identifiers from.

    ``type`` is the wire value of a contact identifier; ``name`` the keyword used for it
    everywhere in this library (``contact_get(email=...)``, ``contact_create(...)``,
    ``send_prepared_message(...)``, the command line's ``--mobile-number``) and the
    :class:`Contact` attribute (``contact_id`` is ``Contact.id``); ``wire`` the element
    of the service's ``contact`` that holds it.
    """

    type: IdentifierType
    name: str
    wire: str

    @property
    def attribute(self) -> str:
        """The :class:`Contact` attribute holding this identifier."""
        return "id" if self.type is IdentifierType.ID else self.name


IDENTIFIERS: tuple[IdentifierField, ...] = (
    IdentifierField(IdentifierType.EMAIL, "email", "emailAddress"),
    IdentifierField(IdentifierType.MOBILE, "mobile_number", "mobileNumber"),
    IdentifierField(IdentifierType.APP_ALIAS, "app_alias", "applicationAlias"),
    IdentifierField(IdentifierType.EXTERNAL, "external_id", "identifier"),
    IdentifierField(IdentifierType.ID, "contact_id", "contactId"),
)
BY_NAME = {f.name: f for f in IDENTIFIERS}
BY_TYPE = {f.type: f for f in IDENTIFIERS}


@dataclass(frozen=True)
class Identifier:
    """A contact identifier: a type and a value, e.g. ``Identifier.email("a@b.example")``."""

    type: IdentifierType
    value: str

    def __post_init__(self) -> None:
        try:
            kind = IdentifierType(self.type)
        except ValueError:
            names = ", ".join(t.name for t in IdentifierType)
            raise InvalidInputError(
                f"identifier type must be one of {names}, got {self.type!r}") from None
        object.__setattr__(self, "type", kind)
        if kind is IdentifierType.ID:
            value: object = self.value
            if isinstance(value, str) and value.isascii() and value.isdigit():
                value = int(value)
            object.__setattr__(self, "value", str(check_id(value, "contact id")))
        else:
            check_text(self.value, f"{kind.name} identifier value")

    @classmethod
    def email(cls, value: str) -> Identifier:
        return cls(IdentifierType.EMAIL, value)

    @classmethod
    def mobile(cls, value: str) -> Identifier:
        return cls(IdentifierType.MOBILE, value)

    @classmethod
    def app_alias(cls, value: str) -> Identifier:
        return cls(IdentifierType.APP_ALIAS, value)

    @classmethod
    def external(cls, value: str) -> Identifier:
        return cls(IdentifierType.EXTERNAL, value)

    @classmethod
    def id(cls, value: int) -> Identifier:
        # An int is required here (and by contact_get(contact_id=...)): "12" is refused
        # like it is for message ids; Identifier(IdentifierType.ID, "12") takes wire text.
        check_id(value, "contact id")
        return cls(IdentifierType.ID, value)  # type: ignore[arg-type]  # validated to str


@dataclass(frozen=True)
class Contact:
    """A contact as the server returns it."""

    id: int
    email: str | None = None
    mobile_number: str | None = None
    app_alias: str | None = None
    external_id: str | None = None
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}),
                                          hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.attributes, MappingProxyType):
            object.__setattr__(self, "attributes", MappingProxyType(dict(self.attributes)))

    def __reduce__(self) -> tuple[object, ...]:
        return (Contact, (self.id, self.email, self.mobile_number, self.app_alias,
                          self.external_id, dict(self.attributes)))


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message; ``content`` is raw bytes (base64-encoded on the wire)."""

    name: str
    content: bytes
    content_type: str | None = None

    def __post_init__(self) -> None:
        check_text(self.name, "attachment name")
        if not isinstance(self.content, (bytes, bytearray, memoryview)):
            raise InvalidInputError(
                f"attachment content must be bytes, not {type(self.content).__name__}")
        object.__setattr__(self, "content", bytes(self.content))
        if self.content_type is None:
            guessed = mimetypes.guess_type(self.name, strict=False)[0]
            object.__setattr__(self, "content_type", guessed or "application/octet-stream")
        else:
            check_text(self.content_type, "attachment content type")

    @classmethod
    def from_path(cls, path: str | os.PathLike[str], content_type: str | None = None,
                  *, name: str | None = None) -> Attachment:
        """Read a file into an attachment named after the file."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read attachment {str(p)!r}: {exc.strerror}") from exc
        return cls(name or p.name, data, content_type)

    def __repr__(self) -> str:
        return (f"Attachment(name={self.name!r}, content=<{len(self.content)} bytes>, "
                f"content_type={self.content_type!r})")


@dataclass(frozen=True)
class SendResult:
    """What ``send_prepared_message`` did: the message sent and the contact it went to."""

    message_id: int
    contact: Contact
    created: bool = False


@dataclass(frozen=True)
class Exchange:
    """One request and its reply as they went over the wire (credentials removed)."""

    operation: str
    url: str
    request_headers: Mapping[str, str]
    request_body: bytes
    status_code: int | None
    response_headers: Mapping[str, str]
    response_body: bytes | None
    elapsed: float

    def __repr__(self) -> str:
        return (f"Exchange(operation={self.operation!r}, url={self.url!r}, "
                f"status_code={self.status_code!r}, "
                f"request_body=<{len(self.request_body)} bytes>, "
                f"response_body=<{len(self.response_body or b'')} bytes>)")
