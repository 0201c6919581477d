"""The procedures the facade, bulk sending and the command line share, each decided once.

* :func:`one_identifier`: the one contact identifier of a call's keywords;
  :func:`identifier_from_text` the same rules for a CSV or JSON-lines cell.
* :func:`check_create`: a contact cannot be created by its id.
* :func:`lookup_or_create`: contactGet, and with ``create_if_missing`` contactCreate.
* :func:`may_have_acted`: whether a failed call may have changed something on the server,
  the rule both the retry policy and the bulk journal follow.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import (
    AuthenticationError,
    ContactNotFoundError,
    EngageError,
    EngageFault,
    InvalidInputError,
    ObjectAlreadyExistsError,
    RateLimitedError,
)
from .models import BY_NAME, BY_TYPE, Contact, Identifier, IdentifierType
from .service import is_read

if TYPE_CHECKING:
    from .client import EngageClient

__all__ = ["check_create", "identifier_from_text", "lookup_or_create", "may_have_acted",
           "one_identifier"]

log = logging.getLogger("engage_soap")


def one_identifier(what: str, identifier: Identifier | None = None,
                   **named: Any) -> Identifier:
    """The one identifier given (``identifier=`` or one keyword of the IDENTIFIERS table),
    as an Identifier; ``what`` names the caller in the error."""
    given = {k: v for k, v in named.items() if v is not None}
    if identifier is not None:
        given["identifier"] = identifier
    if len(given) != 1:
        names = ", ".join([*named, "identifier"])
        raise InvalidInputError(f"{what} takes exactly one of {names} "
                                f"(got {', '.join(given) or 'none'})")
    (name, value), = given.items()
    if name == "identifier":
        if not isinstance(value, Identifier):
            raise InvalidInputError(
                f"identifier must be an Identifier, not {type(value).__name__}")
        return value
    if name not in BY_NAME:
        raise InvalidInputError(f"{what}: {name!r} is not an identifier (one of "
                                f"{', '.join(BY_NAME)})")
    kind = BY_NAME[name].type
    if kind is IdentifierType.ID:
        return Identifier.id(value)
    return Identifier(kind, value)


def identifier_from_text(name: str, value: object) -> Identifier:
    """The identifier of a file's cell (column ``name``): :func:`one_identifier`'s rules,
    where a contact id may also be written as digits (``"12"``); an empty cell is a
    missing identifier."""
    if value is None or value == "":
        raise InvalidInputError(f"no {name} given (the cell is empty)")
    if name in BY_NAME and BY_NAME[name].type is IdentifierType.ID and isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and text.isdigit()):
            raise InvalidInputError(f"contact_id must be a positive whole number, got {value!r}")
        value = int(text)
    named: dict[str, Any] = {name: value}
    return one_identifier(f"the {name} column", **named)


def check_create(identifier: Identifier, create_if_missing: bool) -> None:
    """Refuse ``create_if_missing`` with a contact id: a contact cannot be created by it."""
    if create_if_missing and identifier.type is IdentifierType.ID:
        raise InvalidInputError("create_if_missing needs an identifier other than "
                                "contact_id: a contact cannot be created by its id")


def lookup_or_create(client: EngageClient, identifier: Identifier, *,
                     create_if_missing: bool = False) -> tuple[Contact, bool]:
    """The contact named by ``identifier`` and whether it was created now: contactGet, and
    when there is none and ``create_if_missing``, contactCreate (a contact created
    meanwhile by someone else is looked up again)."""
    check_create(identifier, create_if_missing)
    log.info("looking up contact by %s", identifier.type.value)
    try:
        return client.contact_get(identifier), False
    except ContactNotFoundError:
        if not create_if_missing:
            raise
    log.info("contact not found; creating it")
    try:
        keyword: Mapping[str, Any] = {BY_TYPE[identifier.type].name: identifier.value}
        return client.contact_create(**keyword), True
    except ObjectAlreadyExistsError:
        return client.contact_get(identifier), False


def may_have_acted(error: EngageError, operation: str | None) -> bool:
    """Whether the failed call of ``operation`` (None: unknown, counted as a write) may
    have changed something on the server, so repeating it could do it twice.

    Only an answer that proves nothing was done lets a write be repeated: the throttle,
    a refused login (401/403), a fault whose errorActor is CLIENT (invalid input, an
    unknown object...), or a failure before the request was sent. A read never acts.
    """
    if operation is not None and is_read(operation):
        return False
    if isinstance(error, (RateLimitedError, AuthenticationError)):
        return False
    if isinstance(error, EngageFault) and error.error_actor == "CLIENT":
        return False
    return error.request_sent
